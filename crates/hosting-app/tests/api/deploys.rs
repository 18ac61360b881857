//! Deploy safety: the digest protocol, per-owner `required`, idempotent creation,
//! history and rollback, and validation of JSON file lists. Archives, concurrency,
//! garbage collection and restarts are in the submodules.

use std::collections::BTreeMap;

use hosting_api as api;

use crate::helpers::{assert_problem, sha256_hex, TestApp, ADMIN_TOKEN};

#[path = "deploys/archives.rs"]
mod archives;
#[path = "deploys/bulk.rs"]
mod bulk;
mod early;
#[path = "deploys/lifecycle.rs"]
mod lifecycle;

/// `POST /sites/{site}/deploys` with a JSON file list, optionally with an Idempotency-Key.
pub(crate) async fn post_manifest(
    app: &TestApp,
    token: &str,
    site: &str,
    files: &[(&str, &[u8])],
    key: Option<&str>,
) -> reqwest::Response {
    let manifest: BTreeMap<String, String> = files
        .iter()
        .map(|(p, b)| ((*p).to_owned(), sha256_hex(b)))
        .collect();
    let mut request = app
        .post(token, &format!("/sites/{site}/deploys"))
        .json(&api::CreateDeploy {
            files: manifest,
            message: None,
        });
    if let Some(key) = key {
        request = request.header(api::IDEMPOTENCY_KEY, key);
    }
    request.send().await.expect("request")
}

/// Creates a digest deploy (201) and returns it with its `required` list.
pub(crate) async fn create_digest(
    app: &TestApp,
    token: &str,
    site: &str,
    files: &[(&str, &[u8])],
) -> api::CreatedDeploy {
    let response = post_manifest(app, token, site, files, None).await;
    let status = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(status, 201, "creating a deploy failed: {text}");
    serde_json::from_str(&text).expect("created deploy json")
}

pub(crate) async fn upload(
    app: &TestApp,
    token: &str,
    id: &str,
    sha: &str,
    bytes: &[u8],
) -> reqwest::Response {
    app.client
        .put(app.api(&format!("/deploys/{id}/files/{sha}")))
        .bearer_auth(token)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("upload")
}

pub(crate) async fn publish(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    app.post(token, &format!("/deploys/{id}/publish"))
        .send()
        .await
        .expect("publish")
}

