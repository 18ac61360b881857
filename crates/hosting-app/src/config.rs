//! The one typed configuration of the server: every setting is a flag and an
//! environment variable (`hosting-app --help` lists them with their defaults).
//! Parsed and validated once at start-up, then passed down; nothing reads the
//! environment after that.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

/// Self-hosted static-site hosting: API, site serving and management endpoints.
#[derive(Debug, Parser)]
#[command(name = "hosting-app", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Delete expired deploys and unreferenced blobs once, then exit (with the server stopped).
    Gc,
    /// Operator commands on the platform's data (the server may be running or stopped):
    /// issue a new API token, set a password.
    Admin(crate::admin::AdminArgs),
}

/// Where file contents are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BlobStoreKind {
    Postgres,
    Folder,
}

/// Server settings. Sizes are bytes, durations seconds.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address of the public listener (API, dashboard and sites).
    #[arg(long, env = "HOSTING_LISTEN", default_value = "0.0.0.0:3000")]
    pub listen: SocketAddr,

    /// Address of the management listener (/metrics, /healthz, /readyz).
    #[arg(long, env = "HOSTING_MGMT_LISTEN", default_value = "0.0.0.0:9000")]
    pub mgmt_listen: SocketAddr,

    /// Folder for the SQLite database and the blob store (embedded mode).
    #[arg(long, env = "HOSTING_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Base domain: sites are served on `<site>.<base-domain>`, the API on the base domain itself.
    #[arg(long, env = "HOSTING_BASE_DOMAIN", default_value = "localhost")]
    pub base_domain: String,

    /// Host of the API and dashboard (defaults to the base domain).
    #[arg(long, env = "HOSTING_CONTROL_HOST")]
    pub control_host: Option<String>,

    /// Scheme of the public URLs the API reports (`https` behind a TLS proxy).
    #[arg(long, env = "HOSTING_PUBLIC_SCHEME", default_value = "http")]
    pub public_scheme: String,

    /// Port of the public URLs the API reports (defaults to the listen port for http, none for https).
    #[arg(long, env = "HOSTING_PUBLIC_PORT")]
    pub public_port: Option<u16>,

    /// API token for the first admin, used instead of a printed one when the database is empty.
    #[arg(long, env = "HOSTING_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<SecretString>,

    /// File holding the first admin's token (a Docker / Kubernetes secret); wins over HOSTING_ADMIN_TOKEN.
    #[arg(long, env = "HOSTING_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Dashboard password of the first admin (`admin`), at least 10 characters; also set on
    /// an existing `admin` account that has no password yet.
    #[arg(long, env = "HOSTING_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<SecretString>,

    /// File holding the first admin's dashboard password; wins over HOSTING_ADMIN_PASSWORD.
    #[arg(long, env = "HOSTING_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,

    /// PostgreSQL primary (`postgres://user:pass@host/db`): setting it selects cluster mode.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<SecretString>,

    /// PostgreSQL read replica; serving and listings read it when it keeps up.
    #[arg(long, env = "DATABASE_REPLICA_URL", hide_env_values = true)]
    pub database_replica_url: Option<SecretString>,

    /// File holding the database password (a Docker / Kubernetes secret), put into both URLs.
    #[arg(long, env = "DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<PathBuf>,

    /// Connections to the primary per app replica.
    #[arg(long, env = "HOSTING_DB_PRIMARY_POOL", default_value_t = 4)]
    pub db_primary_pool: u32,

    /// Connections to the read replica per app replica (five app replicas stay under 50 in all).
    #[arg(long, env = "HOSTING_DB_REPLICA_POOL", default_value_t = 4)]
    pub db_replica_pool: u32,

    /// Seconds of replication lag past which reads go to the primary.
    #[arg(long, env = "HOSTING_REPLICA_MAX_LAG", default_value_t = 5)]
    pub replica_max_lag: u64,

    /// Where file contents live in cluster mode: `postgres` (default) or `folder` (HOSTING_DATA_DIR on a shared volume).
    #[arg(long, env = "HOSTING_BLOB_STORE")]
    pub blob_store: Option<BlobStoreKind>,

    /// Redis (`redis://host:6379/0`): shared cache, publish invalidation, rate-limit counters.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<SecretString>,

    /// Prefix of every Redis key and channel, so several platforms can share one Redis.
    #[arg(long, env = "HOSTING_REDIS_PREFIX", default_value = "hosting")]
    pub redis_prefix: String,

    /// Files up to this size are shared through Redis (the L2 cache).
    #[arg(long, env = "HOSTING_REDIS_BLOB_MAX_BYTES", default_value_t = 256 * 1024)]
    pub redis_blob_max_bytes: u64,

    /// API requests per minute per token and per client address; 0 disables.
    #[arg(long, env = "HOSTING_RATE_LIMIT_PER_MINUTE", default_value_t = 1200)]
    pub rate_limit_per_minute: u64,

    /// Most files in one deploy.
    #[arg(long, env = "HOSTING_MAX_FILES", default_value_t = 20_000)]
    pub max_files: u64,

    /// Largest file in a deploy.
    #[arg(long, env = "HOSTING_MAX_FILE_BYTES", default_value_t = 25 * 1024 * 1024)]
    pub max_file_bytes: u64,

    /// Largest deploy (sum of its files).
    #[arg(long, env = "HOSTING_MAX_DEPLOY_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub max_deploy_bytes: u64,

    /// Largest ratio of uncompressed to compressed bytes in a `.tar.gz` deploy.
    #[arg(long, env = "HOSTING_MAX_EXPANSION_RATIO", default_value_t = 200)]
    pub max_expansion_ratio: u64,

    /// Default per-user storage quota (bytes of the distinct files of the user's deploys;
    /// plain bytes or with a unit: 10GiB, 500MB). 0 = unlimited. Not applied to admins.
    #[arg(long, env = "HOSTING_QUOTA_STORAGE_BYTES", default_value = "10GiB")]
    pub quota_storage_bytes: hosting_api::ByteSize,

    /// Default per-user number of sites. 0 = unlimited. Not applied to admins.
    #[arg(long, env = "HOSTING_QUOTA_SITES", default_value_t = 100)]
    pub quota_sites: u64,

    /// Default per-user deploys created per rolling hour. 0 = unlimited. Not applied to admins.
    #[arg(long, env = "HOSTING_QUOTA_DEPLOYS_PER_HOUR", default_value_t = 100)]
    pub quota_deploys_per_hour: u64,

    /// Bytes of the in-process cache (manifests and small files).
    #[arg(long, env = "HOSTING_CACHE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub cache_bytes: u64,

    /// Files up to this size are kept in the in-process cache; larger ones stream from the blob store.
    #[arg(long, env = "HOSTING_CACHE_MAX_FILE_BYTES", default_value_t = 1024 * 1024)]
    pub cache_max_file_bytes: u64,

    /// Seconds a host -> live deploy mapping may be cached (a safety net; publish invalidates at once).
    #[arg(long, env = "HOSTING_HOST_CACHE_TTL", default_value_t = 5)]
    pub host_cache_ttl: u64,

    /// Seconds shared caches (the proxies) may keep a site response (`s-maxage`).
    #[arg(long, env = "HOSTING_PROXY_CACHE_SECONDS", default_value_t = 1)]
    pub proxy_cache_seconds: u64,

    /// Seconds after which a deploy still waiting for files expires.
    #[arg(long, env = "HOSTING_DEPLOY_EXPIRY", default_value_t = 3600)]
    pub deploy_expiry: u64,

    /// Seconds between garbage-collection runs (expired deploys, unreferenced blobs); 0 disables.
    #[arg(long, env = "HOSTING_GC_INTERVAL", default_value_t = 600)]
    pub gc_interval: u64,

    /// Seconds between re-checks of custom-domain ownership (failed checks back off, up
    /// to a day); 0 disables the periodic check (the verify endpoint still works).
    #[arg(long, env = "HOSTING_DOMAIN_CHECK_INTERVAL", default_value_t = 3600)]
    pub domain_check_interval: u64,

    /// DNS server (`IP:PORT`) asked for custom-domain TXT records; the system resolver
    /// (`/etc/resolv.conf`) when unset. Tests point it at a local mock DNS.
    #[arg(long, env = "HOSTING_DNS_RESOLVER")]
    pub dns_resolver: Option<SocketAddr>,

    /// Address (`IP:PORT`) the HTTP-token check connects to instead of resolving the
    /// domain (an ingress with a fixed address, or tests); port 0 means this app's own
    /// public listener.
    #[arg(long, env = "HOSTING_VERIFY_HTTP_ADDR")]
    pub verify_http_addr: Option<SocketAddr>,

    /// ACME directory URL (RFC 8555) that issues certificates for verified custom
    /// domains; unset = no automatic certificates (HTTPS serves the platform's own).
    #[arg(long, env = "HOSTING_ACME_DIRECTORY")]
    pub acme_directory: Option<String>,

    /// PEM file of the root CA to trust for the ACME server's own HTTPS (test CAs such
    /// as Pebble); the system's roots when unset.
    #[arg(long, env = "HOSTING_ACME_CA_ROOT")]
    pub acme_ca_root: Option<PathBuf>,

    /// Contact e-mail of the ACME account.
    #[arg(long, env = "HOSTING_ACME_CONTACT")]
    pub acme_contact: Option<String>,

    /// Key id of the ACME external account binding (RFC 8555 §7.3.4) the CA gave the
    /// operator: CAs such as ZeroSSL or Google Trust Services require one. With
    /// HOSTING_ACME_EAB_HMAC_KEY; used when the platform's account is created.
    #[arg(long, env = "HOSTING_ACME_EAB_KID")]
    pub acme_eab_kid: Option<String>,

    /// The binding's HMAC key, base64url as the CA shows it.
    #[arg(long, env = "HOSTING_ACME_EAB_HMAC_KEY", hide_env_values = true)]
    pub acme_eab_hmac_key: Option<SecretString>,

    /// File holding the binding's HMAC key (a Docker / Kubernetes secret); wins over
    /// HOSTING_ACME_EAB_HMAC_KEY.
    #[arg(long, env = "HOSTING_ACME_EAB_HMAC_KEY_FILE")]
    pub acme_eab_hmac_key_file: Option<PathBuf>,

    /// Seconds before expiry a certificate is renewed (at most a third of its lifetime).
    #[arg(long, env = "HOSTING_ACME_RENEW_BEFORE", default_value_t = 30 * 24 * 3600)]
    pub acme_renew_before: u64,

    /// Seconds before the first retry of a failed order; doubles per failure, up to a day.
    #[arg(long, env = "HOSTING_ACME_RETRY_BASE", default_value_t = 300)]
    pub acme_retry_base: u64,

    /// Seconds between rounds of the certificate issuer (orders that are due).
    #[arg(long, env = "HOSTING_ACME_INTERVAL", default_value_t = 60)]
    pub acme_interval: u64,

    /// File with the 32-byte key (64 hex digits) that seals certificate private keys in
    /// the database; the same on every replica. Embedded mode creates
    /// `<data dir>/certificate-encryption.key` when unset.
    #[arg(long, env = "HOSTING_CERT_ENCRYPTION_KEY_FILE")]
    pub cert_encryption_key_file: Option<PathBuf>,

    /// Folder the certificate installer keeps `<domain>.pem` files and `crt-list.txt` in.
    #[arg(long, env = "HOSTING_CERT_DIR")]
    pub cert_dir: Option<PathBuf>,

    /// The same folder as HAProxy sees it (container mounts differ); defaults to HOSTING_CERT_DIR.
    #[arg(long, env = "HOSTING_HAPROXY_CERT_DIR")]
    pub haproxy_cert_dir: Option<PathBuf>,

    /// HAProxy's runtime API (`unix:/path/admin.sock` or `host:port`, level admin): with
    /// HOSTING_CERT_DIR set, this replica installs certificates. One replica per HAProxy.
    #[arg(long, env = "HOSTING_HAPROXY_RUNTIME_API")]
    pub haproxy_runtime_api: Option<String>,

    /// Seconds between installer rounds (database -> files -> HAProxy).
    #[arg(long, env = "HOSTING_CERT_SYNC_INTERVAL", default_value_t = 30)]
    pub cert_sync_interval: u64,

    /// Seconds a request may take before it is answered 408 (uploads included).
    #[arg(long, env = "HOSTING_REQUEST_TIMEOUT", default_value_t = 300)]
    pub request_timeout: u64,

    /// Seconds between turning not-ready and closing the listener on SIGTERM, so load balancers notice first.
    #[arg(long, env = "HOSTING_SHUTDOWN_DRAIN", default_value_t = 0)]
    pub shutdown_drain: u64,

    /// Seconds a client may take to send a request's headers (counted from connecting, or from the first byte of a later request) before its connection is closed.
    #[arg(long, env = "HOSTING_HEADER_READ_TIMEOUT", default_value_t = 10)]
    pub header_read_timeout: u64,

    /// Seconds a keep-alive connection may wait for its next request, or a client may take no byte of its response, before the connection is closed. Longer than the proxies' upstream keep-alive (Nginx: 60 s), so they close first.
    #[arg(long, env = "HOSTING_IDLE_TIMEOUT", default_value_t = 75)]
    pub idle_timeout: u64,

    /// Open connections per listener (public and management); over it, new connections wait in the kernel's accept queue until one closes.
    #[arg(long, env = "HOSTING_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Log format: `json` (one object per line), `text`, or `auto` (text when standard
    /// output is a terminal, else JSON).
    #[arg(long, env = "HOSTING_LOG_FORMAT", default_value = "auto")]
    pub log_format: String,

    // Serving (issue 17).
    /// Where the access log (one line per request) goes: `stdout`, `off`, or a file path
    /// (appended to). Written by its own thread; lines it cannot keep up with are dropped
    /// and counted (`hosting_access_log_dropped_lines_total`), never waited for.
    #[arg(long, env = "HOSTING_ACCESS_LOG", default_value = "stdout")]
    pub access_log: String,
}

