//! The test harness: `TestApp::spawn()` boots the real application (the same way the
//! binary does) on loopback, and small helpers speak to it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use hosting_api as api;
use hosting_app::config::{Secret, SecretUrl};
use hosting_app::state::AppState;
use hosting_app::{Application, Config};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, HOST};
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const ADMIN_TOKEN: &str = "hst_test-admin-token-0123456789";

pub struct TestApp {
    pub addr: SocketAddr,
    pub mgmt: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    pub data: tempfile::TempDir,
    pub config: Config,
    /// Cluster mode: the test's own database, dropped with the last app using it.
    database: Option<Arc<TestDatabase>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The backends under test: embedded by default; `HOSTING_TEST_BACKEND=cluster` runs the
/// same tests on PostgreSQL (primary + replica) and Redis, from `TEST_DATABASE_URL`,
/// `TEST_DATABASE_REPLICA_URL` and `TEST_REDIS_URL`, with site files in an S3 bucket when
/// `TEST_BLOB_STORE=s3` (see scripts/test).
pub fn cluster_backend() -> bool {
    std::env::var("HOSTING_TEST_BACKEND").is_ok_and(|b| b == "cluster")
}

fn required_env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} must be set when HOSTING_TEST_BACKEND=cluster"))
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 6];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    hex::encode(bytes)
}