pub(crate) async fn history(app: &TestApp, token: &str, site: &str) -> Vec<api::Deploy> {
    let response = app
        .get(token, &format!("/sites/{site}/deploys"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let list: api::List<api::Deploy> = response.json().await.expect("deploy list");
    list.items
}

pub(crate) async fn get_deploy(app: &TestApp, token: &str, id: &str) -> api::Deploy {
    let response = app
        .get(token, &format!("/deploys/{id}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("deploy json")
}

/// Status and body of `path` on the site host `<site>.localhost`.
pub(crate) async fn page(app: &TestApp, site: &str, path: &str) -> (u16, String) {
    let response = app.site(&format!("{site}.localhost"), path, &[]).await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("site body"))
}

/// The deploy `id` of site "blog" is ready with every byte of `files`, publishes, and
/// then serves each file at its path.
pub(crate) async fn assert_ready_then_served(app: &TestApp, id: &str, files: &[(&str, &[u8])]) {
    let deploy = get_deploy(app, ADMIN_TOKEN, id).await;
    assert_eq!(deploy.state, api::DeployState::Ready);
    let expected_bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    assert_eq!(deploy.total_bytes, expected_bytes as u64);
    assert_eq!(publish(app, ADMIN_TOKEN, id).await.status(), 200);
    for (path, bytes) in files {
        let (status, body) = page(app, "blog", path).await;
        assert_eq!((status, body.as_bytes()), (200, *bytes), "{path}");
    }
}

#[tokio::test]
async fn a_digest_deploy_asks_for_every_file_then_only_for_what_changed() {
    // Arrange
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let files: [(&str, &[u8]); 3] = [
        ("/index.html", b"<h1>home</h1>"),
        ("/about.html", b"<h1>about</h1>"),
        ("/css/site.css", b"body{}"),
    ];

    // Act: the first deploy
    let created = create_digest(&app, ADMIN_TOKEN, "blog", &files).await;

    // Assert: every hash is required, uploads are accepted, publish makes it live
    let mut all: Vec<String> = files.iter().map(|(_, b)| sha256_hex(b)).collect();
    all.sort();
    let mut required = created.required.clone();
    required.sort();
    assert_eq!(required, all);
    assert_eq!(created.deploy.state, api::DeployState::Uploading);
    for (_, bytes) in &files {
        let response = upload(
            &app,
            ADMIN_TOKEN,
            &created.deploy.id,
            &sha256_hex(bytes),
            bytes,
        )
        .await;
        assert_eq!(response.status(), 204);
    }
    let response = publish(&app, ADMIN_TOKEN, &created.deploy.id).await;
    assert_eq!(response.status(), 200);
    let published: api::Deploy = response.json().await.expect("json");
    assert!(published.live);
    assert_eq!(published.state, api::DeployState::Ready);
    assert_eq!(
        page(&app, "blog", "/about.html").await,
        (200, "<h1>about</h1>".into())
    );
    assert_eq!(
        page(&app, "blog", "/css/site.css").await,
        (200, "body{}".into())
    );

    // Act: a second deploy with one changed file
    let changed: [(&str, &[u8]); 3] = [files[0], ("/about.html", b"<h1>about v2</h1>"), files[2]];
    let (deploy, required) = app.deploy_digest(ADMIN_TOKEN, "blog", &changed).await;

    // Assert
    assert_eq!(required, vec![sha256_hex(b"<h1>about v2</h1>")]);
    assert!(deploy.live);
    assert_eq!(
        page(&app, "blog", "/about.html").await,
        (200, "<h1>about v2</h1>".into())
    );
    assert_eq!(
        page(&app, "blog", "/index.html").await,
        (200, "<h1>home</h1>".into())
    );
}

#[tokio::test]
async fn uploads_are_verified_against_their_hash_and_the_deploy() {
    // Arrange: a live v1, and a v2 that waits for two files
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    app.deploy_digest(ADMIN_TOKEN, "blog", &[("/index.html", b"v1")])
        .await;
    let created = create_digest(
        &app,
        ADMIN_TOKEN,
        "blog",
        &[("/index.html", b"v2"), ("/new.html", b"new")],
    )
    .await;
    let id = created.deploy.id.as_str();
    let (v2, new) = (sha256_hex(b"v2"), sha256_hex(b"new"));

    // Act / Assert: bytes that do not match the hash are refused and not stored
    let detail = assert_problem(
        upload(&app, ADMIN_TOKEN, id, &v2, b"something else").await,
        422,
    )
    .await;
    assert!(detail.contains(&v2), "{detail}");
    assert!(!app.blob_stored(&v2).await);
    assert!(!app.blob_stored(&sha256_hex(b"something else")).await);

    // A hash that is not part of the deploy is refused
    let stranger = b"not in this deploy";
    let detail = assert_problem(
        upload(&app, ADMIN_TOKEN, id, &sha256_hex(stranger), stranger).await,
        422,
    )
    .await;
    assert!(detail.contains(&sha256_hex(stranger)), "{detail}");
    let response = upload(&app, ADMIN_TOKEN, id, "not-a-hash", b"x").await;
    assert_problem(response, 422).await;

    // Publishing before every file arrived is a conflict and changes nothing
    assert_eq!(
        upload(&app, ADMIN_TOKEN, id, &v2, b"v2").await.status(),
        204
    );
    let detail = assert_problem(publish(&app, ADMIN_TOKEN, id).await, 409).await;
    assert!(detail.contains("1 file"), "{detail}");
    assert_eq!(page(&app, "blog", "/index.html").await, (200, "v1".into()));
    assert_eq!(page(&app, "blog", "/new.html").await.0, 404);
    assert_eq!(
        get_deploy(&app, ADMIN_TOKEN, id).await.state,
        api::DeployState::Uploading
    );

    // Re-uploading the same file is idempotent
    assert_eq!(
        upload(&app, ADMIN_TOKEN, id, &v2, b"v2").await.status(),
        204
    );
    assert_eq!(
        upload(&app, ADMIN_TOKEN, id, &new, b"new").await.status(),
        204
    );
    assert_eq!(
        upload(&app, ADMIN_TOKEN, id, &new, b"new").await.status(),
        204
    );
    assert_eq!(publish(&app, ADMIN_TOKEN, id).await.status(), 200);
    assert_eq!(page(&app, "blog", "/index.html").await, (200, "v2".into()));
    assert_eq!(page(&app, "blog", "/new.html").await, (200, "new".into()));
}

#[tokio::test]
async fn required_is_per_owner_so_knowing_a_hash_does_not_give_the_bytes() {
    // Arrange: the admin has uploaded a secret file
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "alpha").await;
    let secret: &[u8] = b"the admin's private report";
    app.deploy_digest(ADMIN_TOKEN, "alpha", &[("/report.html", secret)])
        .await;
    let bob = app.member("bob").await;
    app.create_site(&bob, "bobsite").await;

    // Act: bob claims a file with the same hash
    let created = create_digest(&app, &bob, "bobsite", &[("/stolen.html", secret)]).await;

    // Assert: bob must upload the bytes himself, and cannot publish without them
    assert_eq!(created.required, vec![sha256_hex(secret)]);
    assert_eq!(created.deploy.state, api::DeployState::Uploading);
    assert_problem(publish(&app, &bob, &created.deploy.id).await, 409).await;
    assert_eq!(page(&app, "bobsite", "/stolen.html").await.0, 404);
    let preview = format!("{}--bobsite.localhost", created.deploy.id);
    assert_eq!(app.site(&preview, "/stolen.html", &[]).await.status(), 404);

    // Once bob really uploads the bytes, it works (and it is his copy)
    assert_eq!(
        upload(&app, &bob, &created.deploy.id, &sha256_hex(secret), secret)
            .await
            .status(),
        204
    );
    assert_eq!(publish(&app, &bob, &created.deploy.id).await.status(), 200);
    assert_eq!(
        page(&app, "bobsite", "/stolen.html").await,
        (200, String::from_utf8_lossy(secret).into_owned())
    );
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retried_create_one_deploy() {
    // Arrange
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let files: [(&str, &[u8]); 1] = [("/index.html", b"hello")];

    // Act
    let first = post_manifest(&app, ADMIN_TOKEN, "blog", &files, Some("retry-1")).await;
    assert_eq!(first.status(), 201);
    let first: api::CreatedDeploy = first.json().await.expect("json");
    let second = post_manifest(&app, ADMIN_TOKEN, "blog", &files, Some("retry-1")).await;

    // Assert
    assert!(
        matches!(second.status().as_u16(), 200 | 201),
        "{}",
        second.status()
    );
    let second: api::CreatedDeploy = second.json().await.expect("json");
    assert_eq!(second.deploy.id, first.deploy.id);
    assert_eq!(second.required, first.required);
    assert_eq!(history(&app, ADMIN_TOKEN, "blog").await.len(), 1);

    let other: [(&str, &[u8]); 1] = [("/index.html", b"different")];
    let response = post_manifest(&app, ADMIN_TOKEN, "blog", &other, Some("retry-1")).await;
    let detail = assert_problem(response, 422).await;
    assert!(detail.contains("Idempotency-Key"), "{detail}");
    assert_eq!(history(&app, ADMIN_TOKEN, "blog").await.len(), 1);
}

#[tokio::test]
async fn history_is_newest_first_and_rollback_brings_back_older_content() {
    // Arrange
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let v1 = app
        .deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"v1")])
        .await;

    // Rolling back with no earlier deploy is a conflict
    let response = app
        .post(ADMIN_TOKEN, "/sites/blog/rollback")
        .send()
        .await
        .expect("request");
    assert_problem(response, 409).await;
    assert_eq!(page(&app, "blog", "/index.html").await, (200, "v1".into()));

    let v2 = app
        .deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"v2")])
        .await;
    let list = history(&app, ADMIN_TOKEN, "blog").await;
    let ids: Vec<&str> = list.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, [v2.id.as_str(), v1.id.as_str()]);
    assert!(list[0].live && !list[1].live);
    let fetched = get_deploy(&app, ADMIN_TOKEN, &v1.id).await;
    assert_eq!(
        (fetched.site.as_str(), fetched.file_count, fetched.live),
        ("blog", 1, false)
    );

    // Act: rollback without a body
    let response = app
        .post(ADMIN_TOKEN, "/sites/blog/rollback")
        .send()
        .await
        .expect("request");

    // Assert
    assert_eq!(response.status(), 200);
    let live: api::Deploy = response.json().await.expect("json");
    assert_eq!(live.id, v1.id);
    assert!(live.live);
    assert_eq!(page(&app, "blog", "/index.html").await, (200, "v1".into()));
    let site: api::Site = app
        .get(ADMIN_TOKEN, "/sites/blog")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(site.live_deploy_id.as_deref(), Some(v1.id.as_str()));

    // Act: rollback to an explicit deploy
    let response = app
        .post(ADMIN_TOKEN, "/sites/blog/rollback")
        .json(&api::Rollback {
            deploy_id: Some(v2.id.clone()),
        })
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(page(&app, "blog", "/index.html").await, (200, "v2".into()));
    let response = app
        .post(ADMIN_TOKEN, "/sites/blog/rollback")
        .json(&api::Rollback {
            deploy_id: Some("0000000000000000".into()),
        })
        .send()
        .await
        .expect("request");
    assert_problem(response, 404).await;

    // A deploy of another site of the same owner is not a rollback target
    app.create_site(ADMIN_TOKEN, "other").await;
    let other = app
        .deploy_archive(ADMIN_TOKEN, "other", &[("index.html", b"other")])
        .await;
    let response = app
        .post(ADMIN_TOKEN, "/sites/blog/rollback")
        .json(&api::Rollback {
            deploy_id: Some(other.id.clone()),
        })
        .send()
        .await
        .expect("request");
    assert_problem(response, 422).await;
    assert_eq!(page(&app, "blog", "/index.html").await, (200, "v2".into()));
}

