//! The one implementation of [`Store`]: the statements of the entity modules, run the
//! same way on both databases. This file is compiled once per backend — `sqlite.rs` and
//! `postgres/mod.rs` each include it with `#[path]` — against the items its parent
//! supplies: `Db` (the sqlx database), `This` (the store type, with `writer()`,
//! `reader()`, `note_write()`, `manifest_rows()` and the replica hooks), the
//! `routed_read!` macro, `lock_idempotency_key`, and the constants `LOCKS_ROWS` (row locks
//! and `FOR UPDATE` exist), `SEQ` (the insertion-order column) and `CONTENTS_IN_DB` (the
//! blob store keeps bytes in this database). See docs/code-map.md for why it is not generic.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hosting_api::{CertificateStatus, DeployState, QuotaKind, Role};
use sqlx::{Executor, QueryBuilder, Transaction};

use super::{lock_idempotency_key, Db, This, CONTENTS_IN_DB, LOCKS_ROWS, SEQ};
use crate::domain::claims::{self, ClaimDecision};
use crate::domain::names::Sha256;
use crate::domain::quota::{QuotaOverrides, QuotaPolicy, UserQuota};
use crate::store::aliases::{self as alias_sql, AliasRow, ProtectionRow};
use crate::store::analytics::{self as analytics_sql, BucketRow};
use crate::store::blobs::{self as blob_sql, sha, shas};
use crate::store::certificates::{self as cert_sql, certificate_status_str};
use crate::store::columns::{
    count, map_err, now_ms, other, role_str, state_str, time, unavailable,
};
use crate::store::deploys::{self as deploy_sql, DeployRow, EarlierRow, LiveRow, ServingRow};
use crate::store::domains::{self as domain_sql, domain_status_str, ClaimRow, DomainRow};
use crate::store::quotas::{self as quota_sql, hour_ago_ms, QuotaRow};
use crate::store::tokens::{self as token_sql, AuthRow, TokenRow};
use crate::store::users::{self as user_sql, UserRow};
use crate::store::{
    audit as audit_sql, audit::AuditRow, webhooks as hook_sql, webhooks::AttemptRow,
    webhooks::DeliveryRow, webhooks::DueRow as DueDeliveryRow, webhooks::WebhookRow, AfterAttempt,
    AttemptRecord, AuditFilter, AuditRecord, DeliveryRecord, DueDelivery, NewAuditEntry,
    NewWebhook, WebhookEvent, WebhookRecord,
};
use crate::store::{
    certificates::CertificateRow, certificates::DueRow, sessions as session_sql,
    sessions::SessionRow, sites as site_sql, sites::SiteRow, CertificateFailure, CertificateRecord,
    CreatedDeploy, DeployRecord, DomainCheck, DomainRecord, DueCertificate, IssuedCertificate,
    LiveDeploy, ManifestEntry, NewDeploy, NewDomain, SessionRecord, SiteRecord, Store, StoreError,
    StoreResult, TokenRecord, UploadOutcome, UserRecord,
};
use crate::store::{AliasRecord, ProtectionRecord, SiteServing};
use crate::store::{
    AnalyticsBatch, AnalyticsCutoffs, BucketIncrement, BucketRecord, Granularity, TopIncrement,
    TopKind,
};
use crate::store::{QueueStats, StoredSecret};

type Tx<'c> = Transaction<'c, Db>;

/// Bound parameters per statement: SQLite allows 32,766, PostgreSQL 65,535.
const BIND_LIMIT: usize = 20_000;

type Query<'q> = sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>;
type QueryScalar<'q, O> =
    sqlx::query::QueryScalar<'q, Db, O, <Db as sqlx::Database>::Arguments<'q>>;
type QueryAs<'q, R> = sqlx::query::QueryAs<'q, Db, R, <Db as sqlx::Database>::Arguments<'q>>;

/// A `FromRow` row type, turned into its record with `Into`.
trait Row: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin {}
impl<R: for<'r> sqlx::FromRow<'r, <Db as sqlx::Database>::Row> + Send + Unpin> Row for R {}

fn records<R, T: From<R>>(rows: Vec<R>) -> Vec<T> {
    rows.into_iter().map(T::from).collect()
}

/// Runs a statement; the number of rows it changed.
async fn execute<'c>(on: impl Executor<'c, Database = Db>, query: Query<'_>) -> StoreResult<u64> {
    Ok(query.execute(on).await.map_err(map_err)?.rows_affected())
}

/// Whether a statement returns a row.
async fn exists<'c>(on: impl Executor<'c, Database = Db>, query: Query<'_>) -> StoreResult<bool> {
    Ok(query.fetch_optional(on).await.map_err(map_err)?.is_some())
}

async fn one<'c, R: Row + Into<T>, T>(
    on: impl Executor<'c, Database = Db>,
    query: QueryAs<'_, R>,
) -> StoreResult<T> {
    Ok(query.fetch_one(on).await.map_err(map_err)?.into())
}

async fn optional<'c, R: Row + Into<T>, T>(
    on: impl Executor<'c, Database = Db>,
    query: QueryAs<'_, R>,
) -> StoreResult<Option<T>> {
    Ok(query
        .fetch_optional(on)
        .await
        .map_err(map_err)?
        .map(R::into))
}

async fn all<'c, R: Row + Into<T>, T>(
    on: impl Executor<'c, Database = Db>,
    query: QueryAs<'_, R>,
) -> StoreResult<Vec<T>> {
    let rows = query.fetch_all(on).await.map_err(map_err)?;
    Ok(rows.into_iter().map(R::into).collect())
}

async fn scalar<'c, O: Send + Unpin>(
    on: impl Executor<'c, Database = Db>,
    query: QueryScalar<'_, O>,
) -> StoreResult<O>
where
    (O,): Row,
{
    query.fetch_one(on).await.map_err(map_err)
}

async fn optional_scalar<'c, O: Send + Unpin>(
    on: impl Executor<'c, Database = Db>,
    query: QueryScalar<'_, O>,
) -> StoreResult<Option<O>>
where
    (O,): Row,
{
    query.fetch_optional(on).await.map_err(map_err)
}

async fn scalars<'c, O: Send + Unpin>(
    on: impl Executor<'c, Database = Db>,
    query: QueryScalar<'_, O>,
) -> StoreResult<Vec<O>>
where
    (O,): Row,
{
    query.fetch_all(on).await.map_err(map_err)
}

async fn deploy_in_tx(tx: &mut Tx<'_>, id: &str) -> StoreResult<Option<DeployRecord>> {
    let query = sqlx::query_as::<_, DeployRow>(deploy_sql::BY_ID).bind(id);
    optional(&mut **tx, query).await
}

async fn missing_in_tx(tx: &mut Tx<'_>, deploy_id: &str) -> StoreResult<Vec<Sha256>> {
    let query = sqlx::query_scalar(deploy_sql::MISSING).bind(deploy_id);
    let raw: Vec<String> = scalars(&mut **tx, query).await?;
    shas(raw)
}

/// The user's quota state, read for a write it limits. On PostgreSQL the user's row is
/// locked first, so writes of one user queue here on every app replica; the read is a
/// statement of its own, after the lock: under READ COMMITTED it takes a fresh snapshot,
/// which sees what the previous holder committed (a `SELECT ... FOR UPDATE` that waited
/// re-reads the locked row, but its subqueries would still count from the old snapshot).
/// SQLite has one writer, so nothing changes the state before this transaction commits.
async fn quota_in_tx(tx: &mut Tx<'_>, user_id: i64) -> StoreResult<UserQuota> {
    if LOCKS_ROWS {
        execute(&mut **tx, sqlx::query(quota_sql::LOCK_USER).bind(user_id)).await?;
    }
    let query = sqlx::query_as::<_, QuotaRow>(quota_sql::USER_QUOTA)
        .bind(user_id)
        .bind(hour_ago_ms(now_ms()));
    let row: Option<QuotaRow> = optional(&mut **tx, query).await?;
    let row = row.ok_or_else(|| other(format!("user {user_id} vanished")))?;
    Ok(row.into())
}

/// Recomputes the user's stored bytes (the row must be locked) and returns them.
async fn refresh_storage(tx: &mut Tx<'_>, user_id: i64) -> StoreResult<u64> {
    let query = sqlx::query_scalar(quota_sql::REFRESH_STORAGE).bind(user_id);
    let stored: i64 = scalar(&mut **tx, query).await?;
    Ok(count(stored))
}

