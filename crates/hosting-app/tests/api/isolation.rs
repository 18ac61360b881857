//! Tenant isolation: another user can neither see nor touch a site, its deploys or
//! tokens, and every attempt looks exactly like "no such thing" (404, not 403).

use std::collections::BTreeMap;

use hosting_api as api;
use serde_json::Value;

use crate::helpers::{assert_problem, sha256_hex, targz, TestApp, ADMIN_TOKEN};

/// What the admin can see of site "alpha": the site, its history, and its live page.
async fn snapshot(app: &TestApp) -> (api::Site, Vec<api::Deploy>, String) {
    let site: api::Site = app
        .get(ADMIN_TOKEN, "/sites/alpha")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let deploys: api::List<api::Deploy> = app
        .get(ADMIN_TOKEN, "/sites/alpha/deploys")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let response = app.site("alpha.localhost", "/index.html", &[]).await;
    assert_eq!(response.status(), 200);
    (site, deploys.items, response.text().await.expect("body"))
}

#[tokio::test]
async fn another_user_gets_404_on_every_route_of_a_site_they_do_not_own() {
    // Arrange: the admin's site with a live deploy and a second one still uploading
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "alpha").await;
    let (live, _) = app
        .deploy_digest(ADMIN_TOKEN, "alpha", &[("/index.html", b"alpha v1")])
        .await;
    let pending: api::CreatedDeploy = app
        .post(ADMIN_TOKEN, "/sites/alpha/deploys")
        .json(&api::CreateDeploy {
            files: BTreeMap::from([("/index.html".to_owned(), sha256_hex(b"alpha v2"))]),
            message: None,
        })
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let before = snapshot(&app).await;
    let bob = app.member("bob").await;
    let sha = sha256_hex(b"alpha v2");

    // Act / Assert: every site- or deploy-scoped route
    let manifest = api::CreateDeploy {
        files: BTreeMap::from([("/index.html".to_owned(), sha256_hex(b"bob"))]),
        message: None,
    };
    let attempts: Vec<(&str, reqwest::RequestBuilder)> = vec![
        ("GET site", app.get(&bob, "/sites/alpha")),
        (
            "DELETE site",
            app.client.delete(app.api("/sites/alpha")).bearer_auth(&bob),
        ),
        ("GET deploys", app.get(&bob, "/sites/alpha/deploys")),
        (
            "POST JSON deploy",
            app.post(&bob, "/sites/alpha/deploys").json(&manifest),
        ),
        (
            "POST archive deploy",
            app.post(&bob, "/sites/alpha/deploys")
                .header("content-type", "application/gzip")
                .body(targz(&[("index.html", b"defaced")])),
        ),
        ("POST rollback", app.post(&bob, "/sites/alpha/rollback")),
        (
            "POST rollback to a deploy",
            app.post(&bob, "/sites/alpha/rollback")
                .json(&api::Rollback {
                    deploy_id: Some(live.id.clone()),
                }),
        ),
        (
            "GET deploy",
            app.get(&bob, &format!("/deploys/{}", live.id)),
        ),
        (
            "GET pending deploy",
            app.get(&bob, &format!("/deploys/{}", pending.deploy.id)),
        ),
        (
            "PUT file",
            app.client
                .put(app.api(&format!("/deploys/{}/files/{sha}", pending.deploy.id)))
                .bearer_auth(&bob)
                .body(b"alpha v2".to_vec()),
        ),
        (
            "POST publish",
            app.post(&bob, &format!("/deploys/{}/publish", live.id)),
        ),
        (
            "POST publish pending",
            app.post(&bob, &format!("/deploys/{}/publish", pending.deploy.id)),
        ),
    ];
    for (what, request) in attempts {
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), 404, "{what} on another tenant's site");
        let detail = assert_problem(response, 404).await;
        assert!(!detail.contains("bob"), "{what}: {detail}");
    }

    // Assert: nothing changed for the owner
    assert_eq!(snapshot(&app).await, before);
    assert_eq!(before.2, "alpha v1");
    let pending_now: api::Deploy = app
        .get(ADMIN_TOKEN, &format!("/deploys/{}", pending.deploy.id))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(pending_now.state, api::DeployState::Uploading);
    let sites: api::List<api::Site> = app
        .get(&bob, "/sites")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(sites.items.is_empty());
}

#[tokio::test]
async fn a_site_name_is_taken_for_everyone_once_someone_owns_it() {
    // Arrange
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "alpha").await;
    let bob = app.member("bob").await;

    // Act
    let response = app
        .post(&bob, "/sites")
        .json(&api::CreateSite {
            name: "alpha".into(),
        })
        .send()
        .await
        .expect("request");

    // Assert
    assert_problem(response, 409).await;
    let site: api::Site = app
        .get(ADMIN_TOKEN, "/sites/alpha")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(site.name, "alpha");
    assert_problem(
        app.get(&bob, "/sites/alpha").send().await.expect("request"),
        404,
    )
    .await;
}

#[tokio::test]
async fn another_user_can_neither_list_nor_revoke_someone_elses_tokens() {
    // Arrange: the admin has a named token
    let app = TestApp::spawn().await;
    let response = app
        .post(ADMIN_TOKEN, "/tokens")
        .json(&api::CreateToken {
            name: "admin-ci".into(),
        })
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    let admin_ci: api::CreatedToken = response.json().await.expect("json");
    let bob = app.member("bob").await;

    // Act
    let listed: Value = app
        .get(&bob, "/tokens")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let revoke = app
        .client
        .delete(app.api(&format!("/tokens/{}", admin_ci.token.id)))
        .bearer_auth(&bob)
        .send()
        .await
        .expect("request");

    // Assert
    let text = listed.to_string();
    assert!(
        !text.contains("admin-ci"),
        "bob sees the admin's tokens: {text}"
    );
    assert!(
        !text.contains(&format!("\"id\":{}", admin_ci.token.id)),
        "{text}"
    );
    assert_problem(revoke, 404).await;
    let me: api::User = app
        .get(&admin_ci.secret, "/whoami")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(me.username, "admin");
}
