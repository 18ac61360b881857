//! The one typed configuration of the server: every setting is a flag and an
//! environment variable (`hosting-app --help` lists them, by group, with their defaults).
//! Parsed and validated once at start-up, then passed down; nothing reads the
//! environment after that. One file per group; each group checks its own settings, and
//! [`Config::validate`] adds the few rules that span groups.

mod acme;
mod admin;
mod analytics;
mod cache;
mod database;
mod domains;
pub mod duration;
mod error;
mod events;
mod installer;
mod limits;
mod listeners;
mod logging;
mod proxy;
mod public;
mod s3;
mod secret;
pub(crate) mod storage;
mod tls;

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use error::Problems;

pub use acme::{Acme, ExternalAccount};
pub use admin::FirstAdmin;
pub use analytics::{Analytics, AnalyticsMode};
pub use cache::{Cache, Redis};
pub use database::Database;
pub use domains::DomainChecks;
pub use error::{ConfigError, ConfigErrors, Needed, Setting, Value};
pub use events::Events;
pub use installer::{Installer, InstallerSettings};
pub use limits::{Limits, Quotas};
pub use listeners::Listeners;
pub use logging::{AccessLogTarget, LogFormat, Logging};
pub use proxy::Routing;
pub use public::{Public, PublicScheme};
pub use s3::S3;
pub use secret::{Secret, SecretUrl};
pub use storage::{BlobStoreKind, Storage};
pub use tls::{Tls, TsigKey};

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
    Admin(crate::admin_cli::AdminArgs),
    /// The blob store: copy it into S3 (`migrate --to s3`), check it (`verify`).
    Blobs(crate::admin_cli::BlobsArgs),
}

/// Server settings, by group. Sizes are bytes; durations are seconds, or a number with
/// a unit (`500ms`, `10s`, `5m`, `1h`, `30d`). `Debug` is the redacted view: secrets
/// print as `[redacted]`, URLs without their password.
#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten, next_help_heading = "Listeners and timeouts")]
    pub listeners: Listeners,
    #[command(flatten, next_help_heading = "Public addresses")]
    pub public: Public,
    #[command(flatten, next_help_heading = "Storage")]
    pub storage: Storage,
    #[command(flatten, next_help_heading = "First admin")]
    pub admin: FirstAdmin,
    #[command(flatten, next_help_heading = "Database (cluster mode)")]
    pub database: Database,
    #[command(flatten, next_help_heading = "Redis (cluster mode)")]
    pub redis: Redis,
    #[command(flatten, next_help_heading = "Caches")]
    pub cache: Cache,
    #[command(flatten, next_help_heading = "Limits, expiry and garbage collection")]
    pub limits: Limits,
    #[command(flatten, next_help_heading = "Default quotas")]
    pub quotas: Quotas,
    #[command(flatten, next_help_heading = "Custom-domain checks")]
    pub domains: DomainChecks,
    #[command(flatten, next_help_heading = "Certificates (ACME)")]
    pub acme: Acme,
    #[command(flatten, next_help_heading = "Certificate installer")]
    pub installer: Installer,
    #[command(flatten, next_help_heading = "Logging")]
    pub logging: Logging,
    #[command(flatten, next_help_heading = "Analytics")]
    pub analytics: Analytics,
    #[command(flatten, next_help_heading = "Site routing (proxy rules, GeoIP)")]
    pub routing: Routing,
    #[command(flatten, next_help_heading = "HTTPS in the app (TLS listener)")]
    pub tls: Tls,
    #[command(flatten, next_help_heading = "Audit log and webhooks")]
    pub events: Events,
    #[command(flatten, next_help_heading = "S3 blob store (HOSTING_BLOB_STORE=s3)")]
    pub s3: S3,
}