/// Upserts `blobs` rows (refreshing `touched_at`) and `owner_blobs` rows, in hash order:
/// on PostgreSQL the upsert locks the rows, and a fixed order keeps two concurrent
/// deploys from deadlocking.
async fn record_owned_blobs(
    tx: &mut Tx<'_>,
    owner_id: i64,
    blobs: &[(&Sha256, u64)],
) -> StoreResult<()> {
    let unique: HashMap<&str, i64> = blobs
        .iter()
        .map(|(sha, size)| (sha.as_str(), *size as i64))
        .collect();
    let mut sorted: Vec<(&str, i64)> = unique.into_iter().collect();
    sorted.sort_unstable();
    let now = now_ms();
    for chunk in sorted.chunks(BIND_LIMIT / 3) {
        let mut upsert = QueryBuilder::<Db>::new(blob_sql::UPSERT);
        upsert.push_values(chunk, |mut row, (sha, size)| {
            row.push_bind(*sha).push_bind(*size).push_bind(now);
        });
        upsert.push(blob_sql::UPSERT_CONFLICT);
        upsert.build().execute(&mut **tx).await.map_err(map_err)?;
        let mut owned = QueryBuilder::<Db>::new(blob_sql::INSERT_OWNED);
        owned.push_values(chunk, |mut row, (sha, _)| {
            row.push_bind(owner_id).push_bind(*sha);
        });
        owned.push(blob_sql::INSERT_OWNED_CONFLICT);
        owned.build().execute(&mut **tx).await.map_err(map_err)?;
    }
    Ok(())
}

/// Records uploaded blobs as the owner's once `quotas` admits the bytes new to them, and
/// returns those bytes (`blobs` may name a digest twice; it counts once).
async fn admit_owned_uploads(
    tx: &mut Tx<'_>,
    owner_id: i64,
    blobs: &[(Sha256, u64)],
    quotas: &dyn QuotaPolicy,
) -> StoreResult<u64> {
    let quota = quota_in_tx(tx, owner_id).await?;
    let hashes: Vec<&Sha256> = blobs.iter().map(|(sha, _)| sha).collect();
    let owned = owned_sizes(tx, owner_id, &hashes).await?;
    let mut counted = HashSet::new();
    let adding: u64 = blobs
        .iter()
        .filter(|(sha, _)| !owned.contains_key(sha) && counted.insert(sha))
        .map(|(_, size)| size)
        .sum();
    quotas.admit(&quota, QuotaKind::StorageBytes, adding)?;
    let sized: Vec<(&Sha256, u64)> = blobs.iter().map(|(sha, size)| (sha, *size)).collect();
    record_owned_blobs(tx, owner_id, &sized).await?;
    Ok(adding)
}

/// Sizes of the blobs `owner_id` has among `hashes`; on PostgreSQL their rows are
/// share-locked, so garbage collection cannot delete them before this transaction commits.
async fn owned_sizes(
    tx: &mut Tx<'_>,
    owner_id: i64,
    hashes: &[&Sha256],
) -> StoreResult<HashMap<Sha256, u64>> {
    let mut list: Vec<&str> = hashes.iter().map(|h| h.as_str()).collect();
    list.sort_unstable();
    list.dedup();
    let mut found = HashMap::new();
    for chunk in list.chunks(BIND_LIMIT) {
        let mut query = QueryBuilder::<Db>::new(blob_sql::OWNED_SIZES);
        query.push_bind(owner_id).push(" AND b.sha256 IN (");
        let mut separated = query.separated(", ");
        for sha in chunk {
            separated.push_bind(*sha);
        }
        query.push(blob_sql::OWNED_SIZES_ORDER);
        if LOCKS_ROWS {
            query.push(blob_sql::SHARE_LOCK);
        }
        let rows: Vec<(String, i64)> = query
            .build_query_as()
            .fetch_all(&mut **tx)
            .await
            .map_err(map_err)?;
        for (raw, size) in rows {
            found.insert(sha(&raw)?, count(size));
        }
    }
    Ok(found)
}

/// The blobs `owner_id` has among `hashes`: their sizes, and whether a deploy of the
/// owner already references them; share-locked on PostgreSQL like [`owned_sizes`]. One
/// pass over the list: the sizes and the references used to be two `IN` queries.
async fn owned_for_deploy(
    tx: &mut Tx<'_>,
    owner_id: i64,
    hashes: &[&Sha256],
) -> StoreResult<HashMap<Sha256, (u64, bool)>> {
    let mut list: Vec<&str> = hashes.iter().map(|h| h.as_str()).collect();
    list.sort_unstable();
    list.dedup();
    let mut found = HashMap::with_capacity(list.len());
    for chunk in list.chunks(BIND_LIMIT) {
        let mut query = QueryBuilder::<Db>::new(blob_sql::OWNED_SIZES_REFERENCED);
        query.push_bind(owner_id).push(" AND b.sha256 IN (");
        let mut separated = query.separated(", ");
        for sha in chunk {
            separated.push_bind(*sha);
        }
        query.push(blob_sql::OWNED_SIZES_ORDER);
        if LOCKS_ROWS {
            query.push(blob_sql::SHARE_LOCK);
        }
        let rows: Vec<(String, i64, bool)> = query
            .build_query_as()
            .fetch_all(&mut **tx)
            .await
            .map_err(map_err)?;
        for (raw, size, referenced) in rows {
            found.insert(sha(&raw)?, (count(size), referenced));
        }
    }
    Ok(found)
}

/// Inserts a deploy's file list and the hashes it still waits for.
async fn insert_files(
    tx: &mut Tx<'_>,
    deploy_id: &str,
    files: &[ManifestEntry],
    required: &[Sha256],
) -> StoreResult<()> {
    for chunk in files.chunks(BIND_LIMIT / 4) {
        let mut insert = QueryBuilder::<Db>::new(deploy_sql::INSERT_FILES);
        insert.push_values(chunk, |mut row, file| {
            row.push_bind(deploy_id)
                .push_bind(file.path.as_str())
                .push_bind(file.sha256.as_str())
                .push_bind(file.size as i64);
        });
        insert.build().execute(&mut **tx).await.map_err(map_err)?;
    }
    for chunk in required.chunks(BIND_LIMIT / 2) {
        let mut insert = QueryBuilder::<Db>::new(deploy_sql::INSERT_MISSING);
        insert.push_values(chunk, |mut row, sha| {
            row.push_bind(deploy_id).push_bind(sha.as_str());
        });
        insert.build().execute(&mut **tx).await.map_err(map_err)?;
    }
    Ok(())
}

impl This {
    /// Recomputes a user's stored bytes in a transaction of its own, under the user lock,
    /// after a write that lowered them committed (taking the user lock while holding a
    /// site's or deploy's row would invert the order a deploy takes them in). A failure is
    /// logged, not returned: the write itself is done, and the counter stays too high
    /// (never too low) until the user's next deploy recomputes it.
    async fn refresh_storage_of(&self, user_id: i64) {
        let refreshed = async {
            let mut tx = self.writer().begin().await.map_err(map_err)?;
            quota_in_tx(&mut tx, user_id).await?;
            refresh_storage(&mut tx, user_id).await?;
            tx.commit().await.map_err(map_err)
        };
        if let Err(e) = refreshed.await {
            tracing::warn!(user.id = user_id, error = %e, "recomputing stored bytes failed");
        }
    }
}

#[async_trait]
impl Store for This {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(self.writer())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    fn write_position(&self) -> Option<u64> {
        self.position()
    }

    fn observe_write(&self, position: u64) {
        self.observe(position);
    }

