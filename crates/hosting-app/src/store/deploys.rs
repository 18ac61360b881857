//! Deploys, their file lists and the live / preview lookups of the serving path: the
//! statements and rows, written once for both databases. `seq` is the column that orders
//! deploys by insertion (`seq` on PostgreSQL, `rowid` on SQLite).

use super::columns::{count, opt_time, parse_state, time};
use super::{DeployRecord, LiveDeploy, ManifestEntry, ProtectionRecord, SiteServing, StoreError};
use hosting_api::ProtectionScope;

/// `live` is true for the site's live deploy (false, not NULL, when the site has none).
/// A macro so that `concat!` can extend it into constants.
macro_rules! columns {
    () => {
        "SELECT d.id, d.site_id, s.name AS site_name, s.owner_id, d.state, \
     COALESCE(s.live_deploy_id = d.id, FALSE) AS live, d.file_count, d.total_bytes, \
     u.username AS created_by, d.created_at, d.published_at, d.error, d.message \
     FROM deploys d JOIN sites s ON s.id = d.site_id JOIN users u ON u.id = d.created_by"
    };
}
const COLUMNS: &str = columns!();

pub(super) const BY_ID: &str = concat!(columns!(), " WHERE d.id = $1");
pub(super) const BY_ID_OF_OWNER: &str = concat!(columns!(), " WHERE d.id = $1 AND s.owner_id = $2");

/// Deploys of site `$1` (owner `$2`), newest first.
pub(super) fn of_site(seq: &str) -> String {
    format!(
        "{COLUMNS} WHERE d.site_id = $1 AND s.owner_id = $2 \
         ORDER BY d.created_at DESC, d.{seq} DESC"
    )
}

/// The ready deploy of site `$1` (owner `$2`) published last before the live one.
pub(super) fn previous_live(seq: &str) -> String {
    format!(
        "{COLUMNS} WHERE d.site_id = $1 AND s.owner_id = $2 AND d.published_at IS NOT NULL \
         AND d.state = 'ready' AND (s.live_deploy_id IS NULL OR d.id <> s.live_deploy_id) \
         ORDER BY d.published_at DESC, d.{seq} DESC LIMIT 1"
    )
}

pub(super) const BY_IDEMPOTENCY_KEY: &str =
    "SELECT id, request_fingerprint FROM deploys WHERE site_id = $1 AND idempotency_key = $2";
pub(super) const INSERT: &str = "INSERT INTO deploys (id, site_id, created_by, state, \
     file_count, total_bytes, created_at, idempotency_key, request_fingerprint, message) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
/// Followed by `VALUES` rows of `(deploy_id, path, sha256, size)`.
pub(super) const INSERT_FILES: &str = "INSERT INTO deploy_files (deploy_id, path, sha256, size) ";
/// Followed by `VALUES` rows of `(deploy_id, sha256)`.
pub(super) const INSERT_MISSING: &str = "INSERT INTO deploy_missing (deploy_id, sha256) ";
pub(super) const MISSING: &str =
    "SELECT sha256 FROM deploy_missing WHERE deploy_id = $1 ORDER BY sha256";
pub(super) const MANIFEST: &str = "SELECT f.path, f.sha256, f.size FROM deploy_files f \
     JOIN deploys d ON d.id = f.deploy_id WHERE f.deploy_id = $1 AND d.state = 'ready'";
pub(super) const HAS_FILE: &str =
    "SELECT 1 FROM deploy_files WHERE deploy_id = $1 AND sha256 = $2 LIMIT 1";
pub(super) const NO_LONGER_MISSING: &str =
    "DELETE FROM deploy_missing WHERE deploy_id = $1 AND sha256 = $2";
pub(super) const SET_FILE_SIZE: &str =
    "UPDATE deploy_files SET size = $1 WHERE deploy_id = $2 AND sha256 = $3";
/// PostgreSQL only: locks the deploy row, so two last uploads cannot both miss the transition.
pub(super) const LOCK: &str = "SELECT 1 FROM deploys WHERE id = $1 FOR UPDATE";
pub(super) const COUNT_MISSING: &str = "SELECT COUNT(*) FROM deploy_missing WHERE deploy_id = $1";
pub(super) const MARK_READY: &str = "UPDATE deploys SET state = 'ready', total_bytes = \
     (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM deploy_files WHERE deploy_id = $1) \
     WHERE id = $1 AND state = 'uploading'";
pub(super) const SET_PUBLISHED: &str = "UPDATE deploys SET published_at = $1 WHERE id = $2";
pub(super) const LIVE_OF_SITE: &str = "SELECT s.id AS site_id, d.id AS deploy_id, d.created_at \
     FROM sites s JOIN deploys d ON d.id = s.live_deploy_id WHERE s.name = $1";
