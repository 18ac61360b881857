//! A one-shot `.tar.gz` deploy creates its site when the caller has none of that name
//! (as `hostctl deploy` does), so the README's curl example works on a fresh server;
//! another tenant's site stays a 404 and a refused archive leaves no site behind.

use hosting_api as api;

use crate::deploys::{history, page};
use crate::helpers::{assert_problem, targz, TestApp, ADMIN_TOKEN};

async fn site_names(app: &TestApp, token: &str) -> Vec<String> {
    let response = app.get(token, "/sites").send().await.expect("request");
    assert_eq!(response.status(), 200);
    let list: api::List<api::Site> = response.json().await.expect("site list");
    list.items.into_iter().map(|s| s.name).collect()
}

#[tokio::test]
async fn an_archive_deploy_to_a_site_that_does_not_exist_creates_and_publishes_it() {
    // Arrange: a fresh server, no site
    let app = TestApp::spawn().await;

    // Act
    let response = app
        .post_archive(
            ADMIN_TOKEN,
            "blog",
            &targz(&[("index.html", b"<h1>new</h1>")]),
        )
        .await;

    // Assert
    assert_eq!(response.status(), 201);
    let deploy: api::Deploy = response.json().await.expect("deploy json");
    assert!(deploy.live, "published");
    assert_eq!(site_names(&app, ADMIN_TOKEN).await, ["blog"]);
    assert_eq!(page(&app, "blog", "/").await, (200, "<h1>new</h1>".into()));
}

#[tokio::test]
async fn an_archive_deploy_to_another_tenants_site_is_not_found_and_changes_nothing() {
    // Arrange: alice's live site, bob with no sites
    let app = TestApp::spawn().await;
    let alice = app.member("alice").await;
    let bob = app.member("bob").await;
    app.create_site(&alice, "alpha").await;
    app.deploy_archive(&alice, "alpha", &[("index.html", b"alice")])
        .await;

    // Act
    let response = app
        .post_archive(&bob, "alpha", &targz(&[("index.html", b"defaced")]))
        .await;

    // Assert
    let detail = assert_problem(response, 404).await;
    assert!(detail.contains("alpha"), "{detail}");
    assert!(site_names(&app, &bob).await.is_empty());
    assert_eq!(history(&app, &alice, "alpha").await.len(), 1);
    assert_eq!(page(&app, "alpha", "/").await, (200, "alice".into()));
}

#[tokio::test]
async fn an_archive_deploy_to_an_invalid_site_name_says_why_and_creates_nothing() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act: two hyphens in a row would collide with preview hosts
    let response = app
        .post_archive(ADMIN_TOKEN, "my--blog", &targz(&[("index.html", b"x")]))
        .await;

    // Assert
    let detail = assert_problem(response, 422).await;
    assert!(detail.contains("two hyphens"), "{detail}");
    assert!(site_names(&app, ADMIN_TOKEN).await.is_empty());
}

#[tokio::test]
async fn a_refused_first_archive_deploy_leaves_no_site_behind() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act: not a gzip stream
    let response = app
        .post_archive(ADMIN_TOKEN, "blog", b"this is not a tar.gz")
        .await;

    // Assert
    let status = response.status().as_u16();
    assert!((400..500).contains(&status), "{status}");
    assert_problem(response, status).await;
    assert!(site_names(&app, ADMIN_TOKEN).await.is_empty());
}

#[tokio::test]
async fn a_json_deploy_to_a_site_that_does_not_exist_is_still_not_found() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act: the digest protocol keeps needing an existing site (hostctl creates it first)
    let response = app
        .post(ADMIN_TOKEN, "/sites/blog/deploys")
        .json(&serde_json::json!({"files": {"/index.html": "0".repeat(64)}}))
        .send()
        .await
        .expect("request");

    // Assert
    assert_problem(response, 404).await;
    assert!(site_names(&app, ADMIN_TOKEN).await.is_empty());
}
