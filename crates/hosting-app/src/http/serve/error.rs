//! Why a site request could not be answered from its deploy: every such failure is a
//! server-side one (503 for the store, 500 for a file that cannot be read).

use std::sync::Arc;

use crate::blobs::BlobError;
use crate::domain::names::Sha256;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("site lookup failed: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blobs(#[from] BlobError),
    #[error("blob {0} is missing from the store")]
    MissingBlob(Sha256),
    #[error("file {0} is too large to hold in memory")]
    TooLarge(Sha256),
    #[error("compressing a file failed: {0}")]
    Compress(#[from] std::io::Error),
    #[error("compressing a file failed: the worker stopped: {0}")]
    Worker(#[from] tokio::task::JoinError),
    /// The failure of a cache load other requests waited for too.
    #[error(transparent)]
    Shared(Arc<ServeError>),
}

impl ServeError {
    /// A backing store that cannot be reached right now: a 503 to retry, not a 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            ServeError::Store(StoreError::Unavailable(_))
            | ServeError::Blobs(BlobError::Unavailable(_)) => true,
            ServeError::Shared(inner) => inner.is_unavailable(),
            _ => false,
        }
    }
}
