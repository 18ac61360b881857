//! Several app instances sharing one database and Redis.

use std::time::{Duration, Instant};

use hosting_api as api;

use crate::helpers::{block_on_from_drop, TestApp, ADMIN_TOKEN};

/// Held exclusively while replay is paused on the shared replica, and shared by tests whose
/// timing assumes the replica keeps up (they would otherwise see the pause as lag).
static REPLICA_KEEPS_UP: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

async fn body(app: &TestApp, path: &str) -> (u16, String) {
    let response = app.site("blog.localhost", path, &[]).await;
    (
        response.status().as_u16(),
        response.text().await.expect("body"),
    )
}

/// Polls `app` until `path` shows `expected` or `limit` passes; returns the time it took.
async fn time_until_visible(
    app: &TestApp,
    path: &str,
    expected: &str,
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() <= limit {
        let (status, text) = body(app, path).await;
        assert!(status < 500, "server error {status} while waiting");
        if text == expected {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn wait_for_replica(app: &TestApp) {
    for _ in 0..100 {
        let ready: serde_json::Value = app
            .client
            .get(app.mgmt_url("/readyz"))
            .send()
            .await
            .expect("readyz")
            .json()
            .await
            .expect("json");
        if ready["replica"] == "ok" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the replica never became usable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_serves_what_another_published_within_a_second() {
    let _replica_keeps_up = REPLICA_KEEPS_UP.read().await;
    // Arrange: B caches hosts for an hour, so only the invalidation message can update it.
    let a = TestApp::spawn().await;
    let b = a
        .another_instance(|c| c.cache.host_cache_ttl = Some(Duration::from_secs(3600)))
        .await;
    a.create_site(ADMIN_TOKEN, "blog").await;
    a.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"v1")])
        .await;
    // B may ask before the invalidation reaches it; the message then corrects it.
    let first = time_until_visible(&b, "/", "v1", Duration::from_secs(1)).await;
    assert!(first.is_some(), "instance B did not see the first deploy");

    // Act
    a.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"v2")])
        .await;

    // Assert
    let took = time_until_visible(&b, "/", "v2", Duration::from_secs(1)).await;
    assert!(
        took.is_some(),
        "instance B still served the old deploy after 1 s"
    );
}

/// The 2 s host TTL of the no-pub/sub test, plus slack for replica lag and a busy machine.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pub_sub_an_instance_catches_up_within_the_host_ttl() {
    let _replica_keeps_up = REPLICA_KEEPS_UP.read().await;
    // Arrange: B has no working Redis (nothing listens on port 1), and a 2 s host TTL.
    let a = TestApp::spawn().await;
    let b = a
        .another_instance(|c| {
            c.redis.redis_url = Some(hosting_app::config::SecretUrl::from(
                "redis://127.0.0.1:1/0",
            ));
            c.cache.host_cache_ttl = Some(Duration::from_secs(2));
        })
        .await;
    a.create_site(ADMIN_TOKEN, "blog").await;
    a.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"v1")])
        .await;
    // B hears of no write, so its first read may come from a replica a moment behind, and
    // what it read is kept for the TTL: even the first deploy is only promised within it.
    let first = time_until_visible(&b, "/", "v1", CATCH_UP_LIMIT).await;
    assert!(
        first.is_some(),
        "instance B did not see the first deploy within its host TTL"
    );

    // Act
    a.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"v2")])
        .await;

    // Assert: visible within the TTL (plus scheduling slack), with no 5xx meanwhile.
    let took = time_until_visible(&b, "/", "v2", CATCH_UP_LIMIT).await;
    assert!(
        took.is_some(),
        "instance B did not catch up within its host TTL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_is_read_back_at_once_through_the_replica_path() {
    let _replica_keeps_up = REPLICA_KEEPS_UP.read().await;
    let a = TestApp::spawn().await;
    assert!(
        a.config.database.database_replica_url.is_some(),
        "this test needs TEST_DATABASE_REPLICA_URL"
    );
    wait_for_replica(&a).await;
    a.create_site(ADMIN_TOKEN, "blog").await;
    let b = a.another_instance(|_| {}).await;
    wait_for_replica(&b).await;

    for round in 0..5 {
        let content = format!("round {round}");
        let deploy = a
            .deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", content.as_bytes())])
            .await;
        // The writer itself reads its write at once, even if the replica lags.
        assert_eq!(body(&a, "/").await, (200, content.clone()));
        let listed: api::List<api::Deploy> = a
            .get(ADMIN_TOKEN, "/sites/blog/deploys")
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        assert_eq!(
            listed.items.first().map(|d| d.id.clone()),
            Some(deploy.id.clone())
        );
        // The preview host of the brand-new deploy resolves too.
        let preview = a
            .site(&format!("{}--blog.localhost", deploy.id), "/", &[])
            .await;
        assert_eq!(preview.status(), 200);
    }
}