fn with_database(url: &str, name: &str) -> String {
    let mut url = url::Url::parse(url).expect("database URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// A database of its own on the cluster under test, dropped (even with connections
/// open) when the last test app using it is gone: tests never leak databases.
pub struct TestDatabase {
    admin_url: String,
    pub name: String,
}

impl TestDatabase {
    async fn create() -> TestDatabase {
        use sqlx::Connection;
        let admin_url = required_env("TEST_DATABASE_URL");
        let name = format!("test_{}", random_suffix());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to the test cluster");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create database");
        TestDatabase { admin_url, name }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = block_on_from_drop(async move {
            use sqlx::Connection;
            let mut admin = sqlx::PgConnection::connect(&url).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await?;
            Ok::<_, sqlx::Error>(())
        });
        if !matches!(dropped, Some(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// Runs `work` to its end from a `Drop` that runs inside a test's runtime (which cannot
/// block on it): on a thread with a runtime of its own. `None` if it panicked.
pub fn block_on_from_drop<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(work)
    })
    .join()
    .ok()
}

/// Points `config` at a fresh database and Redis namespace of the test cluster.
pub async fn use_cluster(config: &mut Config) -> Arc<TestDatabase> {
    let database = TestDatabase::create().await;
    config.database.database_url = Some(SecretUrl::from(with_database(
        &database.admin_url,
        &database.name,
    )));
    if let Ok(replica) = std::env::var("TEST_DATABASE_REPLICA_URL") {
        config.database.database_replica_url =
            Some(SecretUrl::from(with_database(&replica, &database.name)));
    }
    config.redis.redis_url = Some(SecretUrl::from(required_env("TEST_REDIS_URL")));
    config.redis.redis_prefix = format!("test-{}", random_suffix());
    if std::env::var("TEST_BLOB_STORE").is_ok_and(|store| store == "s3") {
        use_s3(config);
    }
    Arc::new(database)
}

/// `TEST_BLOB_STORE=s3`: site files in the bucket of `HOSTING_S3_*` (the Garage cluster
/// of `deploy/local/services`), under a prefix of this test's own, so one test's
/// garbage collection never deletes another's files.
fn use_s3(config: &mut Config) {
    config.storage.blob_store = Some(hosting_app::config::BlobStoreKind::S3);
    required_env("HOSTING_S3_ENDPOINT");
    config.s3.s3_prefix = format!(
        "{}/test-{}",
        config.s3.s3_prefix.trim_end_matches('/'),
        random_suffix()
    );
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A loopback port nothing listens on right now, for a server the test starts afterwards
/// (Pebble, challtestsrv, Knot, HAProxy). It is drawn below Linux's ephemeral range
/// (32768-60999), so no outgoing connection of any process can be given it between this
/// check and the server's bind, as happened with a port the kernel picked; it is free for
/// TCP and UDP (DNS servers take both) and never handed out twice in one process.
pub fn free_port() -> u16 {
    use rand::Rng;
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = rand::thread_rng().gen_range(20_000..32_000);
        let fresh = HANDED_OUT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(port);
        if fresh
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A `.tar.gz` of `files` (paths relative, e.g. `docs/index.html`).
pub fn targz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, *bytes)
            .expect("append");
    }
    builder.into_inner().expect("tar").finish().expect("gzip")
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        hosting_app::telemetry::init_test_logging();
        let data = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_tests(data.path());
        config.admin.admin_token = Some(Secret::from(ADMIN_TOKEN));
        let database = if cluster_backend() {
            Some(use_cluster(&mut config).await)
        } else {
            None
        };
        adjust(&mut config);
        TestApp::boot(config, data, database).await
    }

    /// Boots on an existing data folder and database.
    pub async fn boot(
        config: Config,
        data: tempfile::TempDir,
        database: Option<Arc<TestDatabase>>,
    ) -> TestApp {
        let mut config = config;
        // A restart must bind fresh ports, not the ones the last run reported.
        config.listeners.listen.set_port(0);
        config.listeners.mgmt_listen.set_port(0);
        let app = Application::build(config.clone())
            .await
            .expect("application builds");
        let (addr, mgmt, state) = (app.api_addr(), app.mgmt_addr(), app.state());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_gzip()
            .no_brotli()
            .build()
            .expect("client");
        TestApp {
            addr,
            mgmt,
            client,
            state,
            data,
            config,
            database,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.shut_down().await;
        let empty = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.data, empty)
    }

    /// Stops the server gracefully and waits for it; its state and database stay readable.
    pub async fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("join").expect("server stopped cleanly");
        }
    }

    /// Stops the server gracefully and starts it again on the same data and database.
    pub async fn restart(self) -> TestApp {
        let config = self.config.clone();
        let database = self.database.clone();
        let data = self.stop().await;
        TestApp::boot(config, data, database).await
    }

    /// A second app instance on the same database and Redis (cluster tests).
    #[allow(dead_code, reason = "used by the cluster test binary only")]
    pub async fn another_instance(&self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let data = tempfile::tempdir().expect("temp dir");
        let mut config = self.config.clone();
        config.storage.data_dir = data.path().to_owned();
        adjust(&mut config);
        TestApp::boot(config, data, self.database.clone()).await
    }

    /// Whether the blob store holds `sha` (whatever the backend). PostgreSQL blobs are
    /// looked up on the primary: the store itself may answer from a lagging replica.
    pub async fn blob_stored(&self, sha: &str) -> bool {
        use secrecy::ExposeSecret;
        use sqlx::Connection;
        let parsed = hosting_app::domain::names::Sha256::parse(sha).expect("sha");
        match (
            &self.config.database.database_url,
            self.config.blob_store_kind(),
        ) {
            (Some(url), hosting_app::config::BlobStoreKind::Postgres) => {
                let mut db = sqlx::PgConnection::connect(url.expose_secret())
                    .await
                    .expect("connect");
                sqlx::query("SELECT 1 FROM blob_contents WHERE sha256 = $1")
                    .bind(parsed.as_str())
                    .fetch_optional(&mut db)
                    .await
                    .expect("query")
                    .is_some()
            }
            _ => self
                .state
                .blobs
                .get(&parsed)
                .await
                .expect("blob store")
                .is_some(),
        }
    }

    /// Runs one SQL statement on the app's database behind its back; returns rows affected.
    pub async fn execute_sql(&self, statement: &str) -> u64 {
        use secrecy::ExposeSecret;
        use sqlx::Connection;
        match &self.config.database.database_url {
            Some(url) => {
                let mut db = sqlx::PgConnection::connect(url.expose_secret())
                    .await
                    .expect("connect");
                sqlx::query(statement)
                    .execute(&mut db)
                    .await
                    .expect("statement")
                    .rows_affected()
            }
            None => {
                let url = format!(
                    "sqlite://{}",
                    self.config.storage.data_dir.join("hosting.db").display()
                );
                let mut db = sqlx::SqliteConnection::connect(&url)
                    .await
                    .expect("open the database");
                sqlx::query(statement)
                    .execute(&mut db)
                    .await
                    .expect("statement")
                    .rows_affected()
            }
        }
    }

    /// `http://localhost:<port>/api/v1<path>` (the control host).
    pub fn api(&self, path: &str) -> String {
        format!("http://localhost:{}/api/v1{path}", self.addr.port())
    }

    pub fn mgmt_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.mgmt)
    }

    pub fn get(&self, token: &str, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.api(path)).bearer_auth(token)
    }

    pub fn post(&self, token: &str, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.api(path)).bearer_auth(token)
    }

    /// A GET on a site host (`blog.localhost`), connecting to the loopback listener.
    pub async fn site(
        &self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.site_request(reqwest::Method::GET, host, path, headers)
            .await
    }

    pub async fn site_request(
        &self,
        method: reqwest::Method,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut map = HeaderMap::new();
        map.insert(HOST, HeaderValue::from_str(host).expect("host"));
        for (name, value) in headers {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        self.client
            .request(method, format!("http://{}{path}", self.addr))
            .headers(map)
            .send()
            .await
            .expect("request sent")
    }

    /// Sends a raw HTTP/1.1 request line and headers, bypassing any URL normalization.
    /// Returns the status code and the whole response text.
    pub async fn raw(&self, host: &str, raw_path: &[u8]) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let mut request = b"GET ".to_vec();
        request.extend_from_slice(raw_path);
        request.extend_from_slice(
            format!(" HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        stream.write_all(&request).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }

    pub async fn create_site(&self, token: &str, name: &str) -> api::Site {
        let response = self
            .post(token, "/sites")
            .json(&api::CreateSite { name: name.into() })
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201, "creating site {name}");
        response.json().await.expect("site json")
    }

    /// Deploys `files` as a `.tar.gz` (published) and returns the deploy.
    pub async fn deploy_archive(
        &self,
        token: &str,
        site: &str,
        files: &[(&str, &[u8])],
    ) -> api::Deploy {
        let response = self.post_archive(token, site, &targz(files)).await;
        let status = response.status();
        let text = response.text().await.expect("body");
        assert_eq!(status, 201, "archive deploy failed: {text}");
        serde_json::from_str(&text).expect("deploy json")
    }

    pub async fn post_archive(&self, token: &str, site: &str, bytes: &[u8]) -> reqwest::Response {
        self.post(token, &format!("/sites/{site}/deploys"))
            .header("content-type", "application/gzip")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("request")
    }

    /// Runs the digest protocol: create, upload what is required, publish.
    /// Returns the deploy and the hashes the server asked for.
    pub async fn deploy_digest(
        &self,
        token: &str,
        site: &str,
        files: &[(&str, &[u8])],
    ) -> (api::Deploy, Vec<String>) {
        let manifest: BTreeMap<String, String> = files
            .iter()
            .map(|(p, b)| ((*p).to_owned(), sha256_hex(b)))
            .collect();
        let response = self
            .post(token, &format!("/sites/{site}/deploys"))
            .json(&api::CreateDeploy {
                files: manifest,
                message: None,
            })
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201);
        let created: api::CreatedDeploy = response.json().await.expect("json");
        for sha in &created.required {
            let bytes = files
                .iter()
                .find(|(_, b)| sha256_hex(b) == *sha)
                .expect("file for hash")
                .1;
            let response = self
                .client
                .put(self.api(&format!("/deploys/{}/files/{sha}", created.deploy.id)))
                .bearer_auth(token)
                .body(bytes.to_vec())
                .send()
                .await
                .expect("upload");
            assert_eq!(response.status(), 204);
        }
        let response = self
            .post(token, &format!("/deploys/{}/publish", created.deploy.id))
            .send()
            .await
            .expect("publish");
        assert_eq!(response.status(), 200);
        (response.json().await.expect("json"), created.required)
    }

    /// Creates a member user and returns their token.
    pub async fn member(&self, name: &str) -> String {
        self.member_with_id(name).await.1
    }

    /// Creates a member user and returns their id and token.
    pub async fn member_with_id(&self, name: &str) -> (i64, String) {
        let response = self
            .post(ADMIN_TOKEN, "/users")
            .json(&api::CreateUser {
                username: name.into(),
                role: None,
                password: None,
            })
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201);
        let created: api::CreatedUser = response.json().await.expect("json");
        (created.user.id, created.token.secret)
    }
}

/// Asserts a response is a problem+json with `status`, and returns its detail.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status, "unexpected status");
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let problem: api::Problem = response.json().await.expect("problem json");
    assert_eq!(problem.status, status);
    assert!(!problem.title.is_empty());
    problem.detail.unwrap_or_default()
}
