//! The one typed configuration of the server: every setting is a flag and an
//! environment variable (`hosting-app --help` lists them, by group, with their defaults).
//! Parsed and validated once at start-up, then passed down; nothing reads the
//! environment after that. One file per group; each group checks its own settings, and
//! [`Config::validate`] adds the few rules that span groups.

mod acme;
mod admin;
mod cache;
mod database;
mod domains;
pub mod duration;
mod installer;
mod limits;
mod listeners;
mod logging;
mod public;
mod secret;
mod storage;

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

pub use acme::{Acme, ExternalAccount};
pub use admin::FirstAdmin;
pub use cache::{Cache, Redis};
pub use database::Database;
pub use domains::DomainChecks;
pub use installer::{Installer, InstallerSettings};
pub use limits::{Limits, Quotas};
pub use listeners::Listeners;
pub use logging::{LogFormat, Logging};
pub use public::{Public, PublicScheme};
pub use secret::{Secret, SecretUrl};
pub use storage::{BlobStoreKind, Storage};

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
}

impl Config {
    /// Checks each group, then the rules that span groups.
    pub fn validate(&self) -> Result<(), String> {
        self.listeners.validate()?;
        self.public.validate()?;
        self.admin.validate()?;
        self.database.validate()?;
        self.limits.validate()?;
        self.acme.validate()?;
        self.installer.validate()?;
        if !self.is_cluster() && self.storage.blob_store == Some(BlobStoreKind::Postgres) {
            return Err("HOSTING_BLOB_STORE=postgres needs DATABASE_URL".into());
        }
        if self.acme.acme_directory.is_some()
            && self.is_cluster()
            && self.acme.cert_encryption_key_file.is_none()
        {
            return Err(
                "HOSTING_ACME_DIRECTORY in cluster mode needs HOSTING_CERT_ENCRYPTION_KEY_FILE \
                 (the same key file on every replica and installer)"
                    .into(),
            );
        }
        Ok(())
    }

    /// Reads the `*_FILE` secrets into their settings (Docker / Kubernetes secrets).
    pub fn load_secret_files(&mut self) -> Result<(), String> {
        self.admin.load_secret_files()?;
        self.acme.load_secret_files()?;
        self.database.load_secret_files()
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
        config
    }
}

/// A `*_FILE` secret: the file's text without surrounding whitespace (editors and
/// `echo` add a final newline).
fn read_secret_file(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_owned())
        .map_err(|e| format!("reading {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use secrecy::ExposeSecret;
    use std::time::Duration;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_need_no_configuration_and_validate() {
        let cli = Cli::parse_from(["hosting-app"]);
        assert_eq!(cli.config.listeners.listen.to_string(), "0.0.0.0:3000");
        assert_eq!(cli.config.listeners.mgmt_listen.to_string(), "0.0.0.0:9000");
        assert_eq!(cli.config.public.base_domain, "localhost");
        assert_eq!(cli.config.validate(), Ok(()));
    }

    #[test]
    fn quota_sizes_take_plain_bytes_or_a_unit() {
        let cli = Cli::parse_from(["hosting-app"]);
        assert_eq!(
            cli.config.quotas.quota_storage_bytes,
            hosting_api::ByteSize(10 << 30)
        );
        let cli = Cli::parse_from(["hosting-app", "--quota-storage-bytes", "500MB"]);
        assert_eq!(cli.config.quotas.quota_storage_bytes.0, 500_000_000);
        let cli = Cli::parse_from(["hosting-app", "--quota-storage-bytes", "0"]);
        assert_eq!(cli.config.quotas.quota_storage_bytes.0, 0);
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
        let binding = config.acme.external_account().expect("a binding");
        assert_eq!(
            (binding.key_id.as_str(), binding.hmac_key.len()),
            ("kid-1", 48)
        );
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
        assert!(parse(&[]).acme.external_account().is_none());
        let summary = format!("{config:?}");
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
        cli.config.database.database_password_file = Some(file);
        cli.config.load_secret_files().expect("loads");
        let url = cli
            .config
            .database
            .database_url
            .as_ref()
            .expect("url")
            .expose_secret()
            .to_owned();
        assert_eq!(url, "postgres://app:s3cret%40%2Fx@db:5432/hosting");
        let shown = format!("{:?}", cli.config);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://app:[redacted]@db:5432/hosting"),
            "{shown}"
        );
        assert!(cli.config.is_cluster());
        assert_eq!(cli.config.blob_store_kind(), BlobStoreKind::Postgres);
    }

    #[test]
    fn redacted_settings_never_show_the_admin_token() {
        let cli = Cli::parse_from(["hosting-app", "--admin-token", "super-secret-token-value"]);
        let shown = format!("{:?}", cli.config);
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn durations_take_bare_seconds_as_before_or_a_unit() {
        let cli = Cli::parse_from(["hosting-app"]);
        assert_eq!(
            cli.config.listeners.request_timeout,
            Duration::from_secs(300)
        );
        assert_eq!(
            cli.config.acme.acme_renew_before,
            Duration::from_secs(30 * 24 * 3600)
        );
        let cli = Cli::parse_from([
            "hosting-app",
            "--request-timeout",
            "45",
            "--gc-interval",
            "10m",
        ]);
        assert_eq!(
            cli.config.listeners.request_timeout,
            Duration::from_secs(45)
        );
        assert_eq!(cli.config.limits.gc_interval, Duration::from_secs(600));
        assert!(Cli::try_parse_from(["hosting-app", "--idle-timeout", "soon"]).is_err());
    }

    #[test]
    fn enumerated_settings_refuse_unknown_values() {
        let cli = Cli::parse_from([
            "hosting-app",
            "--log-format",
            "json",
            "--public-scheme",
            "https",
        ]);
        assert_eq!(cli.config.logging.log_format, LogFormat::Json);
        assert_eq!(cli.config.public.public_scheme, PublicScheme::Https);
        assert!(Cli::try_parse_from(["hosting-app", "--log-format", "xml"]).is_err());
        assert!(Cli::try_parse_from(["hosting-app", "--public-scheme", "ftp"]).is_err());
        assert!(Cli::try_parse_from(["hosting-app", "--blob-store", "s3"]).is_err());
    }

    #[test]
    fn an_installer_needs_its_folder_and_runtime_api_and_defaults_haproxys_view() {
        let cli = Cli::parse_from([
            "hosting-app",
            "--cert-dir",
            "/certs",
            "--haproxy-runtime-api",
            "unix:/run/h.sock",
        ]);
        let settings = cli.config.installer.settings().expect("an installer");
        assert_eq!(
            settings,
            InstallerSettings {
                dir: PathBuf::from("/certs"),
                haproxy_dir: PathBuf::from("/certs"),
                runtime_api: "unix:/run/h.sock".into(),
            }
        );
        let cli = Cli::parse_from(["hosting-app"]);
        assert_eq!(cli.config.installer.settings(), None);
    }
}
