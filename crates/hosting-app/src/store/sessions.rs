//! Browser sessions of the database session store: statements and row, written once.

use super::columns::time;
use super::SessionRecord;

pub(super) const INSERT: &str = "INSERT INTO sessions \
     (id_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
/// The session hashed `$1` unless it expired by `$2`.
pub(super) const LIVE: &str = "SELECT user_id, csrf_token, expires_at FROM sessions \
     WHERE id_hash = $1 AND expires_at > $2";
pub(super) const DELETE: &str = "DELETE FROM sessions WHERE id_hash = $1";
pub(super) const DELETE_OF_USER: &str = "DELETE FROM sessions WHERE user_id = $1";
pub(super) const DELETE_EXPIRED: &str = "DELETE FROM sessions WHERE expires_at <= $1";

#[derive(sqlx::FromRow)]
pub(super) struct SessionRow {
    user_id: i64,
    csrf_token: String,
    expires_at: i64,
}

impl From<SessionRow> for SessionRecord {
    fn from(row: SessionRow) -> SessionRecord {
        SessionRecord {
            user_id: row.user_id,
            csrf_token: row.csrf_token,
            expires_at: time(row.expires_at),
        }
    }
}