impl Config {
    /// Checks settings clap cannot check alone.
    pub fn validate(&self) -> Result<(), String> {
        if self.base_domain.is_empty() || self.base_domain.contains(['/', ':', ' ']) {
            return Err(format!(
                "HOSTING_BASE_DOMAIN {:?} is not a domain name",
                self.base_domain
            ));
        }
        if !matches!(self.public_scheme.as_str(), "http" | "https") {
            return Err("HOSTING_PUBLIC_SCHEME must be http or https".into());
        }
        if !matches!(self.log_format.as_str(), "json" | "text" | "auto") {
            return Err("HOSTING_LOG_FORMAT must be json, text or auto".into());
        }
        if let Some(token) = &self.admin_token {
            if token.expose_secret().len() < 16 {
                return Err("HOSTING_ADMIN_TOKEN must be at least 16 characters".into());
            }
        }
        if let Some(password) = &self.admin_password {
            if password.expose_secret().chars().count() < 10 {
                return Err("HOSTING_ADMIN_PASSWORD must be at least 10 characters".into());
            }
        }
        if self.max_files == 0 || self.max_file_bytes == 0 || self.max_deploy_bytes == 0 {
            return Err("deploy limits must be greater than zero".into());
        }
        if self.database_url.is_none()
            && (self.database_replica_url.is_some()
                || self.blob_store == Some(BlobStoreKind::Postgres))
        {
            return Err(
                "DATABASE_REPLICA_URL and HOSTING_BLOB_STORE=postgres need DATABASE_URL".into(),
            );
        }
        if self.header_read_timeout == 0 || self.idle_timeout == 0 || self.max_connections == 0 {
            return Err(
                "HOSTING_HEADER_READ_TIMEOUT, HOSTING_IDLE_TIMEOUT and HOSTING_MAX_CONNECTIONS must be greater than zero"
                    .into(),
            );
        }
        if self.db_primary_pool == 0 || self.db_replica_pool == 0 {
            return Err("database pools need at least one connection".into());
        }
        if let Some(directory) = &self.acme_directory {
            if !directory.starts_with("https://") {
                return Err("HOSTING_ACME_DIRECTORY must be an https:// URL".into());
            }
        }
        if self.acme_eab_kid.is_some() != self.acme_eab_hmac_key.is_some() {
            return Err(
                "HOSTING_ACME_EAB_KID and HOSTING_ACME_EAB_HMAC_KEY go together (the CA gives both)"
                    .into(),
            );
        }
        if let Some(key) = &self.acme_eab_hmac_key {
            decode_eab_key(key.expose_secret())?;
        }
        if self.acme_directory.is_some()
            && self.is_cluster()
            && self.cert_encryption_key_file.is_none()
        {
            return Err(
                "HOSTING_ACME_DIRECTORY in cluster mode needs HOSTING_CERT_ENCRYPTION_KEY_FILE \
                 (the same key file on every replica and installer)"
                    .into(),
            );
        }
        if self.acme_interval == 0 || self.cert_sync_interval == 0 || self.acme_retry_base == 0 {
            return Err(
                "HOSTING_ACME_INTERVAL, HOSTING_ACME_RETRY_BASE and HOSTING_CERT_SYNC_INTERVAL \
                 must be at least 1 second"
                    .into(),
            );
        }
        if self.haproxy_runtime_api.is_some() != self.cert_dir.is_some() {
            return Err(
                "HOSTING_HAPROXY_RUNTIME_API and HOSTING_CERT_DIR go together (the installer \
                 needs both)"
                    .into(),
            );
        }
        Ok(())
    }

