//! The first admin's credentials, used when the database is empty.

use std::path::PathBuf;

use clap::Args;
use secrecy::ExposeSecret;

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
    pub fn validate(&self) -> Result<(), String> {
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
        Ok(())
    }

    /// Reads the `*_FILE` secrets into their settings.
    pub fn load_secret_files(&mut self) -> Result<(), String> {
        if let Some(path) = &self.admin_token_file {
            self.admin_token = Some(Secret::from(super::read_secret_file(path)?));
        }
        if let Some(path) = &self.admin_password_file {
            self.admin_password = Some(Secret::from(super::read_secret_file(path)?));
        }
        Ok(())
    }
}
