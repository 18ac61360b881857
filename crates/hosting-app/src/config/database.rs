//! PostgreSQL (cluster mode): primary, read replica, pools and the replica's lag bound.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use secrecy::ExposeSecret;

use super::error::{ConfigError, ConfigErrors, Needed, Problems, Setting, Value};
use super::secret::SecretUrl;

/// The databases of cluster mode; without `DATABASE_URL` the app runs embedded (SQLite).
#[derive(Debug, Clone, Args)]
pub struct Database {
    /// PostgreSQL primary (`postgres://user:pass@host/db`): setting it selects cluster mode.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<SecretUrl>,

    /// PostgreSQL read replica; serving and listings read it when it keeps up.
    #[arg(long, env = "DATABASE_REPLICA_URL", hide_env_values = true)]
    pub database_replica_url: Option<SecretUrl>,

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
    #[arg(long, env = "HOSTING_REPLICA_MAX_LAG", default_value = "5", value_parser = super::duration::parse)]
    pub replica_max_lag: Duration,
}

impl Database {
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut problems = Problems::new();
        if let (None, Some(replica)) = (&self.database_url, &self.database_replica_url) {
            problems.push(ConfigError::Needs {
                setting: Setting("DATABASE_REPLICA_URL"),
                value: Value::url(replica),
                needed: Needed::All(vec![Setting("DATABASE_URL")]),
                reason: "",
            });
        }
        for (setting, connections) in [
            ("HOSTING_DB_PRIMARY_POOL", self.db_primary_pool),
            ("HOSTING_DB_REPLICA_POOL", self.db_replica_pool),
        ] {
            problems.check(connections == 0, || {
                ConfigError::invalid(
                    Setting(setting),
                    Value::shown(connections),
                    "a pool needs at least one connection",
                )
            });
        }
        problems.finish()
    }

    /// Puts the password of `DATABASE_PASSWORD_FILE` into both URLs.
    pub fn load_secret_files(&mut self) -> Result<(), ConfigErrors> {
        let Some(path) = &self.database_password_file else {
            return Ok(());
        };
        let password = super::read_secret_file(Setting("DATABASE_PASSWORD_FILE"), path)?;
        let mut problems = Problems::new();
        for (setting, url) in [
            ("DATABASE_URL", &mut self.database_url),
            ("DATABASE_REPLICA_URL", &mut self.database_replica_url),
        ] {
            let Some(url) = url else { continue };
            if let Some(with) = problems.merge(with_password(Setting(setting), url, &password)) {
                *url = with;
            }
        }
        problems.finish()
    }
}

/// `url` with `password` put in (percent-encoded by `url`).
fn with_password(
    setting: Setting,
    url: &SecretUrl,
    password: &str,
) -> Result<SecretUrl, ConfigError> {
    let mut parsed = url::Url::parse(url.expose_secret()).map_err(|error| {
        ConfigError::invalid_because(setting, Value::url(url), "is not a URL", error)
    })?;
    parsed.set_password(Some(password)).map_err(|()| {
        ConfigError::invalid(
            setting,
            Value::url(url),
            "cannot carry the password of DATABASE_PASSWORD_FILE",
        )
    })?;
    Ok(SecretUrl::from(parsed.to_string()))
}
