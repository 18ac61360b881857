//! Private keys at rest: sealed with XChaCha20-Poly1305 under the platform's certificate
//! key before they reach the database, and bound to what they belong to (the domain, or
//! the ACME directory), so a sealed value copied onto another row does not open.
//!
//! Format: `v1` || 24-byte random nonce || ciphertext with tag.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

const VERSION: &[u8; 2] = b"v1";
const NONCE_LEN: usize = 24;

/// The embedded mode's key file, created on first use.
pub const DEFAULT_KEY_FILE: &str = "certificate-encryption.key";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("certificate encryption key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error("a sealed private key does not open (wrong HOSTING_CERT_ENCRYPTION_KEY_FILE, or the value was altered)")]
    Open,
    #[error("sealing a private key failed")]
    Seal,
}

/// Seals and opens private keys. Holds the key; never printed.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Sealer {
        Sealer {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// Reads the key (64 hex digits) from `path`.
    pub fn from_key_file(path: &Path) -> Result<Sealer, SealError> {
        let fail = |reason: String| SealError::KeyFile {
            path: path.to_owned(),
            reason,
        };
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?);
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), key.as_mut_slice())
            .map_err(|_| fail("expected 64 hex digits (openssl rand -hex 32)".into()))?;
        Ok(Sealer::new(&key))
    }

    /// Reads the key file, creating it (mode 0600) with a random key when it is missing.
    /// For embedded mode, where the data folder is the platform's only state.
    pub fn from_key_file_or_create(path: &Path) -> Result<Sealer, SealError> {
        if !path.exists() {
            let mut key = Zeroizing::new([0u8; 32]);
            rand::thread_rng().fill_bytes(key.as_mut_slice());
            let text = Zeroizing::new(hex::encode(key.as_slice()));
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path);
            match created {
                Ok(mut file) => {
                    file.write_all(text.as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(|e| SealError::KeyFile {
                            path: path.to_owned(),
                            reason: e.to_string(),
                        })?;
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(SealError::KeyFile {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    })
                }
            }
        }
        Sealer::from_key_file(path)
    }

    /// Seals `secret` for `context` (e.g. `certificate:<domain>`).
    pub fn seal(&self, context: &str, secret: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Seal)?;
        let mut out = Vec::with_capacity(VERSION.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`Sealer::seal`] sealed for the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let rest = sealed.strip_prefix(VERSION).ok_or(SealError::Open)?;
        if rest.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Open)
    }
}

/// The sealing context of a domain's private key.
pub(crate) fn key_context(domain: &str) -> String {
    format!("certificate:{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_with_the_same_key_and_context() {
        let sealer = Sealer::new(&[7u8; 32]);
        let sealed = sealer
            .seal(
                "certificate:shop.example.test",
                b"-----BEGIN PRIVATE KEY-----",
            )
            .expect("seal");
        assert!(!sealed.windows(11).any(|w| w == b"BEGIN PRIVA"));
        let opened = sealer
            .open("certificate:shop.example.test", &sealed)
            .expect("open");
        assert_eq!(opened.as_slice(), b"-----BEGIN PRIVATE KEY-----");
        assert!(sealer
            .open("certificate:other.example.test", &sealed)
            .is_err());
        assert!(Sealer::new(&[8u8; 32])
            .open("certificate:shop.example.test", &sealed)
            .is_err());
        let mut altered = sealed.clone();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        assert!(sealer
            .open("certificate:shop.example.test", &altered)
            .is_err());
    }

    #[test]
    fn the_key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(DEFAULT_KEY_FILE);
        let first = Sealer::from_key_file_or_create(&path).expect("create");
        let sealed = first.seal("x", b"secret").expect("seal");
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Sealer::from_key_file_or_create(&path).expect("reuse");
        assert_eq!(
            again.open("x", &sealed).expect("open").as_slice(),
            b"secret"
        );
    }

    #[test]
    fn a_malformed_key_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        std::fs::write(&path, "not hex").expect("write");
        let error = Sealer::from_key_file(&path).expect_err("malformed");
        assert!(error.to_string().contains("64 hex digits"), "{error}");
    }
}
