//! PostgreSQL (cluster mode): primary, read replica, pools and the replica's lag bound.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use secrecy::ExposeSecret;

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
    pub fn validate(&self) -> Result<(), String> {
        if self.database_url.is_none() && self.database_replica_url.is_some() {
            return Err("DATABASE_REPLICA_URL needs DATABASE_URL".into());
        }
        if self.db_primary_pool == 0 || self.db_replica_pool == 0 {
            return Err("database pools need at least one connection".into());
        }
        Ok(())
    }

    /// Puts the password of `DATABASE_PASSWORD_FILE` into both URLs.
    pub fn load_secret_files(&mut self) -> Result<(), String> {
        if let Some(path) = &self.database_password_file {
            let password = super::read_secret_file(path)?;
            for url in [&mut self.database_url, &mut self.database_replica_url]
                .into_iter()
                .flatten()
            {
                *url = SecretUrl::from(with_password(url.expose_secret(), &password)?);
            }
        }
        Ok(())
    }
}

fn with_password(url: &str, password: &str) -> Result<String, String> {
    let mut parsed = url::Url::parse(url).map_err(|e| format!("database URL: {e}"))?;
    parsed
        .set_password(Some(password))
        .map_err(|()| "the database URL cannot carry a password".to_owned())?;
    Ok(parsed.to_string())
}
