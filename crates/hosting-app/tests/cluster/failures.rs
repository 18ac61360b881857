//! Dependencies failing under load: the app keeps serving with zero 5xx.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hosting_app::config::SecretUrl;
use secrecy::ExposeSecret;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::{free_port, TestApp, ADMIN_TOKEN};

/// A Redis server of this test's own, so stopping it disturbs no other test.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start(port: u16) -> OwnRedis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs (deploy/local/services installs it)");
        std::thread::sleep(Duration::from_millis(300));
        OwnRedis {
            port,
            child: Some(child),
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP relay in front of the real replica; `cut` drops it and every open connection,
/// as if the replica host went away.
struct Relay {
    addr: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("addr");
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let registry = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let connection = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                registry.lock().expect("registry").push(connection);
            }
        });
        tasks.lock().expect("registry").push(accept);
        Relay { addr, tasks }
    }

    fn cut(&self) {
        for task in self.tasks.lock().expect("registry").drain(..) {
            task.abort();
        }
    }
}

/// Fetches `/` of the blog `count` times from 4 tasks, calling `midway` after half;
/// returns (server errors, other failures).
async fn request_loop(app: &TestApp, count: u64, cold: bool, midway: impl FnOnce()) -> (u64, u64) {
    let server_errors = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let mut midway = Some(midway);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (client, addr) = (app.client.clone(), app.addr);
            let state = app.state.clone();
            let (server_errors, failures, done) =
                (server_errors.clone(), failures.clone(), done.clone());
            tokio::spawn(async move {
                while done.fetch_add(1, Ordering::SeqCst) < count {
                    if cold {
                        // Force the database path: no cached host or manifest.
                        state.cache.hosts.invalidate_all();
                        state.cache.manifests.invalidate_all();
                    }
                    match client
                        .get(format!("http://{addr}/"))
                        .header("host", "blog.localhost")
                        .send()
                        .await
                    {
                        Ok(response) if response.status().is_server_error() => {
                            server_errors.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(response) if response.status() == 200 => {}
                        _ => {
                            failures.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    while done.load(Ordering::SeqCst) < count / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if let Some(midway) = midway.take() {
        midway();
    }
    for worker in workers {
        worker.await.expect("worker");
    }
    (
        server_errors.load(Ordering::SeqCst),
        failures.load(Ordering::SeqCst),
    )
}

async fn redis_status(app: &TestApp) -> String {
    let ready: serde_json::Value = app
        .client
        .get(app.mgmt_url("/readyz"))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    ready["redis"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_under_load_causes_no_server_error_and_caching_resumes() {
    // Arrange
    let port = free_port();
    let mut redis = OwnRedis::start(port);
    let app = TestApp::spawn_with(|c| {
        c.redis.redis_url = Some(SecretUrl::from(format!("redis://127.0.0.1:{port}/0")))
    })
    .await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    app.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"served")])
        .await;

    // Act: Redis stops in the middle of a bounded request loop on cold caches.
    let (server_errors, failures) = request_loop(&app, 400, true, || redis.stop()).await;

    // Assert
    println!("redis stopped under load: {server_errors} server errors, {failures} other failures in 400 requests");
    assert_eq!(server_errors, 0);
    assert_eq!(failures, 0);
    let ready = app
        .client
        .get(app.mgmt_url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(
        ready.status(),
        200,
        "readiness must not fail because of Redis"
    );
    assert_eq!(redis_status(&app).await, "down");

    // Redis comes back: the app reconnects by itself and the shared cache fills again.
    let _redis = OwnRedis::start(redis.port);
    let mut reconnected = false;
    for _ in 0..50 {
        app.state.cache.hosts.invalidate_all();
        let _ = app.site("blog.localhost", "/", &[]).await;
        if app
            .state
            .shared
            .get(&hosting_app::state::host_key("blog.localhost"))
            .await
            .is_some()
        {
            reconnected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reconnected,
        "the shared cache was not used again after Redis came back"
    );
    assert_eq!(redis_status(&app).await, "up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replica_going_away_under_load_causes_no_server_error() {
    // Arrange: the replica is reached through a relay this test can cut.
    let replica = std::env::var("TEST_DATABASE_REPLICA_URL").expect("TEST_DATABASE_REPLICA_URL");
    let parsed = url::Url::parse(&replica).expect("replica URL");
    let upstream = format!(
        "{}:{}",
        parsed.host_str().expect("host"),
        parsed.port().unwrap_or(5432)
    );
    let relay = Relay::start(upstream).await;
    let app = TestApp::spawn_with(|c| {
        c.redis.redis_url = None;
        let through_relay = c
            .database
            .database_replica_url
            .as_ref()
            .map(|u| {
                let mut url = url::Url::parse(u.expose_secret()).expect("url");
                url.set_host(Some("127.0.0.1")).expect("host");
                url.set_port(Some(relay.addr.port())).expect("port");
                url.to_string()
            })
            .expect("replica configured");
        c.database.database_replica_url = Some(SecretUrl::from(through_relay));
    })
    .await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    app.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"served")])
        .await;
    let mut replica_in_use = false;
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
            replica_in_use = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        replica_in_use,
        "the replica never became usable through the relay"
    );

    // Act: the replica disappears in the middle of a bounded loop of database reads.
    let (server_errors, failures) = request_loop(&app, 400, true, || relay.cut()).await;

    // Assert
    println!("replica cut under load: {server_errors} server errors, {failures} other failures in 400 requests");
    assert_eq!(server_errors, 0);
    assert_eq!(failures, 0);
    let sites = app.get(ADMIN_TOKEN, "/sites").send().await.expect("list");
    assert_eq!(sites.status(), 200, "listings fall back to the primary");
}
