//! Sessions in Redis: one key per session (`<prefix>:session:<id hash>`), a JSON value,
//! and a TTL equal to the session's remaining lifetime, so Redis forgets them by itself.
//! Unlike the best-effort shared cache, an unreachable Redis is an error here.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use redis::AsyncCommands;

use super::store::{SessionError, SessionResult, SessionStore};
use crate::shared::RedisShared;
use crate::store::SessionRecord;

pub struct RedisSessions(pub Arc<RedisShared>);

impl RedisSessions {
    fn key(&self, id_hash: &str) -> String {
        self.0.key(&format!("session:{id_hash}"))
    }
}

fn unavailable() -> SessionError {
    SessionError::Unavailable("redis is unreachable".into())
}

#[async_trait]
impl SessionStore for RedisSessions {
    async fn create(&self, id_hash: &str, session: &SessionRecord) -> SessionResult<()> {
        let value = serde_json::to_vec(session).map_err(|e| SessionError::Other(e.to_string()))?;
        let seconds = u64::try_from((session.expires_at - Utc::now()).num_seconds())
            .unwrap_or(0)
            .max(1);
        let key = self.key(id_hash);
        self.0
            .run(|mut c| async move { c.set_ex::<_, _, ()>(key, value, seconds).await })
            .await
            .ok_or_else(unavailable)
    }

    async fn get(&self, id_hash: &str) -> SessionResult<Option<SessionRecord>> {
        let key = self.key(id_hash);
        let value = self
            .0
            .run(|mut c| async move { c.get::<_, Option<Vec<u8>>>(key).await })
            .await
            .ok_or_else(unavailable)?;
        let Some(value) = value else {
            return Ok(None);
        };
        let session: SessionRecord =
            serde_json::from_slice(&value).map_err(|e| SessionError::Other(e.to_string()))?;
        Ok((session.expires_at > Utc::now()).then_some(session))
    }

    async fn delete(&self, id_hash: &str) -> SessionResult<()> {
        let key = self.key(id_hash);
        self.0
            .run(|mut c| async move { c.del::<_, ()>(key).await })
            .await
            .ok_or_else(unavailable)
    }

    async fn delete_user(&self, _user_id: i64) -> SessionResult<()> {
        // Keys are by session only: the user's other sessions run out with their TTL.
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}
