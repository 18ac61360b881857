//! The operator's platform certificate files (`HOSTING_TLS_CERT_FILE` / `_KEY_FILE`, or
//! the DNS-01 certificate's cache in the data folder): read, checked, and stamped so a
//! reload notices when they change.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::Utc;

use super::certified::{self, CertError, Served};

/// The operator's certificate and key files (`HOSTING_TLS_CERT_FILE` / `_KEY_FILE`).
#[derive(Debug, Clone)]
pub struct PlatformFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why the platform files cannot be served; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("reading {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("HOSTING_TLS_CERT_FILE {cert} with HOSTING_TLS_KEY_FILE {key}: {error}")]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        error: CertError,
    },
}

/// When the files were last changed, as far as a reload needs to know.
pub(super) type Stamp = Option<(SystemTime, SystemTime)>;

impl PlatformFiles {
    pub(super) fn stamp(&self) -> Stamp {
        let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        Some((modified(&self.cert)?, modified(&self.key)?))
    }

    /// Reads and checks both files now.
    pub fn load(&self) -> Result<Served, PlatformError> {
        let read =
            |path: &Path| std::fs::read(path).map_err(|e| PlatformError::Read(path.to_owned(), e));
        let (chain, key) = (read(&self.cert)?, zeroize::Zeroizing::new(read(&self.key)?));
        certified::load(&chain, &key, Utc::now()).map_err(|error| PlatformError::Unusable {
            cert: self.cert.clone(),
            key: self.key.clone(),
            error,
        })
    }
}
