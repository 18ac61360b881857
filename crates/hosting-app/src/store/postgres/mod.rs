//! The PostgreSQL store of cluster mode: the same `Store` contract as SQLite, with
//! writes on the primary and serving / listing reads routed by [`routing::Pools`].
//!
//! Garbage collection and writers that rely on a blob row lock that row (`FOR UPDATE`
//! / `FOR SHARE`), so under READ COMMITTED a blob is never deleted while a deploy that
//! counts on it is being recorded, on any app replica.

mod routing;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hosting_api::{CertificateStatus, DeployState, Role};
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row, Transaction};

pub use routing::{parse_lsn, Pools};

use super::columns::{now_ms, opt_time, other, parse_state, role_str, time, unavailable};
use super::quotas::{self as quota_sql, hour_ago_ms, QuotaRow};
use super::{
    certificate_status_str, domain_status_str, parse_certificate_status, parse_domain_status,
    CertificateFailure, CertificateRecord, CreatedDeploy, DeployRecord, DomainCheck, DomainRecord,
    DueCertificate, IssuedCertificate, LiveDeploy, ManifestEntry, NewDeploy, NewDomain,
    SessionRecord, SiteRecord, Store, StoreError, StoreResult, TokenRecord, UploadOutcome,
    UserRecord,
};
use crate::config::Config;
use crate::domain::names::Sha256;
use crate::domain::quota::{QuotaOverrides, QuotaPolicy, UserQuota};
use hosting_api::QuotaKind;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const DEPLOY_COLUMNS: &str = "SELECT d.id, d.site_id, s.name AS site_name, s.owner_id, d.state, \
     COALESCE(s.live_deploy_id = d.id, FALSE) AS live, d.file_count, d.total_bytes, \
     u.username AS created_by, d.created_at, d.published_at, d.error, d.message \
     FROM deploys d JOIN sites s ON s.id = d.site_id JOIN users u ON u.id = d.created_by";

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
                Some($pool) if is_connection_error(&e) => {
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

pub struct PgStore {
    pools: Arc<Pools>,
}

fn connect_options(url: &str) -> StoreResult<PgConnectOptions> {
    url.parse::<PgConnectOptions>()
        .map(|o| o.application_name("hosting-app"))
        .map_err(|e| StoreError::Other(format!("invalid database URL: {e}")))
}

impl PgStore {
    /// Connects to the primary (and lazily to the replica), then migrates. sqlx's
    /// migrator holds a PostgreSQL advisory lock while it runs, so N replicas starting
    /// together migrate once.
    pub async fn connect(config: &Config) -> StoreResult<PgStore> {
        let Some(url) = &config.database.database_url else {
            return Err(StoreError::Other("DATABASE_URL is not set".into()));
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
            .map_err(|e| StoreError::Other(format!("migrating: {e}")))?;
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

    fn primary(&self) -> &PgPool {
        &self.pools.primary
    }
}

/// Maps a driver error, naming the unique constraint that was hit; a read-only database
/// (a replica promoted badly, a primary in recovery) is "unavailable", not a bug.
fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => match db.constraint() {
            Some("users_username_key") => StoreError::Conflict("a user with this name"),
            Some("sites_name_key") => StoreError::Conflict("a site with this name"),
            Some("domains_name_key") => StoreError::Conflict("a claim on this domain"),
            _ => StoreError::Conflict("a record with these values"),
        },
        // 25006: read_only_sql_transaction
        sqlx::Error::Database(db) if db.code().as_deref() == Some("25006") => unavailable(e),
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => unavailable(e),
        _ => other(e),
    }
}

fn user_from_row(row: &PgRow) -> sqlx::Result<UserRecord> {
    let role: String = row.try_get("role")?;
    Ok(UserRecord {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        role: if role == "admin" {
            Role::Admin
        } else {
            Role::Member
        },
        disabled: row.try_get("disabled")?,
        password_hash: row.try_get("password_hash")?,
        created_at: time(row.try_get("created_at")?),
    })
}

fn token_from_row(row: &PgRow) -> sqlx::Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        created_at: time(row.try_get("created_at")?),
        last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(time),
    })
}

fn site_from_row(row: &PgRow) -> sqlx::Result<SiteRecord> {
    Ok(SiteRecord {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        name: row.try_get("name")?,
        live_deploy_id: row.try_get("live_deploy_id")?,
        created_at: time(row.try_get("created_at")?),
        updated_at: time(row.try_get("updated_at")?),
    })
}

fn deploy_from_row(row: &PgRow) -> sqlx::Result<DeployRecord> {
    let state: String = row.try_get("state")?;
    Ok(DeployRecord {
        id: row.try_get("id")?,
        site_id: row.try_get("site_id")?,
        site_name: row.try_get("site_name")?,
        owner_id: row.try_get("owner_id")?,
        state: parse_state(&state),
        live: row.try_get("live")?,
        file_count: u64::try_from(row.try_get::<i64, _>("file_count")?).unwrap_or_default(),
        total_bytes: u64::try_from(row.try_get::<i64, _>("total_bytes")?).unwrap_or_default(),
        created_by: row.try_get("created_by")?,
        created_at: time(row.try_get("created_at")?),
        published_at: row.try_get::<Option<i64>, _>("published_at")?.map(time),
        error: row.try_get("error")?,
        message: row.try_get("message")?,
    })
}

fn live_from_row(row: &PgRow) -> sqlx::Result<LiveDeploy> {
    Ok(LiveDeploy {
        site_id: row.try_get("site_id")?,
        deploy_id: row.try_get("deploy_id")?,
        created_at: time(row.try_get("created_at")?),
    })
}

const DOMAIN_COLUMNS: &str =
    "SELECT d.id, d.name, d.site_id, s.name AS site_name, s.owner_id, d.status, \
     d.status_detail, d.token, d.created_at, d.checked_at, d.verified_at, d.failures \
     FROM domains d JOIN sites s ON s.id = d.site_id";

fn domain_from_row(row: &PgRow) -> sqlx::Result<DomainRecord> {
    let status: String = row.try_get("status")?;
    let failures: i64 = row.try_get("failures")?;
    Ok(DomainRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        site_id: row.try_get("site_id")?,
        site_name: row.try_get("site_name")?,
        owner_id: row.try_get("owner_id")?,
        status: parse_domain_status(&status),
        status_detail: row.try_get("status_detail")?,
        token: row.try_get("token")?,
        created_at: time(row.try_get("created_at")?),
        checked_at: opt_time(row.try_get("checked_at")?),
        verified_at: opt_time(row.try_get("verified_at")?),
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
    })
}

