//! Webhook signing secrets at rest: sealed with the platform's key (`certs::seal`, the
//! same key file as certificate private keys) and bound to the endpoint's site, so a
//! database dump or a replica's disk gives no way to forge a signed message. The
//! secret must be readable to sign, so it is sealed rather than hashed; it is shown to
//! its owner once, when the endpoint is created.
//!
//! Stored form: `sealed:` + the base64 of the sealed bytes. A clear `whsec_...` value
//! is one written before sealing, or in cluster mode without
//! `HOSTING_CERT_ENCRYPTION_KEY_FILE` (replicas share no data folder, so none of them
//! can make a key the others read); [`seal_clear_rows`] seals those once a key exists.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use zeroize::Zeroizing;

use crate::certs::seal::{self, SealError, Sealer};
use crate::config::Config;
use crate::store::{Store, StoreError};

const SEALED_PREFIX: &str = "sealed:";

/// Rows sealed per round trip at start-up.
const BATCH: u32 = 100;

/// Why a stored secret cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the webhook secret is sealed, and this replica has no key to open it (set HOSTING_CERT_ENCRYPTION_KEY_FILE, the same file on every replica)")]
    NoKey,
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("a stored webhook secret is not valid sealed data")]
    Malformed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key that seals webhook secrets: the configured key file; in embedded mode the
/// data folder's (created on first use, shared with certificates); none in cluster
/// mode without a key file (secrets then stay in clear, with a warning).
pub fn open_sealer(config: &Config) -> Result<Option<Arc<Sealer>>, SealError> {
    let sealer = match &config.acme.cert_encryption_key_file {
        Some(path) => Sealer::from_key_file(path)?,
        None if config.is_cluster() => {
            tracing::warn!(
                "webhook signing secrets are stored in clear: set \
                 HOSTING_CERT_ENCRYPTION_KEY_FILE (the same key file on every replica) to seal them"
            );
            return Ok(None);
        }
        None => {
            Sealer::from_key_file_or_create(&config.storage.data_dir.join(seal::DEFAULT_KEY_FILE))?
        }
    };
    Ok(Some(Arc::new(sealer)))
}

/// What a secret is bound to: the endpoint's site.
fn context(site_id: i64) -> String {
    format!("webhook-secret:site:{site_id}")
}

/// The stored form of `secret` for an endpoint of site `site_id`.
pub fn seal(sealer: Option<&Sealer>, site_id: i64, secret: &str) -> Result<String, SealError> {
    match sealer {
        Some(sealer) => {
            let sealed = sealer.seal(&context(site_id), secret.as_bytes())?;
            Ok(format!("{SEALED_PREFIX}{}", STANDARD.encode(sealed)))
        }
        None => Ok(secret.to_owned()),
    }
}

/// The secret of a stored value (sealed or clear).
pub fn open(
    sealer: Option<&Sealer>,
    site_id: i64,
    stored: &str,
) -> Result<Zeroizing<String>, SecretError> {
    let Some(encoded) = stored.strip_prefix(SEALED_PREFIX) else {
        return Ok(Zeroizing::new(stored.to_owned()));
    };
    let sealer = sealer.ok_or(SecretError::NoKey)?;
    let sealed = STANDARD
        .decode(encoded)
        .map_err(|_| SecretError::Malformed)?;
    let opened = sealer.open(&context(site_id), &sealed)?;
    String::from_utf8(opened.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| SecretError::Malformed)
}

/// Seals every secret still stored in clear; the number sealed. Safe on several
/// replicas at once: a row is replaced only while it still holds the clear value.
pub async fn seal_clear_rows(store: &dyn Store, sealer: &Sealer) -> Result<u64, SecretError> {
    let mut sealed = 0;
    loop {
        let rows = store.clear_webhook_secrets(BATCH).await?;
        let mut progressed = false;
        for row in &rows {
            let value = seal(Some(sealer), row.site_id, &row.secret)?;
            if store
                .seal_webhook_secret(row.id, &row.secret, &value)
                .await?
            {
                sealed += 1;
                progressed = true;
            }
        }
        if !progressed || rows.len() < BATCH as usize {
            return Ok(sealed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_for_its_site_only_and_never_shows_in_clear() {
        let sealer = Sealer::new(&[3u8; 32]);
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

        let stored = seal(Some(&sealer), 7, secret).expect("seal");

        assert!(stored.starts_with(SEALED_PREFIX) && !stored.contains("MfKQ9r8"));
        let opened = open(Some(&sealer), 7, &stored).expect("open");
        assert_eq!(opened.as_str(), secret);
        assert!(matches!(
            open(Some(&sealer), 8, &stored),
            Err(SecretError::Seal(SealError::Open))
        ));
        assert!(matches!(open(None, 7, &stored), Err(SecretError::NoKey)));
    }

    #[test]
    fn a_clear_secret_is_used_as_it_is() {
        let opened = open(None, 1, "whsec_abc").expect("clear");
        assert_eq!(opened.as_str(), "whsec_abc");
        assert_eq!(seal(None, 1, "whsec_abc").expect("no key"), "whsec_abc");
    }
}