impl Config {
    /// Checks each group, then the rules that span groups; every problem found, not
    /// only the first, so an operator fixes them in one go.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut problems = Problems::new();
        problems.merge(self.listeners.validate());
        problems.merge(self.public.validate());
        problems.merge(self.admin.validate());
        problems.merge(self.database.validate());
        problems.merge(self.limits.validate());
        problems.merge(self.acme.validate());
        problems.merge(self.installer.validate());
        problems.merge(self.analytics.validate());
        problems.merge(self.routing.validate());
        problems.merge(self.tls.validate());
        if let Some(kind @ (BlobStoreKind::Postgres | BlobStoreKind::S3)) = self.storage.blob_store
        {
            problems.check(!self.is_cluster(), || ConfigError::Needs {
                setting: Setting("HOSTING_BLOB_STORE"),
                value: Value::choice(kind),
                needed: Needed::All(vec![Setting("DATABASE_URL")]),
                reason: "cluster mode",
            });
        }
        problems.merge(
            self.s3
                .validate(self.blob_store_kind() == BlobStoreKind::S3),
        );
        if let Some(server) = self.tls.dns_update_server {
            let dns01 = || Setting("HOSTING_DNS_UPDATE_SERVER");
            problems.check(self.acme.acme_directory.is_none(), || ConfigError::Needs {
                setting: dns01(),
                value: Value::shown(server),
                needed: Needed::All(vec![Setting("HOSTING_ACME_DIRECTORY")]),
                reason: "the CA that issues the platform certificate",
            });
            problems.check(
                self.tls.tls_listen.is_none() && self.installer.settings().is_none(),
                || ConfigError::Needs {
                    setting: dns01(),
                    value: Value::shown(server),
                    needed: Needed::Any(vec![
                        Setting("HOSTING_TLS_LISTEN"),
                        Setting("HOSTING_CERT_DIR"),
                    ]),
                    reason: "the TLS listener or the HAProxy installer serves the certificate",
                },
            );
        }
        if let Some(directory) = &self.acme.acme_directory {
            problems.check(
                self.is_cluster() && self.acme.cert_encryption_key_file.is_none(),
                || ConfigError::Needs {
                    setting: Setting("HOSTING_ACME_DIRECTORY"),
                    value: Value::text(directory),
                    needed: Needed::All(vec![Setting("HOSTING_CERT_ENCRYPTION_KEY_FILE")]),
                    reason: "in cluster mode: the same key file on every replica and installer",
                },
            );
        }
        problems.finish()
    }

    /// Reads the `*_FILE` secrets into their settings (Docker / Kubernetes secrets);
    /// every file that cannot be read is reported.
    pub fn load_secret_files(&mut self) -> Result<(), ConfigErrors> {
        let mut problems = Problems::new();
        problems.merge(self.admin.load_secret_files());
        problems.merge(self.acme.load_secret_files());
        problems.merge(self.tls.load_secret_files());
        problems.merge(self.s3.load_secret_files());
        problems.merge(self.database.load_secret_files());
        problems.finish()
    }

    /// Cluster mode: PostgreSQL (and usually Redis) instead of the embedded backends.
    pub fn is_cluster(&self) -> bool {
        self.database.database_url.is_some()
    }

    /// The blob store in effect: PostgreSQL in cluster mode unless a folder is chosen.
    pub fn blob_store_kind(&self) -> BlobStoreKind {
        match (self.storage.blob_store, self.is_cluster()) {
            (Some(kind), _) => kind,
            (None, true) => BlobStoreKind::Postgres,
            (None, false) => BlobStoreKind::Folder,
        }
    }

    /// The control host, lower-cased.
    pub fn control_host(&self) -> String {
        self.public
            .control_host
            .as_deref()
            .unwrap_or(&self.public.base_domain)
            .to_ascii_lowercase()
    }

    /// `scheme://host[:port]/` for a host under the base domain.
    pub fn public_url(&self, host: &str) -> String {
        let scheme = self.public.public_scheme;
        let port = match self.public.public_port {
            Some(port) if port == scheme.default_port() => None,
            Some(port) => Some(port),
            None if scheme == PublicScheme::Http && self.listeners.listen.port() != 80 => {
                Some(self.listeners.listen.port())
            }
            None => None,
        };
        match port {
            Some(port) => format!("{}://{host}:{port}/", scheme.as_str()),
            None => format!("{}://{host}/", scheme.as_str()),
        }
    }

    /// A configuration for tests: loopback listeners on free ports, data under `data_dir`,
    /// no background loops.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Config {
        let mut config = Cli::parse_from(["hosting-app"]).config;
        config.listeners.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        config.listeners.mgmt_listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        config.storage.data_dir = data_dir.into();
        config.limits.gc_interval = std::time::Duration::ZERO;
        config.domains.domain_check_interval = std::time::Duration::ZERO;
        // Tests are silent unless TEST_LOG is set (see `telemetry::init_test_logging`).
        config.logging.access_log = if std::env::var_os("TEST_LOG").is_some() {
            AccessLogTarget::Stdout
        } else {
            AccessLogTarget::Off
        };
        config
    }
}

/// A `*_FILE` secret: the file's text without surrounding whitespace (editors and
/// `echo` add a final newline).
fn read_secret_file(setting: Setting, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_owned())
        .map_err(|source| ConfigError::SecretFile {
            setting,
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests;
