//! Deploy messages (`hostctl deploy --message`): stored with a digest or archive deploy,
//! returned in deploy records and history, bounded in length; and `GET /limits`, which
//! lets a client check a folder against the server's limits before deploying.

use std::collections::BTreeMap;

use hosting_api as api;

use crate::helpers::{assert_problem, sha256_hex, targz, TestApp, ADMIN_TOKEN};

async fn post_with_message(app: &TestApp, site: &str, message: &str) -> reqwest::Response {
    let files = BTreeMap::from([("/index.html".to_owned(), sha256_hex(b"home"))]);
    app.post(ADMIN_TOKEN, &format!("/sites/{site}/deploys"))
        .json(&api::CreateDeploy {
            files,
            message: Some(message.to_owned()),
        })
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn a_digest_deploy_keeps_its_message_in_the_record_and_the_history() {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;

    let response = post_with_message(&app, "blog", "  Fix the footer links  ").await;

    assert_eq!(response.status(), 201);
    let created: api::CreatedDeploy = response.json().await.expect("created deploy");
    assert_eq!(
        created.deploy.message.as_deref(),
        Some("Fix the footer links")
    );
    let history: api::List<api::Deploy> = app
        .get(ADMIN_TOKEN, "/sites/blog/deploys")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("history");
    assert_eq!(
        history.items[0].message.as_deref(),
        Some("Fix the footer links")
    );
}

#[tokio::test]
async fn an_archive_deploy_takes_its_message_from_the_query() {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;

    let response = app
        .post(ADMIN_TOKEN, "/sites/blog/deploys?message=Release%202.1")
        .header("content-type", "application/gzip")
        .body(targz(&[("index.html", b"v2.1")]))
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), 201);
    let deploy: api::Deploy = response.json().await.expect("deploy");
    assert_eq!(deploy.message.as_deref(), Some("Release 2.1"));
}

#[tokio::test]
async fn a_deploy_without_a_message_has_none() {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;

    let deploy = app
        .deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"x")])
        .await;

    assert_eq!(deploy.message, None);
}

#[tokio::test]
async fn an_overlong_or_multi_line_message_is_a_400_problem_and_creates_nothing() {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;

    let long = "x".repeat(api::MAX_DEPLOY_MESSAGE_CHARS + 1);
    let detail = assert_problem(post_with_message(&app, "blog", &long).await, 400).await;
    assert!(detail.contains("at most 500"), "{detail}");

    let detail = assert_problem(post_with_message(&app, "blog", "one\ntwo").await, 400).await;
    assert!(detail.contains("one line"), "{detail}");

    let query = format!("/sites/blog/deploys?message={long}");
    let archive = app
        .post(ADMIN_TOKEN, &query)
        .header("content-type", "application/gzip")
        .body(targz(&[("index.html", b"x")]))
        .send()
        .await
        .expect("request");
    assert_problem(archive, 400).await;

    let history: api::List<api::Deploy> = app
        .get(ADMIN_TOKEN, "/sites/blog/deploys")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("history");
    assert!(history.items.is_empty());
}

#[tokio::test]
async fn the_limits_endpoint_reports_the_configured_deploy_limits() {
    let app = TestApp::spawn_with(|config| {
        config.limits.max_files = 123;
        config.limits.max_file_bytes = 4567;
        config.limits.max_deploy_bytes = 89_000;
    })
    .await;

    let response = app
        .get(ADMIN_TOKEN, "/limits")
        .send()
        .await
        .expect("request");

    assert_eq!(response.status(), 200);
    let limits: api::Limits = response.json().await.expect("limits");
    assert_eq!(
        limits,
        api::Limits {
            max_files: 123,
            max_file_bytes: 4567,
            max_deploy_bytes: 89_000,
        }
    );
    let anonymous = app
        .client
        .get(app.api("/limits"))
        .send()
        .await
        .expect("request");
    assert_problem(anonymous, 401).await;
}