const CERTIFICATE_COLUMNS: &str =
    "SELECT c.domain_id, d.name AS domain, c.status, c.chain_pem, c.key_sealed, c.serial, \
     c.issuer, c.not_before, c.not_after, c.issued_at, c.failures, c.last_error, c.next_attempt_at \
     FROM certificates c JOIN domains d ON d.id = c.domain_id";

fn certificate_from_row(row: &PgRow) -> sqlx::Result<CertificateRecord> {
    let status: String = row.try_get("status")?;
    let failures: i64 = row.try_get("failures")?;
    Ok(CertificateRecord {
        domain_id: row.try_get("domain_id")?,
        domain: row.try_get("domain")?,
        status: parse_certificate_status(&status),
        chain_pem: row.try_get("chain_pem")?,
        key_sealed: row.try_get("key_sealed")?,
        serial: row.try_get("serial")?,
        issuer: row.try_get("issuer")?,
        not_before: opt_time(row.try_get("not_before")?),
        not_after: opt_time(row.try_get("not_after")?),
        issued_at: opt_time(row.try_get("issued_at")?),
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
        last_error: row.try_get("last_error")?,
        next_attempt_at: time(row.try_get("next_attempt_at")?),
    })
}

fn sha_column(row: &PgRow) -> sqlx::Result<Sha256> {
    let raw: String = row.try_get("sha256")?;
    Sha256::parse(&raw).map_err(|e| sqlx::Error::Decode(e.into()))
}

fn manifest_from_rows(rows: &[PgRow]) -> StoreResult<Vec<ManifestEntry>> {
    rows.iter()
        .map(|row| {
            Ok(ManifestEntry {
                path: row.try_get("path")?,
                sha256: sha_column(row)?,
                size: u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or_default(),
            })
        })
        .collect::<sqlx::Result<_>>()
        .map_err(other)
}

