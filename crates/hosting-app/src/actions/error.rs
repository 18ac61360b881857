//! What an action can fail with: a client-visible class with its message, or the
//! underlying failure kept whole as the source.

use crate::blobs::BlobError;
use crate::domain::quota::QuotaExceeded;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No such record of the caller; the string names it (`site "blog"`).
    #[error("{0} not found")]
    NotFound(String),
    /// The request asks for something the rules refuse (an invalid name or digest).
    #[error("{0}")]
    Invalid(String),
    /// The request is malformed (colliding paths, a message of several lines).
    #[error("{0}")]
    Malformed(String),
    /// Over a size or count limit of the platform.
    #[error("{0}")]
    TooLarge(String),
    /// The records' state does not allow it now (a deploy still waiting for files).
    #[error("{0}")]
    Conflict(String),
    /// A deploy named for a rollback belongs to another site of the caller.
    #[error("deploy {deploy} belongs to another site")]
    OtherSite { deploy: String },
    /// The authenticated caller no longer exists.
    #[error("the user no longer exists")]
    UnknownUser,
    #[error(transparent)]
    Quota(#[from] QuotaExceeded),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

pub type ActionResult<T> = Result<T, ActionError>;

impl ActionError {
    pub(crate) fn not_found(what: impl std::fmt::Display) -> ActionError {
        ActionError::NotFound(what.to_string())
    }
}
