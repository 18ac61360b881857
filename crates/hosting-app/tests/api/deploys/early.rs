//! Uploads before the deploy exists (`POST /blobs/missing`, `POST /blobs`): what the
//! caller sends first, the deploy created afterwards does not require; the "missing"
//! answer counts only the caller's own uploads; a bad entry is named and leaves nothing
//! stored.

use super::bulk::tar_of;
use super::{assert_ready_then_served, create_digest};
use crate::helpers::{assert_problem, sha256_hex, TestApp, ADMIN_TOKEN};

async fn missing(app: &TestApp, token: &str, digests: &[String]) -> reqwest::Response {
    app.post(token, "/blobs/missing")
        .json(&hosting_api::MissingQuery {
            digests: digests.to_vec(),
        })
        .send()
        .await
        .expect("missing")
}

async fn missing_ok(app: &TestApp, token: &str, digests: &[String]) -> Vec<String> {
    let response = missing(app, token, digests).await;
    assert_eq!(response.status(), 200);
    let body: hosting_api::Missing = response.json().await.expect("json");
    body.missing
}

async fn post_blobs(app: &TestApp, token: &str, body: Vec<u8>) -> reqwest::Response {
    app.post(token, "/blobs")
        .header("content-type", "application/x-tar")
        .body(body)
        .send()
        .await
        .expect("early upload")
}

/// The tar of `files`' bytes, each entry named by its digest.
fn tar_by_digest(files: &[(&str, &[u8])]) -> Vec<u8> {
    let entries: Vec<(String, &[u8])> = files.iter().map(|(_, b)| (sha256_hex(b), *b)).collect();
    tar_of(&entries)
}

fn digests(files: &[(&str, &[u8])]) -> Vec<String> {
    let mut digests: Vec<String> = files.iter().map(|(_, b)| sha256_hex(b)).collect();
    digests.sort();
    digests
}

#[tokio::test]
async fn files_uploaded_before_their_deploy_make_it_ready_at_once_and_are_served() {
    // Arrange
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let files: [(&str, &[u8]); 3] = [
        ("/index.html", b"<p>home</p>"),
        ("/a.html", b"<p>a</p>"),
        ("/b.html", b"<p>b</p>"),
    ];
    let all = digests(&files);
    assert_eq!(missing_ok(&app, ADMIN_TOKEN, &all).await, all);

    // Act
    let response = post_blobs(&app, ADMIN_TOKEN, tar_by_digest(&files)).await;
    assert_eq!(
        response.status(),
        204,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let still_missing = missing_ok(&app, ADMIN_TOKEN, &all).await;
    let created = create_digest(&app, ADMIN_TOKEN, "blog", &files).await;

    // Assert
    assert!(still_missing.is_empty(), "{still_missing:?}");
    assert!(created.required.is_empty(), "{:?}", created.required);
    assert_ready_then_served(&app, &created.deploy.id, &files).await;
}

#[tokio::test]
async fn another_tenants_early_upload_does_not_count_as_present() {
    // Arrange: the admin uploads a file early
    let app = TestApp::spawn().await;
    let member = app.member("mallory").await;
    let files: [(&str, &[u8]); 1] = [("/secret.html", b"the admin's bytes")];
    let response = post_blobs(&app, ADMIN_TOKEN, tar_by_digest(&files)).await;
    assert_eq!(response.status(), 204);

    // Act: another user asks about the same digest, then lists it in a deploy
    let answer = missing_ok(&app, &member, &digests(&files)).await;
    app.create_site(&member, "mine").await;
    let created = create_digest(&app, &member, "mine", &files).await;

    // Assert: both still want the bytes from them
    assert_eq!(answer, digests(&files));
    assert_eq!(created.required, digests(&files));
}

#[tokio::test]
async fn a_bad_entry_of_an_early_upload_is_named_and_nothing_of_it_is_stored() {
    // Arrange: the second entry's bytes are not what its name says
    let app = TestApp::spawn().await;
    let good: &[u8] = b"a good file";
    let claimed = sha256_hex(b"the promised bytes");
    let entries: Vec<(String, &[u8])> =
        vec![(sha256_hex(good), good), (claimed.clone(), b"other bytes")];

    // Act
    let response = post_blobs(&app, ADMIN_TOKEN, tar_of(&entries)).await;

    // Assert
    let detail = assert_problem(response, 422).await;
    assert!(detail.contains(&claimed), "{detail}");
    assert!(
        !app.blob_stored(&sha256_hex(good)).await,
        "the good entry was stored"
    );
    let mut asked = vec![sha256_hex(good), claimed];
    asked.sort();
    assert_eq!(missing_ok(&app, ADMIN_TOKEN, &asked).await, asked);
}

#[tokio::test]
async fn a_missing_query_with_a_non_digest_or_too_many_digests_is_a_400() {
    // Arrange
    let app = TestApp::spawn().await;
    let too_many: Vec<String> = (0..=hosting_api::MAX_MISSING_QUERY)
        .map(|i| sha256_hex(&i.to_le_bytes()))
        .collect();

    // Act
    let not_a_digest = missing(&app, ADMIN_TOKEN, &["index.html".to_owned()]).await;
    let over = missing(&app, ADMIN_TOKEN, &too_many).await;

    // Assert
    assert_problem(not_a_digest, 400).await;
    assert_problem(over, 400).await;
}

#[tokio::test]
async fn an_early_upload_that_is_not_a_tar_is_a_415() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act
    let response = app
        .post(ADMIN_TOKEN, "/blobs")
        .header("content-type", "application/octet-stream")
        .body(b"plain bytes".to_vec())
        .send()
        .await
        .expect("request");

    // Assert
    assert_problem(response, 415).await;
}

#[tokio::test]
async fn early_uploads_are_held_to_the_storage_quota_per_request_and_when_a_deploy_names_them() {
    // Arrange: 1,000 bytes of storage
    let app =
        TestApp::spawn_with(|c| c.quotas.quota_storage_bytes = hosting_api::ByteSize(1000)).await;
    let token = app.member("alice").await;
    app.create_site(&token, "blog").await;
    let (a, b, huge) = (vec![b'a'; 700], vec![b'b'; 700], vec![b'h'; 1200]);
    let files: [(&str, &[u8]); 2] = [("/a.html", &a), ("/b.html", &b)];

    // Act: one request over the quota; then two that each fit, and a deploy of both
    let over = post_blobs(&app, &token, tar_by_digest(&[("/huge.html", &huge)])).await;
    let first = post_blobs(&app, &token, tar_by_digest(&files[..1])).await;
    let second = post_blobs(&app, &token, tar_by_digest(&files[1..])).await;
    let deploy = super::post_manifest(&app, &token, "blog", &files, None).await;

    // Assert: the oversized request stored nothing; the deploy of 1,400 bytes is refused
    assert_problem(over, 403).await;
    assert!(
        !app.blob_stored(&sha256_hex(&huge)).await,
        "refused bytes are stored"
    );
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (204, 204)
    );
    assert_problem(deploy, 403).await;
}
