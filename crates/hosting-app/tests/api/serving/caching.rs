//! The warm path: once a host, its manifest and the file are cached, serving does not
//! ask the database.

use super::text;
use crate::helpers::{TestApp, ADMIN_TOKEN};

/// Changes the database behind the application's back (no cache invalidation): the
/// site no longer has a live deploy, and the deploy no longer lists any file.
async fn tamper_with_database(app: &TestApp, deploy_id: &str) {
    app.execute_sql("UPDATE sites SET live_deploy_id = NULL WHERE name = 'blog'")
        .await;
    // The id is 16 hex characters (checked by the API), so it is safe to inline.
    let removed = app
        .execute_sql(&format!(
            "DELETE FROM deploy_files WHERE deploy_id = '{deploy_id}'"
        ))
        .await;
    assert!(removed > 0);
}

#[tokio::test]
async fn a_warm_request_is_served_without_asking_the_database() {
    // Arrange: warm the host, manifest and file caches with one request.
    // (A long host TTL: the safety-net expiry must not end the test's warm period.)
    let app = TestApp::spawn_with(|c| {
        c.cache.host_cache_ttl = Some(std::time::Duration::from_secs(3600))
    })
    .await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let deploy = app
        .deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"cached home")])
        .await;
    let warm = app.site("blog.localhost", "/", &[]).await;
    assert_eq!(text(warm).await, "cached home");
    assert!(app.state.cache.hosts.contains_key("blog.localhost"));
    assert!(app.state.cache.manifests.contains_key(&deploy.id));
    tamper_with_database(&app, &deploy.id).await;

    // Act: any database read would now find no live deploy and no file.
    let responses =
        futures::future::join_all((0..5).map(|_| app.site("blog.localhost", "/", &[]))).await;

    // Assert
    for response in responses {
        assert_eq!(response.status(), 200);
        assert_eq!(text(response).await, "cached home");
    }
    // Control: the tampering is real; once the host entry is dropped, the database is asked.
    app.state.cache.hosts.invalidate("blog.localhost").await;
    app.state
        .shared
        .delete(&hosting_app::state::host_key("blog.localhost"))
        .await;
    let cold = app.site("blog.localhost", "/", &[]).await;
    assert_eq!(cold.status(), 404);
}

#[tokio::test]
async fn a_host_past_its_ttl_is_answered_from_cache_and_refreshed_from_the_database() {
    // Arrange: no TTL at all, so every cached request queues its host for the background
    // refresher; two deploys, the second live and cached.
    let app =
        TestApp::spawn_with(|c| c.cache.host_cache_ttl = Some(std::time::Duration::ZERO)).await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let first = app
        .deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"first")])
        .await;
    app.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"second")])
        .await;
    assert_eq!(
        text(app.site("blog.localhost", "/", &[]).await).await,
        "second"
    );

    // Act: the site goes back to the first deploy behind the cache's back (no
    // invalidation), as a missed invalidation would leave it.
    app.execute_sql(&format!(
        "UPDATE sites SET live_deploy_id = '{}' WHERE name = 'blog'",
        first.id
    ))
    .await;
    let mut bodies = Vec::new();
    for _ in 0..500 {
        let body = text(app.site("blog.localhost", "/", &[]).await).await;
        let done = body == "first";
        bodies.push(body);
        if done {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // Assert: the refresher's lookup (one query for the site hosts it gathered) replaced
    // the entry, which stayed cached all along.
    assert_eq!(
        bodies.last().map(String::as_str),
        Some("first"),
        "{bodies:?}"
    );
    assert!(app.state.cache.hosts.contains_key("blog.localhost"));
}
