//! API tokens: the statements and the rows, written once for both databases.

use super::columns::{opt_time, time};
use super::users::UserRow;
use super::TokenRecord;

pub(super) const INSERT: &str = "INSERT INTO tokens (user_id, name, secret_hash, created_at) \
     VALUES ($1, $2, $3, $4) RETURNING *";
pub(super) const OF_USER: &str = "SELECT * FROM tokens WHERE user_id = $1 ORDER BY id";
pub(super) const DELETE: &str = "DELETE FROM tokens WHERE id = $1 AND user_id = $2";
/// The enabled user owning the token hashed `$1`.
pub(super) const AUTHENTICATE: &str = "SELECT u.*, t.id AS token_id, t.last_used_at \
     FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.secret_hash = $1 AND NOT u.disabled";
pub(super) const MARK_USED: &str = "UPDATE tokens SET last_used_at = $1 WHERE id = $2";

/// A token's use is recorded at minute precision, so a busy token does not make every
/// request a write.
pub(super) const USE_PRECISION_MS: i64 = 60_000;

#[derive(sqlx::FromRow)]
pub(super) struct TokenRow {
    id: i64,
    user_id: i64,
    name: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl From<TokenRow> for TokenRecord {
    fn from(row: TokenRow) -> TokenRecord {
        TokenRecord {
            id: row.id,
            user_id: row.user_id,
            name: row.name,
            created_at: time(row.created_at),
            last_used_at: opt_time(row.last_used_at),
        }
    }
}

/// One [`AUTHENTICATE`] row.
#[derive(sqlx::FromRow)]
pub(super) struct AuthRow {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub token_id: i64,
    pub last_used_at: Option<i64>,
}
