//! Bulk uploads against `kill -9`, with the real binary as a subprocess: a batch the
//! server acknowledged (to a deploy, or before it, `POST /blobs`) is there after a
//! restart, every blob hash-valid; a server killed
//! in the middle of a batch restarts with the deploy resumable (its missing list is what
//! was not acknowledged) and no blob that does not match its name. Embedded mode (blob
//! folder) by default; `HOSTING_TEST_BACKEND=cluster` runs the same tests on PostgreSQL
//! with its blob store (`TEST_DATABASE_URL`, a database of their own, and
//! `TEST_REDIS_URL`). The kill is `SIGKILL` of the process: it tests what the server
//! orders and syncs, not a power cut (the page cache survives a process kill).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hosting_api as api;
use sha2::{Digest, Sha256};

const TOKEN: &str = "hst_durability_test_admin_token";
/// Generous: only a hung or silent server reaches it (never a timing assertion).
const START_LIMIT: Duration = Duration::from_secs(180);

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where the server keeps its state (see the module documentation).
enum Backend {
    Embedded,
    Cluster(Database),
}

/// A PostgreSQL database of this test's own, dropped at the end.
struct Database {
    admin_url: String,
    name: String,
}

impl Backend {
    async fn for_test() -> Backend {
        if std::env::var("HOSTING_TEST_BACKEND").map_or(true, |b| b != "cluster") {
            return Backend::Embedded;
        }
        use sqlx::Connection;
        let admin_url = required_env("TEST_DATABASE_URL");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!("test_bulk_{}_{nanos}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to the test cluster");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create database");
        Backend::Cluster(Database { admin_url, name })
    }

    /// The server's settings for this backend.
    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Backend::Embedded => Vec::new(),
            Backend::Cluster(database) => vec![
                ("DATABASE_URL", database.url()),
                ("REDIS_URL", required_env("TEST_REDIS_URL")),
                ("HOSTING_REDIS_PREFIX", database.name.clone()),
                ("HOSTING_BLOB_STORE", "postgres".to_owned()),
            ],
        }
    }

    /// Every stored blob: its name and the hash of its bytes.
    async fn blobs(&self, data_dir: &Path) -> Vec<(String, String)> {
        match self {
            Backend::Embedded => blob_files(data_dir),
            Backend::Cluster(database) => {
                use sqlx::Connection;
                let mut db = sqlx::PgConnection::connect(&database.url())
                    .await
                    .expect("connect");
                let rows: Vec<(String, Vec<u8>)> =
                    sqlx::query_as("SELECT sha256, data FROM blob_contents")
                        .fetch_all(&mut db)
                        .await
                        .expect("blob rows");
                rows.into_iter()
                    .map(|(name, data)| (name, sha256_hex(&data)))
                    .collect()
            }
        }
    }

    /// Files a batch left in the blob folder's `tmp/` (a PostgreSQL batch stages in memory).
    fn staged_files(&self, data_dir: &Path) -> Option<usize> {
        match self {
            Backend::Embedded => Some(
                std::fs::read_dir(data_dir.join("blobs/tmp"))
                    .expect("tmp")
                    .count(),
            ),
            Backend::Cluster(_) => None,
        }
    }
}

impl Database {
    fn url(&self) -> String {
        let mut url = url::Url::parse(&self.admin_url).expect("database URL");
        url.set_path(&format!("/{}", self.name));
        url.to_string()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // From a thread with its own runtime: this drop runs inside the test's runtime.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async move {
                    use sqlx::Connection;
                    let mut admin = sqlx::PgConnection::connect(&url).await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await?;
                    Ok::<_, sqlx::Error>(())
                })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

fn required_env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} must be set when HOSTING_TEST_BACKEND=cluster"))
}

/// A running `hosting-app` on `data_dir`; killed (SIGKILL) when dropped or told to.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(data_dir: &Path, backend: &Backend) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_hosting-app"))
            .env_clear()
            .envs(backend.env())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOSTING_DATA_DIR", data_dir)
            .env("HOSTING_LISTEN", "127.0.0.1:0")
            .env("HOSTING_MGMT_LISTEN", "127.0.0.1:0")
            .env("HOSTING_ADMIN_TOKEN", TOKEN)
            .env("HOSTING_GC_INTERVAL", "0")
            .env("HOSTING_DOMAIN_CHECK_INTERVAL", "0")
            .env("HOSTING_LOG_FORMAT", "text")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("hosting-app starts");
        let mut server = Server { child, port: 0 };
        let stdout = server.child.stdout.take().expect("piped stdout");
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        loop {
            let line = lines
                .recv_timeout(START_LIMIT)
                .unwrap_or_else(|e| panic!("no 'listening' line: {e}"));
            if let Some((_, rest)) = line.split_once("API http://localhost:") {
                server.port = rest
                    .split('/')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("a port");
                std::thread::spawn(move || while lines.recv().is_ok() {});
                return server;
            }
        }
    }

    /// `kill -9`, then reaps the process.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    fn api(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/api/v1{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` distinct small pages of a site.
