//! Bulk uploads (`POST /deploys/{id}/files`, a tar of entries named by digest): a batch
//! makes a deploy ready and servable, a bad entry is named and leaves nothing of its
//! batch stored, and the per-request limits answer problem+json.

use super::{assert_ready_then_served, create_digest, page, post_manifest, publish};
use crate::helpers::{assert_problem, sha256_hex, TestApp, ADMIN_TOKEN};

/// An uncompressed tar of `(entry name, bytes)`.
pub(crate) fn tar_of(entries: &[(String, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, *bytes)
            .expect("tar entry");
    }
    builder.into_inner().expect("tar")
}

/// The tar of `files`, each entry named by the digest of its bytes.
fn batch_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let entries: Vec<(String, &[u8])> = files.iter().map(|(_, b)| (sha256_hex(b), *b)).collect();
    tar_of(&entries)
}

pub(crate) async fn post_batch(
    app: &TestApp,
    token: &str,
    id: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.post(token, &format!("/deploys/{id}/files"))
        .header("content-type", "application/x-tar")
        .body(body)
        .send()
        .await
        .expect("bulk upload")
}

fn site_files(n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            (
                format!("/page{i:03}.html"),
                format!("<p>page {i}</p>").into_bytes(),
            )
        })
        .collect()
}

fn borrowed(files: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect()
}

