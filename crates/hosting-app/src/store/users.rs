//! Users: the statements and the row, written once for both databases.

use super::columns::{parse_role, time};
use super::UserRecord;

pub(super) const COUNT: &str = "SELECT COUNT(*) FROM users";
pub(super) const INSERT: &str = "INSERT INTO users (username, role, password_hash, created_at) \
     VALUES ($1, $2, $3, $4) RETURNING *";
pub(super) const ALL: &str = "SELECT * FROM users ORDER BY id";
pub(super) const SET_DISABLED: &str = "UPDATE users SET disabled = $1 WHERE id = $2 RETURNING *";
pub(super) const BY_ID: &str = "SELECT * FROM users WHERE id = $1";
pub(super) const BY_NAME: &str = "SELECT * FROM users WHERE username = $1";
pub(super) const SET_PASSWORD: &str = "UPDATE users SET password_hash = $1 WHERE id = $2";

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: i64,
    username: String,
    role: String,
    disabled: bool,
    password_hash: Option<String>,
    created_at: i64,
}

impl From<UserRow> for UserRecord {
    fn from(row: UserRow) -> UserRecord {
        UserRecord {
            id: row.id,
            username: row.username,
            role: parse_role(&row.role),
            disabled: row.disabled,
            password_hash: row.password_hash,
            created_at: time(row.created_at),
        }
    }
}