    /// The external account binding to create the ACME account with: (key id, HMAC key).
    pub fn acme_external_account(&self) -> Option<(String, zeroize::Zeroizing<Vec<u8>>)> {
        let kid = self.acme_eab_kid.clone()?;
        let key = decode_eab_key(self.acme_eab_hmac_key.as_ref()?.expose_secret()).ok()?;
        Some((kid, key))
    }

    /// Where this replica's certificate installer runs, if it does: (own folder,
    /// HAProxy's view of it, runtime API).
    pub fn certificate_installer(&self) -> Option<(PathBuf, PathBuf, String)> {
        let dir = self.cert_dir.clone()?;
        let api = self.haproxy_runtime_api.clone()?;
        let haproxy_dir = self.haproxy_cert_dir.clone().unwrap_or_else(|| dir.clone());
        Some((dir, haproxy_dir, api))
    }

    /// Cluster mode: PostgreSQL (and usually Redis) instead of the embedded backends.
    pub fn is_cluster(&self) -> bool {
        self.database_url.is_some()
    }

    /// The blob store in effect: PostgreSQL in cluster mode unless a folder is chosen.
    pub fn blob_store_kind(&self) -> BlobStoreKind {
        match (self.blob_store, self.is_cluster()) {
            (Some(kind), _) => kind,
            (None, true) => BlobStoreKind::Postgres,
            (None, false) => BlobStoreKind::Folder,
        }
    }

