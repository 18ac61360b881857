//! Site files on the three-node Garage of `deploy/local/services` (`HOSTING_GARAGE=1`,
//! which exports `HOSTING_S3_*` and `HOSTING_GARAGE_DIR`): a node killed under deploys
//! and cold reads, the whole store unreachable then back, and a migration from
//! PostgreSQL under traffic. Skipped, saying so, when no Garage is configured.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hosting_app::config::{BlobStoreKind, Config};
use hosting_app::domain::names::Sha256;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::{sha256_hex, TestApp, ADMIN_TOKEN};

/// The Garage endpoint, or `None` (with a note) when the services run without Garage.
fn garage() -> Option<String> {
    match std::env::var("HOSTING_S3_ENDPOINT") {
        Ok(endpoint) => Some(endpoint),
        Err(_) => {
            eprintln!("skipped: no Garage (HOSTING_GARAGE=1 deploy/local/services up)");
            None
        }
    }
}

fn unique_prefix() -> String {
    format!("cluster-test-{}", rand::random::<u64>())
}

/// Site files in the bucket under a prefix of this test's own; cold reads skip Redis.
fn on_s3(config: &mut Config, endpoint: &str, prefix: &str) {
    config.storage.blob_store = Some(BlobStoreKind::S3);
    config.s3.s3_endpoint = Some(endpoint.to_owned());
    config.s3.s3_prefix = prefix.to_owned();
    config.s3.s3_timeout = Duration::from_secs(10);
    config.cache.redis_blob_max_bytes = 0;
}

/// Site files: path and bytes.
type Files = Vec<(String, Vec<u8>)>;

