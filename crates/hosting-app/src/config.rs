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

    /// Seconds a request may take before it is answered 408 (uploads included).
    #[arg(long, env = "HOSTING_REQUEST_TIMEOUT", default_value_t = 300)]
    pub request_timeout: u64,

    /// Seconds between turning not-ready and closing the listener on SIGTERM, so load balancers notice first.
    #[arg(long, env = "HOSTING_SHUTDOWN_DRAIN", default_value_t = 0)]
    pub shutdown_drain: u64,

    /// Log format: `json` (one object per line) or `text`.
    #[arg(long, env = "HOSTING_LOG_FORMAT", default_value = "json")]
    pub log_format: String,
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
        if !matches!(self.log_format.as_str(), "json" | "text") {
            return Err("HOSTING_LOG_FORMAT must be json or text".into());
        }
        if let Some(token) = &self.admin_token {
            if token.expose_secret().len() < 16 {
                return Err("HOSTING_ADMIN_TOKEN must be at least 16 characters".into());
            }
        }
        if self.max_files == 0 || self.max_file_bytes == 0 || self.max_deploy_bytes == 0 {
            return Err("deploy limits must be greater than zero".into());
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
            "max_files": self.max_files,
            "max_file_bytes": self.max_file_bytes,
            "max_deploy_bytes": self.max_deploy_bytes,
            "max_expansion_ratio": self.max_expansion_ratio,
            "cache_bytes": self.cache_bytes,
            "cache_max_file_bytes": self.cache_max_file_bytes,
            "host_cache_ttl": self.host_cache_ttl,
            "proxy_cache_seconds": self.proxy_cache_seconds,
            "deploy_expiry": self.deploy_expiry,
            "gc_interval": self.gc_interval,
            "request_timeout": self.request_timeout,
            "shutdown_drain": self.shutdown_drain,
            "log_format": self.log_format,
        })
    }
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
    fn redacted_settings_never_show_the_admin_token() {
        let cli = Cli::parse_from(["hosting-app", "--admin-token", "super-secret-token-value"]);
        let shown = cli.config.redacted().to_string();
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }
}
