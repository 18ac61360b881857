//! Automatic certificates for verified custom domains (ACME, RFC 8555) and the key that
//! seals their private keys in the database.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::error::{ConfigError, ConfigErrors, Needed, Problems, Setting, Value};
use super::secret::Secret;

/// The ACME issuer's settings.
#[derive(Debug, Clone, Args)]
pub struct Acme {
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
    pub acme_eab_hmac_key: Option<Secret>,

    /// File holding the binding's HMAC key (a Docker / Kubernetes secret); wins over
    /// HOSTING_ACME_EAB_HMAC_KEY.
    #[arg(long, env = "HOSTING_ACME_EAB_HMAC_KEY_FILE")]
    pub acme_eab_hmac_key_file: Option<PathBuf>,

    /// Seconds before expiry a certificate is renewed (at most a third of its lifetime).
    #[arg(long, env = "HOSTING_ACME_RENEW_BEFORE", default_value = "2592000", value_parser = super::duration::parse)]
    pub acme_renew_before: Duration,

    /// Seconds before the first retry of a failed order; doubles per failure, up to a day.
    #[arg(long, env = "HOSTING_ACME_RETRY_BASE", default_value = "300", value_parser = super::duration::parse)]
    pub acme_retry_base: Duration,

    /// Seconds between rounds of the certificate issuer (orders that are due).
    #[arg(long, env = "HOSTING_ACME_INTERVAL", default_value = "60", value_parser = super::duration::parse)]
    pub acme_interval: Duration,

    /// File with the 32-byte key (64 hex digits) that seals certificate private keys in
    /// the database; the same on every replica. Embedded mode creates
    /// `<data dir>/certificate-encryption.key` when unset.
    #[arg(long, env = "HOSTING_CERT_ENCRYPTION_KEY_FILE")]
    pub cert_encryption_key_file: Option<PathBuf>,
}

/// The external account binding the platform's ACME account is created with.
pub struct ExternalAccount {
    pub key_id: String,
    pub hmac_key: Zeroizing<Vec<u8>>,
}

impl Acme {
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut problems = Problems::new();
        if let Some(directory) = &self.acme_directory {
            let setting = Setting("HOSTING_ACME_DIRECTORY");
            match url::Url::parse(directory) {
                Err(error) => problems.push(ConfigError::invalid_because(
                    setting,
                    Value::text(directory),
                    "is not a URL",
                    error,
                )),
                Ok(url) => problems.check(url.scheme() != "https", || {
                    ConfigError::invalid(setting, Value::text(directory), "must be an https:// URL")
                }),
            }
        }
        match (&self.acme_eab_kid, &self.acme_eab_hmac_key) {
            (Some(kid), None) => problems.push(ConfigError::Needs {
                setting: Setting("HOSTING_ACME_EAB_KID"),
                value: Value::text(kid),
                needed: Needed::All(vec![Setting("HOSTING_ACME_EAB_HMAC_KEY")]),
                reason: "the two go together: the CA gives both",
            }),
            (None, Some(key)) => problems.push(ConfigError::Needs {
                setting: Setting("HOSTING_ACME_EAB_HMAC_KEY"),
                value: Value::secret(key),
                needed: Needed::All(vec![Setting("HOSTING_ACME_EAB_KID")]),
                reason: "the two go together: the CA gives both",
            }),
            _ => {}
        }
        if let Some(key) = &self.acme_eab_hmac_key {
            problems.merge(decode_eab_key(key));
        }
        for (setting, value) in [
            ("HOSTING_ACME_INTERVAL", self.acme_interval),
            ("HOSTING_ACME_RETRY_BASE", self.acme_retry_base),
        ] {
            problems.check(value < Duration::from_secs(1), || {
                ConfigError::invalid(
                    Setting(setting),
                    Value::duration(value),
                    "must be at least 1 second",
                )
            });
        }
        problems.finish()
    }

    /// Reads `HOSTING_ACME_EAB_HMAC_KEY_FILE` into the key.
    pub fn load_secret_files(&mut self) -> Result<(), ConfigErrors> {
        if let Some(path) = &self.acme_eab_hmac_key_file {
            let key = super::read_secret_file(Setting("HOSTING_ACME_EAB_HMAC_KEY_FILE"), path)?;
            self.acme_eab_hmac_key = Some(Secret::from(key));
        }
        Ok(())
    }

    /// The external account binding to create the ACME account with, when one is set.
    pub fn external_account(&self) -> Option<ExternalAccount> {
        let key_id = self.acme_eab_kid.clone()?;
        let hmac_key = decode_eab_key(self.acme_eab_hmac_key.as_ref()?).ok()?;
        Some(ExternalAccount { key_id, hmac_key })
    }
}

/// An EAB HMAC key as CAs show it: base64url, with or without padding. The decoder's
/// own error is not kept as the source: it quotes a character of the key.
fn decode_eab_key(key: &Secret) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    use base64::Engine;
    let refused = |reason: &'static str| {
        ConfigError::invalid(
            Setting("HOSTING_ACME_EAB_HMAC_KEY"),
            Value::secret(key),
            reason,
        )
    };
    let trimmed = key.expose_secret().trim().trim_end_matches('=');
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .map_err(|_| refused("is not base64url (as the CA shows it)"))?;
    if decoded.len() < 16 {
        return Err(refused("is shorter than 16 bytes: not a CA's key"));
    }
    Ok(Zeroizing::new(decoded))
}