/// Replay paused on the test cluster's replica, so it lags behind the primary on purpose;
/// resumed when dropped (the replica is shared by every test running at the same time,
/// whose reads fall back to the primary meanwhile).
struct PausedReplay {
    replica_url: String,
}

impl PausedReplay {
    async fn start(app: &TestApp) -> PausedReplay {
        use secrecy::ExposeSecret;
        let replica_url = app
            .config
            .database
            .database_replica_url
            .as_ref()
            .expect("this test needs TEST_DATABASE_REPLICA_URL")
            .expose_secret()
            .to_owned();
        let mut replica = connect(&replica_url).await;
        sqlx::query("SELECT pg_wal_replay_pause()")
            .execute(&mut replica)
            .await
            .expect("pause replay (deploy/local/services grants it)");
        for _ in 0..100 {
            let state: String = sqlx::query_scalar("SELECT pg_get_wal_replay_pause_state()")
                .fetch_one(&mut replica)
                .await
                .expect("pause state");
            if state == "paused" {
                return PausedReplay { replica_url };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("replay did not pause");
    }
}

impl Drop for PausedReplay {
    fn drop(&mut self) {
        let url = self.replica_url.clone();
        let resumed = block_on_from_drop(async move {
            sqlx::query("SELECT pg_wal_replay_resume()")
                .execute(&mut connect(&url).await)
                .await
                .map(|_| ())
        });
        if !matches!(resumed, Some(Ok(()))) {
            eprintln!("warning: could not resume replay on the test replica");
        }
    }
}

async fn connect(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url)
        .await
        .expect("connect to the replica")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_started_after_a_publish_serves_it_while_the_replica_lags() {
    // Arrange: v1 replicated; then replay paused and v2 published, so only the primary has it.
    let _no_one_else_counts_on_the_replica = REPLICA_KEEPS_UP.write().await;
    let a = TestApp::spawn().await;
    wait_for_replica(&a).await;
    a.create_site(ADMIN_TOKEN, "blog").await;
    a.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"v1")])
        .await;
    let paused = PausedReplay::start(&a).await;
    a.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"v2")])
        .await;

    // Act: B starts after the publish, with no Redis (it hears of no write), and waits
    // until it trusts the replica (which still looks fresh: lag is judged over seconds).
    let b = a
        .another_instance(|c| {
            c.redis.redis_url = Some(hosting_app::config::SecretUrl::from(
                "redis://127.0.0.1:1/0",
            ));
        })
        .await;
    wait_for_replica(&b).await;
    let seen = body(&b, "/").await;
    drop(paused);

    // Assert: what was acknowledged before B started is what B serves.
    assert_eq!(seen, (200, "v2".into()));
}

/// Four digest deploys, each published, through one instance.
async fn deploy_from(app: &TestApp, who: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for round in 0..4 {
        let content = format!("{who} {round}");
        let (deploy, _) = app
            .deploy_digest(ADMIN_TOKEN, "blog", &[("/index.html", content.as_bytes())])
            .await;
        ids.push(deploy.id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_publishing_one_site_concurrently_both_complete() {
    let _replica_keeps_up = REPLICA_KEEPS_UP.read().await;
    let a = TestApp::spawn().await;
    let b = a.another_instance(|_| {}).await;
    a.create_site(ADMIN_TOKEN, "blog").await;

    let (from_a, from_b) = tokio::join!(deploy_from(&a, "a"), deploy_from(&b, "b"));
    assert_eq!(from_a.len() + from_b.len(), 8);

    let history: api::List<api::Deploy> = a
        .get(ADMIN_TOKEN, "/sites/blog/deploys")
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(history.items.len(), 8);
    assert!(history
        .items
        .iter()
        .all(|d| d.state == api::DeployState::Ready));
    let last_published = history
        .items
        .iter()
        .max_by_key(|d| d.published_at)
        .expect("published deploys");
    let site: api::Site = a
        .get(ADMIN_TOKEN, "/sites/blog")
        .send()
        .await
        .expect("site")
        .json()
        .await
        .expect("json");
    assert_eq!(
        site.live_deploy_id.as_deref(),
        Some(last_published.id.as_str())
    );
    assert!(history.items.iter().filter(|d| d.live).count() == 1);
}