    /// Reads the `*_FILE` secrets into their settings (Docker / Kubernetes secrets).
    pub fn load_secret_files(&mut self) -> Result<(), String> {
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path)
                .map(|text| text.trim().to_owned())
                .map_err(|e| format!("reading {}: {e}", path.display()))
        };
        if let Some(path) = &self.admin_token_file {
            self.admin_token = Some(SecretString::from(read(path)?));
        }
        if let Some(path) = &self.admin_password_file {
            self.admin_password = Some(SecretString::from(read(path)?));
        }
        if let Some(path) = &self.acme_eab_hmac_key_file {
            self.acme_eab_hmac_key = Some(SecretString::from(read(path)?));
        }
        if let Some(path) = &self.database_password_file {
            let password = read(path)?;
            for url in [&mut self.database_url, &mut self.database_replica_url]
                .into_iter()
                .flatten()
            {
                *url = SecretString::from(with_password(url.expose_secret(), &password)?);
            }
        }
        Ok(())
    }

    /// The control host, lower-cased.
    pub fn control_host(&self) -> String {
        self.control_host
            .as_deref()
            .unwrap_or(&self.base_domain)
            .to_ascii_lowercase()
    }

    pub fn host_cache_ttl(&self) -> Duration {
        Duration::from_secs(self.host_cache_ttl)
    }

    /// `scheme://host[:port]/` for a host under the base domain.
    pub fn public_url(&self, host: &str) -> String {
        let port = match (self.public_port, self.public_scheme.as_str()) {
            (Some(80), "http") => None,
            (Some(443), "https") => None,
            (Some(port), _) => Some(port),
            (None, "http") if self.listen.port() != 80 => Some(self.listen.port()),
            (None, _) => None,
        };
        match port {
            Some(port) => format!("{}://{host}:{port}/", self.public_scheme),
            None => format!("{}://{host}/", self.public_scheme),
        }
    }

    /// A configuration for tests: loopback listeners on free ports, data under `data_dir`.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Config {
        let cli = Cli::parse_from(["hosting-app"]);
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            mgmt_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            gc_interval: 0,
            domain_check_interval: 0,
            // Tests are silent unless TEST_LOG is set (see `telemetry::init_test_logging`).
            access_log: if std::env::var_os("TEST_LOG").is_some() {
                "stdout"
            } else {
                "off"
            }
            .into(),
            ..cli.config
        }
    }

    /// The settings as logged at start-up: secrets are redacted.
    pub fn redacted(&self) -> serde_json::Value {
        serde_json::json!({
            "listen": self.listen.to_string(),
            "mgmt_listen": self.mgmt_listen.to_string(),
            "data_dir": self.data_dir.display().to_string(),
            "base_domain": self.base_domain,
            "control_host": self.control_host(),
            "public_scheme": self.public_scheme,
            "public_port": self.public_port,
            "admin_token": self.admin_token.as_ref().map(|_| "[redacted]"),
            "admin_password": self.admin_password.as_ref().map(|_| "[redacted]"),
            "database_url": self.database_url.as_ref().map(|u| redact_url(u.expose_secret())),
            "database_replica_url": self.database_replica_url.as_ref().map(|u| redact_url(u.expose_secret())),
            "db_primary_pool": self.db_primary_pool,
            "db_replica_pool": self.db_replica_pool,
            "replica_max_lag": self.replica_max_lag,
            "blob_store": format!("{:?}", self.blob_store_kind()).to_lowercase(),
            "redis_url": self.redis_url.as_ref().map(|u| redact_url(u.expose_secret())),
            "redis_prefix": self.redis_prefix,
            "redis_blob_max_bytes": self.redis_blob_max_bytes,
            "rate_limit_per_minute": self.rate_limit_per_minute,
            "max_files": self.max_files,
            "max_file_bytes": self.max_file_bytes,
            "max_deploy_bytes": self.max_deploy_bytes,
            "max_expansion_ratio": self.max_expansion_ratio,
            "quota_storage_bytes": self.quota_storage_bytes.0,
            "quota_sites": self.quota_sites,
            "quota_deploys_per_hour": self.quota_deploys_per_hour,
            "cache_bytes": self.cache_bytes,
            "cache_max_file_bytes": self.cache_max_file_bytes,
            "host_cache_ttl": self.host_cache_ttl,
            "proxy_cache_seconds": self.proxy_cache_seconds,
            "deploy_expiry": self.deploy_expiry,
            "gc_interval": self.gc_interval,
            "domain_check_interval": self.domain_check_interval,
            "dns_resolver": self.dns_resolver.map(|a| a.to_string()),
            "verify_http_addr": self.verify_http_addr.map(|a| a.to_string()),
            "acme_directory": self.acme_directory,
            "acme_ca_root": self.acme_ca_root,
            "acme_eab_kid": self.acme_eab_kid,
            "acme_eab_hmac_key": self.acme_eab_hmac_key.as_ref().map(|_| "<set>"),
            "acme_renew_before": self.acme_renew_before,
            "acme_retry_base": self.acme_retry_base,
            "acme_interval": self.acme_interval,
            "cert_encryption_key_file": self.cert_encryption_key_file,
            "cert_dir": self.cert_dir,
            "haproxy_cert_dir": self.haproxy_cert_dir,
            "haproxy_runtime_api": self.haproxy_runtime_api,
            "cert_sync_interval": self.cert_sync_interval,
            "request_timeout": self.request_timeout,
            "shutdown_drain": self.shutdown_drain,
            "header_read_timeout": self.header_read_timeout,
            "idle_timeout": self.idle_timeout,
            "max_connections": self.max_connections,
            "log_format": self.log_format,
            "access_log": self.access_log,
        })
    }
}

