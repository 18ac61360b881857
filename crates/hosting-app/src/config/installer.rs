//! The certificate installer: certificates from the database to files HAProxy loads,
//! and into HAProxy's memory through its runtime API.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::error::{ConfigError, ConfigErrors, Needed, Problems, Setting, Value};

/// The installer's settings as given (all optional: most replicas run no installer).
#[derive(Debug, Clone, Args)]
pub struct Installer {
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
    #[arg(long, env = "HOSTING_CERT_SYNC_INTERVAL", default_value = "30", value_parser = super::duration::parse)]
    pub cert_sync_interval: Duration,
}

/// Where this replica's installer works, when it runs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallerSettings {
    /// The folder as this process sees it.
    pub dir: PathBuf,
    /// The same folder as HAProxy sees it (the paths written into `crt-list.txt`).
    pub haproxy_dir: PathBuf,
    /// HAProxy's runtime API address, as given.
    pub runtime_api: String,
}

impl Installer {
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut problems = Problems::new();
        problems.check(self.cert_sync_interval < Duration::from_secs(1), || {
            ConfigError::invalid(
                Setting("HOSTING_CERT_SYNC_INTERVAL"),
                Value::duration(self.cert_sync_interval),
                "must be at least 1 second",
            )
        });
        let reason = "the two go together: the installer needs both";
        match (&self.haproxy_runtime_api, &self.cert_dir) {
            (Some(api), None) => problems.push(ConfigError::Needs {
                setting: Setting("HOSTING_HAPROXY_RUNTIME_API"),
                value: Value::text(api),
                needed: Needed::All(vec![Setting("HOSTING_CERT_DIR")]),
                reason,
            }),
            (None, Some(dir)) => problems.push(ConfigError::Needs {
                setting: Setting("HOSTING_CERT_DIR"),
                value: Value::path(dir),
                needed: Needed::All(vec![Setting("HOSTING_HAPROXY_RUNTIME_API")]),
                reason,
            }),
            _ => {}
        }
        problems.finish()
    }
    /// The installer this replica runs, if it runs one.
    pub fn settings(&self) -> Option<InstallerSettings> {
        let dir = self.cert_dir.clone()?;
        let runtime_api = self.haproxy_runtime_api.clone()?;
        let haproxy_dir = self.haproxy_cert_dir.clone().unwrap_or_else(|| dir.clone());
        Some(InstallerSettings {
            dir,
            haproxy_dir,
            runtime_api,
        })
    }
}