fn pages(n: usize, salt: &str) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let body = format!("<p>{salt} page {i}</p>{}", "x".repeat(i % 500));
            (format!("/p{i:04}.html"), body.into_bytes())
        })
        .collect()
}

fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (_, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, sha256_hex(bytes), bytes.as_slice())
            .expect("tar entry");
    }
    builder.into_inner().expect("tar")
}

/// Creates site `blog` (if needed) and a digest deploy of `files` under `key`.
async fn create_deploy(
    client: &reqwest::Client,
    server: &Server,
    files: &[(String, Vec<u8>)],
    key: &str,
) -> api::CreatedDeploy {
    let _ = client
        .post(server.api("/sites"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"name": "blog"}))
        .send()
        .await
        .expect("create site");
    let manifest: BTreeMap<String, String> = files
        .iter()
        .map(|(path, bytes)| (path.clone(), sha256_hex(bytes)))
        .collect();
    let response = client
        .post(server.api("/sites/blog/deploys"))
        .bearer_auth(TOKEN)
        .header("idempotency-key", key)
        .json(&api::CreateDeploy {
            files: manifest,
            message: None,
        })
        .send()
        .await
        .expect("create deploy");
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.expect("created deploy")
}

async fn post_batch(
    client: &reqwest::Client,
    server: &Server,
    id: &str,
    body: reqwest::Body,
) -> u16 {
    client
        .post(server.api(&format!("/deploys/{id}/files")))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-tar")
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Publishes `id`, then checks every file is served with its bytes.
async fn publish_and_check(
    client: &reqwest::Client,
    server: &Server,
    id: &str,
    files: &[(String, Vec<u8>)],
) {
    let response = client
        .post(server.api(&format!("/deploys/{id}/publish")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("publish");
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
    for (path, bytes) in files {
        let response = client
            .get(format!("http://127.0.0.1:{}{path}", server.port))
            .header("host", "blog.localhost")
            .send()
            .await
            .expect("page");
        assert_eq!(response.status(), 200, "{path}");
        let body = response.bytes().await.expect("body");
        assert_eq!(
            sha256_hex(&body),
            sha256_hex(bytes),
            "{path} served other bytes"
        );
    }
}

/// Every blob file under `data/blobs` (not `tmp/`): its name and the hash of its bytes.
fn blob_files(data_dir: &Path) -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry"))
        {
            let path = entry.path();
            if path.is_dir() {
                if entry.file_name() != "tmp" {
                    walk(&path, out);
                }
            } else {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&data_dir.join("blobs"), &mut paths);
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("name")
                .to_owned();
            (name, sha256_hex(&std::fs::read(&path).expect("blob bytes")))
        })
        .collect()
}

#[tokio::test]
async fn an_acknowledged_batch_survives_kill_9_with_every_blob_present_and_valid() {
    // Arrange
    let data = tempfile::tempdir().expect("temp dir");
    let backend = Backend::for_test().await;
    let client = reqwest::Client::new();
    let server = Server::start(data.path(), &backend);
    let files = pages(300, "acknowledged");
    let created = create_deploy(&client, &server, &files, "ack-1").await;
    assert_eq!(created.required.len(), files.len());

    // Act: the batch is acknowledged, then the server is killed at once
    let status = post_batch(&client, &server, &created.deploy.id, tar_of(&files).into()).await;
    assert_eq!(status, 204);
    server.kill();
    let server = Server::start(data.path(), &backend);

    // Assert: recorded (nothing missing), every blob file valid, every page served
    let replay = create_deploy(&client, &server, &files, "ack-1").await;
    assert_eq!(replay.deploy.id, created.deploy.id);
    assert!(
        replay.required.is_empty(),
        "missing after restart: {:?}",
        replay.required
    );
    let blobs = backend.blobs(data.path()).await;
    for (path, bytes) in &files {
        let sha = sha256_hex(bytes);
        assert!(
            blobs.iter().any(|(name, _)| *name == sha),
            "blob of {path} is gone"
        );
    }
    for (name, actual) in &blobs {
        assert_eq!(name, actual, "a blob file does not match its name");
    }
    publish_and_check(&client, &server, &created.deploy.id, &files).await;
}

#[tokio::test]
async fn an_acknowledged_early_upload_survives_kill_9_and_its_deploy_requires_nothing() {
    // Arrange
    let data = tempfile::tempdir().expect("temp dir");
    let backend = Backend::for_test().await;
    let client = reqwest::Client::new();
    let server = Server::start(data.path(), &backend);
    let files = pages(300, "early");

    // Act: the files go up before any deploy names them, then the server is killed at once
    let status = client
        .post(server.api("/blobs"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-tar")
        .body(tar_of(&files))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    assert_eq!(status, 204);
    server.kill();
    let server = Server::start(data.path(), &backend);

    // Assert: recorded for the owner, every blob valid, the deploy ready and served
    let created = create_deploy(&client, &server, &files, "early-1").await;
    assert!(
        created.required.is_empty(),
        "required after restart: {:?}",
        created.required
    );
    for (name, actual) in &backend.blobs(data.path()).await {
        assert_eq!(name, actual, "a blob file does not match its name");
    }
    publish_and_check(&client, &server, &created.deploy.id, &files).await;
}

#[tokio::test]
async fn a_server_killed_mid_batch_restarts_with_the_deploy_resumable_and_nothing_corrupt() {
    // Arrange: a deploy of 400 files, the first 200 acknowledged
    let data = tempfile::tempdir().expect("temp dir");
    let backend = Backend::for_test().await;
    let client = reqwest::Client::new();
    let server = Server::start(data.path(), &backend);
    let files = pages(400, "interrupted");
    let (done, rest) = files.split_at(200);
    let created = create_deploy(&client, &server, &files, "mid-1").await;
    let id = created.deploy.id.clone();
    assert_eq!(
        post_batch(&client, &server, &id, tar_of(done).into()).await,
        204
    );

    // Act: the second batch streams half its bytes, then the server is killed
    let tar = tar_of(rest);
    let half = &tar[..tar.len() / 2];
    let (chunks_tx, chunks_rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    chunks_tx
        .send(Ok(half.to_vec()))
        .await
        .expect("first half queued");
    let body = reqwest::Body::wrap_stream(futures::stream::unfold(chunks_rx, |mut rx| async {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let sending = {
        let (client, url) = (client.clone(), server.api(&format!("/deploys/{id}/files")));
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(TOKEN)
                .header("content-type", "application/x-tar")
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    // Long enough for the server to stage entries of the first half (a missed window
    // only makes the test weaker, never wrong).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    drop(chunks_tx);
    let interrupted = sending.await.expect("sender task");
    assert!(
        !matches!(interrupted, Ok(204)),
        "the interrupted batch was acknowledged"
    );
    // The kill came mid-batch: a folder batch left its staged files in `tmp/`.
    let staged = backend.staged_files(data.path());
    assert!(
        staged.is_none_or(|n| n > 0),
        "the server had staged nothing of the batch when it was killed"
    );
    let server = Server::start(data.path(), &backend);
    // The restart removed them: nothing else would.
    let left = backend.staged_files(data.path());
    assert!(
        left.is_none_or(|n| n == 0),
        "temporary files of the killed batch left after the restart: {left:?}"
    );

    // Assert: the deploy still misses exactly the unacknowledged files
    let replay = create_deploy(&client, &server, &files, "mid-1").await;
    assert_eq!(replay.deploy.id, id);
    let mut missing = replay.required.clone();
    missing.sort();
    let mut expected: Vec<String> = rest.iter().map(|(_, b)| sha256_hex(b)).collect();
    expected.sort();
    assert_eq!(missing, expected, "the missing list after the restart");
    for (name, actual) in backend.blobs(data.path()).await {
        assert_eq!(name, actual, "a blob file does not match its name");
    }
    // Resumed: the rest in one batch, then everything is served as deployed.
    assert_eq!(
        post_batch(&client, &server, &id, tar_of(rest).into()).await,
        204
    );
    publish_and_check(&client, &server, &id, &files).await;
}