    fn replica_status(&self) -> Option<&'static str> {
        self.replica_state()
    }

    async fn count_users(&self) -> StoreResult<u64> {
        let users: i64 = scalar(self.writer(), sqlx::query_scalar(user_sql::COUNT)).await?;
        Ok(count(users))
    }

    async fn create_user(
        &self,
        username: &str,
        role: Role,
        password_hash: Option<&str>,
    ) -> StoreResult<UserRecord> {
        let query = sqlx::query_as::<_, UserRow>(user_sql::INSERT)
            .bind(username)
            .bind(role_str(role))
            .bind(password_hash)
            .bind(now_ms());
        one(self.writer(), query).await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        let query = sqlx::query_as::<_, UserRow>(user_sql::ALL);
        all(self.reader(), query).await
    }

    async fn set_user_disabled(
        &self,
        user_id: i64,
        disabled: bool,
    ) -> StoreResult<Option<UserRecord>> {
        let query = sqlx::query_as::<_, UserRow>(user_sql::SET_DISABLED)
            .bind(disabled)
            .bind(user_id);
        optional(self.writer(), query).await
    }

    async fn user_by_id(&self, user_id: i64) -> StoreResult<Option<UserRecord>> {
        let query = sqlx::query_as::<_, UserRow>(user_sql::BY_ID).bind(user_id);
        optional(self.writer(), query).await
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let query = sqlx::query_as::<_, UserRow>(user_sql::BY_NAME).bind(username);
        optional(self.writer(), query).await
    }

    async fn set_password(&self, user_id: i64, password_hash: &str) -> StoreResult<bool> {
        let query = sqlx::query(user_sql::SET_PASSWORD)
            .bind(password_hash)
            .bind(user_id);
        Ok(execute(self.writer(), query).await? > 0)
    }

    async fn create_session(&self, id_hash: &str, session: &SessionRecord) -> StoreResult<()> {
        let query = sqlx::query(session_sql::INSERT)
            .bind(id_hash)
            .bind(session.user_id)
            .bind(&session.csrf_token)
            .bind(now_ms())
            .bind(session.expires_at.timestamp_millis());
        execute(self.writer(), query).await?;
        Ok(())
    }

    /// On the writer: a session created a moment ago must be visible at once.
    async fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        let query = sqlx::query_as::<_, SessionRow>(session_sql::LIVE)
            .bind(id_hash)
            .bind(now_ms());
        optional(self.writer(), query).await
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        let query = sqlx::query(session_sql::DELETE).bind(id_hash);
        execute(self.writer(), query).await?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: i64) -> StoreResult<()> {
        let query = sqlx::query(session_sql::DELETE_OF_USER).bind(user_id);
        execute(self.writer(), query).await?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let query = sqlx::query(session_sql::DELETE_EXPIRED).bind(now.timestamp_millis());
        let done = execute(self.writer(), query).await?;
        Ok(done)
    }

    async fn create_token(
        &self,
        user_id: i64,
        name: &str,
        secret_hash: &str,
    ) -> StoreResult<TokenRecord> {
        let query = sqlx::query_as::<_, TokenRow>(token_sql::INSERT)
            .bind(user_id)
            .bind(name)
            .bind(secret_hash)
            .bind(now_ms());
        one(self.writer(), query).await
    }

    async fn list_tokens(&self, user_id: i64) -> StoreResult<Vec<TokenRecord>> {
        let query = sqlx::query_as::<_, TokenRow>(token_sql::OF_USER).bind(user_id);
        all(self.reader(), query).await
    }

    async fn delete_token(&self, user_id: i64, token_id: i64) -> StoreResult<bool> {
        let query = sqlx::query(token_sql::DELETE).bind(token_id).bind(user_id);
        Ok(execute(self.writer(), query).await? > 0)
    }

    async fn authenticate(&self, secret_hash: &str) -> StoreResult<Option<UserRecord>> {
        let query = sqlx::query_as::<_, AuthRow>(token_sql::AUTHENTICATE).bind(secret_hash);
        let row: Option<AuthRow> = optional(self.reader(), query).await?;
        let Some(row) = row else { return Ok(None) };
        let now = now_ms();
        if row
            .last_used_at
            .is_none_or(|at| now - at > token_sql::USE_PRECISION_MS)
        {
            let query = sqlx::query(token_sql::MARK_USED)
                .bind(now)
                .bind(row.token_id);
            execute(self.writer(), query).await?;
        }
        Ok(Some(row.user.into()))
    }

    async fn create_site(
        &self,
        owner_id: i64,
        name: &str,
        quotas: &dyn QuotaPolicy,
    ) -> StoreResult<SiteRecord> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        let quota = quota_in_tx(&mut tx, owner_id).await?;
        quotas.admit(&quota, QuotaKind::Sites, 1)?;
        let query = sqlx::query_as::<_, SiteRow>(site_sql::INSERT)
            .bind(owner_id)
            .bind(name)
            .bind(now_ms());
        let row: SiteRow = one(&mut *tx, query).await?;
        tx.commit().await.map_err(map_err)?;
        self.note_write().await;
        Ok(row.into())
    }

    async fn list_sites(&self, owner_id: i64) -> StoreResult<Vec<SiteRecord>> {
        let rows: Vec<SiteRow> = routed_read!(self, |pool| sqlx::query_as(site_sql::OF_OWNER)
            .bind(owner_id)
            .fetch_all(pool)
            .await)
        .map_err(map_err)?;
        Ok(records(rows))
    }

    async fn site(&self, owner_id: i64, name: &str) -> StoreResult<Option<SiteRecord>> {
        let query = sqlx::query_as::<_, SiteRow>(site_sql::BY_NAME)
            .bind(owner_id)
            .bind(name);
        optional(self.writer(), query).await
    }

    async fn delete_site(&self, owner_id: i64, name: &str) -> StoreResult<bool> {
        let query = sqlx::query(site_sql::DELETE).bind(owner_id).bind(name);
        let done = execute(self.writer(), query).await?;
        self.note_write().await;
        // The site's files no longer count unless another deploy of the owner has them.
        self.refresh_storage_of(owner_id).await;
        Ok(done > 0)
    }

    async fn create_deploy(
        &self,
        new: NewDeploy,
        quotas: &dyn QuotaPolicy,
    ) -> StoreResult<CreatedDeploy> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        if let Some((key, fingerprint)) = &new.idempotency {
            lock_idempotency_key(&mut tx, key, new.site_id)
                .await
                .map_err(map_err)?;
            let query = sqlx::query_as::<_, EarlierRow>(deploy_sql::BY_IDEMPOTENCY_KEY)
                .bind(new.site_id)
                .bind(key);
            let earlier: Option<EarlierRow> = optional(&mut *tx, query).await?;
            if let Some(earlier) = earlier {
                if earlier.request_fingerprint.as_deref() != Some(fingerprint.as_str()) {
                    return Ok(CreatedDeploy::KeyReused);
                }
                let deploy = deploy_in_tx(&mut tx, &earlier.id)
                    .await?
                    .ok_or_else(|| other("deploy vanished"))?;
                let required = missing_in_tx(&mut tx, &earlier.id).await?;
                return Ok(CreatedDeploy::Replayed { deploy, required });
            }
        }

        let quota = quota_in_tx(&mut tx, new.owner_id).await?;
        quotas.admit(&quota, QuotaKind::DeploysPerHour, 1)?;
        let mut files = new.files;
        let mut required = Vec::new();
        if new.files_uploaded {
            let blobs: Vec<(&Sha256, u64)> = files.iter().map(|f| (&f.sha256, f.size)).collect();
            record_owned_blobs(&mut tx, new.owner_id, &blobs).await?;
        }
        // The owner's blobs this deploy references (archives: all of them), with their
        // sizes, and whether an earlier deploy of the owner references them already: the
        // others start counting towards the stored bytes. Looked up by this deploy's hashes,
        // so the cost grows with the deploy, not with everything the owner stores.
        let hashes: Vec<&Sha256> = files
            .iter()
            .map(|f| &f.sha256)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let owned = owned_for_deploy(&mut tx, new.owner_id, &hashes).await?;
        if !new.files_uploaded {
            for file in &mut files {
                match owned.get(&file.sha256) {
                    Some((size, _)) => file.size = *size,
                    None => required.push(file.sha256.clone()),
                }
            }
            required.sort();
            required.dedup();
        }

        let state = if required.is_empty() {
            DeployState::Ready
        } else {
            DeployState::Uploading
        };
        let total: u64 = files.iter().map(|f| f.size).sum();
        let (key, fingerprint) = new.idempotency.unzip();
        let query = sqlx::query(deploy_sql::INSERT)
            .bind(new.id.as_str())
            .bind(new.site_id)
            .bind(new.created_by)
            .bind(state_str(state))
            .bind(files.len() as i64)
            .bind(total as i64)
            .bind(now_ms())
            .bind(key)
            .bind(fingerprint)
            .bind(new.message.as_deref());
        execute(&mut *tx, query).await?;
        let adding: u64 = owned
            .values()
            .filter(|(_, referenced)| !referenced)
            .map(|(size, _)| size)
            .sum();
        quotas.admit(&quota, QuotaKind::StorageBytes, adding)?;
        insert_files(&mut tx, new.id.as_str(), &files, &required).await?;
        if adding > 0 {
            let query = sqlx::query(quota_sql::ADD_STORAGE)
                .bind(new.owner_id)
                .bind(adding as i64);
            execute(&mut *tx, query).await?;
        }
        let now = now_ms();
        let query = sqlx::query(quota_sql::PRUNE_DEPLOY_LOG)
            .bind(new.owner_id)
            .bind(hour_ago_ms(now));
        execute(&mut *tx, query).await?;
        let query = sqlx::query(quota_sql::LOG_DEPLOY)
            .bind(new.owner_id)
            .bind(now);
        execute(&mut *tx, query).await?;
        let deploy = deploy_in_tx(&mut tx, new.id.as_str())
            .await?
            .ok_or_else(|| other("deploy vanished"))?;
        tx.commit().await.map_err(map_err)?;
        self.note_write().await;
        Ok(CreatedDeploy::Created { deploy, required })
    }

    async fn deploy(&self, owner_id: i64, id: &str) -> StoreResult<Option<DeployRecord>> {
        let query = sqlx::query_as::<_, DeployRow>(deploy_sql::BY_ID_OF_OWNER)
            .bind(id)
            .bind(owner_id);
        optional(self.writer(), query).await
    }

    async fn list_deploys(&self, owner_id: i64, site_id: i64) -> StoreResult<Vec<DeployRecord>> {
        let query = deploy_sql::of_site(SEQ);
        let rows: Vec<DeployRow> = routed_read!(self, |pool| sqlx::query_as(&query)
            .bind(site_id)
            .bind(owner_id)
            .fetch_all(pool)
            .await)
        .map_err(map_err)?;
        Ok(records(rows))
    }

    async fn manifest(&self, deploy_id: &str) -> StoreResult<Vec<ManifestEntry>> {
        self.manifest_rows(deploy_id)
            .await?
            .into_iter()
            .map(ManifestEntry::try_from)
            .collect()
    }

    async fn missing_blobs(&self, deploy_id: &str) -> StoreResult<Vec<Sha256>> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
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
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        let query = sqlx::query(deploy_sql::HAS_FILE)
            .bind(deploy_id)
            .bind(sha256.as_str());
        let in_deploy = exists(&mut *tx, query).await?;
        if !in_deploy {
            return Ok(UploadOutcome::NotInDeploy);
        }
        let quota = quota_in_tx(&mut tx, owner_id).await?;
        let query = sqlx::query(quota_sql::OWNS_BLOB)
            .bind(owner_id)
            .bind(sha256.as_str());
        let owned = exists(&mut *tx, query).await?;
        // A blob new to the owner is referenced by this deploy, so it now counts.
        let adding = if owned { 0 } else { size };
        quotas.admit(&quota, QuotaKind::StorageBytes, adding)?;
        record_owned_blobs(&mut tx, owner_id, &[(sha256, size)]).await?;
        if adding > 0 {
            let query = sqlx::query(quota_sql::ADD_STORAGE)
                .bind(owner_id)
                .bind(adding as i64);
            execute(&mut *tx, query).await?;
        }
        let query = sqlx::query(deploy_sql::NO_LONGER_MISSING)
            .bind(deploy_id)
            .bind(sha256.as_str());
        let removed = execute(&mut *tx, query).await?;
        let mut now_ready = false;
        if removed > 0 {
            let query = sqlx::query(deploy_sql::SET_FILE_SIZE)
                .bind(size as i64)
                .bind(deploy_id)
                .bind(sha256.as_str());
            execute(&mut *tx, query).await?;
            if LOCKS_ROWS {
                execute(&mut *tx, sqlx::query(deploy_sql::LOCK).bind(deploy_id)).await?;
            }
            let query = sqlx::query_scalar(deploy_sql::COUNT_MISSING).bind(deploy_id);
            let left: i64 = scalar(&mut *tx, query).await?;
            if left == 0 {
                let query = sqlx::query(deploy_sql::MARK_READY).bind(deploy_id);
                execute(&mut *tx, query).await?;
                now_ready = true;
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(UploadOutcome::Accepted { now_ready })
    }

    async fn publish(&self, owner_id: i64, deploy_id: &str) -> StoreResult<Option<DeployRecord>> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        let Some(deploy) = deploy_in_tx(&mut tx, deploy_id).await? else {
            return Ok(None);
        };
        if deploy.owner_id != owner_id || deploy.state != DeployState::Ready {
            return Ok(None);
        }
        let now = now_ms();
        let query = sqlx::query(site_sql::SET_LIVE)
            .bind(deploy_id)
            .bind(now)
            .bind(deploy.site_id);
        execute(&mut *tx, query).await?;
        let query = sqlx::query(deploy_sql::SET_PUBLISHED)
            .bind(now)
            .bind(deploy_id);
        execute(&mut *tx, query).await?;
        let deploy = deploy_in_tx(&mut tx, deploy_id).await?;
        tx.commit().await.map_err(map_err)?;
        self.note_write().await;
        Ok(deploy)
    }

    async fn previous_live(
        &self,
        owner_id: i64,
        site_id: i64,
    ) -> StoreResult<Option<DeployRecord>> {
        let sql = deploy_sql::previous_live(SEQ);
        let query = sqlx::query_as::<_, DeployRow>(&sql)
            .bind(site_id)
            .bind(owner_id);
        optional(self.writer(), query).await
    }

    async fn user_quota(&self, user_id: i64) -> StoreResult<Option<UserQuota>> {
        let query = sqlx::query_as::<_, QuotaRow>(quota_sql::USER_QUOTA)
            .bind(user_id)
            .bind(hour_ago_ms(now_ms()));
        optional(self.reader(), query).await
    }

    async fn set_user_quota(&self, user_id: i64, overrides: &QuotaOverrides) -> StoreResult<bool> {
        let query = sqlx::query(quota_sql::SET_OVERRIDES)
            .bind(user_id)
            .bind(quota_sql::override_column(overrides.storage_bytes))
            .bind(quota_sql::override_column(overrides.sites))
            .bind(quota_sql::override_column(overrides.deploys_per_hour));
        let done = execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(done > 0)
    }

    async fn counted_blobs(&self, owner_id: i64) -> StoreResult<HashSet<Sha256>> {
        let query = sqlx::query_scalar(quota_sql::COUNTED_BLOBS).bind(owner_id);
        let raw: Vec<String> = scalars(self.reader(), query).await?;
        shas(raw)
    }

    async fn has_blobs(&self, owner_id: i64, hashes: &[Sha256]) -> StoreResult<HashSet<Sha256>> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        let refs: Vec<&Sha256> = hashes.iter().collect();
        Ok(owned_sizes(&mut tx, owner_id, &refs)
            .await?
            .into_keys()
            .collect())
    }

    async fn touch_blob(&self, sha256: &Sha256, size: u64) -> StoreResult<()> {
        let query = sqlx::query(blob_sql::TOUCH)
            .bind(sha256.as_str())
            .bind(size as i64)
            .bind(now_ms());
        execute(self.writer(), query).await?;
        Ok(())
    }

    async fn live_deploy(&self, site: &str) -> StoreResult<Option<LiveDeploy>> {
        let row: Option<LiveRow> =
            routed_read!(self, |pool| sqlx::query_as(deploy_sql::LIVE_OF_SITE)
                .bind(site)
                .fetch_optional(pool)
                .await)
            .map_err(map_err)?;
        Ok(row.map(LiveDeploy::from))
    }

    async fn sites_serving(&self, sites: &[String]) -> StoreResult<Vec<SiteServing>> {
        let mut found = Vec::with_capacity(sites.len());
        for chunk in sites.chunks(BIND_LIMIT) {
            let rows: Vec<ServingRow> = routed_read!(self, |pool| {
                let mut query = QueryBuilder::<Db>::new(deploy_sql::SERVING_OF_SITES);
                let mut separated = query.separated(", ");
                for site in chunk {
                    separated.push_bind(site.as_str());
                }
                query.push(")");
                query.build_query_as().fetch_all(pool).await
            })
            .map_err(map_err)?;
            found.extend(rows.into_iter().map(SiteServing::from));
        }
        Ok(found)
    }

    async fn preview_deploy(&self, site: &str, deploy_id: &str) -> StoreResult<Option<LiveDeploy>> {
        let row: Option<LiveRow> = routed_read!(self, |pool| sqlx::query_as(deploy_sql::PREVIEW)
            .bind(site)
            .bind(deploy_id)
            .fetch_optional(pool)
            .await)
        .map_err(map_err)?;
        Ok(row.map(LiveDeploy::from))
    }

    async fn expire_deploys(&self, cutoff: DateTime<Utc>) -> StoreResult<Vec<(String, i64)>> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        let query = sqlx::query_scalar(deploy_sql::EXPIRE).bind(cutoff.timestamp_millis());
        let ids: Vec<String> = scalars(&mut *tx, query).await?;
        let mut owners = HashSet::new();
        let mut expired = Vec::with_capacity(ids.len());
        for id in ids {
            let owner: Option<i64> =
                optional_scalar(&mut *tx, sqlx::query_scalar(deploy_sql::OWNER).bind(&id)).await?;
            owners.extend(owner);
            for statement in [deploy_sql::DROP_FILES, deploy_sql::DROP_MISSING] {
                execute(&mut *tx, sqlx::query(statement).bind(&id)).await?;
            }
            expired.extend(owner.map(|owner| (id, owner)));
        }
        tx.commit().await.map_err(map_err)?;
        // Files uploaded only for an abandoned deploy stop counting.
        for owner in owners {
            self.refresh_storage_of(owner).await;
        }
        Ok(expired)
    }

    async fn unreferenced_blobs(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Sha256>> {
        let query = sqlx::query_scalar(blob_sql::UNREFERENCED)
            .bind(cutoff.timestamp_millis())
            .bind(i64::from(limit));
        let raw: Vec<String> = scalars(self.reader(), query).await?;
        shas(raw)
    }

    /// On PostgreSQL the blob row is locked first, then re-checked with a fresh snapshot
    /// (READ COMMITTED): a deploy that share-locked the row has committed its file list by
    /// then, and an upload that touched it has moved `touched_at`. Bytes kept in the
    /// database go in the same transaction, so a row never outlives its bytes or the
    /// other way round.
    async fn forget_blob(&self, sha256: &Sha256, cutoff: DateTime<Utc>) -> StoreResult<bool> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        if LOCKS_ROWS {
            let locked =
                exists(&mut *tx, sqlx::query(blob_sql::LOCK).bind(sha256.as_str())).await?;
            if !locked {
                return Ok(false);
            }
        }
        let query = sqlx::query(blob_sql::FORGET)
            .bind(sha256.as_str())
            .bind(cutoff.timestamp_millis());
        let done = execute(&mut *tx, query).await?;
        let forgotten = done > 0;
        if forgotten && CONTENTS_IN_DB {
            let query = sqlx::query(blob_sql::FORGET_CONTENTS).bind(sha256.as_str());
            execute(&mut *tx, query).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(forgotten)
    }

    async fn add_domain(&self, new: NewDomain) -> StoreResult<DomainRecord> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        let claim_sql = if LOCKS_ROWS {
            format!("{}{}", domain_sql::CLAIM, domain_sql::LOCK_CLAIM)
        } else {
            domain_sql::CLAIM.to_owned()
        };
        let existing: Option<ClaimRow> = sqlx::query_as(&claim_sql)
            .bind(&new.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        // Claims are stored at millisecond precision; so is the bound they are compared with.
        let bound = time(new.replace_unverified_before.timestamp_millis());
        let claim = existing.as_ref().map(ClaimRow::claim);
        match claims::decide(claim.as_ref(), new.owner_id, bound) {
            ClaimDecision::Free => {}
            ClaimDecision::Refuse(why) => return Err(StoreError::Conflict(why.what())),
            ClaimDecision::Replace => {
                let id = existing.as_ref().map(|row| row.id);
                execute(&mut *tx, sqlx::query(domain_sql::DELETE_BY_ID).bind(id)).await?;
            }
        }
        let query = sqlx::query_scalar(domain_sql::INSERT)
            .bind(&new.name)
            .bind(new.site_id)
            .bind(&new.token)
            .bind(now_ms())
            .bind(new.next_check_at.timestamp_millis());
        let id: i64 = scalar(&mut *tx, query).await?;
        let row: DomainRow = sqlx::query_as(domain_sql::BY_ID)
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        self.note_write().await;
        Ok(row.into())
    }

    async fn list_domains(&self, owner_id: i64, site_id: i64) -> StoreResult<Vec<DomainRecord>> {
        let query = sqlx::query_as::<_, DomainRow>(domain_sql::OF_SITE)
            .bind(owner_id)
            .bind(site_id);
        all(self.reader(), query).await
    }

    async fn domain(
        &self,
        owner_id: i64,
        site_id: i64,
        name: &str,
    ) -> StoreResult<Option<DomainRecord>> {
        let query = sqlx::query_as::<_, DomainRow>(domain_sql::BY_NAME)
            .bind(owner_id)
            .bind(site_id)
            .bind(name);
        optional(self.reader(), query).await
    }

    async fn delete_domain(&self, owner_id: i64, site_id: i64, name: &str) -> StoreResult<bool> {
        let query = sqlx::query(domain_sql::DELETE)
            .bind(name)
            .bind(site_id)
            .bind(owner_id);
        let done = execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(done > 0)
    }

    async fn record_domain_check(&self, id: i64, check: &DomainCheck) -> StoreResult<()> {
        let now = now_ms();
        let status = domain_status_str(check.status);
        let query = sqlx::query(domain_sql::RECORD_CHECK)
            .bind(status)
            .bind(&check.detail)
            .bind(now)
            .bind(status)
            .bind(now)
            .bind(i64::from(check.failures))
            .bind(check.next_check_at.timestamp_millis())
            .bind(id);
        execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(())
    }

    async fn domains_due(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<DomainRecord>> {
        let query = sqlx::query_as::<_, DomainRow>(domain_sql::DUE)
            .bind(now.timestamp_millis())
            .bind(i64::from(limit));
        all(self.writer(), query).await
    }

    async fn domain_live_deploy(&self, name: &str) -> StoreResult<Option<LiveDeploy>> {
        let row: Option<LiveRow> =
            routed_read!(self, |pool| sqlx::query_as(domain_sql::LIVE_DEPLOY)
                .bind(name)
                .fetch_optional(pool)
                .await)
            .map_err(map_err)?;
        Ok(row.map(LiveDeploy::from))
    }

    async fn domain_token(&self, name: &str) -> StoreResult<Option<String>> {
        let query = sqlx::query_scalar(domain_sql::TOKEN).bind(name);
        optional_scalar(self.reader(), query).await
    }

    async fn site_domains(&self, site: &str) -> StoreResult<Vec<String>> {
        let query = sqlx::query_scalar(domain_sql::OF_SITE_NAMED).bind(site);
        scalars(self.writer(), query).await
    }

    async fn certificates_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueCertificate>> {
        let query = sqlx::query_as::<_, DueRow>(cert_sql::DUE)
            .bind(now.timestamp_millis())
            .bind(i64::from(limit));
        all(self.writer(), query).await
    }

    async fn lease_certificate(
        &self,
        domain_id: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let query = sqlx::query(cert_sql::LEASE)
            .bind(certificate_status_str(CertificateStatus::Pending))
            .bind(now.timestamp_millis())
            .bind(until.timestamp_millis())
            .bind(domain_id);
        let done = execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(done > 0)
    }

    async fn release_certificate_lease(
        &self,
        domain_id: i64,
        until: DateTime<Utc>,
    ) -> StoreResult<()> {
        let query = sqlx::query(cert_sql::RELEASE)
            .bind(domain_id)
            .bind(until.timestamp_millis());
        execute(self.writer(), query).await?;
        Ok(())
    }

    async fn record_certificate_issued(
        &self,
        domain_id: i64,
        issued: &IssuedCertificate,
    ) -> StoreResult<()> {
        let query = sqlx::query(cert_sql::ISSUED)
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
            .bind(domain_id);
        execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(())
    }

    async fn record_certificate_failure(
        &self,
        domain_id: i64,
        failure: &CertificateFailure,
    ) -> StoreResult<()> {
        let query = sqlx::query(cert_sql::FAILED)
            .bind(certificate_status_str(CertificateStatus::Failed))
            .bind(i64::from(failure.failures))
            .bind(&failure.error)
            .bind(failure.next_attempt_at.timestamp_millis())
            .bind(now_ms())
            .bind(domain_id);
        execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(())
    }

    async fn request_certificate(&self, domain_id: i64, now: DateTime<Utc>) -> StoreResult<()> {
        let query = sqlx::query(cert_sql::REQUEST)
            .bind(certificate_status_str(CertificateStatus::Pending))
            .bind(now.timestamp_millis())
            .bind(domain_id);
        execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(())
    }

    async fn certificate(&self, domain_id: i64) -> StoreResult<Option<CertificateRecord>> {
        let query = sqlx::query_as::<_, CertificateRow>(cert_sql::OF_DOMAIN).bind(domain_id);
        optional(self.writer(), query).await
    }

    async fn served_certificates(&self) -> StoreResult<Vec<CertificateRecord>> {
        let query = sqlx::query_as::<_, CertificateRow>(cert_sql::SERVED);
        all(self.writer(), query).await
    }

    async fn site_certificates(&self, site_id: i64) -> StoreResult<Vec<CertificateRecord>> {
        let query = sqlx::query_as::<_, CertificateRow>(cert_sql::OF_SITE).bind(site_id);
        all(self.writer(), query).await
    }

    async fn certificate_expiries(&self, limit: u32) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(cert_sql::EXPIRIES)
            .bind(i64::from(limit))
            .fetch_all(self.writer())
            .await
            .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(domain, not_after)| (domain, time(not_after)))
            .collect())
    }

    async fn certificate_counts(&self) -> StoreResult<Vec<(CertificateStatus, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(cert_sql::COUNTS)
            .fetch_all(self.writer())
            .await
            .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(status, n)| (cert_sql::parse_certificate_status(&status), count(n)))
            .collect())
    }

    async fn acme_account(&self, directory: &str) -> StoreResult<Option<Vec<u8>>> {
        let query = sqlx::query_scalar(cert_sql::ACME_ACCOUNT).bind(directory);
        optional_scalar(self.writer(), query).await
    }

    async fn save_acme_account(
        &self,
        directory: &str,
        sealed: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<u8>> {
        let query = sqlx::query_scalar(cert_sql::SAVE_ACME_ACCOUNT)
            .bind(directory)
            .bind(sealed)
            .bind(now.timestamp_millis());
        let stored = scalar(self.writer(), query).await?;
        self.note_write().await;
        Ok(stored)
    }

    async fn forget_acme_account(&self, directory: &str, sealed: &[u8]) -> StoreResult<()> {
        let query = sqlx::query(cert_sql::FORGET_ACME_ACCOUNT)
            .bind(directory)
            .bind(sealed);
        execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(())
    }

    async fn set_alias(
        &self,
        owner_id: i64,
        site_id: i64,
        name: &str,
        deploy_id: &str,
    ) -> StoreResult<bool> {
        let query = sqlx::query(alias_sql::UPSERT)
            .bind(site_id)
            .bind(name)
            .bind(deploy_id)
            .bind(now_ms())
            .bind(owner_id);
        let done = execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(done > 0)
    }

    async fn list_aliases(&self, owner_id: i64, site_id: i64) -> StoreResult<Vec<AliasRecord>> {
        let query = sqlx::query_as::<_, AliasRow>(alias_sql::OF_SITE)
            .bind(owner_id)
            .bind(site_id);
        all(self.writer(), query).await
    }

    async fn delete_alias(&self, owner_id: i64, site_id: i64, name: &str) -> StoreResult<bool> {
        let query = sqlx::query(alias_sql::DELETE)
            .bind(site_id)
            .bind(name)
            .bind(owner_id);
        let done = execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(done > 0)
    }

    async fn alias_deploy(&self, site: &str, alias: &str) -> StoreResult<Option<LiveDeploy>> {
        let row: Option<LiveRow> = routed_read!(self, |pool| sqlx::query_as(alias_sql::DEPLOY)
            .bind(site)
            .bind(alias)
            .fetch_optional(pool)
            .await)
        .map_err(map_err)?;
        Ok(row.map(LiveDeploy::from))
    }

    async fn set_protection(
        &self,
        owner_id: i64,
        site_id: i64,
        protection: &ProtectionRecord,
    ) -> StoreResult<bool> {
        let query = sqlx::query(alias_sql::SET_PROTECTION)
            .bind(site_id)
            .bind(protection.scope.as_str())
            .bind(&protection.password_hash)
            .bind(&protection.cookie_key)
            .bind(protection.updated_at.timestamp_millis())
            .bind(owner_id);
        let done = execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(done > 0)
    }

    async fn delete_protection(&self, owner_id: i64, site_id: i64) -> StoreResult<bool> {
        let query = sqlx::query(alias_sql::DELETE_PROTECTION)
            .bind(site_id)
            .bind(owner_id);
        let done = execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(done > 0)
    }

    async fn protection(
        &self,
        owner_id: i64,
        site_id: i64,
    ) -> StoreResult<Option<ProtectionRecord>> {
        let query = sqlx::query_as::<_, ProtectionRow>(alias_sql::PROTECTION_OF_OWNER)
            .bind(owner_id)
            .bind(site_id);
        optional(self.writer(), query).await
    }

    async fn site_protection(&self, site: &str) -> StoreResult<Option<ProtectionRecord>> {
        let row: Option<ProtectionRow> =
            routed_read!(self, |pool| sqlx::query_as(alias_sql::PROTECTION_OF_SITE)
                .bind(site)
                .fetch_optional(pool)
                .await)
            .map_err(map_err)?;
        Ok(row.map(ProtectionRecord::from))
    }

    async fn domain_protection(&self, domain: &str) -> StoreResult<Option<ProtectionRecord>> {
        let row: Option<ProtectionRow> =
            routed_read!(self, |pool| sqlx::query_as(alias_sql::PROTECTION_OF_DOMAIN)
                .bind(domain)
                .fetch_optional(pool)
                .await)
            .map_err(map_err)?;
        Ok(row.map(ProtectionRecord::from))
    }
    async fn add_analytics(&self, batch: &AnalyticsBatch) -> StoreResult<()> {
        // Rows in one order on every replica: concurrent flushes lock the same rows in the
        // same order and never deadlock. A few multi-row statements per transaction of
        // many sites: one transaction and nine statements per site made a flush at
        // thousands of sites cost more CPU than serving them (issue 23).
        let mut buckets: Vec<&BucketIncrement> = batch.buckets.iter().collect();
        buckets.sort_by_key(|b| (b.site_id, b.granularity, b.start));
        let mut top: Vec<&TopIncrement> = batch.top.iter().collect();
        top.sort_by(|a, b| {
            (a.site_id, a.granularity, a.start, a.kind, &a.key).cmp(&(
                b.site_id,
                b.granularity,
                b.start,
                b.kind,
                &b.key,
            ))
        });
        let mut failed = None;
        for chunk in buckets.chunks(analytics_sql::BUCKETS_PER_TRANSACTION) {
            let added = async {
                let mut tx = self.writer().begin().await.map_err(map_err)?;
                add_to_buckets(&mut tx, chunk).await?;
                tx.commit().await.map_err(map_err)
            };
            if let Err(e) = added.await {
                failed = Some(e);
            }
        }
        for chunk in top.chunks(BIND_LIMIT / 6) {
            let mut upsert = QueryBuilder::<Db>::new(analytics_sql::ADD_TOP);
            upsert.push_values(chunk, |mut row, entry| {
                row.push_bind(entry.site_id)
                    .push_bind(entry.granularity.as_str())
                    .push_bind(entry.start)
                    .push_bind(entry.kind.as_str())
                    .push_bind(entry.key.as_str())
                    .push_bind(i64::try_from(entry.count).unwrap_or(i64::MAX));
            });
            upsert.push(analytics_sql::ADD_TOP_CONFLICT);
            if let Err(e) = upsert
                .build()
                .persistent(false)
                .execute(self.writer())
                .await
            {
                failed = Some(map_err(e));
            }
        }
        self.note_write().await;
        failed.map_or(Ok(()), Err)
    }

    async fn analytics_buckets(
        &self,
        site_id: i64,
        granularity: Granularity,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<BucketRecord>> {
        let query = sqlx::query_as::<_, BucketRow>(analytics_sql::BUCKETS)
            .bind(site_id)
            .bind(granularity.as_str())
            .bind(from)
            .bind(to);
        all(self.writer(), query).await
    }

    async fn analytics_top(
        &self,
        site_id: i64,
        granularity: Granularity,
        (from, to): (i64, i64),
        kind: TopKind,
        limit: u32,
    ) -> StoreResult<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(analytics_sql::TOP)
            .bind(site_id)
            .bind(granularity.as_str())
            .bind(from)
            .bind(to)
            .bind(kind.as_str())
            .bind(i64::from(limit))
            .fetch_all(self.writer())
            .await
            .map_err(map_err)?;
        Ok(rows.into_iter().map(|(key, n)| (key, count(n))).collect())
    }

    async fn prune_analytics(&self, cutoffs: &AnalyticsCutoffs) -> StoreResult<u64> {
        let mut deleted = 0;
        for (granularity, cutoff) in [
            (Granularity::Minute, cutoffs.minute),
            (Granularity::Hour, cutoffs.hour),
            (Granularity::Day, cutoffs.day),
        ] {
            for statement in [analytics_sql::PRUNE_BUCKETS, analytics_sql::PRUNE_TOP] {
                let query = sqlx::query(statement)
                    .bind(granularity.as_str())
                    .bind(cutoff);
                deleted += execute(self.writer(), query).await?;
            }
        }
        let query = sqlx::query(analytics_sql::TRIM_TOP)
            .bind(cutoffs.closed_before)
            .bind(i64::from(cutoffs.top_keep))
            .bind(cutoffs.trim_from);
        deleted += execute(self.writer(), query).await?;
        let query = sqlx::query(analytics_sql::PRUNE_SALTS).bind(cutoffs.salt_day);
        deleted += execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(deleted)
    }

    async fn analytics_salt(&self, day: i64, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        let query = sqlx::query(analytics_sql::ADD_SALT)
            .bind(day)
            .bind(candidate);
        execute(self.writer(), query).await?;
        self.note_write().await;
        let query = sqlx::query_scalar(analytics_sql::SALT).bind(day);
        scalar(self.writer(), query).await
    }

    async fn site_of_any_owner(&self, name: &str) -> StoreResult<Option<SiteRecord>> {
        let query = sqlx::query_as::<_, SiteRow>(analytics_sql::SITE_ANY_OWNER).bind(name);
        optional(self.writer(), query).await
    }

    async fn deploy_digests(&self, deploy_id: &str) -> StoreResult<HashSet<Sha256>> {
        let query = sqlx::query_scalar(blob_sql::DEPLOY_DIGESTS).bind(deploy_id);
        let raw: Vec<String> = scalars(self.writer(), query).await?;
        shas(raw)
    }

    /// The statements of `record_upload`, each run once per chunk of the batch.
    async fn record_uploads(
        &self,
        owner_id: i64,
        deploy_id: &str,
        blobs: &[(Sha256, u64)],
        quotas: &dyn QuotaPolicy,
    ) -> StoreResult<UploadOutcome> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        let adding = admit_owned_uploads(&mut tx, owner_id, blobs, quotas).await?;
        let hashes: Vec<&Sha256> = blobs.iter().map(|(sha, _)| sha).collect();
        if adding > 0 {
            let query = sqlx::query(quota_sql::ADD_STORAGE)
                .bind(owner_id)
                .bind(adding as i64);
            execute(&mut *tx, query).await?;
        }
        for chunk in hashes.chunks(BIND_LIMIT) {
            for statement in [
                blob_sql::BATCH_NO_LONGER_MISSING,
                blob_sql::BATCH_SET_FILE_SIZES,
            ] {
                let mut query = QueryBuilder::<Db>::new(statement);
                query.push_bind(deploy_id).push(" AND sha256 IN (");
                let mut separated = query.separated(", ");
                for sha in chunk {
                    separated.push_bind(sha.as_str());
                }
                query.push(")");
                query.build().execute(&mut *tx).await.map_err(map_err)?;
            }
        }
        if LOCKS_ROWS {
            execute(&mut *tx, sqlx::query(deploy_sql::LOCK).bind(deploy_id)).await?;
        }
        let query = sqlx::query_scalar(deploy_sql::COUNT_MISSING).bind(deploy_id);
        let left: i64 = scalar(&mut *tx, query).await?;
        let mut now_ready = false;
        if left == 0 {
            let query = sqlx::query(deploy_sql::MARK_READY).bind(deploy_id);
            now_ready = execute(&mut *tx, query).await? > 0;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(UploadOutcome::Accepted { now_ready })
    }

    async fn record_owned_uploads(
        &self,
        owner_id: i64,
        blobs: &[(Sha256, u64)],
        quotas: &dyn QuotaPolicy,
    ) -> StoreResult<()> {
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        admit_owned_uploads(&mut tx, owner_id, blobs, quotas).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn touch_blobs(&self, blobs: &[(Sha256, u64)]) -> StoreResult<()> {
        let now = now_ms();
        let mut sorted: Vec<(&str, i64)> = blobs
            .iter()
            .map(|(sha, size)| (sha.as_str(), *size as i64))
            .collect();
        // Sorted and distinct: one statement may not upsert a row twice, and a fixed
        // order keeps two writers locking rows (PostgreSQL) from deadlocking.
        sorted.sort_unstable();
        sorted.dedup_by_key(|(sha, _)| *sha);
        for chunk in sorted.chunks(BIND_LIMIT / 3) {
            let mut upsert = QueryBuilder::<Db>::new(blob_sql::UPSERT);
            upsert.push_values(chunk, |mut row, (sha, size)| {
                row.push_bind(*sha).push_bind(*size).push_bind(now);
            });
            upsert.push(blob_sql::UPSERT_CONFLICT);
            upsert
                .build()
                .execute(self.writer())
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }

    async fn record_event(
        &self,
        entry: &NewAuditEntry,
        hook: Option<&WebhookEvent>,
    ) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        let insert = sqlx::query(audit_sql::INSERT)
            .bind(now)
            .bind(entry.actor_id)
            .bind(&entry.actor)
            .bind(&entry.client_addr)
            .bind(entry.action)
            .bind(&entry.target)
            .bind(&entry.site)
            .bind(entry.owner_id)
            .bind(entry.outcome.as_str())
            .bind(&entry.detail);
        execute(&mut *tx, insert).await?;
        if let Some(hook) = hook {
            let enqueue = sqlx::query(hook_sql::ENQUEUE)
                .bind(&hook.message_prefix)
                .bind(hook.event)
                .bind(&hook.payload)
                .bind(now)
                .bind(hook.site_id);
            execute(&mut *tx, enqueue).await?;
        }
        tx.commit().await.map_err(map_err)?;
        self.note_write().await;
        Ok(())
    }

    async fn audit_entries(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
        let query = sqlx::query_as::<_, AuditRow>(audit_sql::LIST)
            .bind(filter.visible_to)
            .bind(&filter.actor)
            .bind(&filter.site)
            .bind(&filter.action)
            .bind(filter.since.map(|t| t.timestamp_millis()))
            .bind(filter.until.map(|t| t.timestamp_millis()))
            .bind(filter.before_id)
            .bind(i64::from(filter.limit));
        all(self.reader(), query).await
    }

    async fn prune_events(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before = before.timestamp_millis();
        let entries = execute(self.writer(), sqlx::query(audit_sql::PRUNE).bind(before)).await?;
        let deliveries = execute(self.writer(), sqlx::query(hook_sql::PRUNE).bind(before)).await?;
        self.note_write().await;
        Ok(entries + deliveries)
    }

    async fn create_webhook(&self, new: &NewWebhook) -> StoreResult<WebhookRecord> {
        let insert = sqlx::query_scalar(hook_sql::INSERT)
            .bind(new.site_id)
            .bind(&new.url)
            .bind(hook_sql::events_column(&new.events))
            .bind(&new.secret)
            .bind(now_ms());
        let id: i64 = scalar(self.writer(), insert).await?;
        self.note_write().await;
        let by_id = hook_sql::by_id();
        let query = sqlx::query_as::<_, WebhookRow>(&by_id)
            .bind(new.owner_id)
            .bind(new.site_id)
            .bind(id);
        one(self.writer(), query).await
    }

    async fn list_webhooks(&self, owner_id: i64, site_id: i64) -> StoreResult<Vec<WebhookRecord>> {
        let of_site = hook_sql::of_site();
        let query = sqlx::query_as::<_, WebhookRow>(&of_site)
            .bind(owner_id)
            .bind(site_id);
        all(self.writer(), query).await
    }

    async fn webhook(
        &self,
        owner_id: i64,
        site_id: i64,
        id: i64,
    ) -> StoreResult<Option<WebhookRecord>> {
        let by_id = hook_sql::by_id();
        let query = sqlx::query_as::<_, WebhookRow>(&by_id)
            .bind(owner_id)
            .bind(site_id)
            .bind(id);
        optional(self.writer(), query).await
    }

    async fn delete_webhook(&self, owner_id: i64, site_id: i64, id: i64) -> StoreResult<bool> {
        let query = sqlx::query(hook_sql::DELETE)
            .bind(id)
            .bind(site_id)
            .bind(owner_id);
        let deleted = execute(self.writer(), query).await? > 0;
        self.note_write().await;
        Ok(deleted)
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>> {
        let due = if LOCKS_ROWS {
            format!("{}{}", hook_sql::DUE, hook_sql::LOCK_DUE)
        } else {
            hook_sql::DUE.to_owned()
        };
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        let query = sqlx::query_as::<_, DueDeliveryRow>(&due)
            .bind(now.timestamp_millis())
            .bind(i64::from(limit));
        let claimed: Vec<DueDelivery> = all(&mut *tx, query).await?;
        for delivery in &claimed {
            let lease = sqlx::query(hook_sql::LEASE)
                .bind(lease_until.timestamp_millis())
                .bind(delivery.id);
            execute(&mut *tx, lease).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(claimed)
    }

    async fn record_attempt(
        &self,
        delivery_id: i64,
        attempt: &AttemptRecord,
        after: AfterAttempt,
    ) -> StoreResult<()> {
        let now = attempt.at.timestamp_millis();
        let (status, next, completed) = match after {
            AfterAttempt::Delivered => ("delivered", now, Some(now)),
            AfterAttempt::RetryAt(at) => ("pending", at.timestamp_millis(), None),
            AfterAttempt::GiveUp => ("failed", now, Some(now)),
        };
        let mut tx = self.writer().begin().await.map_err(map_err)?;
        let insert = sqlx::query(hook_sql::INSERT_ATTEMPT)
            .bind(delivery_id)
            .bind(now)
            .bind(attempt.status_code.map(i64::from))
            .bind(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX))
            .bind(&attempt.error);
        execute(&mut *tx, insert).await?;
        let update = sqlx::query(hook_sql::AFTER_ATTEMPT)
            .bind(status)
            .bind(next)
            .bind(completed)
            .bind(delivery_id);
        execute(&mut *tx, update).await?;
        tx.commit().await.map_err(map_err)?;
        self.note_write().await;
        Ok(())
    }

    async fn webhook_deliveries(
        &self,
        owner_id: i64,
        webhook_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let query = sqlx::query_as::<_, DeliveryRow>(hook_sql::DELIVERIES)
            .bind(webhook_id)
            .bind(owner_id)
            .bind(i64::from(limit));
        let mut deliveries: Vec<DeliveryRecord> = all(self.writer(), query).await?;
        let Some(oldest) = deliveries.iter().map(|d| d.id).min() else {
            return Ok(deliveries);
        };
        let query = sqlx::query_as::<_, AttemptRow>(hook_sql::ATTEMPTS)
            .bind(webhook_id)
            .bind(oldest);
        let attempts = query.fetch_all(self.writer()).await.map_err(map_err)?;
        let mut by_delivery: HashMap<i64, Vec<AttemptRecord>> = HashMap::new();
        for row in attempts {
            by_delivery
                .entry(row.delivery_id)
                .or_default()
                .push(row.into());
        }
        for delivery in &mut deliveries {
            delivery.log = by_delivery.remove(&delivery.id).unwrap_or_default();
        }
        Ok(deliveries)
    }

    async fn domain_by_id(&self, id: i64) -> StoreResult<Option<DomainRecord>> {
        let query = sqlx::query_as::<_, DomainRow>(domain_sql::BY_ID).bind(id);
        optional(self.writer(), query).await
    }

    async fn blob_page(
        &self,
        after: Option<&Sha256>,
        limit: u32,
        referenced: bool,
    ) -> StoreResult<Vec<(Sha256, u64)>> {
        let statement = if referenced {
            blob_sql::REFERENCED_PAGE
        } else {
            blob_sql::PAGE
        };
        // Every digest sorts after the empty string.
        let query = sqlx::query_as::<_, (String, i64)>(statement)
            .bind(after.map_or("", Sha256::as_str))
            .bind(i64::from(limit));
        let rows = query.fetch_all(self.writer()).await.map_err(map_err)?;
        rows.into_iter()
            .map(|(raw, size)| Ok((blob_sql::sha(&raw)?, u64::try_from(size).unwrap_or(0))))
            .collect()
    }

    async fn clear_webhook_secrets(&self, limit: u32) -> StoreResult<Vec<StoredSecret>> {
        let query =
            sqlx::query_as::<_, (i64, i64, String)>(hook_sql::CLEAR_SECRETS).bind(i64::from(limit));
        let rows = query.fetch_all(self.writer()).await.map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(id, site_id, secret)| StoredSecret {
                id,
                site_id,
                secret,
            })
            .collect())
    }

    async fn seal_webhook_secret(&self, id: i64, clear: &str, sealed: &str) -> StoreResult<bool> {
        let query = sqlx::query(hook_sql::SEAL_SECRET)
            .bind(sealed)
            .bind(id)
            .bind(clear);
        Ok(execute(self.writer(), query).await? == 1)
    }

    async fn webhook_queue(&self) -> StoreResult<QueueStats> {
        let query = sqlx::query_as::<_, (i64, Option<i64>)>(hook_sql::QUEUE);
        let (pending, oldest) = query.fetch_one(self.writer()).await.map_err(map_err)?;
        Ok(QueueStats {
            pending: count(pending),
            oldest: oldest.map(time),
        })
    }

    async fn platform_certificate(
        &self,
        names: &str,
    ) -> StoreResult<Option<crate::store::PlatformCertificateRecord>> {
        let query = sqlx::query_as::<_, cert_sql::PlatformRow>(cert_sql::PLATFORM).bind(names);
        optional(self.writer(), query).await
    }

    async fn lease_platform_certificate(
        &self,
        names: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let query = sqlx::query(cert_sql::LEASE_PLATFORM)
            .bind(names)
            .bind(now.timestamp_millis())
            .bind(until.timestamp_millis());
        let done = execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(done > 0)
    }

    async fn release_platform_certificate_lease(
        &self,
        names: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<()> {
        let query = sqlx::query(cert_sql::RELEASE_PLATFORM)
            .bind(names)
            .bind(until.timestamp_millis());
        execute(self.writer(), query).await?;
        Ok(())
    }

    async fn record_platform_certificate_issued(
        &self,
        names: &str,
        issued: &IssuedCertificate,
    ) -> StoreResult<()> {
        let query = sqlx::query(cert_sql::PLATFORM_ISSUED)
            .bind(&issued.chain_pem)
            .bind(&issued.key_sealed)
            .bind(&issued.serial)
            .bind(issued.not_before.timestamp_millis())
            .bind(issued.not_after.timestamp_millis())
            .bind(issued.issued_at.timestamp_millis())
            .bind(issued.next_attempt_at.timestamp_millis())
            .bind(now_ms())
            .bind(names);
        execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(())
    }

    async fn record_platform_certificate_failure(
        &self,
        names: &str,
        failure: &CertificateFailure,
    ) -> StoreResult<()> {
        let query = sqlx::query(cert_sql::PLATFORM_FAILED)
            .bind(i64::from(failure.failures))
            .bind(&failure.error)
            .bind(failure.next_attempt_at.timestamp_millis())
            .bind(now_ms())
            .bind(names);
        execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(())
    }

    async fn site_hsts(&self, owner_id: i64, site_id: i64) -> StoreResult<Option<(i64, bool)>> {
        sqlx::query_as(crate::store::hsts::OF_SITE)
            .bind(site_id)
            .bind(owner_id)
            .fetch_optional(self.writer())
            .await
            .map_err(map_err)
    }

    async fn set_site_hsts(
        &self,
        owner_id: i64,
        site_id: i64,
        max_age: i64,
        include_subdomains: bool,
    ) -> StoreResult<()> {
        let query = sqlx::query(crate::store::hsts::SET)
            .bind(site_id)
            .bind(owner_id)
            .bind(max_age)
            .bind(include_subdomains)
            .bind(now_ms());
        execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(())
    }

    async fn delete_site_hsts(&self, owner_id: i64, site_id: i64) -> StoreResult<()> {
        let query = sqlx::query(crate::store::hsts::DELETE)
            .bind(site_id)
            .bind(owner_id);
        execute(self.writer(), query).await?;
        self.note_write().await;
        Ok(())
    }

    async fn hsts_hosts(&self) -> StoreResult<Vec<crate::store::HstsHost>> {
        let query = sqlx::query_as::<_, crate::store::HstsHost>(crate::store::hsts::HOSTS);
        all(self.writer(), query).await
    }
}

/// Adds a flush's increments to `buckets` (sorted, at most
/// [`analytics_sql::BUCKETS_PER_TRANSACTION`]) in three statements: make sure each
/// exists, read (and lock) their sketches, add the counts and write the merged sketches.
/// Where rows do not lock (SQLite: one writer, nothing else inserts meanwhile) the first
/// is left out: a missing row reads as an empty sketch and the last statement inserts it.
async fn add_to_buckets(tx: &mut Tx<'_>, buckets: &[&BucketIncrement]) -> StoreResult<()> {
    use crate::analytics::hll::Sketch;
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    if LOCKS_ROWS {
        let mut ensure = QueryBuilder::<Db>::new(analytics_sql::ENSURE_BUCKETS);
        ensure.push_values(buckets, |mut row, bucket| {
            row.push_bind(bucket.site_id)
                .push_bind(bucket.granularity.as_str())
                .push_bind(bucket.start)
                .push_bind(Vec::<u8>::new());
        });
        ensure.push(analytics_sql::ENSURE_BUCKETS_CONFLICT);
        ensure
            .build()
            .persistent(false)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
    }

    let mut select = QueryBuilder::<Db>::new(analytics_sql::BUCKET_SKETCHES);
    select.push_values(buckets, |mut row, bucket| {
        row.push_bind(bucket.site_id)
            .push_bind(bucket.granularity.as_str())
            .push_bind(bucket.start);
    });
    select.push(analytics_sql::BUCKET_SKETCHES_JOIN);
    if LOCKS_ROWS {
        select.push(" FOR UPDATE OF b");
    }
    let stored: Vec<(i64, String, i64, Vec<u8>)> = select
        .build_query_as()
        .persistent(false)
        .fetch_all(&mut **tx)
        .await
        .map_err(map_err)?;
    let stored: std::collections::HashMap<(i64, String, i64), Vec<u8>> = stored
        .into_iter()
        .map(|(site, granularity, start, visitors)| ((site, granularity, start), visitors))
        .collect();

    let mut merged = Vec::with_capacity(buckets.len());
    for bucket in buckets {
        let key = (
            bucket.site_id,
            bucket.granularity.as_str().to_owned(),
            bucket.start,
        );
        let mut sketch =
            Sketch::decode(stored.get(&key).map_or(&[][..], Vec::as_slice)).map_err(other)?;
        sketch.merge(&Sketch::decode(&bucket.visitors).map_err(other)?);
        merged.push(sketch.encode());
    }
    let mut add = QueryBuilder::<Db>::new(analytics_sql::ADD_TO_BUCKETS);
    add.push_values(buckets.iter().zip(merged), |mut row, (bucket, visitors)| {
        let c = &bucket.counts;
        row.push_bind(bucket.site_id)
            .push_bind(bucket.granularity.as_str())
            .push_bind(bucket.start)
            .push_bind(n(c.requests))
            .push_bind(n(c.page_views))
            .push_bind(n(c.bytes_sent))
            .push_bind(n(c.statuses[0]))
            .push_bind(n(c.statuses[1]))
            .push_bind(n(c.statuses[2]))
            .push_bind(n(c.statuses[3]))
            .push_bind(n(c.statuses[4]))
            .push_bind(visitors);
    });
    add.push(analytics_sql::ADD_TO_BUCKETS_CONFLICT);
    add.build()
        .persistent(false)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(())
}
