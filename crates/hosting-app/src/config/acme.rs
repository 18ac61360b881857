//! Automatic certificates for verified custom domains (ACME, RFC 8555) and the key that
//! seals their private keys in the database.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

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
    pub fn validate(&self) -> Result<(), String> {
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
        if self.acme_interval < Duration::from_secs(1)
            || self.acme_retry_base < Duration::from_secs(1)
        {
            return Err(
                "HOSTING_ACME_INTERVAL and HOSTING_ACME_RETRY_BASE must be at least 1 second"
                    .into(),
            );
        }
        Ok(())
    }

    /// Reads `HOSTING_ACME_EAB_HMAC_KEY_FILE` into the key.
    pub fn load_secret_files(&mut self) -> Result<(), String> {
        if let Some(path) = &self.acme_eab_hmac_key_file {
            self.acme_eab_hmac_key = Some(Secret::from(super::read_secret_file(path)?));
        }
        Ok(())
    }

    /// The external account binding to create the ACME account with, when one is set.
    pub fn external_account(&self) -> Option<ExternalAccount> {
        let key_id = self.acme_eab_kid.clone()?;
        let hmac_key = decode_eab_key(self.acme_eab_hmac_key.as_ref()?.expose_secret()).ok()?;
        Some(ExternalAccount { key_id, hmac_key })
    }
}

/// An EAB HMAC key as CAs show it: base64url, with or without padding.
fn decode_eab_key(text: &str) -> Result<Zeroizing<Vec<u8>>, String> {
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
    Ok(Zeroizing::new(key))
}