/// `scheme://user:secret@host/...` -> `scheme://user:[redacted]@host/...`
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("[redacted]"));
            }
            parsed.to_string()
        }
        Err(_) => "[unparseable URL]".to_owned(),
    }
}

fn with_password(url: &str, password: &str) -> Result<String, String> {
    let mut parsed = url::Url::parse(url).map_err(|e| format!("database URL: {e}"))?;
    parsed
        .set_password(Some(password))
        .map_err(|()| "the database URL cannot carry a password".to_owned())?;
    Ok(parsed.to_string())
}

/// An EAB HMAC key as CAs show it: base64url, with or without padding.
fn decode_eab_key(text: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
    use base64::Engine;
    let trimmed = text.trim().trim_end_matches('=');
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .map_err(|_| {
            "HOSTING_ACME_EAB_HMAC_KEY is not base64url (as the CA shows it)".to_owned()
        })?;
    if key.len() < 16 {
        return Err("HOSTING_ACME_EAB_HMAC_KEY is shorter than 16 bytes: not a CA's key".into());
    }
    Ok(zeroize::Zeroizing::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_need_no_configuration_and_validate() {
        let cli = Cli::parse_from(["hosting-app"]);
        assert_eq!(cli.config.listen.to_string(), "0.0.0.0:3000");
        assert_eq!(cli.config.mgmt_listen.to_string(), "0.0.0.0:9000");
        assert_eq!(cli.config.base_domain, "localhost");
        assert_eq!(cli.config.validate(), Ok(()));
    }

    #[test]
    fn quota_sizes_take_plain_bytes_or_a_unit() {
        let cli = Cli::parse_from(["hosting-app"]);
        assert_eq!(
            cli.config.quota_storage_bytes,
            hosting_api::ByteSize(10 << 30)
        );
        let cli = Cli::parse_from(["hosting-app", "--quota-storage-bytes", "500MB"]);
        assert_eq!(cli.config.quota_storage_bytes.0, 500_000_000);
        let cli = Cli::parse_from(["hosting-app", "--quota-storage-bytes", "0"]);
        assert_eq!(cli.config.quota_storage_bytes.0, 0);
        assert!(Cli::try_parse_from(["hosting-app", "--quota-storage-bytes", "lots"]).is_err());
    }

    #[test]
    fn certificate_settings_are_checked_together() {
        let parse = |args: &[&str]| {
            let mut all = vec!["hosting-app"];
            all.extend_from_slice(args);
            Cli::parse_from(all).config.validate()
        };
        assert!(parse(&["--acme-directory", "http://ca.test/dir"])
            .expect_err("refused")
            .contains("https://"));
        assert_eq!(parse(&["--acme-directory", "https://ca.test/dir"]), Ok(()));
        let cluster = ["--database-url", "postgres://u@db/h"];
        let error = parse(&[&cluster[..], &["--acme-directory", "https://ca.test/dir"]].concat())
            .expect_err("refused");
        assert!(
            error.contains("HOSTING_CERT_ENCRYPTION_KEY_FILE"),
            "{error}"
        );
        // An installer alone starts without a key (it installs nothing it cannot open).
        assert_eq!(
            parse(
                &[
                    &cluster[..],
                    &[
                        "--haproxy-runtime-api",
                        "unix:/run/h.sock",
                        "--cert-dir",
                        "/c"
                    ]
                ]
                .concat()
            ),
            Ok(())
        );
        let error = parse(&["--cert-dir", "/c"]).expect_err("refused");
        assert!(error.contains("go together"), "{error}");
        assert_eq!(
            parse(
                &[
                    &cluster[..],
                    &[
                        "--acme-directory",
                        "https://ca.test/dir",
                        "--cert-encryption-key-file",
                        "/k"
                    ]
                ]
                .concat()
            ),
            Ok(())
        );
    }

    #[test]
    fn an_external_account_binding_needs_both_parts_and_a_base64url_key() {
        let parse = |args: &[&str]| {
            let mut all = vec!["hosting-app", "--acme-directory", "https://ca.test/dir"];
            all.extend_from_slice(args);
            Cli::parse_from(all).config
        };
        let key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
        let config = parse(&["--acme-eab-kid", "kid-1", "--acme-eab-hmac-key", key]);
        assert_eq!(config.validate(), Ok(()));
        let (kid, hmac) = config.acme_external_account().expect("a binding");
        assert_eq!((kid.as_str(), hmac.len()), ("kid-1", 48));
        // Padded keys are accepted as well.
        let padded = parse(&[
            "--acme-eab-kid",
            "k",
            "--acme-eab-hmac-key",
            "AAAAAAAAAAAAAAAAAAAAAA==",
        ]);
        assert_eq!(padded.validate(), Ok(()));

        let alone = parse(&["--acme-eab-kid", "kid-1"]).validate();
        assert!(alone.expect_err("refused").contains("go together"));
        let not_base64 = parse(&["--acme-eab-kid", "k", "--acme-eab-hmac-key", "not base64!"]);
        assert!(not_base64
            .validate()
            .expect_err("refused")
            .contains("base64url"));
        let short = parse(&["--acme-eab-kid", "k", "--acme-eab-hmac-key", "c2hvcnQ"]);
        assert!(short.validate().expect_err("refused").contains("16 bytes"));
        assert!(parse(&[]).acme_external_account().is_none());
        let summary = config.redacted().to_string();
        assert!(!summary.contains(key), "{summary}");
        assert!(summary.contains("kid-1"), "{summary}");
    }

    #[test]
    fn public_urls_carry_the_listen_port_only_when_needed() {
        let cli = Cli::parse_from(["hosting-app"]);
        assert_eq!(
            cli.config.public_url("blog.localhost"),
            "http://blog.localhost:3000/"
        );
        let tls = Cli::parse_from(["hosting-app", "--public-scheme", "https"]);
        assert_eq!(
            tls.config.public_url("blog.example.com"),
            "https://blog.example.com/"
        );
    }

    #[test]
    fn database_passwords_are_redacted_and_injected_from_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret@/x\n").expect("write");
        let mut cli = Cli::parse_from([
            "hosting-app",
            "--database-url",
            "postgres://app@db:5432/hosting",
        ]);
        cli.config.database_password_file = Some(file);
        cli.config.load_secret_files().expect("loads");
        let url = cli
            .config
            .database_url
            .as_ref()
            .expect("url")
            .expose_secret()
            .to_owned();
        assert_eq!(url, "postgres://app:s3cret%40%2Fx@db:5432/hosting");
        let shown = cli.config.redacted().to_string();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(cli.config.is_cluster());
        assert_eq!(cli.config.blob_store_kind(), BlobStoreKind::Postgres);
    }

    #[test]
    fn redacted_settings_never_show_the_admin_token() {
        let cli = Cli::parse_from(["hosting-app", "--admin-token", "super-secret-token-value"]);
        let shown = cli.config.redacted().to_string();
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }
}