#[tokio::test]
async fn a_bulk_upload_makes_the_deploy_ready_and_publish_serves_every_file() {
    // Arrange
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let files = site_files(40);
    let files = borrowed(&files);
    let created = create_digest(&app, ADMIN_TOKEN, "blog", &files).await;
    assert_eq!(created.required.len(), 40);

    // Act: two batches of 20
    for half in files.chunks(20) {
        let response = post_batch(&app, ADMIN_TOKEN, &created.deploy.id, batch_of(half)).await;
        assert_eq!(
            response.status(),
            204,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }

    // Assert
    assert_ready_then_served(&app, &created.deploy.id, &files).await;
}

#[tokio::test]
async fn a_batch_sent_twice_is_accepted_twice() {
    // Arrange
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let files = site_files(3);
    let files = borrowed(&files);
    let created = create_digest(&app, ADMIN_TOKEN, "blog", &files).await;

    // Act: a retry after a lost acknowledgement
    let first = post_batch(&app, ADMIN_TOKEN, &created.deploy.id, batch_of(&files)).await;
    let again = post_batch(&app, ADMIN_TOKEN, &created.deploy.id, batch_of(&files)).await;

    // Assert
    assert_eq!(
        (first.status().as_u16(), again.status().as_u16()),
        (204, 204)
    );
    assert_eq!(
        publish(&app, ADMIN_TOKEN, &created.deploy.id)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_bad_entry_is_named_and_nothing_of_its_batch_is_stored() {
    // Arrange: three files, the last entry's bytes are not what its name says
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let files: [(&str, &[u8]); 3] = [
        ("/a.html", b"first file"),
        ("/b.html", b"second file"),
        ("/c.html", b"third file"),
    ];
    let created = create_digest(&app, ADMIN_TOKEN, "blog", &files).await;
    let bad_name = sha256_hex(files[2].1);
    let entries: Vec<(String, &[u8])> = vec![
        (sha256_hex(files[0].1), files[0].1),
        (sha256_hex(files[1].1), files[1].1),
        (bad_name.clone(), b"tampered bytes"),
    ];

    // Act
    let response = post_batch(&app, ADMIN_TOKEN, &created.deploy.id, tar_of(&entries)).await;

    // Assert: 422 naming the entry; not even the good entries were stored
    let detail = assert_problem(response, 422).await;
    assert!(detail.contains(&bad_name), "{detail}");
    for (_, bytes) in &files {
        assert!(
            !app.blob_stored(&sha256_hex(bytes)).await,
            "a blob of the refused batch is stored"
        );
    }
    let again = post_manifest(&app, ADMIN_TOKEN, "blog", &files, None).await;
    let again: hosting_api::CreatedDeploy = again.json().await.expect("json");
    assert_eq!(again.required.len(), 3, "the refused batch was recorded");
    // The deploy still takes a correct batch.
    let response = post_batch(&app, ADMIN_TOKEN, &created.deploy.id, batch_of(&files)).await;
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn entries_the_deploy_does_not_list_or_not_named_by_a_digest_are_refused() {
    // Arrange
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let files: [(&str, &[u8]); 1] = [("/a.html", b"listed")];
    let created = create_digest(&app, ADMIN_TOKEN, "blog", &files).await;
    let id = &created.deploy.id;
    let stranger: &[u8] = b"not in the deploy";

    // Act
    let unlisted = post_batch(
        &app,
        ADMIN_TOKEN,
        id,
        tar_of(&[(sha256_hex(stranger), stranger)]),
    )
    .await;
    let badly_named = post_batch(
        &app,
        ADMIN_TOKEN,
        id,
        tar_of(&[("index.html".into(), b"x")]),
    )
    .await;
    let not_tar = app
        .post(ADMIN_TOKEN, &format!("/deploys/{id}/files"))
        .header("content-type", "application/octet-stream")
        .body("x")
        .send()
        .await
        .expect("request");

    // Assert
    let detail = assert_problem(unlisted, 422).await;
    assert!(detail.contains(&sha256_hex(stranger)), "{detail}");
    let detail = assert_problem(badly_named, 400).await;
    assert!(detail.contains("index.html"), "{detail}");
    assert_problem(not_tar, 415).await;
    assert!(!app.blob_stored(&sha256_hex(stranger)).await);
}

#[tokio::test]
async fn a_batch_over_the_file_or_byte_limit_is_a_413_problem() {
    // Arrange
    let app = TestApp::spawn_with(|c| {
        c.limits.max_batch_files = 2;
        c.limits.max_batch_bytes = 100;
    })
    .await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let (big, bigger) = (vec![b'x'; 60], vec![b'y'; 60]);
    let files: [(&str, &[u8]); 5] = [
        ("/a.html", b"a"),
        ("/b.html", b"b"),
        ("/c.html", b"c"),
        ("/big.html", &big),
        ("/bigger.html", &bigger),
    ];
    let created = create_digest(&app, ADMIN_TOKEN, "blog", &files).await;
    let id = &created.deploy.id;

    // Act
    let too_many = post_batch(&app, ADMIN_TOKEN, id, batch_of(&files[..3])).await;
    let too_big = post_batch(&app, ADMIN_TOKEN, id, batch_of(&files[3..])).await;

    // Assert
    let detail = assert_problem(too_many, 413).await;
    assert!(detail.contains("at most 2 files"), "{detail}");
    assert_problem(too_big, 413).await;
    assert!(!app.blob_stored(&sha256_hex(files[0].1)).await);
    // Within the limits it works.
    let response = post_batch(&app, ADMIN_TOKEN, id, batch_of(&files[..2])).await;
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn an_archive_larger_than_the_batch_buffer_is_deployed_whole() {
    // Arrange: a buffer of 64 bytes, so a database blob store writes the archive's files
    // in several rounds while it streams
    let app = TestApp::spawn_with(|c| c.limits.max_batch_bytes = 64).await;
    let files = site_files(12);
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, b)| (p.trim_start_matches('/'), b.as_slice()))
        .collect();

    // Act
    let deploy = app.deploy_archive(ADMIN_TOKEN, "docs", &entries).await;

    // Assert
    assert_eq!(deploy.file_count, 12);
    for (path, bytes) in &borrowed(&files) {
        let (status, body) = page(&app, "docs", path).await;
        assert_eq!((status, body.as_bytes()), (200, *bytes), "{path}");
    }
}
