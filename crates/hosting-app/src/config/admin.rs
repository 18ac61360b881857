//! The first admin's credentials, used when the database is empty.

use std::path::PathBuf;

use clap::Args;
use secrecy::ExposeSecret;

use super::error::{ConfigError, ConfigErrors, Problems, Setting, Value};
use super::secret::Secret;

/// Token and dashboard password of the first admin, given or read from secret files.
#[derive(Debug, Clone, Args)]
pub struct FirstAdmin {
    /// API token for the first admin, used instead of a printed one when the database is empty.
    #[arg(long, env = "HOSTING_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,

    /// File holding the first admin's token (a Docker / Kubernetes secret); wins over HOSTING_ADMIN_TOKEN.
    #[arg(long, env = "HOSTING_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Dashboard password of the first admin (`admin`), at least 10 characters; also set on
    /// an existing `admin` account that has no password yet.
    #[arg(long, env = "HOSTING_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,

    /// File holding the first admin's dashboard password; wins over HOSTING_ADMIN_PASSWORD.
    #[arg(long, env = "HOSTING_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
}

impl FirstAdmin {
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut problems = Problems::new();
        if let Some(token) = &self.admin_token {
            problems.check(token.expose_secret().len() < 16, || {
                ConfigError::invalid(
                    Setting("HOSTING_ADMIN_TOKEN"),
                    Value::secret(token),
                    "must be at least 16 characters",
                )
            });
        }
        if let Some(password) = &self.admin_password {
            problems.check(password.expose_secret().chars().count() < 10, || {
                ConfigError::invalid(
                    Setting("HOSTING_ADMIN_PASSWORD"),
                    Value::secret(password),
                    "must be at least 10 characters",
                )
            });
        }
        problems.finish()
    }

    /// Reads the `*_FILE` secrets into their settings.
    pub fn load_secret_files(&mut self) -> Result<(), ConfigErrors> {
        let mut problems = Problems::new();
        if let Some(path) = &self.admin_token_file {
            let token = super::read_secret_file(Setting("HOSTING_ADMIN_TOKEN_FILE"), path);
            if let Some(token) = problems.merge(token) {
                self.admin_token = Some(Secret::from(token));
            }
        }
        if let Some(path) = &self.admin_password_file {
            let password = super::read_secret_file(Setting("HOSTING_ADMIN_PASSWORD_FILE"), path);
            if let Some(password) = problems.merge(password) {
                self.admin_password = Some(Secret::from(password));
            }
        }
        problems.finish()
    }
}
