//! Custom domains: the statements and rows, written once for both databases. Who may
//! claim a name is decided by `crate::domain::claims`, not here.

use hosting_api::DomainStatus;

use super::columns::{failures, opt_time, time};
use super::DomainRecord;
use crate::domain::claims::ExistingClaim;

macro_rules! columns {
    () => {
        "SELECT d.id, d.name, d.site_id, s.name AS site_name, s.owner_id, d.status, \
         d.status_detail, d.token, d.created_at, d.checked_at, d.verified_at, d.failures \
         FROM domains d JOIN sites s ON s.id = d.site_id"
    };
}

/// The claim on name `$1`; `LOCK_CLAIM` is appended on PostgreSQL.
pub(super) const CLAIM: &str = "SELECT d.id, s.owner_id, d.status, d.created_at \
     FROM domains d JOIN sites s ON s.id = d.site_id WHERE d.name = $1";
pub(super) const LOCK_CLAIM: &str = " FOR UPDATE OF d";
pub(super) const DELETE_BY_ID: &str = "DELETE FROM domains WHERE id = $1";
pub(super) const INSERT: &str = "INSERT INTO domains \
     (name, site_id, status, token, created_at, next_check_at) \
     VALUES ($1, $2, 'pending', $3, $4, $5) RETURNING id";
pub(super) const BY_ID: &str = concat!(columns!(), " WHERE d.id = $1");
pub(super) const OF_SITE: &str = concat!(
    columns!(),
    " WHERE s.owner_id = $1 AND d.site_id = $2 ORDER BY d.name"
);
pub(super) const BY_NAME: &str = concat!(
    columns!(),
    " WHERE s.owner_id = $1 AND d.site_id = $2 AND d.name = $3"
);
pub(super) const DUE: &str = concat!(
    columns!(),
    " WHERE d.next_check_at <= $1 ORDER BY d.next_check_at LIMIT $2"
);
pub(super) const DELETE: &str = "DELETE FROM domains WHERE name = $1 AND site_id = $2 \
     AND site_id IN (SELECT id FROM sites WHERE owner_id = $3)";
/// `verified_at` is set by the first successful check and kept after.
pub(super) const RECORD_CHECK: &str = "UPDATE domains SET status = $1, status_detail = $2, \
     checked_at = $3, verified_at = CASE WHEN $4 = 'verified' THEN COALESCE(verified_at, $5) \
     ELSE verified_at END, failures = $6, next_check_at = $7 WHERE id = $8";
pub(super) const LIVE_DEPLOY: &str = "SELECT s.id AS site_id, d.id AS deploy_id, d.created_at \
     FROM domains m JOIN sites s ON s.id = m.site_id JOIN deploys d ON d.id = s.live_deploy_id \
     WHERE m.name = $1 AND m.status = 'verified'";
pub(super) const TOKEN: &str = "SELECT token FROM domains WHERE name = $1";
pub(super) const OF_SITE_NAMED: &str =
    "SELECT d.name FROM domains d JOIN sites s ON s.id = d.site_id WHERE s.name = $1";

pub(crate) fn domain_status_str(status: DomainStatus) -> &'static str {
    match status {
        DomainStatus::Pending => "pending",
        DomainStatus::Verified => "verified",
        DomainStatus::Failed => "failed",
    }
}

pub(crate) fn parse_domain_status(raw: &str) -> DomainStatus {
    match raw {
        "verified" => DomainStatus::Verified,
        "failed" => DomainStatus::Failed,
        _ => DomainStatus::Pending,
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct DomainRow {
    id: i64,
    name: String,
    site_id: i64,
    site_name: String,
    owner_id: i64,
    status: String,
    status_detail: Option<String>,
    token: String,
    created_at: i64,
    checked_at: Option<i64>,
    verified_at: Option<i64>,
    failures: i64,
}

impl From<DomainRow> for DomainRecord {
    fn from(row: DomainRow) -> DomainRecord {
        DomainRecord {
            id: row.id,
            name: row.name,
            site_id: row.site_id,
            site_name: row.site_name,
            owner_id: row.owner_id,
            status: parse_domain_status(&row.status),
            status_detail: row.status_detail,
            token: row.token,
            created_at: time(row.created_at),
            checked_at: opt_time(row.checked_at),
            verified_at: opt_time(row.verified_at),
            failures: failures(row.failures),
        }
    }
}

/// One [`CLAIM`] row.
#[derive(sqlx::FromRow)]
pub(super) struct ClaimRow {
    pub id: i64,
    owner_id: i64,
    status: String,
    created_at: i64,
}

impl ClaimRow {
    pub fn claim(&self) -> ExistingClaim {
        ExistingClaim {
            owner_id: self.owner_id,
            status: parse_domain_status(&self.status),
            created_at: time(self.created_at),
        }
    }
}