#[tokio::test]
async fn an_archive_deploy_with_publish_false_waits_for_an_explicit_publish() {
    // Arrange
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    app.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"old")])
        .await;

    // Act
    let response = app
        .post(ADMIN_TOKEN, "/sites/blog/deploys?publish=false")
        .header("content-type", "application/gzip")
        .body(crate::helpers::targz(&[("index.html", b"new")]))
        .send()
        .await
        .expect("request");

    // Assert
    assert_eq!(response.status(), 201);
    let staged: api::Deploy = response.json().await.expect("json");
    assert_eq!(staged.state, api::DeployState::Ready);
    assert!(!staged.live);
    assert_eq!(page(&app, "blog", "/index.html").await, (200, "old".into()));
    let preview = format!("{}--blog.localhost", staged.id);
    let response = app.site(&preview, "/index.html", &[]).await;
    assert_eq!(response.text().await.expect("body"), "new");

    assert_eq!(publish(&app, ADMIN_TOKEN, &staged.id).await.status(), 200);
    assert_eq!(page(&app, "blog", "/index.html").await, (200, "new".into()));
}

#[tokio::test]
async fn bad_json_deploy_requests_are_refused_with_the_right_status() {
    // Arrange
    let app = TestApp::spawn_with(|c| c.limits.max_files = 3).await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let good = sha256_hex(b"x");
    let send = |body: String| {
        app.post(ADMIN_TOKEN, "/sites/blog/deploys")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    // Act / Assert
    let response = app
        .post(ADMIN_TOKEN, "/sites/blog/deploys")
        .header("content-type", "text/plain")
        .body(format!(r#"{{"files":{{"/a.html":"{good}"}}}}"#))
        .send()
        .await
        .expect("request");
    assert_problem(response, 415).await;
    assert_problem(send(r#"{"files":{}}"#.into()).await.expect("request"), 422).await;
    for path in ["/../x", "no-slash", "/a//b", "/a\\b"] {
        let body = serde_json::json!({ "files": { path: good } }).to_string();
        let detail = assert_problem(send(body).await.expect("request"), 422).await;
        assert!(detail.contains("file path"), "{path}: {detail}");
    }
    for hash in ["abc", &"g".repeat(64), &good.to_uppercase()] {
        let body = serde_json::json!({ "files": { "/a.html": hash } }).to_string();
        assert_problem(send(body).await.expect("request"), 422).await;
    }
    let files: BTreeMap<String, String> = (0..4)
        .map(|i| (format!("/f{i}.html"), good.clone()))
        .collect();
    let body = serde_json::to_string(&api::CreateDeploy {
        files,
        message: None,
    })
    .expect("json");
    let detail = assert_problem(send(body).await.expect("request"), 413).await;
    assert!(detail.contains("at most 3 files"), "{detail}");

    assert!(history(&app, ADMIN_TOKEN, "blog").await.is_empty());
}

#[tokio::test]
async fn a_json_body_too_large_gets_its_413_after_the_client_has_sent_it_all() {
    // Arrange: JSON over the limit (16 MiB for a deploy's file list, 2 MiB elsewhere),
    // written whole before the answer is read, the way Nginx streams an upload. Were the
    // rest left unread, the app's close would reset the connection and the 413 would be
    // lost (Nginx: 502).
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    for (path, mib, says) in [
        ("/api/v1/sites/blog/deploys", 20, "file list is larger"),
        ("/api/v1/sites", 12, "JSON body is larger"),
    ] {
        let mut body = br#"{"files":{},"pad":""#.to_vec();
        body.resize(body.len() + mib * 1024 * 1024, b'x');
        body.extend_from_slice(br#""}"#);
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\n\
             Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(app.addr)
            .await
            .expect("connect");

        // Act
        stream.write_all(head.as_bytes()).await.expect("head");
        let sent = stream.write_all(&body).await;
        let mut response = Vec::new();
        let read = stream.read_to_end(&mut response).await;

        // Assert: every byte was taken, and the refusal arrived whole.
        sent.unwrap_or_else(|e| panic!("{path}: the app must read the body it refuses: {e}"));
        read.unwrap_or_else(|e| panic!("{path}: the answer must arrive, not a reset: {e}"));
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 413"), "{path}: {text}");
        assert!(text.contains("application/problem+json"), "{path}: {text}");
        assert!(text.contains(says), "{path}: {text}");
    }
    assert!(history(&app, ADMIN_TOKEN, "blog").await.is_empty());
}

#[tokio::test]
async fn an_archive_with_large_files_is_stored_byte_exact() {
    // Arrange: entries far larger than any read buffer between the body and the tar reader.
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    let medium = vec![b'x'; 700_000];

    // Act
    app.deploy_archive(
        ADMIN_TOKEN,
        "blog",
        &[
            ("big.bin", &big),
            ("medium.txt", &medium),
            ("index.html", b"ok"),
        ],
    )
    .await;

    // Assert
    let response = app.site("blog.localhost", "/big.bin", &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.bytes().await.expect("body").as_ref(),
        big.as_slice()
    );
    let response = app.site("blog.localhost", "/medium.txt", &[]).await;
    assert_eq!(
        response.bytes().await.expect("body").as_ref(),
        medium.as_slice()
    );
}