/// The live deploy and visitor access of many sites at once (a [`ServingRow`] per site
/// found): the host cache's background refresh; the caller closes the `IN (` list.
pub(super) const SERVING_OF_SITES: &str = "SELECT s.name, s.id AS site_id, \
     d.id AS deploy_id, d.created_at, p.scope, p.password_hash, p.cookie_key, \
     p.updated_at AS protection_updated_at \
     FROM sites s LEFT JOIN deploys d ON d.id = s.live_deploy_id \
     LEFT JOIN site_protection p ON p.site_id = s.id WHERE s.name IN (";
pub(super) const PREVIEW: &str = "SELECT s.id AS site_id, d.id AS deploy_id, d.created_at \
     FROM deploys d JOIN sites s ON s.id = d.site_id \
     WHERE s.name = $1 AND d.id = $2 AND d.state = 'ready'";
pub(super) const EXPIRE: &str = "UPDATE deploys SET state = 'expired', \
     error = 'abandoned before all files were uploaded' \
     WHERE state = 'uploading' AND created_at < $1 RETURNING id";
pub(super) const OWNER: &str =
    "SELECT s.owner_id FROM deploys d JOIN sites s ON s.id = d.site_id WHERE d.id = $1";
pub(super) const DROP_FILES: &str = "DELETE FROM deploy_files WHERE deploy_id = $1";
pub(super) const DROP_MISSING: &str = "DELETE FROM deploy_missing WHERE deploy_id = $1";

#[derive(sqlx::FromRow)]
pub(super) struct DeployRow {
    id: String,
    site_id: i64,
    site_name: String,
    owner_id: i64,
    state: String,
    live: bool,
    file_count: i64,
    total_bytes: i64,
    created_by: String,
    created_at: i64,
    published_at: Option<i64>,
    error: Option<String>,
    message: Option<String>,
}

impl From<DeployRow> for DeployRecord {
    fn from(row: DeployRow) -> DeployRecord {
        DeployRecord {
            id: row.id,
            site_id: row.site_id,
            site_name: row.site_name,
            owner_id: row.owner_id,
            state: parse_state(&row.state),
            live: row.live,
            file_count: count(row.file_count),
            total_bytes: count(row.total_bytes),
            created_by: row.created_by,
            created_at: time(row.created_at),
            published_at: opt_time(row.published_at),
            error: row.error,
            message: row.message,
        }
    }
}

/// One [`BY_IDEMPOTENCY_KEY`] row.
#[derive(sqlx::FromRow)]
pub(super) struct EarlierRow {
    pub id: String,
    pub request_fingerprint: Option<String>,
}

/// A live or preview deploy as the serving path needs it.
#[derive(sqlx::FromRow)]
pub(super) struct LiveRow {
    site_id: i64,
    deploy_id: String,
    created_at: i64,
}

impl From<LiveRow> for LiveDeploy {
    fn from(row: LiveRow) -> LiveDeploy {
        LiveDeploy {
            site_id: row.site_id,
            deploy_id: row.deploy_id,
            created_at: time(row.created_at),
        }
    }
}

/// One [`SERVING_OF_SITES`] row: what [`LIVE_OF_SITE`] and the site's protection row
/// would give, joined.
#[derive(sqlx::FromRow)]
pub(super) struct ServingRow {
    name: String,
    site_id: i64,
    deploy_id: Option<String>,
    created_at: Option<i64>,
    scope: Option<String>,
    password_hash: Option<String>,
    cookie_key: Option<String>,
    protection_updated_at: Option<i64>,
}

impl From<ServingRow> for SiteServing {
    fn from(row: ServingRow) -> SiteServing {
        let deploy = match (row.deploy_id, row.created_at) {
            (Some(deploy_id), Some(created_at)) => Some(LiveDeploy {
                site_id: row.site_id,
                deploy_id,
                created_at: time(created_at),
            }),
            _ => None,
        };
        let protection = match (row.scope, row.password_hash, row.cookie_key) {
            (Some(scope), Some(password_hash), Some(cookie_key)) => Some(ProtectionRecord {
                site_id: row.site_id,
                // As `ProtectionRow`: an unknown word protects everything.
                scope: if scope == "previews" {
                    ProtectionScope::Previews
                } else {
                    ProtectionScope::All
                },
                password_hash,
                cookie_key,
                updated_at: time(row.protection_updated_at.unwrap_or(0)),
            }),
            _ => None,
        };
        SiteServing {
            name: row.name,
            deploy,
            protection,
        }
    }
}

/// One [`MANIFEST`] row.
#[derive(sqlx::FromRow)]
pub(super) struct ManifestRow {
    path: String,
    sha256: String,
    size: i64,
}

impl TryFrom<ManifestRow> for ManifestEntry {
    type Error = StoreError;

    fn try_from(row: ManifestRow) -> Result<ManifestEntry, StoreError> {
        Ok(ManifestEntry {
            path: row.path,
            sha256: super::blobs::sha(&row.sha256)?,
            size: count(row.size),
        })
    }
}
