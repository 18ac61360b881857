//! A certificate chain and its private key (PEM) made into what rustls serves, refused
//! unless it parses, the key belongs to the leaf and the leaf is valid now: a bad file
//! or record must never replace a working certificate, nor start a listener that fails
//! every handshake.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::certs::x509;

/// Why a chain and key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("no PEM certificate found")]
    NoCertificate,
    #[error("the certificate PEM does not parse: {0}")]
    CertificatePem(rustls::pki_types::pem::Error),
    #[error("no PEM private key found, or it does not parse: {0}")]
    KeyPem(rustls::pki_types::pem::Error),
    #[error("the private key is of an unsupported type (RSA, ECDSA P-256/P-384 or Ed25519 expected): {0}")]
    KeyType(rustls::Error),
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error(transparent)]
    Leaf(#[from] x509::ChainError),
    #[error("the certificate expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("the certificate is not valid before {0}")]
    NotYetValid(DateTime<Utc>),
}

/// A chain ready for handshakes, with what the listener needs to know of its leaf.
#[derive(Debug, Clone)]
pub struct Served {
    pub key: Arc<CertifiedKey>,
    /// The leaf's DNS names, lower case (`*.example.com` for a wildcard).
    pub names: Vec<String>,
    pub serial: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl Served {
    /// Whether the leaf names `host` (exactly, or by a wildcard of one label, RFC 6125 6.4.3).
    pub fn covers(&self, host: &str) -> bool {
        self.names.iter().any(|name| match name.strip_prefix("*.") {
            Some(parent) => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => name == host,
        })
    }
}

/// Parses and checks `chain_pem` (leaf first) and `key_pem` at time `now`.
pub fn load(chain_pem: &[u8], key_pem: &[u8], now: DateTime<Utc>) -> Result<Served, CertError> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(CertError::CertificatePem)?;
    if chain.is_empty() {
        return Err(CertError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(CertError::KeyPem)?;
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(CertError::KeyType)?;
    let certified = CertifiedKey::new(chain, signing);
    // Every ring key type reports its public key, so "unknown" is a mismatch here too.
    certified.keys_match().map_err(|_| CertError::KeyMismatch)?;
    let leaf = x509::leaf_info(&String::from_utf8_lossy(chain_pem))?;
    if leaf.not_after <= now {
        return Err(CertError::Expired(leaf.not_after));
    }
    if leaf.not_before > now {
        return Err(CertError::NotYetValid(leaf.not_before));
    }
    Ok(Served {
        key: Arc::new(certified),
        names: leaf.dns_names,
        serial: leaf.serial,
        not_before: leaf.not_before,
        not_after: leaf.not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn self_signed(names: &[&str], days: (i64, i64)) -> (String, KeyPair) {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        // Midnight of the day so many days from today.
        let day = |offset: i64| {
            use chrono::Datelike;
            let date = Utc::now() + chrono::Duration::days(offset);
            rcgen::date_time_ymd(date.year(), date.month() as u8, date.day() as u8)
        };
        params.not_before = day(days.0);
        params.not_after = day(days.1);
        (params.self_signed(&key).expect("cert").pem(), key)
    }

    #[test]
    fn a_matching_current_pair_loads_with_its_names() {
        let (cert, key) = self_signed(&["*.example.test", "example.test"], (-1, 30));
        let served =
            load(cert.as_bytes(), key.serialize_pem().as_bytes(), Utc::now()).expect("loads");
        assert!(served.covers("blog.example.test"));
        assert!(served.covers("example.test"));
        assert!(
            !served.covers("a.blog.example.test"),
            "a wildcard covers one label"
        );
        assert!(!served.covers("other.test"));
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (cert, _) = self_signed(&["example.test"], (-1, 30));
        let other = KeyPair::generate().expect("key");
        let error = load(
            cert.as_bytes(),
            other.serialize_pem().as_bytes(),
            Utc::now(),
        )
        .expect_err("refused");
        assert!(matches!(error, CertError::KeyMismatch), "{error}");
    }

    #[test]
    fn expired_and_future_certificates_are_refused() {
        let (cert, key) = self_signed(&["example.test"], (-30, -1));
        let error =
            load(cert.as_bytes(), key.serialize_pem().as_bytes(), Utc::now()).expect_err("refused");
        assert!(matches!(error, CertError::Expired(_)), "{error}");
        let (cert, key) = self_signed(&["example.test"], (2, 30));
        let error =
            load(cert.as_bytes(), key.serialize_pem().as_bytes(), Utc::now()).expect_err("refused");
        assert!(matches!(error, CertError::NotYetValid(_)), "{error}");
    }

    #[test]
    fn text_that_is_not_pem_is_refused() {
        let error = load(b"not a certificate", b"nor a key", Utc::now()).expect_err("refused");
        assert!(matches!(error, CertError::NoCertificate), "{error}");
    }
}
