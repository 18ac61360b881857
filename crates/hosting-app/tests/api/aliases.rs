//! Deploy aliases (branch deploys): `<alias>--<site>` serves the deploy its alias points
//! at, moves with each deploy to it, never touches the live site, and cannot be named
//! like a deploy id.

use hosting_api as api;

use crate::helpers::{assert_problem, targz, TestApp, ADMIN_TOKEN};

/// An archive deploy of `site` that is not published: ready, and not live.
async fn unpublished(app: &TestApp, token: &str, site: &str, body: &[u8]) -> api::Deploy {
    let response = app
        .post(token, &format!("/sites/{site}/deploys?publish=false"))
        .header("content-type", "application/gzip")
        .body(targz(&[("index.html", body)]))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    response.json().await.expect("deploy")
}

async fn put_alias(
    app: &TestApp,
    token: &str,
    site: &str,
    alias: &str,
    deploy_id: &str,
) -> reqwest::Response {
    app.client
        .put(app.api(&format!("/sites/{site}/aliases/{alias}")))
        .bearer_auth(token)
        .json(&api::SetAlias {
            deploy_id: deploy_id.to_owned(),
        })
        .send()
        .await
        .expect("request")
}

async fn body_of(app: &TestApp, host: &str) -> (u16, String) {
    let response = app.site(host, "/", &[]).await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn an_alias_serves_its_deploy_and_leaves_the_live_site_alone() {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    app.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"live")])
        .await;
    let staging = unpublished(&app, ADMIN_TOKEN, "blog", b"staging one").await;

    let response = put_alias(&app, ADMIN_TOKEN, "blog", "staging", &staging.id).await;

    assert_eq!(response.status(), 200);
    let alias: api::Alias = response.json().await.expect("alias");
    assert_eq!(alias.deploy_id, staging.id);
    assert!(
        alias.url.contains("staging--blog.localhost"),
        "{}",
        alias.url
    );
    assert_eq!(
        body_of(&app, "staging--blog.localhost").await,
        (200, "staging one".into())
    );
    assert_eq!(body_of(&app, "blog.localhost").await, (200, "live".into()));
}

#[tokio::test]
async fn an_alias_moves_with_each_deploy_to_it() {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let first = unpublished(&app, ADMIN_TOKEN, "blog", b"first").await;
    put_alias(&app, ADMIN_TOKEN, "blog", "staging", &first.id).await;
    // Warm the host cache, so the move has to invalidate it.
    assert_eq!(
        body_of(&app, "staging--blog.localhost").await,
        (200, "first".into())
    );
    let second = unpublished(&app, ADMIN_TOKEN, "blog", b"second").await;

    let response = put_alias(&app, ADMIN_TOKEN, "blog", "staging", &second.id).await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        body_of(&app, "staging--blog.localhost").await,
        (200, "second".into())
    );
    // Nothing was ever published: the live site still has nothing to show.
    assert_eq!(body_of(&app, "blog.localhost").await.0, 404);
}

#[tokio::test]
async fn aliases_are_listed_and_a_removed_alias_stops_serving() {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let deploy = unpublished(&app, ADMIN_TOKEN, "blog", b"preview").await;
    put_alias(&app, ADMIN_TOKEN, "blog", "staging", &deploy.id).await;
    put_alias(&app, ADMIN_TOKEN, "blog", "feature-x", &deploy.id).await;
    assert_eq!(body_of(&app, "staging--blog.localhost").await.0, 200);

    let listed: api::List<api::Alias> = app
        .get(ADMIN_TOKEN, "/sites/blog/aliases")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("aliases");
    let removed = app
        .client
        .delete(app.api("/sites/blog/aliases/staging"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");

    let names: Vec<&str> = listed.items.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["feature-x", "staging"]);
    assert_eq!(removed.status(), 204);
    assert_eq!(body_of(&app, "staging--blog.localhost").await.0, 404);
    assert_eq!(body_of(&app, "feature-x--blog.localhost").await.0, 200);
    let again = app
        .client
        .delete(app.api("/sites/blog/aliases/staging"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    assert_problem(again, 404).await;
}

#[tokio::test]
async fn alias_names_follow_the_site_rules_and_never_look_like_deploy_ids() {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let deploy = unpublished(&app, ADMIN_TOKEN, "blog", b"x").await;

    for bad in [
        "0123456789abcdef",
        "Staging",
        "a--b",
        "www",
        "seventeen-letters",
    ] {
        let response = put_alias(&app, ADMIN_TOKEN, "blog", bad, &deploy.id).await;
        let detail = assert_problem(response, 422).await;
        assert!(detail.contains("alias"), "{bad}: {detail}");
    }
    // The deploy's own preview host still serves the deploy, not an alias.
    assert_eq!(
        body_of(&app, &format!("{}--blog.localhost", deploy.id)).await,
        (200, "x".into())
    );
}

#[tokio::test]
async fn an_alias_points_only_at_a_ready_deploy_of_the_same_site_of_the_caller() {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    app.create_site(ADMIN_TOKEN, "docs").await;
    let docs = unpublished(&app, ADMIN_TOKEN, "docs", b"docs").await;
    let member = app.member("mallory").await;
    app.create_site(&member, "evil").await;

    let other_site = put_alias(&app, ADMIN_TOKEN, "blog", "staging", &docs.id).await;
    let unknown = put_alias(&app, ADMIN_TOKEN, "blog", "staging", "0000000000000000").await;
    let foreign_deploy = put_alias(&app, &member, "evil", "staging", &docs.id).await;
    let foreign_site = put_alias(&app, &member, "docs", "staging", &docs.id).await;

    assert_problem(other_site, 422).await;
    assert_problem(unknown, 404).await;
    assert_problem(foreign_deploy, 404).await;
    assert_problem(foreign_site, 404).await;
    assert_eq!(body_of(&app, "staging--blog.localhost").await.0, 404);
    assert_eq!(body_of(&app, "staging--evil.localhost").await.0, 404);
}
