//! Deploy aliases and protected sites across instances: moving an alias or protecting a
//! site on one instance reaches another one's host cache through the invalidation
//! messages, not the TTL.

use std::time::{Duration, Instant};

use hosting_api as api;

use crate::helpers::{targz, TestApp, ADMIN_TOKEN};

/// Polls `app` until `host` answers `expected` (status, body) or a second passes.
async fn visible_within_a_second(app: &TestApp, host: &str, expected: (u16, &str)) -> bool {
    let started = Instant::now();
    while started.elapsed() <= Duration::from_secs(1) {
        let response = app.site(host, "/", &[]).await;
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        if status == expected.0 && (expected.1.is_empty() || text == expected.1) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn unpublished(app: &TestApp, body: &[u8]) -> api::Deploy {
    let response = app
        .post(ADMIN_TOKEN, "/sites/blog/deploys?publish=false")
        .header("content-type", "application/gzip")
        .body(targz(&[("index.html", body)]))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    response.json().await.expect("deploy")
}

async fn point_staging_at(app: &TestApp, deploy: &api::Deploy) {
    let response = app
        .client
        .put(app.api("/sites/blog/aliases/staging"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&api::SetAlias {
            deploy_id: deploy.id.clone(),
        })
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alias_move_and_a_protection_reach_another_instance_at_once() {
    // Arrange: B caches hosts for an hour, so only the invalidation message can update it.
    let a = TestApp::spawn().await;
    let b = a
        .another_instance(|c| c.cache.host_cache_ttl = Some(Duration::from_secs(3600)))
        .await;
    a.create_site(ADMIN_TOKEN, "blog").await;
    let first = unpublished(&a, b"first").await;
    point_staging_at(&a, &first).await;
    assert!(visible_within_a_second(&b, "staging--blog.localhost", (200, "first")).await);
    let second = unpublished(&a, b"second").await;

    // Act
    point_staging_at(&a, &second).await;
    let moved = visible_within_a_second(&b, "staging--blog.localhost", (200, "second")).await;
    let protected = a
        .client
        .put(a.api("/sites/blog/protection"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"password": "correct horse", "scope": "previews"}))
        .send()
        .await
        .expect("request");
    let asks = visible_within_a_second(&b, "staging--blog.localhost", (401, "")).await;

    // Assert
    assert!(
        moved,
        "instance B still served the alias's old deploy after 1 s"
    );
    assert_eq!(protected.status(), 200);
    assert!(
        asks,
        "instance B still served the alias unprotected after 1 s"
    );
}
