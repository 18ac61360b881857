//! The SQLite store of embedded mode: one file under the data folder, WAL journal,
//! a single-connection writer pool (SQLite has one writer anyway; serialising in the
//! pool makes every write transaction see the previous one) and a reader pool. The
//! statements are the shared ones (`sql.rs`); only connecting and the few places where
//! SQLite lacks what PostgreSQL has (row locks, advisory locks, `seq`) are here.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::columns::{failed_while, map_err, other, unavailable};
use super::deploys::ManifestRow;
use super::StoreResult;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

type Db = Sqlite;
type This = SqliteStore;
/// One writer: a write transaction already excludes every other.
const LOCKS_ROWS: bool = false;
/// SQLite's implicit insertion order.
const SEQ: &str = "rowid";
/// Embedded mode keeps blob bytes in files.
const CONTENTS_IN_DB: bool = false;

/// SQLite has no replica: every routed read goes to the reader pool.
macro_rules! routed_read {
    ($store:expr, |$pool:ident| $read:expr) => {{
        let $pool = $store.reader();
        $read
    }};
}

// The one implementation, compiled against this backend's `Db` (see `sql.rs`).
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per database on purpose"
)]
#[path = "sql.rs"]
mod sql;

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) `<dir>/hosting.db` and applies pending migrations.
    pub async fn open(dir: &Path) -> StoreResult<SqliteStore> {
        std::fs::create_dir_all(dir).map_err(unavailable)?;
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(other)?
            .filename(dir.join("hosting.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged write survives power loss, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Rows a query's worker thread may send ahead of the task reading them (sqlx's
            // default: 50). Past that it blocks on every row the task takes, and on one
            // core the two threads switch once per row: an analytics flush reading 1,000
            // sketches per statement spent 6 % of the app's CPU in context switches
            // (BENCHMARKS.md, issue 23).
            .row_buffer_size(1_024);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(unavailable)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| failed_while("migrating", e))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(unavailable)?;
        Ok(SqliteStore { writer, reader })
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// Writes are visible to the reader pool once committed: nothing to note.
    async fn note_write(&self) {}

    fn position(&self) -> Option<u64> {
        None
    }

    fn observe(&self, _position: u64) {}

    fn replica_state(&self) -> Option<&'static str> {
        None
    }

    async fn manifest_rows(&self, deploy_id: &str) -> StoreResult<Vec<ManifestRow>> {
        sqlx::query_as(super::deploys::MANIFEST)
            .bind(deploy_id)
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)
    }
}

/// The single writer already serialises retries with one idempotency key.
async fn lock_idempotency_key(
    _tx: &mut Transaction<'_, Sqlite>,
    _key: &str,
    _site_id: i64,
) -> sqlx::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use hosting_api::Role;

    use super::*;
    use crate::store::{Store, StoreError};

    #[tokio::test]
    async fn a_write_referring_to_a_deleted_record_is_gone_not_an_internal_error() {
        // Arrange
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).await.expect("open");
        let user = store
            .create_user("ada", Role::Member, None)
            .await
            .expect("user");
        let missing_user = user.id + 1000;

        // Act
        let result = store.create_token(missing_user, "ci", "hash").await;

        // Assert
        assert!(
            matches!(result, Err(StoreError::Gone(_))),
            "expected Gone, got {result:?}"
        );
    }
}
