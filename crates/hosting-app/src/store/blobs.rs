//! Which blobs exist, who uploaded them, and garbage collection's statements, written
//! once for both databases. The bytes themselves live in `crate::blobs`.

use super::columns::other;
use super::StoreResult;
use crate::domain::names::Sha256;

/// Followed by `VALUES` rows of `(sha256, size, touched_at)`; a re-upload refreshes
/// `touched_at` (and, on PostgreSQL, locks the row).
pub(super) const UPSERT: &str = "INSERT INTO blobs (sha256, size, touched_at) ";
pub(super) const UPSERT_CONFLICT: &str =
    " ON CONFLICT (sha256) DO UPDATE SET touched_at = excluded.touched_at";
/// Followed by `VALUES` rows of `(owner_id, sha256)`.
pub(super) const INSERT_OWNED: &str = "INSERT INTO owner_blobs (owner_id, sha256) ";
pub(super) const INSERT_OWNED_CONFLICT: &str = " ON CONFLICT DO NOTHING";
/// Followed by the owner id, then ` AND b.sha256 IN (...)` and [`OWNED_SIZES_ORDER`].
pub(super) const OWNED_SIZES: &str = "SELECT b.sha256, b.size FROM blobs b \
     JOIN owner_blobs o ON o.sha256 = b.sha256 WHERE o.owner_id = ";
/// Like [`OWNED_SIZES`], with a third column: whether a deploy of the owner already
/// references the blob (then it counts towards their stored bytes already). `EXISTS` stops
/// at the first such file, so the cost does not grow with the deploys sharing the blob.
/// Followed by the owner id, ` AND b.sha256 IN (...)` and [`OWNED_SIZES_ORDER`].
pub(super) const OWNED_SIZES_REFERENCED: &str = "SELECT b.sha256, b.size, EXISTS (\
     SELECT 1 FROM deploy_files f JOIN deploys d ON d.id = f.deploy_id \
     JOIN sites s ON s.id = d.site_id WHERE f.sha256 = b.sha256 AND s.owner_id = o.owner_id) \
     FROM blobs b JOIN owner_blobs o ON o.sha256 = b.sha256 WHERE o.owner_id = ";
/// A fixed order, so two writers share-locking rows (PostgreSQL) cannot deadlock.
pub(super) const OWNED_SIZES_ORDER: &str = ") ORDER BY b.sha256";
/// PostgreSQL only: garbage collection cannot delete these rows before the commit.
pub(super) const SHARE_LOCK: &str = " FOR SHARE OF b";
pub(super) const TOUCH: &str = "INSERT INTO blobs (sha256, size, touched_at) VALUES ($1, $2, $3) \
     ON CONFLICT (sha256) DO UPDATE SET touched_at = excluded.touched_at";
pub(super) const UNREFERENCED: &str = "SELECT sha256 FROM blobs b WHERE touched_at < $1 \
     AND NOT EXISTS (SELECT 1 FROM deploy_files f WHERE f.sha256 = b.sha256) LIMIT $2";
/// PostgreSQL only: locks the blob row before [`FORGET`] re-checks it.
pub(super) const LOCK: &str = "SELECT touched_at FROM blobs WHERE sha256 = $1 FOR UPDATE";
/// Re-checked in the deleting statement: a deploy created since the candidates were read
/// references the blob, and an upload since then touched it.
pub(super) const FORGET: &str = "DELETE FROM blobs WHERE sha256 = $1 AND touched_at < $2 \
     AND NOT EXISTS (SELECT 1 FROM deploy_files f WHERE f.sha256 = blobs.sha256)";
/// PostgreSQL only (its blob store keeps the bytes in the database).
pub(super) const FORGET_CONTENTS: &str = "DELETE FROM blob_contents WHERE sha256 = $1";

/// The distinct digests of a deploy's files (a bulk upload's entries must be among them).
pub(super) const DEPLOY_DIGESTS: &str =
    "SELECT DISTINCT sha256 FROM deploy_files WHERE deploy_id = $1";
/// Followed by the deploy id, then ` AND sha256 IN (...)`: a batch's digests arrived.
pub(super) const BATCH_NO_LONGER_MISSING: &str = "DELETE FROM deploy_missing WHERE deploy_id = ";
/// Followed by the deploy id, then ` AND sha256 IN (...)`: the batch's files get the
/// sizes just recorded in `blobs`.
pub(super) const BATCH_SET_FILE_SIZES: &str = "UPDATE deploy_files SET size = \
     (SELECT b.size FROM blobs b WHERE b.sha256 = deploy_files.sha256) WHERE deploy_id = ";

/// Blob rows after a digest, in digest order (`hosting-app blobs migrate`).
pub(super) const PAGE: &str =
    "SELECT sha256, size FROM blobs WHERE sha256 > $1 ORDER BY sha256 LIMIT $2";
/// Digests deploys' uploaded files name, after a digest (`hosting-app blobs verify`).
pub(super) const REFERENCED_PAGE: &str = "SELECT f.sha256, MAX(f.size) FROM deploy_files f \
     WHERE f.sha256 > $1 AND NOT EXISTS (SELECT 1 FROM deploy_missing m \
     WHERE m.deploy_id = f.deploy_id AND m.sha256 = f.sha256) \
     GROUP BY f.sha256 ORDER BY f.sha256 LIMIT $2";

/// A `sha256` column.
pub(super) fn sha(raw: &str) -> StoreResult<Sha256> {
    Sha256::parse(raw).map_err(other)
}

/// `sha256` columns.
pub(super) fn shas<C: FromIterator<Sha256>>(raw: Vec<String>) -> StoreResult<C> {
    raw.iter().map(|h| sha(h)).collect()
}