async fn deploy_in_tx(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
) -> StoreResult<Option<DeployRecord>> {
    let row = sqlx::query(&format!("{DEPLOY_COLUMNS} WHERE d.id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_err)?;
    row.as_ref().map(deploy_from_row).transpose().map_err(other)
}

async fn missing_in_tx(
    tx: &mut Transaction<'_, Postgres>,
    deploy_id: &str,
) -> StoreResult<Vec<Sha256>> {
    let rows =
        sqlx::query("SELECT sha256 FROM deploy_missing WHERE deploy_id = $1 ORDER BY sha256")
            .bind(deploy_id)
            .fetch_all(&mut **tx)
            .await
            .map_err(map_err)?;
    rows.iter()
        .map(sha_column)
        .collect::<sqlx::Result<_>>()
        .map_err(other)
}

/// Locks the user's row, then reads their quota state: every write a quota limits takes
/// this lock first, so writes of one user queue here on every app replica. The read is a
/// statement of its own, after the lock: under READ COMMITTED it takes a fresh snapshot,
/// which sees what the previous holder committed (a `SELECT ... FOR UPDATE` that waited
/// re-reads the locked row, but its subqueries would still count from the old snapshot).
/// `NO KEY UPDATE` is the lock an UPDATE of the row takes; it leaves foreign-key checks
/// of other inserts (`FOR KEY SHARE`) alone.
async fn lock_quota(tx: &mut Transaction<'_, Postgres>, user_id: i64) -> StoreResult<UserQuota> {
    sqlx::query(quota_sql::LOCK_USER)
        .bind(user_id)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    let row = sqlx::query(quota_sql::USER_QUOTA)
        .bind(user_id)
        .bind(hour_ago_ms(now_ms()))
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_err)?
        .ok_or_else(|| StoreError::Other(format!("user {user_id} vanished")))?;
    Ok(QuotaRow::decode(&row).map_err(other)?.into_quota())
}

/// Recomputes the user's stored bytes (the row must be locked) and returns them.
async fn refresh_storage(tx: &mut Transaction<'_, Postgres>, user_id: i64) -> StoreResult<u64> {
    let stored: i64 = sqlx::query_scalar(quota_sql::REFRESH_STORAGE)
        .bind(user_id)
        .fetch_one(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(u64::try_from(stored).unwrap_or_default())
}

/// Upserts `blobs` rows (refreshing `touched_at`, which also locks them) and `owner_blobs`.
async fn record_owned_blobs(
    tx: &mut Transaction<'_, Postgres>,
    owner_id: i64,
    blobs: &[(&Sha256, u64)],
) -> StoreResult<()> {
    let mut unique: HashMap<&str, i64> = HashMap::new();
    for (sha, size) in blobs {
        unique.insert(sha.as_str(), *size as i64);
    }
    let mut hashes: Vec<&str> = unique.keys().copied().collect();
    // A fixed lock order keeps two concurrent deploys from deadlocking.
    hashes.sort_unstable();
    let sizes: Vec<i64> = hashes.iter().map(|h| unique[h]).collect();
    sqlx::query(
        "INSERT INTO blobs (sha256, size, touched_at) SELECT h, s, $3 FROM UNNEST($1::text[], $2::bigint[]) AS t(h, s) \
         ON CONFLICT (sha256) DO UPDATE SET touched_at = excluded.touched_at",
    )
    .bind(&hashes)
    .bind(&sizes)
    .bind(now_ms())
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    sqlx::query(
        "INSERT INTO owner_blobs (owner_id, sha256) SELECT $1, h FROM UNNEST($2::text[]) AS t(h) \
         ON CONFLICT DO NOTHING",
    )
    .bind(owner_id)
    .bind(&hashes)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Sizes of the blobs `owner_id` has among `hashes`, share-locking their rows so garbage
/// collection cannot delete them before this transaction commits.
async fn owned_sizes(
    tx: &mut Transaction<'_, Postgres>,
    owner_id: i64,
    hashes: &[&Sha256],
) -> StoreResult<HashMap<Sha256, u64>> {
    let mut list: Vec<&str> = hashes.iter().map(|h| h.as_str()).collect();
    list.sort_unstable();
    list.dedup();
    let rows = sqlx::query(
        "SELECT b.sha256, b.size FROM blobs b JOIN owner_blobs o ON o.sha256 = b.sha256 \
         WHERE o.owner_id = $1 AND b.sha256 = ANY($2::text[]) ORDER BY b.sha256 FOR SHARE OF b",
    )
    .bind(owner_id)
    .bind(&list)
    .fetch_all(&mut **tx)
    .await
    .map_err(map_err)?;
    let mut found = HashMap::new();
    for row in rows {
        let size: i64 = row.try_get("size").map_err(other)?;
        found.insert(
            sha_column(&row).map_err(other)?,
            u64::try_from(size).unwrap_or_default(),
        );
    }
    Ok(found)
}

impl PgStore {
    /// Recomputes a user's stored bytes in a transaction of its own, under the user lock,
    /// after a write that lowered them committed. A failure is logged, not returned: the
    /// write itself is done, and the counter stays too high (never too low) until the
    /// user's next deploy recomputes it.
    async fn refresh_storage_of(&self, user_id: i64) {
        let refreshed = async {
            let mut tx = self.primary().begin().await.map_err(map_err)?;
            lock_quota(&mut tx, user_id).await?;
            refresh_storage(&mut tx, user_id).await?;
            tx.commit().await.map_err(map_err)
        };
        if let Err(e) = refreshed.await {
            tracing::warn!(user.id = user_id, error = %e, "recomputing stored bytes failed");
        }
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(self.primary())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn write_position(&self) -> Option<u64> {
        Some(self.pools.write_position())
    }

    fn observe_write(&self, position: u64) {
        self.pools.observe_write(position);
    }

    fn replica_status(&self) -> Option<&'static str> {
        Some(self.pools.replica_status())
    }

    async fn count_users(&self) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(self.primary())
            .await
            .map_err(map_err)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    async fn create_user(
        &self,
        username: &str,
        role: Role,
        password_hash: Option<&str>,
    ) -> StoreResult<UserRecord> {
        let row = sqlx::query(
            "INSERT INTO users (username, role, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING *",
        )
        .bind(username)
        .bind(role_str(role))
        .bind(password_hash)
        .bind(now_ms())
        .fetch_one(self.primary())
        .await
        .map_err(map_err)?;
        user_from_row(&row).map_err(other)
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY id")
            .fetch_all(self.primary())
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(user_from_row)
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    async fn set_user_disabled(
        &self,
        user_id: i64,
        disabled: bool,
    ) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2 RETURNING *")
            .bind(disabled)
            .bind(user_id)
            .fetch_optional(self.primary())
            .await
            .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose().map_err(other)
    }

    async fn user_by_id(&self, user_id: i64) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.primary())
            .await
            .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose().map_err(other)
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query("SELECT * FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(self.primary())
            .await
            .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose().map_err(other)
    }

    async fn set_password(&self, user_id: i64, password_hash: &str) -> StoreResult<bool> {
        let result = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(user_id)
            .execute(self.primary())
            .await
            .map_err(map_err)?;
        Ok(result.rows_affected() > 0)
    }

    async fn create_session(&self, id_hash: &str, session: &SessionRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(session.user_id)
        .bind(&session.csrf_token)
        .bind(now_ms())
        .bind(session.expires_at.timestamp_millis())
        .execute(self.primary())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        // The primary (writer): a session created a moment ago must be visible at once.
        let row = sqlx::query(
            "SELECT user_id, csrf_token, expires_at FROM sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now_ms())
        .fetch_optional(self.primary())
        .await
        .map_err(map_err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(SessionRecord {
            user_id: row.try_get("user_id").map_err(other)?,
            csrf_token: row.try_get("csrf_token").map_err(other)?,
            expires_at: time(row.try_get("expires_at").map_err(other)?),
        }))
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.primary())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(self.primary())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let result = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now.timestamp_millis())
            .execute(self.primary())
            .await
            .map_err(map_err)?;
        Ok(result.rows_affected())
    }

    async fn create_token(
        &self,
        user_id: i64,
        name: &str,
        secret_hash: &str,
    ) -> StoreResult<TokenRecord> {
        let row = sqlx::query(
            "INSERT INTO tokens (user_id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING *",
        )
        .bind(user_id)
        .bind(name)
        .bind(secret_hash)
        .bind(now_ms())
        .fetch_one(self.primary())
        .await
        .map_err(map_err)?;
        token_from_row(&row).map_err(other)
    }

    async fn list_tokens(&self, user_id: i64) -> StoreResult<Vec<TokenRecord>> {
        let rows = sqlx::query("SELECT * FROM tokens WHERE user_id = $1 ORDER BY id")
            .bind(user_id)
            .fetch_all(self.primary())
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(token_from_row)
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    async fn delete_token(&self, user_id: i64, token_id: i64) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM tokens WHERE id = $1 AND user_id = $2")
            .bind(token_id)
            .bind(user_id)
            .execute(self.primary())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    /// On the primary: a revoked token must stop working at once on every replica.
    async fn authenticate(&self, secret_hash: &str) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query(
            "SELECT u.*, t.id AS token_id, t.last_used_at FROM tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.secret_hash = $1 AND NOT u.disabled",
        )
        .bind(secret_hash)
        .fetch_optional(self.primary())
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let user = user_from_row(&row).map_err(other)?;
        let token_id: i64 = row.try_get("token_id").map_err(other)?;
        let last_used: Option<i64> = row.try_get("last_used_at").map_err(other)?;
        let now = now_ms();
        if last_used.is_none_or(|at| now - at > 60_000) {
            sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(token_id)
                .execute(self.primary())
                .await
                .map_err(map_err)?;
        }
        Ok(Some(user))
    }

    async fn create_site(
        &self,
        owner_id: i64,
        name: &str,
        quotas: &dyn QuotaPolicy,
    ) -> StoreResult<SiteRecord> {
        let mut tx = self.primary().begin().await.map_err(map_err)?;
        let quota = lock_quota(&mut tx, owner_id).await?;
        quotas.admit(&quota, QuotaKind::Sites, 1)?;
        let now = now_ms();
        let row = sqlx::query(
            "INSERT INTO sites (owner_id, name, created_at, updated_at) VALUES ($1, $2, $3, $3) RETURNING *",
        )
        .bind(owner_id)
        .bind(name)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let site = site_from_row(&row).map_err(other)?;
        tx.commit().await.map_err(map_err)?;
        self.pools.note_write().await;
        Ok(site)
    }

    async fn list_sites(&self, owner_id: i64) -> StoreResult<Vec<SiteRecord>> {
        let rows = routed_read!(self, |pool| sqlx::query(
            "SELECT * FROM sites WHERE owner_id = $1 ORDER BY name"
        )
        .bind(owner_id)
        .fetch_all(pool)
        .await)
        .map_err(map_err)?;
        rows.iter()
            .map(site_from_row)
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    async fn site(&self, owner_id: i64, name: &str) -> StoreResult<Option<SiteRecord>> {
        let row = sqlx::query("SELECT * FROM sites WHERE owner_id = $1 AND name = $2")
            .bind(owner_id)
            .bind(name)
            .fetch_optional(self.primary())
            .await
            .map_err(map_err)?;
        row.as_ref().map(site_from_row).transpose().map_err(other)
    }

    async fn delete_site(&self, owner_id: i64, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM sites WHERE owner_id = $1 AND name = $2")
            .bind(owner_id)
            .bind(name)
            .execute(self.primary())
            .await
            .map_err(map_err)?;
        self.pools.note_write().await;
        // After the delete committed, in a transaction of its own: taking the user lock
        // while holding the site's row would invert the order a deploy takes them in.
        self.refresh_storage_of(owner_id).await;
        Ok(done.rows_affected() > 0)
    }

    async fn create_deploy(
        &self,
        new: NewDeploy,
        quotas: &dyn QuotaPolicy,
    ) -> StoreResult<CreatedDeploy> {
        let mut tx = self.primary().begin().await.map_err(map_err)?;
        if let Some((key, fingerprint)) = &new.idempotency {
            // Serialises concurrent retries with the same key on this site.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))")
                .bind(key)
                .bind(new.site_id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            let earlier = sqlx::query("SELECT id, request_fingerprint FROM deploys WHERE site_id = $1 AND idempotency_key = $2")
                .bind(new.site_id)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
            if let Some(earlier) = earlier {
                let id: String = earlier.try_get("id").map_err(other)?;
                let earlier_fingerprint: Option<String> =
                    earlier.try_get("request_fingerprint").map_err(other)?;
                if earlier_fingerprint.as_deref() != Some(fingerprint.as_str()) {
                    return Ok(CreatedDeploy::KeyReused);
                }
                let deploy = deploy_in_tx(&mut tx, &id)
                    .await?
                    .ok_or(StoreError::Other("deploy vanished".into()))?;
                let required = missing_in_tx(&mut tx, &id).await?;
                return Ok(CreatedDeploy::Replayed { deploy, required });
            }
        }

        let quota = lock_quota(&mut tx, new.owner_id).await?;
        quotas.admit(&quota, QuotaKind::DeploysPerHour, 1)?;
        let mut files = new.files;
        let mut required = Vec::new();
        if new.files_uploaded {
            let blobs: Vec<(&Sha256, u64)> = files.iter().map(|f| (&f.sha256, f.size)).collect();
            record_owned_blobs(&mut tx, new.owner_id, &blobs).await?;
        } else {
            let hashes: Vec<&Sha256> = files
                .iter()
                .map(|f| &f.sha256)
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let owned = owned_sizes(&mut tx, new.owner_id, &hashes).await?;
            for file in &mut files {
                match owned.get(&file.sha256) {
                    Some(size) => file.size = *size,
                    None => required.push(file.sha256.clone()),
                }
            }
            required.sort();
            required.dedup();
        }

        let state = if required.is_empty() {
            "ready"
        } else {
            "uploading"
        };
        let total: u64 = files.iter().map(|f| f.size).sum();
        let (key, fingerprint) = new.idempotency.unzip();
        sqlx::query(
            "INSERT INTO deploys (id, site_id, created_by, state, file_count, total_bytes, created_at, \
             idempotency_key, request_fingerprint, message) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(new.id.as_str())
        .bind(new.site_id)
        .bind(new.created_by)
        .bind(state)
        .bind(files.len() as i64)
        .bind(total as i64)
        .bind(now_ms())
        .bind(key)
        .bind(fingerprint)
        .bind(new.message.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        let hashes: Vec<&str> = files.iter().map(|f| f.sha256.as_str()).collect();
        let sizes: Vec<i64> = files.iter().map(|f| f.size as i64).collect();
        sqlx::query(
            "INSERT INTO deploy_files (deploy_id, path, sha256, size) \
             SELECT $1, p, h, s FROM UNNEST($2::text[], $3::text[], $4::bigint[]) AS t(p, h, s)",
        )
        .bind(new.id.as_str())
        .bind(&paths)
        .bind(&hashes)
        .bind(&sizes)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if !required.is_empty() {
            let missing: Vec<&str> = required.iter().map(Sha256::as_str).collect();
            sqlx::query("INSERT INTO deploy_missing (deploy_id, sha256) SELECT $1, h FROM UNNEST($2::text[]) AS t(h)")
                .bind(new.id.as_str())
                .bind(&missing)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        // Files the owner has (archives: all) and no other deploy of theirs referenced.
        let stored = refresh_storage(&mut tx, new.owner_id).await?;
        let adding = stored.saturating_sub(quota.usage.storage_bytes);
        quotas.admit(&quota, QuotaKind::StorageBytes, adding)?;
        let now = now_ms();
        sqlx::query(quota_sql::PRUNE_DEPLOY_LOG)
            .bind(new.owner_id)
            .bind(hour_ago_ms(now))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(quota_sql::LOG_DEPLOY)
            .bind(new.owner_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let deploy = deploy_in_tx(&mut tx, new.id.as_str())
            .await?
            .ok_or(StoreError::Other("deploy vanished".into()))?;
        tx.commit().await.map_err(map_err)?;
        self.pools.note_write().await;
        Ok(CreatedDeploy::Created { deploy, required })
    }

    async fn deploy(&self, owner_id: i64, id: &str) -> StoreResult<Option<DeployRecord>> {
        let row = sqlx::query(&format!(
            "{DEPLOY_COLUMNS} WHERE d.id = $1 AND s.owner_id = $2"
        ))
        .bind(id)
        .bind(owner_id)
        .fetch_optional(self.primary())
        .await
        .map_err(map_err)?;
        row.as_ref().map(deploy_from_row).transpose().map_err(other)
    }

    async fn list_deploys(&self, owner_id: i64, site_id: i64) -> StoreResult<Vec<DeployRecord>> {
        let query = format!("{DEPLOY_COLUMNS} WHERE d.site_id = $1 AND s.owner_id = $2 ORDER BY d.created_at DESC, d.seq DESC");
        let rows = routed_read!(self, |pool| sqlx::query(&query)
            .bind(site_id)
            .bind(owner_id)
            .fetch_all(pool)
            .await)
        .map_err(map_err)?;
        rows.iter()
            .map(deploy_from_row)
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    /// A ready deploy's file list never changes (sizes are final by the transaction that
    /// makes it ready), so the replica is tried first and an empty answer (not replayed
    /// yet) is retried on the primary.
    async fn manifest(&self, deploy_id: &str) -> StoreResult<Vec<ManifestEntry>> {
        const QUERY: &str = "SELECT f.path, f.sha256, f.size FROM deploy_files f \
             JOIN deploys d ON d.id = f.deploy_id WHERE f.deploy_id = $1 AND d.state = 'ready'";
        if let Some(replica) = self.pools.immutable_read() {
            match sqlx::query(QUERY).bind(deploy_id).fetch_all(replica).await {
                Ok(rows) if !rows.is_empty() => {
                    metrics::counter!(crate::metrics::DB_READS_TOTAL, "role" => "replica")
                        .increment(1);
                    return manifest_from_rows(&rows);
                }
                Ok(_) => self.pools.fell_back("replica has not replayed the deploy"),
                Err(_) => self.pools.fell_back("replica query failed"),
            }
        }
        let rows = sqlx::query(QUERY)
            .bind(deploy_id)
            .fetch_all(self.primary())
            .await
            .map_err(map_err)?;
        manifest_from_rows(&rows)
    }

    async fn missing_blobs(&self, deploy_id: &str) -> StoreResult<Vec<Sha256>> {
        let mut tx = self.primary().begin().await.map_err(map_err)?;
        missing_in_tx(&mut tx, deploy_id).await
    }

    async fn record_upload(
        &self,
        owner_id: i64,
        deploy_id: &str,
        sha256: &Sha256,
        size: u64,
        quotas: &dyn QuotaPolicy,
    ) -> StoreResult<UploadOutcome> {
        let mut tx = self.primary().begin().await.map_err(map_err)?;
        let in_deploy: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM deploy_files WHERE deploy_id = $1 AND sha256 = $2 LIMIT 1",
        )
        .bind(deploy_id)
        .bind(sha256.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if in_deploy.is_none() {
            return Ok(UploadOutcome::NotInDeploy);
        }
        let quota = lock_quota(&mut tx, owner_id).await?;
        let owned: Option<i32> = sqlx::query_scalar(quota_sql::OWNS_BLOB)
            .bind(owner_id)
            .bind(sha256.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        // A blob new to the owner is referenced by this deploy, so it now counts.
        let adding = if owned.is_some() { 0 } else { size };
        quotas.admit(&quota, QuotaKind::StorageBytes, adding)?;
        record_owned_blobs(&mut tx, owner_id, &[(sha256, size)]).await?;
        if adding > 0 {
            sqlx::query(quota_sql::ADD_STORAGE)
                .bind(owner_id)
                .bind(adding as i64)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        let removed =
            sqlx::query("DELETE FROM deploy_missing WHERE deploy_id = $1 AND sha256 = $2")
                .bind(deploy_id)
                .bind(sha256.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        let mut now_ready = false;
        if removed.rows_affected() > 0 {
            sqlx::query("UPDATE deploy_files SET size = $1 WHERE deploy_id = $2 AND sha256 = $3")
                .bind(size as i64)
                .bind(deploy_id)
                .bind(sha256.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            // Locks the deploy row so two last uploads cannot both miss the transition.
            sqlx::query("SELECT 1 FROM deploys WHERE id = $1 FOR UPDATE")
                .bind(deploy_id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            let left: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM deploy_missing WHERE deploy_id = $1")
                    .bind(deploy_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
            if left == 0 {
                sqlx::query(
                    "UPDATE deploys SET state = 'ready', total_bytes = \
                     (SELECT COALESCE(SUM(size), 0) FROM deploy_files WHERE deploy_id = $1)::bigint \
                     WHERE id = $1 AND state = 'uploading'",
                )
                .bind(deploy_id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                now_ready = true;
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(UploadOutcome::Accepted { now_ready })
    }

    async fn publish(&self, owner_id: i64, deploy_id: &str) -> StoreResult<Option<DeployRecord>> {
        let mut tx = self.primary().begin().await.map_err(map_err)?;
        let Some(deploy) = deploy_in_tx(&mut tx, deploy_id).await? else {
            return Ok(None);
        };
        if deploy.owner_id != owner_id || deploy.state != DeployState::Ready {
            return Ok(None);
        }
        let now = now_ms();
        // One UPDATE flips the site's live deploy: readers see the old deploy or the new one.
        sqlx::query("UPDATE sites SET live_deploy_id = $1, updated_at = $2 WHERE id = $3")
            .bind(deploy_id)
            .bind(now)
            .bind(deploy.site_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("UPDATE deploys SET published_at = $1 WHERE id = $2")
            .bind(now)
            .bind(deploy_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let deploy = deploy_in_tx(&mut tx, deploy_id).await?;
        tx.commit().await.map_err(map_err)?;
        self.pools.note_write().await;
        Ok(deploy)
    }

    async fn previous_live(
        &self,
        owner_id: i64,
        site_id: i64,
    ) -> StoreResult<Option<DeployRecord>> {
        let row = sqlx::query(&format!(
            "{DEPLOY_COLUMNS} WHERE d.site_id = $1 AND s.owner_id = $2 AND d.published_at IS NOT NULL \
             AND d.state = 'ready' AND d.id IS DISTINCT FROM s.live_deploy_id \
             ORDER BY d.published_at DESC, d.seq DESC LIMIT 1"
        ))
        .bind(site_id)
        .bind(owner_id)
        .fetch_optional(self.primary())
        .await
        .map_err(map_err)?;
        row.as_ref().map(deploy_from_row).transpose().map_err(other)
    }

    async fn user_quota(&self, user_id: i64) -> StoreResult<Option<UserQuota>> {
        let row = sqlx::query(quota_sql::USER_QUOTA)
            .bind(user_id)
            .bind(hour_ago_ms(now_ms()))
            .fetch_optional(self.primary())
            .await
            .map_err(map_err)?;
        row.map(|row| QuotaRow::decode(&row).map(QuotaRow::into_quota))
            .transpose()
            .map_err(other)
    }

    async fn set_user_quota(&self, user_id: i64, overrides: &QuotaOverrides) -> StoreResult<bool> {
        let done = sqlx::query(quota_sql::SET_OVERRIDES)
            .bind(user_id)
            .bind(quota_sql::override_column(overrides.storage_bytes))
            .bind(quota_sql::override_column(overrides.sites))
            .bind(quota_sql::override_column(overrides.deploys_per_hour))
            .execute(self.primary())
            .await
            .map_err(map_err)?;
        self.pools.note_write().await;
        Ok(done.rows_affected() > 0)
    }

    async fn counted_blobs(&self, owner_id: i64) -> StoreResult<HashSet<Sha256>> {
        let rows = sqlx::query(quota_sql::COUNTED_BLOBS)
            .bind(owner_id)
            .fetch_all(self.primary())
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(sha_column)
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    async fn has_blobs(&self, owner_id: i64, hashes: &[Sha256]) -> StoreResult<HashSet<Sha256>> {
        let mut tx = self.primary().begin().await.map_err(map_err)?;
        let refs: Vec<&Sha256> = hashes.iter().collect();
        Ok(owned_sizes(&mut tx, owner_id, &refs)
            .await?
            .into_keys()
            .collect())
    }

    async fn touch_blob(&self, sha256: &Sha256, size: u64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO blobs (sha256, size, touched_at) VALUES ($1, $2, $3) \
             ON CONFLICT (sha256) DO UPDATE SET touched_at = excluded.touched_at",
        )
        .bind(sha256.as_str())
        .bind(size as i64)
        .bind(now_ms())
        .execute(self.primary())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn live_deploy(&self, site: &str) -> StoreResult<Option<LiveDeploy>> {
        const QUERY: &str = "SELECT s.id AS site_id, d.id AS deploy_id, d.created_at FROM sites s \
             JOIN deploys d ON d.id = s.live_deploy_id WHERE s.name = $1";
        let row = routed_read!(self, |pool| sqlx::query(QUERY)
            .bind(site)
            .fetch_optional(pool)
            .await)
        .map_err(map_err)?;
        row.as_ref().map(live_from_row).transpose().map_err(other)
    }

    async fn preview_deploy(&self, site: &str, deploy_id: &str) -> StoreResult<Option<LiveDeploy>> {
        const QUERY: &str = "SELECT s.id AS site_id, d.id AS deploy_id, d.created_at FROM deploys d \
             JOIN sites s ON s.id = d.site_id WHERE s.name = $1 AND d.id = $2 AND d.state = 'ready'";
        let row = routed_read!(self, |pool| sqlx::query(QUERY)
            .bind(site)
            .bind(deploy_id)
            .fetch_optional(pool)
            .await)
        .map_err(map_err)?;
        row.as_ref().map(live_from_row).transpose().map_err(other)
    }

    async fn expire_deploys(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.primary().begin().await.map_err(map_err)?;
        let expired: Vec<String> = sqlx::query_scalar(
            "UPDATE deploys SET state = 'expired', error = 'abandoned before all files were uploaded' \
             WHERE state = 'uploading' AND created_at < $1 RETURNING id",
        )
        .bind(cutoff.timestamp_millis())
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let owners: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT s.owner_id FROM deploys d JOIN sites s ON s.id = d.site_id \
             WHERE d.id = ANY($1::text[])",
        )
        .bind(&expired)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        for table in ["deploy_files", "deploy_missing"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE deploy_id = ANY($1::text[])"
            ))
            .bind(&expired)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        // Files uploaded only for an abandoned deploy stop counting; one transaction per
        // owner, after the commit, so the user lock is never taken behind a deploy's row.
        for owner in owners {
            self.refresh_storage_of(owner).await;
        }
        Ok(expired.len() as u64)
    }

    async fn unreferenced_blobs(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Sha256>> {
        let rows = sqlx::query(
            "SELECT sha256 FROM blobs b WHERE touched_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM deploy_files f WHERE f.sha256 = b.sha256) LIMIT $2",
        )
        .bind(cutoff.timestamp_millis())
        .bind(i64::from(limit))
        .fetch_all(self.primary())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(sha_column)
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    /// Locks the blob row first, then re-checks with a fresh snapshot (READ COMMITTED):
    /// a deploy that share-locked the row has committed its file list by then, and an
    /// upload that touched it has moved `touched_at`. Stored contents go in the same
    /// transaction, so a row never outlives its bytes or the other way round.
    async fn forget_blob(&self, sha256: &Sha256, cutoff: DateTime<Utc>) -> StoreResult<bool> {
        let mut tx = self.primary().begin().await.map_err(map_err)?;
        let locked: Option<i64> =
            sqlx::query_scalar("SELECT touched_at FROM blobs WHERE sha256 = $1 FOR UPDATE")
                .bind(sha256.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        if locked.is_none() {
            return Ok(false);
        }
        let done = sqlx::query(
            "DELETE FROM blobs WHERE sha256 = $1 AND touched_at < $2 \
             AND NOT EXISTS (SELECT 1 FROM deploy_files f WHERE f.sha256 = $1)",
        )
        .bind(sha256.as_str())
        .bind(cutoff.timestamp_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let forgotten = done.rows_affected() > 0;
        if forgotten {
            sqlx::query("DELETE FROM blob_contents WHERE sha256 = $1")
                .bind(sha256.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(forgotten)
    }

    async fn add_domain(&self, new: NewDomain) -> StoreResult<DomainRecord> {
        let mut tx = self.primary().begin().await.map_err(map_err)?;
        let existing = sqlx::query("SELECT d.id, s.owner_id, d.status, d.created_at FROM domains d JOIN sites s ON s.id = d.site_id WHERE d.name = $1 FOR UPDATE OF d")
            .bind(&new.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if let Some(row) = existing {
            let id: i64 = row.try_get("id").map_err(other)?;
            let owner_id: i64 = row.try_get("owner_id").map_err(other)?;
            let status: String = row.try_get("status").map_err(other)?;
            let created_at: i64 = row.try_get("created_at").map_err(other)?;
            if status == "verified" {
                return Err(StoreError::Conflict("a verified claim on this domain"));
            }
            if owner_id == new.owner_id {
                return Err(StoreError::Conflict(
                    "a claim on this domain by one of your sites",
                ));
            }
            let replaceable =
                status == "failed" || created_at < new.replace_unverified_before.timestamp_millis();
            if !replaceable {
                return Err(StoreError::Conflict(
                    "a recent unverified claim on this domain by another account",
                ));
            }
            sqlx::query("DELETE FROM domains WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        let id: i64 = sqlx::query_scalar("INSERT INTO domains (name, site_id, status, token, created_at, next_check_at) VALUES ($1, $2, 'pending', $3, $4, $5) RETURNING id")
            .bind(&new.name)
            .bind(new.site_id)
            .bind(&new.token)
            .bind(now_ms())
            .bind(new.next_check_at.timestamp_millis())
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let row = sqlx::query(&format!("{DOMAIN_COLUMNS} WHERE d.id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.pools.note_write().await;
        domain_from_row(&row).map_err(other)
    }

    async fn list_domains(&self, owner_id: i64, site_id: i64) -> StoreResult<Vec<DomainRecord>> {
        let rows = sqlx::query(&format!(
            "{DOMAIN_COLUMNS} WHERE s.owner_id = $1 AND d.site_id = $2 ORDER BY d.name"
        ))
        .bind(owner_id)
        .bind(site_id)
        .fetch_all(self.primary())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(domain_from_row)
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    async fn domain(
        &self,
        owner_id: i64,
        site_id: i64,
        name: &str,
    ) -> StoreResult<Option<DomainRecord>> {
        let row = sqlx::query(&format!(
            "{DOMAIN_COLUMNS} WHERE s.owner_id = $1 AND d.site_id = $2 AND d.name = $3"
        ))
        .bind(owner_id)
        .bind(site_id)
        .bind(name)
        .fetch_optional(self.primary())
        .await
        .map_err(map_err)?;
        row.as_ref().map(domain_from_row).transpose().map_err(other)
    }

    async fn delete_domain(&self, owner_id: i64, site_id: i64, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM domains WHERE name = $1 AND site_id = $2 AND site_id IN (SELECT id FROM sites WHERE owner_id = $3)")
            .bind(name)
            .bind(site_id)
            .bind(owner_id)
            .execute(self.primary())
            .await
            .map_err(map_err)?;
        self.pools.note_write().await;
        Ok(done.rows_affected() > 0)
    }

    async fn record_domain_check(&self, id: i64, check: &DomainCheck) -> StoreResult<()> {
        let now = now_ms();
        let status = domain_status_str(check.status);
        sqlx::query("UPDATE domains SET status = $1, status_detail = $2, checked_at = $3, verified_at = CASE WHEN $4 = 'verified' THEN COALESCE(verified_at, $5) ELSE verified_at END, failures = $6, next_check_at = $7 WHERE id = $8")
            .bind(status)
            .bind(&check.detail)
            .bind(now)
            .bind(status)
            .bind(now)
            .bind(i64::from(check.failures))
            .bind(check.next_check_at.timestamp_millis())
            .bind(id)
            .execute(self.primary())
            .await
            .map_err(map_err)?;
        self.pools.note_write().await;
        Ok(())
    }

    async fn domains_due(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<DomainRecord>> {
        let rows = sqlx::query(&format!(
            "{DOMAIN_COLUMNS} WHERE d.next_check_at <= $1 ORDER BY d.next_check_at LIMIT $2"
        ))
        .bind(now.timestamp_millis())
        .bind(i64::from(limit))
        .fetch_all(self.primary())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(domain_from_row)
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    async fn domain_live_deploy(&self, name: &str) -> StoreResult<Option<LiveDeploy>> {
        const QUERY: &str = "SELECT s.id AS site_id, d.id AS deploy_id, d.created_at FROM domains m JOIN sites s ON s.id = m.site_id JOIN deploys d ON d.id = s.live_deploy_id WHERE m.name = $1 AND m.status = 'verified'";
        let row = routed_read!(self, |pool| sqlx::query(QUERY)
            .bind(name)
            .fetch_optional(pool)
            .await)
        .map_err(map_err)?;
        row.as_ref().map(live_from_row).transpose().map_err(other)
    }

    async fn domain_token(&self, name: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT token FROM domains WHERE name = $1")
            .bind(name)
            .fetch_optional(self.primary())
            .await
            .map_err(map_err)
    }

    async fn site_domains(&self, site: &str) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT d.name FROM domains d JOIN sites s ON s.id = d.site_id WHERE s.name = $1",
        )
        .bind(site)
        .fetch_all(self.primary())
        .await
        .map_err(map_err)
    }

    async fn certificates_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueCertificate>> {
        let rows = sqlx::query(
            "SELECT d.id AS domain_id, d.name AS domain, COALESCE(c.failures, 0) AS failures \
             FROM domains d LEFT JOIN certificates c ON c.domain_id = d.id \
             WHERE d.status = 'verified' AND (c.domain_id IS NULL OR (c.next_attempt_at <= $1 \
             AND (c.lease_until IS NULL OR c.lease_until <= $1))) \
             ORDER BY COALESCE(c.next_attempt_at, d.verified_at, d.created_at), d.id LIMIT $2",
        )
        .bind(now.timestamp_millis())
        .bind(i64::from(limit))
        .fetch_all(self.primary())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let failures: i64 = row.try_get("failures")?;
                Ok(DueCertificate {
                    domain_id: row.try_get("domain_id")?,
                    domain: row.try_get("domain")?,
                    failures: u32::try_from(failures).unwrap_or(u32::MAX),
                })
            })
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    /// Under READ COMMITTED the racing INSERT waits for the other one's row, then
    /// re-evaluates the ON CONFLICT WHERE on it: the later replica sees a running lease.
    async fn lease_certificate(
        &self,
        domain_id: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // Selecting from domains (rather than VALUES) makes a domain deleted meanwhile a
        // lost lease instead of a foreign-key error.
        let done = sqlx::query(
            "INSERT INTO certificates (domain_id, status, next_attempt_at, lease_until, updated_at) \
             SELECT id, $1, $2, $3, $2 FROM domains WHERE id = $4 \
             ON CONFLICT (domain_id) DO UPDATE SET lease_until = excluded.lease_until, \
             updated_at = excluded.updated_at \
             WHERE certificates.lease_until IS NULL OR certificates.lease_until <= $2",
        )
        .bind(certificate_status_str(CertificateStatus::Pending))
        .bind(now.timestamp_millis())
        .bind(until.timestamp_millis())
        .bind(domain_id)
        .execute(self.primary())
        .await
        .map_err(map_err)?;
        self.pools.note_write().await;
        Ok(done.rows_affected() > 0)
    }

    async fn release_certificate_lease(
        &self,
        domain_id: i64,
        until: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE certificates SET lease_until = NULL WHERE domain_id = $1 AND lease_until = $2",
        )
        .bind(domain_id)
        .bind(until.timestamp_millis())
        .execute(self.primary())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn record_certificate_issued(
        &self,
        domain_id: i64,
        issued: &IssuedCertificate,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO certificates (domain_id, status, chain_pem, key_sealed, serial, issuer, \
             not_before, not_after, issued_at, failures, last_error, next_attempt_at, lease_until, \
             updated_at) SELECT id, $1, $2, $3, $4, $5, $6, $7, $8, 0, NULL, $9, NULL, $10 \
             FROM domains WHERE id = $11 \
             ON CONFLICT (domain_id) DO UPDATE SET status = excluded.status, \
             chain_pem = excluded.chain_pem, key_sealed = excluded.key_sealed, \
             serial = excluded.serial, issuer = excluded.issuer, not_before = excluded.not_before, \
             not_after = excluded.not_after, issued_at = excluded.issued_at, failures = 0, \
             last_error = NULL, next_attempt_at = excluded.next_attempt_at, lease_until = NULL, \
             updated_at = excluded.updated_at",
        )
        .bind(certificate_status_str(CertificateStatus::Issued))
        .bind(&issued.chain_pem)
        .bind(&issued.key_sealed)
        .bind(&issued.serial)
        .bind(&issued.issuer)
        .bind(issued.not_before.timestamp_millis())
        .bind(issued.not_after.timestamp_millis())
        .bind(issued.issued_at.timestamp_millis())
        .bind(issued.next_attempt_at.timestamp_millis())
        .bind(now_ms())
        .bind(domain_id)
        .execute(self.primary())
        .await
        .map_err(map_err)?;
        self.pools.note_write().await;
        Ok(())
    }

    async fn record_certificate_failure(
        &self,
        domain_id: i64,
        failure: &CertificateFailure,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO certificates (domain_id, status, failures, last_error, next_attempt_at, \
             lease_until, updated_at) SELECT id, $1, $2, $3, $4, NULL, $5 FROM domains WHERE id = $6 \
             ON CONFLICT (domain_id) DO UPDATE SET status = excluded.status, \
             failures = excluded.failures, last_error = excluded.last_error, \
             next_attempt_at = excluded.next_attempt_at, lease_until = NULL, \
             updated_at = excluded.updated_at",
        )
        .bind(certificate_status_str(CertificateStatus::Failed))
        .bind(i64::from(failure.failures))
        .bind(&failure.error)
        .bind(failure.next_attempt_at.timestamp_millis())
        .bind(now_ms())
        .bind(domain_id)
        .execute(self.primary())
        .await
        .map_err(map_err)?;
        self.pools.note_write().await;
        Ok(())
    }

    async fn request_certificate(&self, domain_id: i64, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO certificates (domain_id, status, next_attempt_at, updated_at) \
             SELECT id, $1, $2, $2 FROM domains WHERE id = $3 \
             ON CONFLICT (domain_id) DO UPDATE SET next_attempt_at = excluded.next_attempt_at, \
             updated_at = excluded.updated_at",
        )
        .bind(certificate_status_str(CertificateStatus::Pending))
        .bind(now.timestamp_millis())
        .bind(domain_id)
        .execute(self.primary())
        .await
        .map_err(map_err)?;
        self.pools.note_write().await;
        Ok(())
    }

    async fn certificate(&self, domain_id: i64) -> StoreResult<Option<CertificateRecord>> {
        let row = sqlx::query(&format!("{CERTIFICATE_COLUMNS} WHERE c.domain_id = $1"))
            .bind(domain_id)
            .fetch_optional(self.primary())
            .await
            .map_err(map_err)?;
        row.as_ref()
            .map(certificate_from_row)
            .transpose()
            .map_err(other)
    }

    async fn served_certificates(&self) -> StoreResult<Vec<CertificateRecord>> {
        let rows = sqlx::query(&format!(
            "{CERTIFICATE_COLUMNS} WHERE c.chain_pem IS NOT NULL AND d.status = 'verified' \
             ORDER BY d.name"
        ))
        .fetch_all(self.primary())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(certificate_from_row)
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    async fn site_certificates(&self, site_id: i64) -> StoreResult<Vec<CertificateRecord>> {
        let rows = sqlx::query(&format!(
            "{CERTIFICATE_COLUMNS} WHERE d.site_id = $1 ORDER BY d.name"
        ))
        .bind(site_id)
        .fetch_all(self.primary())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(certificate_from_row)
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    async fn certificate_expiries(&self, limit: u32) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT d.name, c.not_after FROM certificates c JOIN domains d ON d.id = c.domain_id \
             WHERE c.chain_pem IS NOT NULL AND c.not_after IS NOT NULL AND d.status = 'verified' \
             ORDER BY c.not_after, d.name LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.primary())
        .await
        .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(domain, not_after)| (domain, time(not_after)))
            .collect())
    }

    async fn certificate_counts(&self) -> StoreResult<Vec<(CertificateStatus, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM certificates GROUP BY status ORDER BY status",
        )
        .fetch_all(self.primary())
        .await
        .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(status, count)| {
                (
                    parse_certificate_status(&status),
                    u64::try_from(count).unwrap_or_default(),
                )
            })
            .collect())
    }

    async fn acme_account(&self, directory: &str) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT credentials_sealed FROM acme_accounts WHERE directory = $1")
            .bind(directory)
            .fetch_optional(self.primary())
            .await
            .map_err(map_err)
    }

    async fn save_acme_account(
        &self,
        directory: &str,
        sealed: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<u8>> {
        // The no-op update makes RETURNING yield the row that won, whoever wrote it (a
        // racing INSERT waits for the other one's row, then updates that).
        let stored = sqlx::query_scalar(
            "INSERT INTO acme_accounts (directory, credentials_sealed, created_at) \
             VALUES ($1, $2, $3) ON CONFLICT (directory) \
             DO UPDATE SET credentials_sealed = acme_accounts.credentials_sealed \
             RETURNING credentials_sealed",
        )
        .bind(directory)
        .bind(sealed)
        .bind(now.timestamp_millis())
        .fetch_one(self.primary())
        .await
        .map_err(map_err)?;
        self.pools.note_write().await;
        Ok(stored)
    }

    async fn forget_acme_account(&self, directory: &str, sealed: &[u8]) -> StoreResult<()> {
        sqlx::query("DELETE FROM acme_accounts WHERE directory = $1 AND credentials_sealed = $2")
            .bind(directory)
            .bind(sealed)
            .execute(self.primary())
            .await
            .map_err(map_err)?;
        self.pools.note_write().await;
        Ok(())
    }
}
