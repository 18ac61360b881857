//! Sites: the statements and the row, written once for both databases.

use super::columns::time;
use super::SiteRecord;

pub(super) const INSERT: &str = "INSERT INTO sites (owner_id, name, created_at, updated_at) \
     VALUES ($1, $2, $3, $3) RETURNING *";
pub(super) const OF_OWNER: &str = "SELECT * FROM sites WHERE owner_id = $1 ORDER BY name";
pub(super) const BY_NAME: &str = "SELECT * FROM sites WHERE owner_id = $1 AND name = $2";
pub(super) const DELETE: &str = "DELETE FROM sites WHERE owner_id = $1 AND name = $2";
/// One UPDATE flips the site's live deploy: readers see the old deploy or the new one.
pub(super) const SET_LIVE: &str =
    "UPDATE sites SET live_deploy_id = $1, updated_at = $2 WHERE id = $3";

#[derive(sqlx::FromRow)]
pub(super) struct SiteRow {
    id: i64,
    owner_id: i64,
    name: String,
    live_deploy_id: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<SiteRow> for SiteRecord {
    fn from(row: SiteRow) -> SiteRecord {
        SiteRecord {
            id: row.id,
            owner_id: row.owner_id,
            name: row.name,
            live_deploy_id: row.live_deploy_id,
            created_at: time(row.created_at),
            updated_at: time(row.updated_at),
        }
    }
}
