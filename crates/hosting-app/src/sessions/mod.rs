//! Dashboard browser sessions behind one narrow trait: in the database when there is no
//! Redis (embedded mode), in Redis with a TTL in cluster mode.
//!
//! SECURITY: only the SHA-256 of a session id is ever stored, so a copy of the database
//! or of Redis signs no one in. With the session store unreachable, browser sessions
//! fail closed (`SessionError::Unavailable`): sign-in is refused and existing sessions
//! count as signed out; API bearer tokens keep working.

pub mod cookie;
pub mod hash;
pub mod lookup;
mod redis;
mod store;

pub use self::redis::RedisSessions;
pub use self::store::{SessionError, SessionResult, SessionStore, StoreSessions};
