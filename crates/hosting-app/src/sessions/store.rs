//! The narrow trait every session store implements, and the database one.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;

use crate::store::{SessionRecord, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The session store cannot be reached: callers fail closed.
    #[error("the session store is unavailable: {0}")]
    Unavailable(String),
    #[error("session store error: {0}")]
    Other(String),
}

impl From<StoreError> for SessionError {
    fn from(e: StoreError) -> SessionError {
        match e {
            StoreError::Unavailable(cause) => SessionError::Unavailable(cause.to_string()),
            other => SessionError::Other(other.to_string()),
        }
    }
}

pub type SessionResult<T> = Result<T, SessionError>;

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create(&self, id_hash: &str, session: &SessionRecord) -> SessionResult<()>;
    /// The session if it exists and has not expired.
    async fn get(&self, id_hash: &str) -> SessionResult<Option<SessionRecord>>;
    async fn delete(&self, id_hash: &str) -> SessionResult<()>;
    /// Signs a user out everywhere (password changed). Stores that cannot enumerate a
    /// user's sessions leave them to expire; a disabled user is refused on every request.
    async fn delete_user(&self, user_id: i64) -> SessionResult<()>;
    /// Where sessions live, for the health page.
    fn backend(&self) -> &'static str;
}

/// Sessions in the platform database (the `sessions` table).
pub struct StoreSessions(pub Arc<dyn Store>);

#[async_trait]
impl SessionStore for StoreSessions {
    async fn create(&self, id_hash: &str, session: &SessionRecord) -> SessionResult<()> {
        Ok(self.0.create_session(id_hash, session).await?)
    }

    async fn get(&self, id_hash: &str) -> SessionResult<Option<SessionRecord>> {
        let session = self.0.session(id_hash).await?;
        Ok(session.filter(|s| s.expires_at > Utc::now()))
    }

    async fn delete(&self, id_hash: &str) -> SessionResult<()> {
        Ok(self.0.delete_session(id_hash).await?)
    }

    async fn delete_user(&self, user_id: i64) -> SessionResult<()> {
        Ok(self.0.delete_user_sessions(user_id).await?)
    }

    fn backend(&self) -> &'static str {
        "database"
    }
}
