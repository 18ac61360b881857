//! A deploy's life around the requests: atomic publish under concurrent reads,
//! expiry and garbage collection, and durability across a restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hosting_api as api;

use super::{create_digest, get_deploy, page, publish, upload};
use crate::helpers::{assert_problem, sha256_hex, TestApp, ADMIN_TOKEN};

const FILES: usize = 20;

fn version(v: u32) -> Vec<(String, Vec<u8>)> {
    (0..FILES)
        .map(|i| {
            (
                format!("/f{i:02}.html"),
                format!("v{v} file {i:02}").into_bytes(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publishing_switches_every_file_at_once_under_concurrent_reads() {
    // Arrange: v1 live, v2 ready
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let (v1_files, v2_files) = (version(1), version(2));
    let (v1, _) = app
        .deploy_digest(ADMIN_TOKEN, "blog", &borrowed(&v1_files))
        .await;
    let v2 = create_digest(&app, ADMIN_TOKEN, "blog", &borrowed(&v2_files)).await;
    for (_, bytes) in &v2_files {
        let response = upload(&app, ADMIN_TOKEN, &v2.deploy.id, &sha256_hex(bytes), bytes).await;
        assert_eq!(response.status(), 204);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for reader in 0..4usize {
        let (client, addr, stop) = (app.client.clone(), app.addr, stop.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = [0u64; 2];
            let mut n = reader;
            while !stop.load(Ordering::Relaxed) {
                let i = n % FILES;
                n += 7;
                let response = client
                    .get(format!("http://{addr}/f{i:02}.html"))
                    .header("host", "blog.localhost")
                    .send()
                    .await
                    .expect("request");
                let status = response.status();
                let body = response.text().await.expect("body");
                assert_eq!(status, 200, "f{i:02}.html: {body}");
                if body == format!("v1 file {i:02}") {
                    seen[0] += 1;
                } else if body == format!("v2 file {i:02}") {
                    seen[1] += 1;
                } else {
                    panic!("f{i:02}.html served {body:?}");
                }
            }
            seen
        }));
    }

    // Act: flip between the two versions while the readers run
    for round in 0..6 {
        let (id, v) = if round % 2 == 0 {
            (&v2.deploy.id, 2)
        } else {
            (&v1.id, 1)
        };
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        assert_eq!(publish(&app, ADMIN_TOKEN, id).await.status(), 200);
        // Publish invalidates the host cache itself: the very next request sees it.
        for i in [0, FILES / 2, FILES - 1] {
            let expected = format!("v{v} file {i:02}");
            assert_eq!(
                page(&app, "blog", &format!("/f{i:02}.html")).await,
                (200, expected)
            );
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    stop.store(true, Ordering::Relaxed);

    // Assert: every read was a whole file of one version, and both were seen
    let mut seen = [0u64; 2];
    for reader in readers {
        let counts = reader.await.expect("a reader saw a bad response");
        seen[0] += counts[0];
        seen[1] += counts[1];
    }
    assert!(
        seen[0] > 0 && seen[1] > 0,
        "readers saw v1 {} and v2 {} times",
        seen[0],
        seen[1]
    );
}

#[tokio::test]
async fn abandoned_deploys_expire_and_their_blobs_are_collected() {
    // Arrange: a live deploy, and an abandoned one that got one of its two files
    let app =
        TestApp::spawn_with(|c| c.limits.deploy_expiry = std::time::Duration::from_secs(0)).await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let live: &[u8] = b"live and referenced";
    app.deploy_digest(ADMIN_TOKEN, "blog", &[("/index.html", live)])
        .await;
    let (partial, never): (&[u8], &[u8]) = (b"uploaded then abandoned", b"never uploaded");
    let abandoned = create_digest(
        &app,
        ADMIN_TOKEN,
        "blog",
        &[("/a.html", partial), ("/b.html", never)],
    )
    .await;
    let id = abandoned.deploy.id.as_str();
    assert_eq!(
        upload(&app, ADMIN_TOKEN, id, &sha256_hex(partial), partial)
            .await
            .status(),
        204
    );
    assert!(app.blob_stored(&sha256_hex(partial)).await);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    // Act: expire, then collect everything unreferenced touched before now + 1s
    let report = hosting_app::gc::run_once(&app.state).await.expect("gc");
    let deleted = hosting_app::gc::collect_blobs(
        &app.state,
        chrono::Utc::now() + chrono::Duration::seconds(1),
    )
    .await
    .expect("collect");

    // Assert
    assert_eq!(report.expired_deploys, 1);
    assert_eq!(deleted, 1);
    let expired = get_deploy(&app, ADMIN_TOKEN, id).await;
    assert_eq!(expired.state, api::DeployState::Expired);
    assert_problem(publish(&app, ADMIN_TOKEN, id).await, 409).await;
    assert_problem(
        upload(&app, ADMIN_TOKEN, id, &sha256_hex(never), never).await,
        409,
    )
    .await;
    assert!(
        !app.blob_stored(&sha256_hex(partial)).await,
        "the abandoned blob is still stored"
    );
    assert!(
        app.blob_stored(&sha256_hex(live)).await,
        "the live blob was collected"
    );
    assert_eq!(
        page(&app, "blog", "/index.html").await,
        (200, String::from_utf8_lossy(live).into_owned())
    );

    // A new deploy of the collected file must upload it again; the live one is still owned
    let again = create_digest(
        &app,
        ADMIN_TOKEN,
        "blog",
        &[("/a.html", partial), ("/index.html", live)],
    )
    .await;
    assert_eq!(again.required, vec![sha256_hex(partial)]);
}

#[tokio::test]
async fn an_upload_for_a_hash_outside_the_deploy_leaves_nothing_behind() {
    // Arrange
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let created = create_digest(&app, ADMIN_TOKEN, "blog", &[("/index.html", b"wanted")]).await;
    let stranger: &[u8] = b"bytes nobody asked for";

    // Act
    let response = upload(
        &app,
        ADMIN_TOKEN,
        &created.deploy.id,
        &sha256_hex(stranger),
        stranger,
    )
    .await;

    // Assert: refused, and the bytes are not kept forever (collected like any unreferenced blob)
    assert_problem(response, 422).await;
    hosting_app::gc::collect_blobs(
        &app.state,
        chrono::Utc::now() + chrono::Duration::seconds(1),
    )
    .await
    .expect("collect");
    assert!(
        !app.blob_stored(&sha256_hex(stranger)).await,
        "a refused upload stays on disk"
    );
    let again = create_digest(&app, ADMIN_TOKEN, "blog", &[("/x.html", stranger)]).await;
    assert_eq!(again.required, vec![sha256_hex(stranger)]);
}

#[tokio::test]
async fn a_published_site_and_tokens_survive_a_restart() {
    // Arrange
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let deploy = app
        .deploy_archive(
            ADMIN_TOKEN,
            "blog",
            &[("index.html", b"durable"), ("css/a.css", b"a{}")],
        )
        .await;
    let bob = app.member("bob").await;

    // Act
    let app = app.restart().await;

    // Assert
    // (In cluster mode the new process reads the primary until the replica has replayed
    // what was written before it started: see the cluster test on a lagging replica.)
    assert_eq!(
        page(&app, "blog", "/index.html").await,
        (200, "durable".into())
    );
    assert_eq!(page(&app, "blog", "/css/a.css").await, (200, "a{}".into()));
    let me: api::User = app
        .get(&bob, "/whoami")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(me.username, "bob");
    let fetched = get_deploy(&app, ADMIN_TOKEN, &deploy.id).await;
    assert!(fetched.live);
}
