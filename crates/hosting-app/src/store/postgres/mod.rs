//! The PostgreSQL store of cluster mode: the same `Store` contract as SQLite, with
//! writes on the primary and serving / listing reads routed by [`routing::Pools`].
//!
//! Garbage collection and writers that rely on a blob row lock that row (`FOR UPDATE`
//! / `FOR SHARE`), so under READ COMMITTED a blob is never deleted while a deploy that
//! counts on it is being recorded, on any app replica.

mod routing;

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

pub use routing::{parse_lsn, Pools};

use super::columns::{failed_while, map_err, other, unavailable};
use super::deploys::{ManifestRow, MANIFEST};
use super::StoreResult;
use crate::config::Config;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

type Db = Postgres;
type This = PgStore;
/// Row locks (`FOR UPDATE` / `FOR SHARE`) order writers across app replicas.
const LOCKS_ROWS: bool = true;
/// The `BIGSERIAL` insertion order of deploys.
const SEQ: &str = "seq";
/// The PostgreSQL blob store keeps bytes in `blob_contents`.
const CONTENTS_IN_DB: bool = true;

/// Runs a read on the pool routing picks and, when that failed, once more on the other
/// one: a replica going away mid-query is never a client error, and while the primary is
/// down (a failover) serving reads the replica's slightly older state rather than failing.
macro_rules! routed_read {
    ($store:expr, |$pool:ident| $read:expr) => {{
        let $pool = $store.pools.read();
        match $read {
            Err(_) if $store.pools.is_replica($pool) => {
                $store.pools.fell_back("replica query failed");
                let $pool = &$store.pools.primary;
                $read
            }
            Err(e) => match $store.pools.any_replica() {
                Some($pool) if $crate::store::postgres::is_connection_error(&e) => {
                    metrics::counter!(crate::metrics::DB_PRIMARY_FALLBACKS_TOTAL).increment(1);
                    $read
                }
                _ => Err(e),
            },
            result => result,
        }
    }};
}

/// The database could not be reached (as opposed to a query that failed on it): I/O,
/// a pool exhausted or closed, 08xxx connection exceptions, 57P0x operator intervention
/// (shutdown, crash). Shared by the store and the PostgreSQL blob store.
pub(crate) fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P0")),
        _ => false,
    }
}

/// The primary could not be reached, TLS failures included.
fn is_connection_error(e: &sqlx::Error) -> bool {
    is_unreachable(e) || matches!(e, sqlx::Error::Tls(_))
}

// The one implementation, compiled against this backend's `Db` (see `sql.rs`).
#[allow(
    clippy::duplicate_mod,
    reason = "compiled once per database on purpose"
)]
#[path = "../sql.rs"]
mod sql;

pub struct PgStore {
    pools: Arc<Pools>,
}

fn connect_options(url: &str) -> StoreResult<PgConnectOptions> {
    url.parse::<PgConnectOptions>()
        .map(|o| o.application_name("hosting-app"))
        .map_err(|e| failed_while("invalid database URL", e))
}

impl PgStore {
    /// Connects to the primary (and lazily to the replica), then migrates. sqlx's
    /// migrator holds a PostgreSQL advisory lock while it runs, so N replicas starting
    /// together migrate once.
    pub async fn connect(config: &Config) -> StoreResult<PgStore> {
        let Some(url) = &config.database.database_url else {
            return Err(other("DATABASE_URL is not set"));
        };
        let primary = PgPoolOptions::new()
            .max_connections(config.database.db_primary_pool)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(connect_options(url.expose_secret())?)
            .await
            .map_err(unavailable)?;
        MIGRATOR
            .run(&primary)
            .await
            .map_err(|e| failed_while("migrating", e))?;
        let replica = match &config.database.database_replica_url {
            Some(url) => Some(
                PgPoolOptions::new()
                    .max_connections(config.database.db_replica_pool)
                    .acquire_timeout(Duration::from_secs(2))
                    .connect_lazy_with(connect_options(url.expose_secret())?),
            ),
            None => None,
        };
        let pools = Pools::new(primary, replica, config.database.replica_max_lag);
        if pools.has_replica() {
            tokio::spawn(pools.clone().poll_replica());
        }
        Ok(PgStore { pools })
    }

    /// Only migrates (`hosting-app migrate`).
    pub async fn migrate(config: &Config) -> StoreResult<()> {
        PgStore::connect(config).await.map(|_| ())
    }

    pub fn pools(&self) -> Arc<Pools> {
        self.pools.clone()
    }

    /// Writes, and reads that must see the latest write, go to the primary.
    fn writer(&self) -> &PgPool {
        &self.pools.primary
    }

    /// Listing reads that routing does not cover read the primary too.
    fn reader(&self) -> &PgPool {
        &self.pools.primary
    }

    async fn note_write(&self) {
        self.pools.note_write().await;
    }

    fn position(&self) -> Option<u64> {
        Some(self.pools.write_position())
    }

    fn observe(&self, position: u64) {
        self.pools.observe_write(position);
    }

    fn replica_state(&self) -> Option<&'static str> {
        Some(self.pools.replica_status())
    }

    /// A ready deploy's file list never changes (sizes are final by the transaction that
    /// makes it ready), so the replica is tried first and an empty answer (not replayed
    /// yet) is retried on the primary.
    async fn manifest_rows(&self, deploy_id: &str) -> StoreResult<Vec<ManifestRow>> {
        let query = || sqlx::query_as(MANIFEST).bind(deploy_id);
        if let Some(replica) = self.pools.immutable_read() {
            match query().fetch_all(replica).await {
                Ok(rows) if !rows.is_empty() => {
                    metrics::counter!(crate::metrics::DB_READS_TOTAL, "role" => "replica")
                        .increment(1);
                    return Ok(rows);
                }
                Ok(_) => self.pools.fell_back("replica has not replayed the deploy"),
                Err(_) => self.pools.fell_back("replica query failed"),
            }
        }
        query().fetch_all(self.writer()).await.map_err(map_err)
    }
}

/// Serialises concurrent retries with the same idempotency key on one site, across
/// app replicas, until the transaction ends.
async fn lock_idempotency_key(
    tx: &mut Transaction<'_, Postgres>,
    key: &str,
    site_id: i64,
) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))")
        .bind(key)
        .bind(site_id)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}