fn site_files(tag: &str, count: usize) -> Files {
    (0..count)
        .map(|i| {
            (
                format!("/{tag}-{i}.html"),
                format!("<p>{tag} {i}</p>{}", "z".repeat(100 * i)).into_bytes(),
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

/// A TCP relay in front of the store that can be cut (every connection dropped, new
/// ones refused) and restored, as if the store's host went away and came back.
struct Relay {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("addr");
        let up = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (flag, registry) = (up.clone(), connections.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    continue; // dropped at once: the store is "down"
                }
                let upstream = upstream.clone();
                let connection = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                registry.lock().expect("registry").push(connection);
            }
        });
        Relay {
            addr,
            up,
            connections,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for connection in self.connections.lock().expect("registry").drain(..) {
            connection.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

async fn ready(app: &TestApp) -> serde_json::Value {
    app.client
        .get(app.mgmt_url("/readyz"))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn the_store_going_away_gives_503s_for_uncached_files_and_it_recovers_without_a_restart() {
    let Some(endpoint) = garage() else { return };
    // Arrange: the app reaches Garage through a relay this test controls.
    let upstream = endpoint.trim_start_matches("http://").to_owned();
    let relay = Relay::start(upstream).await;
    let relayed = format!("http://{}", relay.addr);
    let prefix = unique_prefix();
    let app = TestApp::spawn_with(|config| on_s3(config, &relayed, &prefix)).await;
    app.create_site(ADMIN_TOKEN, "outage").await;
    let files = site_files("outage", 4);
    app.deploy_digest(ADMIN_TOKEN, "outage", &borrowed(&files))
        .await;
    let warm = app.site("outage.localhost", &files[0].0, &[]).await;
    assert_eq!(warm.status(), 200, "read once, now cached");

    // Act: the store goes away.
    relay.cut();
    let cached = app.site("outage.localhost", &files[0].0, &[]).await;
    let cold = app.site("outage.localhost", &files[1].0, &[]).await;
    let upload = app
        .post(ADMIN_TOKEN, "/sites/outage/deploys")
        .header("content-type", "application/gzip")
        .body(crate::helpers::targz(&[(
            "new.html",
            b"new bytes while down",
        )]))
        .send()
        .await
        .expect("request");
    let readiness = ready(&app).await;

    // Assert: cached files still served, the rest 503 (never 500), readiness says why.
    assert_eq!(cached.status(), 200);
    assert_eq!(
        cached.bytes().await.expect("body").as_ref(),
        files[0].1.as_slice()
    );
    assert_eq!(
        cold.status(),
        503,
        "an uncached file while the store is down"
    );
    assert_eq!(upload.status(), 503, "an upload while the store is down");
    assert_eq!(
        upload
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_ne!(
        readiness["blobs"], "ok",
        "readiness reports the store: {readiness}"
    );

    // Act: the store comes back; the same app serves again.
    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(30);
    let recovered = loop {
        let response = app.site("outage.localhost", &files[1].0, &[]).await;
        if response.status() == 200 || Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(recovered.status(), 200, "recovered without a restart");
    assert_eq!(
        recovered.bytes().await.expect("body").as_ref(),
        files[1].1.as_slice()
    );
    assert_eq!(ready(&app).await["blobs"], "ok");
}

/// The pid and config of Garage node `n` of `deploy/local/services`.
fn node_files(n: u32) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let dir = std::path::PathBuf::from(std::env::var("HOSTING_GARAGE_DIR").ok()?);
    Some((
        dir.join(format!("n{n}.pid")),
        dir.join(format!("n{n}.toml")),
    ))
}

fn garage_cli(config: &std::path::Path, args: &[&str]) -> bool {
    std::process::Command::new("garage")
        .arg("-c")
        .arg(config)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Restarts a node the way `deploy/local/services` starts it, with its pid file, so
/// `services down` stops it; then has every node push what the node missed.
fn restart_node(pid_file: &std::path::Path, config: &std::path::Path) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.with_extension("log"))
        .expect("log");
    let mut child = std::process::Command::new("garage")
        .arg("-c")
        .arg(config)
        .arg("server")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("garage server");
    std::fs::write(pid_file, child.id().to_string()).expect("pid file");
    // Reaped when it exits; `deploy/local/services down` stops it by its pid file.
    std::thread::spawn(move || child.wait());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !garage_cli(config, &["status"]) {
        assert!(Instant::now() < deadline, "the restarted node answers");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        garage_cli(config, &["repair", "-a", "--yes", "tables"]),
        "table repair on all nodes"
    );
}

#[tokio::test]
async fn killing_one_garage_node_under_deploys_and_cold_reads_gives_no_5xx_and_loses_no_upload() {
    let Some(endpoint) = garage() else { return };
    let Some((pid_file, node_config)) = node_files(3) else {
        eprintln!("skipped: HOSTING_GARAGE_DIR is not set");
        return;
    };
    // Arrange: the app talks to node 1; node 3 is the one to die.
    let prefix = unique_prefix();
    let app = Arc::new(TestApp::spawn_with(|config| on_s3(config, &endpoint, &prefix)).await);
    let server_errors = Arc::new(AtomicU64::new(0));
    let acknowledged: Arc<Mutex<Files>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let (app, server_errors, acknowledged, stop) = (
                app.clone(),
                server_errors.clone(),
                acknowledged.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let site = format!("node-loss-{worker}");
                app.create_site(ADMIN_TOKEN, &site).await;
                let host = format!("{site}.localhost");
                let mut round = 0;
                while !stop.load(Ordering::SeqCst) {
                    let files = site_files(&format!("w{worker}r{round}"), 3);
                    // Any 5xx fails the deploy's own assertions, so go step by step.
                    let archive = crate::helpers::targz(
                        &files
                            .iter()
                            .map(|(p, b)| (p.trim_start_matches('/'), b.as_slice()))
                            .collect::<Vec<_>>(),
                    );
                    let response = app.post_archive(ADMIN_TOKEN, &site, &archive).await;
                    if response.status().is_server_error() {
                        server_errors.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    assert_eq!(response.status(), 201, "archive deploy");
                    acknowledged.lock().expect("list").extend(files.clone());
                    for (path, bytes) in &files {
                        // Cold: each file is read for the first time, from the store.
                        app.state.cache.files.invalidate_all();
                        let read = app.site(&host, path, &[]).await;
                        if read.status().is_server_error() {
                            server_errors.fetch_add(1, Ordering::SeqCst);
                        } else {
                            assert_eq!(read.status(), 200, "{path}");
                            assert_eq!(
                                read.bytes().await.expect("body").as_ref(),
                                bytes.as_slice()
                            );
                        }
                    }
                    round += 1;
                }
            })
        })
        .collect();

    // Act: kill -9 node 3 a few seconds in, keep going, then bring it back.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let pid = std::fs::read_to_string(&pid_file).expect("node 3 pid");
    let killed = std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .expect("kill");
    assert!(killed.success(), "node 3 killed");
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.expect("worker");
    }
    restart_node(&pid_file, &node_config);

    // Assert: no 5xx, and every acknowledged file is in the store, byte-exact.
    assert_eq!(server_errors.load(Ordering::SeqCst), 0, "server errors");
    let acknowledged = acknowledged.lock().expect("list").clone();
    assert!(
        acknowledged.len() >= 12,
        "the load ran: {} files",
        acknowledged.len()
    );
    for (path, bytes) in &acknowledged {
        let sha = Sha256::parse(&sha256_hex(bytes)).expect("sha");
        let stored = app.state.blobs.read(&sha).await.expect("read");
        assert_eq!(stored.as_deref(), Some(bytes.as_slice()), "{path} kept");
    }
}

#[tokio::test]
async fn migrating_from_postgres_to_s3_under_traffic_keeps_every_site_byte_identical() {
    let Some(endpoint) = garage() else { return };
    // Arrange: a platform on PostgreSQL blobs with a few sites, read continuously.
    let app = Arc::new(
        TestApp::spawn_with(|config| {
            config.storage.blob_store = Some(BlobStoreKind::Postgres);
        })
        .await,
    );
    let mut sites = Vec::new();
    for n in 0..3 {
        let site = format!("moving-{n}");
        app.create_site(ADMIN_TOKEN, &site).await;
        let files = site_files(&site, 8);
        app.deploy_digest(ADMIN_TOKEN, &site, &borrowed(&files))
            .await;
        sites.push((site, files));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let server_errors = Arc::new(AtomicU64::new(0));
    let traffic = {
        let (app, stop, server_errors, sites) = (
            app.clone(),
            stop.clone(),
            server_errors.clone(),
            sites.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                for (site, files) in &sites {
                    let response = app
                        .site(&format!("{site}.localhost"), &files[0].0, &[])
                        .await;
                    if response.status().is_server_error() {
                        server_errors.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        })
    };

    // Act: migrate while serving, then a replica configured for S3 on the same database.
    let prefix = unique_prefix();
    let mut settings = app.config.s3.clone();
    settings.s3_endpoint = Some(endpoint.clone());
    settings.s3_prefix = prefix.clone();
    let target = hosting_app::blobs::S3BlobStore::open(&settings).expect("bucket");
    let report = hosting_app::blobs_admin::migrate(
        app.state.store.as_ref(),
        &app.state.blobs,
        target.bucket(),
        8,
    )
    .await
    .expect("migrate");
    stop.store(true, Ordering::SeqCst);
    traffic.await.expect("traffic");
    let on_s3_replica = app
        .another_instance(|config| on_s3(config, &endpoint, &prefix))
        .await;

    // Assert
    assert_eq!(server_errors.load(Ordering::SeqCst), 0);
    assert!(
        report.missing.is_empty() && report.corrupt.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.copied + report.present, 24);
    for (site, files) in &sites {
        for (path, bytes) in files {
            let response = on_s3_replica
                .site(&format!("{site}.localhost"), path, &[])
                .await;
            assert_eq!(response.status(), 200, "{site}{path}");
            assert_eq!(
                response.bytes().await.expect("body").as_ref(),
                bytes.as_slice(),
                "{site}{path} byte-identical"
            );
        }
    }
}

#[tokio::test]
async fn a_large_file_goes_up_in_parts_and_a_range_request_fetches_only_its_span() {
    let Some(endpoint) = garage() else { return };
    // Arrange: 12 MiB, above the 8 MiB part size and the 1 MiB in-process cache bound.
    let prefix = unique_prefix();
    let app = TestApp::spawn_with(|config| on_s3(config, &endpoint, &prefix)).await;
    app.create_site(ADMIN_TOKEN, "large").await;
    let big: Vec<u8> = (0..12 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    app.deploy_digest(ADMIN_TOKEN, "large", &[("/video.bin", big.as_slice())])
        .await;

    // Act
    let whole = app.site("large.localhost", "/video.bin", &[]).await;
    let part = app
        .site(
            "large.localhost",
            "/video.bin",
            &[("range", "bytes=9000000-9000999")],
        )
        .await;

    // Assert
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.bytes().await.expect("body").as_ref(), big.as_slice());
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok()),
        Some(format!("bytes 9000000-9000999/{}", big.len()).as_str())
    );
    assert_eq!(
        part.bytes().await.expect("body").as_ref(),
        &big[9_000_000..9_001_000]
    );
}
