//! The quota statements, written once for both backends (SQLite takes `$N` placeholders
//! too). The backends run them inside their write transactions; PostgreSQL first takes
//! [`LOCK_USER`] so concurrent writes of one user queue on the user's row, across every
//! app replica. SQLite has one writer, so its reads are already serial.

use crate::domain::quota::{QuotaOverrides, QuotaUsage, UserQuota};

/// PostgreSQL only: locks user `$1`'s row until the transaction ends.
pub(super) const LOCK_USER: &str = "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE";

/// A user's role, overrides and usage (`$1` user id, `$2` start of the rolling hour, ms).
pub(super) const USER_QUOTA: &str = "SELECT u.role, u.quota_storage_bytes, u.quota_sites, \
     u.quota_deploys_per_hour, u.storage_bytes, \
     (SELECT COUNT(*) FROM sites s WHERE s.owner_id = u.id) AS site_count, \
     (SELECT COUNT(*) FROM deploy_log l WHERE l.user_id = u.id AND l.created_at > $2) AS deploy_count \
     FROM users u WHERE u.id = $1";

/// Recomputes a user's stored bytes (`$1` user id) and returns them: the distinct blobs
/// the user uploaded (`owner_blobs`) that one of the user's deploys references.
pub(super) const REFRESH_STORAGE: &str = "UPDATE users SET storage_bytes = (\
     SELECT CAST(COALESCE(SUM(b.size), 0) AS BIGINT) FROM owner_blobs o JOIN blobs b ON b.sha256 = o.sha256 \
     WHERE o.owner_id = users.id AND EXISTS (\
       SELECT 1 FROM deploy_files f JOIN deploys d ON d.id = f.deploy_id JOIN sites s ON s.id = d.site_id \
       WHERE f.sha256 = o.sha256 AND s.owner_id = users.id)) \
     WHERE id = $1 RETURNING storage_bytes";

/// Adds `$2` bytes to user `$1`'s stored bytes (an upload of a blob new to the user).
pub(super) const ADD_STORAGE: &str =
    "UPDATE users SET storage_bytes = storage_bytes + $2 WHERE id = $1";

/// Whether user `$1` has uploaded blob `$2` before.
pub(super) const OWNS_BLOB: &str = "SELECT 1 FROM owner_blobs WHERE owner_id = $1 AND sha256 = $2";

/// Logs a deploy of user `$1` at `$2` (ms) for the deploys-per-hour quota.
pub(super) const LOG_DEPLOY: &str = "INSERT INTO deploy_log (user_id, created_at) VALUES ($1, $2)";

/// Forgets user `$1`'s deploy log entries before `$2` (ms): they no longer count.
pub(super) const PRUNE_DEPLOY_LOG: &str =
    "DELETE FROM deploy_log WHERE user_id = $1 AND created_at <= $2";

/// Replaces user `$1`'s overrides (`$2` storage, `$3` sites, `$4` deploys per hour; NULL = default).
pub(super) const SET_OVERRIDES: &str =
    "UPDATE users SET quota_storage_bytes = $2, quota_sites = $3, \
     quota_deploys_per_hour = $4 WHERE id = $1";

/// Hashes that count towards user `$1`'s stored bytes (see [`REFRESH_STORAGE`]).
pub(super) const COUNTED_BLOBS: &str = "SELECT o.sha256 FROM owner_blobs o WHERE o.owner_id = $1 AND EXISTS (\
     SELECT 1 FROM deploy_files f JOIN deploys d ON d.id = f.deploy_id JOIN sites s ON s.id = d.site_id \
     WHERE f.sha256 = o.sha256 AND s.owner_id = $1)";

/// The start of the rolling hour the deploys-per-hour quota counts, in ms.
pub(super) fn hour_ago_ms(now_ms: i64) -> i64 {
    now_ms - 3_600_000
}

/// One [`USER_QUOTA`] row, decoded the same way on both backends.
#[derive(sqlx::FromRow)]
pub(super) struct QuotaRow {
    role: String,
    #[sqlx(rename = "quota_storage_bytes")]
    storage_override: Option<i64>,
    #[sqlx(rename = "quota_sites")]
    sites_override: Option<i64>,
    #[sqlx(rename = "quota_deploys_per_hour")]
    deploys_override: Option<i64>,
    storage_bytes: i64,
    site_count: i64,
    deploy_count: i64,
}

impl From<QuotaRow> for UserQuota {
    fn from(row: QuotaRow) -> UserQuota {
        let count = |n: i64| u64::try_from(n).unwrap_or_default();
        let limit = |n: Option<i64>| n.map(count);
        UserQuota {
            is_admin: row.role == "admin",
            overrides: QuotaOverrides {
                storage_bytes: limit(row.storage_override),
                sites: limit(row.sites_override),
                deploys_per_hour: limit(row.deploys_override),
            },
            usage: QuotaUsage {
                storage_bytes: count(row.storage_bytes),
                sites: count(row.site_count),
                deploys_last_hour: count(row.deploy_count),
            },
        }
    }
}

/// An override as a column value: NULL for the default, capped to the column's range.
pub(super) fn override_column(limit: Option<u64>) -> Option<i64> {
    limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}
