//! The SQLite store of embedded mode: one file under the data folder, WAL journal,
//! a single-connection writer pool (SQLite has one writer anyway; serialising in the
//! pool makes every write transaction see the previous one) and a reader pool.

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hosting_api::{CertificateStatus, DeployState, Role};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};

use super::columns::{
    now_ms, opt_time, other, parse_state, role_str, state_str, time, unavailable,
};
use super::quotas::{self as quota_sql, hour_ago_ms, QuotaRow};
use super::{
    certificate_status_str, domain_status_str, parse_certificate_status, parse_domain_status,
    CertificateFailure, CertificateRecord, CreatedDeploy, DeployRecord, DomainCheck, DomainRecord,
    DueCertificate, IssuedCertificate, LiveDeploy, ManifestEntry, NewDeploy, NewDomain,
    SessionRecord, SiteRecord, Store, StoreError, StoreResult, TokenRecord, UploadOutcome,
    UserRecord,
};
use crate::domain::names::Sha256;
use crate::domain::quota::{QuotaOverrides, QuotaPolicy, UserQuota};
use hosting_api::QuotaKind;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Rows per multi-row INSERT: SQLite allows 32,766 bound parameters per statement.
const INSERT_CHUNK: usize = 5_000;

const DEPLOY_COLUMNS: &str = "SELECT d.id, d.site_id, s.name AS site_name, s.owner_id, d.state, \
     (s.live_deploy_id IS NOT NULL AND s.live_deploy_id = d.id) AS live, d.file_count, d.total_bytes, \
     u.username AS created_by, d.created_at, d.published_at, d.error, d.message \
     FROM deploys d JOIN sites s ON s.id = d.site_id JOIN users u ON u.id = d.created_by";

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) `<dir>/hosting.db` and applies pending migrations.
    pub async fn open(dir: &Path) -> StoreResult<SqliteStore> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(other)?
            .filename(dir.join("hosting.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged write survives power loss, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(unavailable)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(unavailable)?;
        Ok(SqliteStore { writer, reader })
    }
}

/// Maps a driver error, naming the unique constraint that was hit.
fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let message = db.message();
            if message.contains("users.username") {
                StoreError::Conflict("a user with this name")
            } else if message.contains("sites.name") {
                StoreError::Conflict("a site with this name")
            } else if message.contains("domains.name") {
                StoreError::Conflict("a claim on this domain")
            } else {
                StoreError::Conflict("a record with these values")
            }
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => unavailable(e),
        _ => other(e),
    }
}

fn user_from_row(row: &SqliteRow) -> sqlx::Result<UserRecord> {
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

fn token_from_row(row: &SqliteRow) -> sqlx::Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        created_at: time(row.try_get("created_at")?),
        last_used_at: opt_time(row.try_get("last_used_at")?),
    })
}

fn site_from_row(row: &SqliteRow) -> sqlx::Result<SiteRecord> {
    Ok(SiteRecord {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        name: row.try_get("name")?,
        live_deploy_id: row.try_get("live_deploy_id")?,
        created_at: time(row.try_get("created_at")?),
        updated_at: time(row.try_get("updated_at")?),
    })
}

fn deploy_from_row(row: &SqliteRow) -> sqlx::Result<DeployRecord> {
    let state: String = row.try_get("state")?;
    let file_count: i64 = row.try_get("file_count")?;
    let total_bytes: i64 = row.try_get("total_bytes")?;
    Ok(DeployRecord {
        id: row.try_get("id")?,
        site_id: row.try_get("site_id")?,
        site_name: row.try_get("site_name")?,
        owner_id: row.try_get("owner_id")?,
        state: parse_state(&state),
        live: row.try_get("live")?,
        file_count: u64::try_from(file_count).unwrap_or_default(),
        total_bytes: u64::try_from(total_bytes).unwrap_or_default(),
        created_by: row.try_get("created_by")?,
        created_at: time(row.try_get("created_at")?),
        published_at: opt_time(row.try_get("published_at")?),
        error: row.try_get("error")?,
        message: row.try_get("message")?,
    })
}

const DOMAIN_COLUMNS: &str =
    "SELECT d.id, d.name, d.site_id, s.name AS site_name, s.owner_id, d.status, \
     d.status_detail, d.token, d.created_at, d.checked_at, d.verified_at, d.failures \
     FROM domains d JOIN sites s ON s.id = d.site_id";

fn domain_from_row(row: &SqliteRow) -> sqlx::Result<DomainRecord> {
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

fn certificate_from_row(row: &SqliteRow) -> sqlx::Result<CertificateRecord> {
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

fn sha_column(row: &SqliteRow) -> sqlx::Result<Sha256> {
    let raw: String = row.try_get("sha256")?;
    Sha256::parse(&raw).map_err(|e| sqlx::Error::Decode(e.into()))
}

async fn deploy_in_tx(
    tx: &mut Transaction<'_, Sqlite>,
    id: &str,
) -> StoreResult<Option<DeployRecord>> {
    let row = sqlx::query(&format!("{DEPLOY_COLUMNS} WHERE d.id = ?"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_err)?;
    row.as_ref().map(deploy_from_row).transpose().map_err(other)
}

async fn missing_in_tx(
    tx: &mut Transaction<'_, Sqlite>,
    deploy_id: &str,
) -> StoreResult<Vec<Sha256>> {
    let rows = sqlx::query("SELECT sha256 FROM deploy_missing WHERE deploy_id = ? ORDER BY sha256")
        .bind(deploy_id)
        .fetch_all(&mut **tx)
        .await
        .map_err(map_err)?;
    rows.iter()
        .map(sha_column)
        .collect::<sqlx::Result<_>>()
        .map_err(other)
}

/// The user's quota state. SQLite has one writer, so no other write can change it before
/// this transaction commits.
async fn quota_in_tx(tx: &mut Transaction<'_, Sqlite>, user_id: i64) -> StoreResult<UserQuota> {
    let row = sqlx::query(quota_sql::USER_QUOTA)
        .bind(user_id)
        .bind(hour_ago_ms(now_ms()))
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_err)?
        .ok_or_else(|| StoreError::Other(format!("user {user_id} vanished")))?;
    Ok(QuotaRow::decode(&row).map_err(other)?.into_quota())
}

/// Recomputes the user's stored bytes and returns them.
async fn refresh_storage(tx: &mut Transaction<'_, Sqlite>, user_id: i64) -> StoreResult<u64> {
    let stored: i64 = sqlx::query_scalar(quota_sql::REFRESH_STORAGE)
        .bind(user_id)
        .fetch_one(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(u64::try_from(stored).unwrap_or_default())
}

/// Inserts `blobs` rows (or refreshes `touched_at`) and `owner_blobs` rows.
async fn record_owned_blobs(
    tx: &mut Transaction<'_, Sqlite>,
    owner_id: i64,
    blobs: &[(&Sha256, u64)],
) -> StoreResult<()> {
    let now = now_ms();
    for chunk in blobs.chunks(INSERT_CHUNK / 2) {
        let mut insert =
            QueryBuilder::<Sqlite>::new("INSERT INTO blobs (sha256, size, touched_at) ");
        insert.push_values(chunk, |mut row, (sha, size)| {
            row.push_bind(sha.as_str())
                .push_bind(*size as i64)
                .push_bind(now);
        });
        insert.push(" ON CONFLICT (sha256) DO UPDATE SET touched_at = excluded.touched_at");
        insert.build().execute(&mut **tx).await.map_err(map_err)?;
        let mut owned =
            QueryBuilder::<Sqlite>::new("INSERT OR IGNORE INTO owner_blobs (owner_id, sha256) ");
        owned.push_values(chunk, |mut row, (sha, _)| {
            row.push_bind(owner_id).push_bind(sha.as_str());
        });
        owned.build().execute(&mut **tx).await.map_err(map_err)?;
    }
    Ok(())
}

/// Sizes of the blobs `owner_id` has, among `hashes`.
async fn owned_sizes(
    tx: &mut Transaction<'_, Sqlite>,
    owner_id: i64,
    hashes: &[&Sha256],
) -> StoreResult<std::collections::HashMap<Sha256, u64>> {
    let mut found = std::collections::HashMap::new();
    for chunk in hashes.chunks(INSERT_CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT b.sha256, b.size FROM owner_blobs o JOIN blobs b ON b.sha256 = o.sha256 WHERE o.owner_id = ",
        );
        query.push_bind(owner_id).push(" AND o.sha256 IN (");
        let mut list = query.separated(", ");
        for sha in chunk {
            list.push_bind(sha.as_str());
        }
        query.push(")");
        for row in query.build().fetch_all(&mut **tx).await.map_err(map_err)? {
            let size: i64 = row.try_get("size").map_err(other)?;
            found.insert(
                sha_column(&row).map_err(other)?,
                u64::try_from(size).unwrap_or_default(),
            );
        }
    }
    Ok(found)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn count_users(&self) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.writer)
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
            "INSERT INTO users (username, role, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING *",
        )
        .bind(username)
        .bind(role_str(role))
        .bind(password_hash)
        .bind(now_ms())
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)?;
        user_from_row(&row).map_err(other)
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY id")
            .fetch_all(&self.reader)
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
        let row = sqlx::query("UPDATE users SET disabled = ? WHERE id = ? RETURNING *")
            .bind(disabled)
            .bind(user_id)
            .fetch_optional(&self.writer)
            .await
            .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose().map_err(other)
    }

    async fn user_by_id(&self, user_id: i64) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = ?")
            .bind(user_id)
            .fetch_optional(&self.writer)
            .await
            .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose().map_err(other)
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query("SELECT * FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.writer)
            .await
            .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose().map_err(other)
    }

    async fn set_password(&self, user_id: i64, password_hash: &str) -> StoreResult<bool> {
        let result = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(user_id)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(result.rows_affected() > 0)
    }

    async fn create_session(&self, id_hash: &str, session: &SessionRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id_hash)
        .bind(session.user_id)
        .bind(&session.csrf_token)
        .bind(now_ms())
        .bind(session.expires_at.timestamp_millis())
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        // The primary (writer): a session created a moment ago must be visible at once.
        let row = sqlx::query(
            "SELECT user_id, csrf_token, expires_at FROM sessions WHERE id_hash = ? AND expires_at > ?",
        )
        .bind(id_hash)
        .bind(now_ms())
        .fetch_optional(&self.writer)
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
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(user_id)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let result = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(now.timestamp_millis())
            .execute(&self.writer)
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
            "INSERT INTO tokens (user_id, name, secret_hash, created_at) VALUES (?, ?, ?, ?) RETURNING *",
        )
        .bind(user_id)
        .bind(name)
        .bind(secret_hash)
        .bind(now_ms())
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)?;
        token_from_row(&row).map_err(other)
    }

    async fn list_tokens(&self, user_id: i64) -> StoreResult<Vec<TokenRecord>> {
        let rows = sqlx::query("SELECT * FROM tokens WHERE user_id = ? ORDER BY id")
            .bind(user_id)
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(token_from_row)
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    async fn delete_token(&self, user_id: i64, token_id: i64) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM tokens WHERE id = ? AND user_id = ?")
            .bind(token_id)
            .bind(user_id)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn authenticate(&self, secret_hash: &str) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query(
            "SELECT u.*, t.id AS token_id, t.last_used_at FROM tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.secret_hash = ? AND u.disabled = 0",
        )
        .bind(secret_hash)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let user = user_from_row(&row).map_err(other)?;
        let token_id: i64 = row.try_get("token_id").map_err(other)?;
        let last_used: Option<i64> = row.try_get("last_used_at").map_err(other)?;
        // Recorded at minute precision so a busy token does not make every request a write.
        let now = now_ms();
        if last_used.is_none_or(|at| now - at > 60_000) {
            sqlx::query("UPDATE tokens SET last_used_at = ? WHERE id = ?")
                .bind(now)
                .bind(token_id)
                .execute(&self.writer)
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
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let quota = quota_in_tx(&mut tx, owner_id).await?;
        quotas.admit(&quota, QuotaKind::Sites, 1)?;
        let now = now_ms();
        let row = sqlx::query(
            "INSERT INTO sites (owner_id, name, created_at, updated_at) VALUES (?, ?, ?, ?) RETURNING *",
        )
        .bind(owner_id)
        .bind(name)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let site = site_from_row(&row).map_err(other)?;
        tx.commit().await.map_err(map_err)?;
        Ok(site)
    }

    async fn list_sites(&self, owner_id: i64) -> StoreResult<Vec<SiteRecord>> {
        let rows = sqlx::query("SELECT * FROM sites WHERE owner_id = ? ORDER BY name")
            .bind(owner_id)
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(site_from_row)
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    async fn site(&self, owner_id: i64, name: &str) -> StoreResult<Option<SiteRecord>> {
        let row = sqlx::query("SELECT * FROM sites WHERE owner_id = ? AND name = ?")
            .bind(owner_id)
            .bind(name)
            .fetch_optional(&self.writer)
            .await
            .map_err(map_err)?;
        row.as_ref().map(site_from_row).transpose().map_err(other)
    }

    async fn delete_site(&self, owner_id: i64, name: &str) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let done = sqlx::query("DELETE FROM sites WHERE owner_id = ? AND name = ?")
            .bind(owner_id)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        // The site's files no longer count unless another deploy of the owner has them.
        refresh_storage(&mut tx, owner_id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_deploy(
        &self,
        new: NewDeploy,
        quotas: &dyn QuotaPolicy,
    ) -> StoreResult<CreatedDeploy> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        if let Some((key, fingerprint)) = &new.idempotency {
            let earlier = sqlx::query(
                "SELECT id, request_fingerprint FROM deploys WHERE site_id = ? AND idempotency_key = ?",
            )
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

        let quota = quota_in_tx(&mut tx, new.owner_id).await?;
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
            DeployState::Ready
        } else {
            DeployState::Uploading
        };
        let total: u64 = files.iter().map(|f| f.size).sum();
        let (key, fingerprint) = new.idempotency.unzip();
        sqlx::query(
            "INSERT INTO deploys (id, site_id, created_by, state, file_count, total_bytes, created_at, \
             idempotency_key, request_fingerprint, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(new.id.as_str())
        .bind(new.site_id)
        .bind(new.created_by)
        .bind(state_str(state))
        .bind(files.len() as i64)
        .bind(total as i64)
        .bind(now_ms())
        .bind(key)
        .bind(fingerprint)
        .bind(new.message.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        for chunk in files.chunks(INSERT_CHUNK / 4) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO deploy_files (deploy_id, path, sha256, size) ",
            );
            insert.push_values(chunk, |mut row, file| {
                row.push_bind(new.id.as_str())
                    .push_bind(file.path.as_str())
                    .push_bind(file.sha256.as_str())
                    .push_bind(file.size as i64);
            });
            insert.build().execute(&mut *tx).await.map_err(map_err)?;
        }
        for chunk in required.chunks(INSERT_CHUNK / 2) {
            let mut insert =
                QueryBuilder::<Sqlite>::new("INSERT INTO deploy_missing (deploy_id, sha256) ");
            insert.push_values(chunk, |mut row, sha| {
                row.push_bind(new.id.as_str()).push_bind(sha.as_str());
            });
            insert.build().execute(&mut *tx).await.map_err(map_err)?;
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
        Ok(CreatedDeploy::Created { deploy, required })
    }

    async fn deploy(&self, owner_id: i64, id: &str) -> StoreResult<Option<DeployRecord>> {
        let row = sqlx::query(&format!(
            "{DEPLOY_COLUMNS} WHERE d.id = ? AND s.owner_id = ?"
        ))
        .bind(id)
        .bind(owner_id)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        row.as_ref().map(deploy_from_row).transpose().map_err(other)
    }

    async fn list_deploys(&self, owner_id: i64, site_id: i64) -> StoreResult<Vec<DeployRecord>> {
        let rows = sqlx::query(&format!(
            "{DEPLOY_COLUMNS} WHERE d.site_id = ? AND s.owner_id = ? ORDER BY d.created_at DESC, d.rowid DESC"
        ))
        .bind(site_id)
        .bind(owner_id)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(deploy_from_row)
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    async fn manifest(&self, deploy_id: &str) -> StoreResult<Vec<ManifestEntry>> {
        let rows = sqlx::query(
            "SELECT f.path, f.sha256, f.size FROM deploy_files f JOIN deploys d ON d.id = f.deploy_id \
             WHERE f.deploy_id = ? AND d.state = 'ready'",
        )
            .bind(deploy_id)
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let size: i64 = row.try_get("size")?;
                Ok(ManifestEntry {
                    path: row.try_get("path")?,
                    sha256: sha_column(row)?,
                    size: u64::try_from(size).unwrap_or_default(),
                })
            })
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    async fn missing_blobs(&self, deploy_id: &str) -> StoreResult<Vec<Sha256>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
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
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let in_deploy: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM deploy_files WHERE deploy_id = ? AND sha256 = ? LIMIT 1",
        )
        .bind(deploy_id)
        .bind(sha256.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if in_deploy.is_none() {
            return Ok(UploadOutcome::NotInDeploy);
        }
        let quota = quota_in_tx(&mut tx, owner_id).await?;
        let owned: Option<i64> = sqlx::query_scalar(quota_sql::OWNS_BLOB)
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
        let removed = sqlx::query("DELETE FROM deploy_missing WHERE deploy_id = ? AND sha256 = ?")
            .bind(deploy_id)
            .bind(sha256.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let mut now_ready = false;
        if removed.rows_affected() > 0 {
            sqlx::query("UPDATE deploy_files SET size = ? WHERE deploy_id = ? AND sha256 = ?")
                .bind(size as i64)
                .bind(deploy_id)
                .bind(sha256.as_str())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            let left: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM deploy_missing WHERE deploy_id = ?")
                    .bind(deploy_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
            if left == 0 {
                sqlx::query(
                    "UPDATE deploys SET state = 'ready', total_bytes = \
                     (SELECT COALESCE(SUM(size), 0) FROM deploy_files WHERE deploy_id = deploys.id) \
                     WHERE id = ? AND state = 'uploading'",
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
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let Some(deploy) = deploy_in_tx(&mut tx, deploy_id).await? else {
            return Ok(None);
        };
        if deploy.owner_id != owner_id || deploy.state != DeployState::Ready {
            return Ok(None);
        }
        let now = now_ms();
        // One UPDATE flips the site's live deploy: readers see the old deploy or the new one.
        sqlx::query("UPDATE sites SET live_deploy_id = ?, updated_at = ? WHERE id = ?")
            .bind(deploy_id)
            .bind(now)
            .bind(deploy.site_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("UPDATE deploys SET published_at = ? WHERE id = ?")
            .bind(now)
            .bind(deploy_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let deploy = deploy_in_tx(&mut tx, deploy_id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(deploy)
    }

    async fn previous_live(
        &self,
        owner_id: i64,
        site_id: i64,
    ) -> StoreResult<Option<DeployRecord>> {
        let row = sqlx::query(&format!(
            "{DEPLOY_COLUMNS} WHERE d.site_id = ? AND s.owner_id = ? AND d.published_at IS NOT NULL \
             AND d.state = 'ready' AND (s.live_deploy_id IS NULL OR d.id != s.live_deploy_id) \
             ORDER BY d.published_at DESC LIMIT 1"
        ))
        .bind(site_id)
        .bind(owner_id)
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        row.as_ref().map(deploy_from_row).transpose().map_err(other)
    }

    async fn user_quota(&self, user_id: i64) -> StoreResult<Option<UserQuota>> {
        let row = sqlx::query(quota_sql::USER_QUOTA)
            .bind(user_id)
            .bind(hour_ago_ms(now_ms()))
            .fetch_optional(&self.reader)
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
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn counted_blobs(&self, owner_id: i64) -> StoreResult<HashSet<Sha256>> {
        let rows = sqlx::query(quota_sql::COUNTED_BLOBS)
            .bind(owner_id)
            .fetch_all(&self.reader)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(sha_column)
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    async fn has_blobs(&self, owner_id: i64, hashes: &[Sha256]) -> StoreResult<HashSet<Sha256>> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let refs: Vec<&Sha256> = hashes.iter().collect();
        Ok(owned_sizes(&mut tx, owner_id, &refs)
            .await?
            .into_keys()
            .collect())
    }

    async fn touch_blob(&self, sha256: &Sha256, size: u64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO blobs (sha256, size, touched_at) VALUES (?, ?, ?) \
             ON CONFLICT (sha256) DO UPDATE SET touched_at = excluded.touched_at",
        )
        .bind(sha256.as_str())
        .bind(size as i64)
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn live_deploy(&self, site: &str) -> StoreResult<Option<LiveDeploy>> {
        let row = sqlx::query(
            "SELECT s.id AS site_id, d.id AS deploy_id, d.created_at FROM sites s \
             JOIN deploys d ON d.id = s.live_deploy_id WHERE s.name = ?",
        )
        .bind(site)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.map(|row| {
            Ok(LiveDeploy {
                site_id: row.try_get("site_id")?,
                deploy_id: row.try_get("deploy_id")?,
                created_at: time(row.try_get("created_at")?),
            })
        })
        .transpose()
        .map_err(other)
    }

    async fn preview_deploy(&self, site: &str, deploy_id: &str) -> StoreResult<Option<LiveDeploy>> {
        let row = sqlx::query(
            "SELECT s.id AS site_id, d.id AS deploy_id, d.created_at FROM deploys d \
             JOIN sites s ON s.id = d.site_id WHERE s.name = ? AND d.id = ? AND d.state = 'ready'",
        )
        .bind(site)
        .bind(deploy_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.map(|row| {
            Ok(LiveDeploy {
                site_id: row.try_get("site_id")?,
                deploy_id: row.try_get("deploy_id")?,
                created_at: time(row.try_get("created_at")?),
            })
        })
        .transpose()
        .map_err(other)
    }

    async fn expire_deploys(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let expired: Vec<String> = sqlx::query_scalar(
            "UPDATE deploys SET state = 'expired', error = 'abandoned before all files were uploaded' \
             WHERE state = 'uploading' AND created_at < ? RETURNING id",
        )
        .bind(cutoff.timestamp_millis())
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let mut owners = HashSet::new();
        for id in &expired {
            let owner: Option<i64> = sqlx::query_scalar(
                "SELECT s.owner_id FROM deploys d JOIN sites s ON s.id = d.site_id WHERE d.id = ?",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
            owners.extend(owner);
            for table in ["deploy_files", "deploy_missing"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE deploy_id = ?"))
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
            }
        }
        // Files uploaded only for an abandoned deploy stop counting.
        for owner in owners {
            refresh_storage(&mut tx, owner).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(expired.len() as u64)
    }

    async fn unreferenced_blobs(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Sha256>> {
        let rows = sqlx::query(
            "SELECT sha256 FROM blobs b WHERE touched_at < ? \
             AND NOT EXISTS (SELECT 1 FROM deploy_files f WHERE f.sha256 = b.sha256) LIMIT ?",
        )
        .bind(cutoff.timestamp_millis())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(sha_column)
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    async fn forget_blob(&self, sha256: &Sha256, cutoff: DateTime<Utc>) -> StoreResult<bool> {
        // Re-checked in the same statement: a deploy created since the candidate list was
        // read references the blob, and an upload since then touched it.
        let done = sqlx::query(
            "DELETE FROM blobs WHERE sha256 = ? AND touched_at < ? \
             AND NOT EXISTS (SELECT 1 FROM deploy_files f WHERE f.sha256 = blobs.sha256)",
        )
        .bind(sha256.as_str())
        .bind(cutoff.timestamp_millis())
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn add_domain(&self, new: NewDomain) -> StoreResult<DomainRecord> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let existing = sqlx::query("SELECT d.id, s.owner_id, d.status, d.created_at FROM domains d JOIN sites s ON s.id = d.site_id WHERE d.name = ?")
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
            sqlx::query("DELETE FROM domains WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        let id: i64 = sqlx::query_scalar("INSERT INTO domains (name, site_id, status, token, created_at, next_check_at) VALUES (?, ?, 'pending', ?, ?, ?) RETURNING id")
            .bind(&new.name)
            .bind(new.site_id)
            .bind(&new.token)
            .bind(now_ms())
            .bind(new.next_check_at.timestamp_millis())
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let row = sqlx::query(&format!("{DOMAIN_COLUMNS} WHERE d.id = ?"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        domain_from_row(&row).map_err(other)
    }

    async fn list_domains(&self, owner_id: i64, site_id: i64) -> StoreResult<Vec<DomainRecord>> {
        let rows = sqlx::query(&format!(
            "{DOMAIN_COLUMNS} WHERE s.owner_id = ? AND d.site_id = ? ORDER BY d.name"
        ))
        .bind(owner_id)
        .bind(site_id)
        .fetch_all(&self.reader)
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
            "{DOMAIN_COLUMNS} WHERE s.owner_id = ? AND d.site_id = ? AND d.name = ?"
        ))
        .bind(owner_id)
        .bind(site_id)
        .bind(name)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.as_ref().map(domain_from_row).transpose().map_err(other)
    }

    async fn delete_domain(&self, owner_id: i64, site_id: i64, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM domains WHERE name = ? AND site_id = ? AND site_id IN (SELECT id FROM sites WHERE owner_id = ?)")
            .bind(name)
            .bind(site_id)
            .bind(owner_id)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_domain_check(&self, id: i64, check: &DomainCheck) -> StoreResult<()> {
        let now = now_ms();
        let status = domain_status_str(check.status);
        sqlx::query("UPDATE domains SET status = ?, status_detail = ?, checked_at = ?, verified_at = CASE WHEN ? = 'verified' THEN COALESCE(verified_at, ?) ELSE verified_at END, failures = ?, next_check_at = ? WHERE id = ?")
            .bind(status)
            .bind(&check.detail)
            .bind(now)
            .bind(status)
            .bind(now)
            .bind(i64::from(check.failures))
            .bind(check.next_check_at.timestamp_millis())
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn domains_due(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<DomainRecord>> {
        let rows = sqlx::query(&format!(
            "{DOMAIN_COLUMNS} WHERE d.next_check_at <= ? ORDER BY d.next_check_at LIMIT ?"
        ))
        .bind(now.timestamp_millis())
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(domain_from_row)
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    async fn domain_live_deploy(&self, name: &str) -> StoreResult<Option<LiveDeploy>> {
        const QUERY: &str = "SELECT s.id AS site_id, d.id AS deploy_id, d.created_at FROM domains m JOIN sites s ON s.id = m.site_id JOIN deploys d ON d.id = s.live_deploy_id WHERE m.name = ? AND m.status = 'verified'";
        let row = sqlx::query(QUERY)
            .bind(name)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?;
        row.map(|row| {
            Ok(LiveDeploy {
                site_id: row.try_get("site_id")?,
                deploy_id: row.try_get("deploy_id")?,
                created_at: time(row.try_get("created_at")?),
            })
        })
        .transpose()
        .map_err(other)
    }

    async fn domain_token(&self, name: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT token FROM domains WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)
    }

    async fn site_domains(&self, site: &str) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT d.name FROM domains d JOIN sites s ON s.id = d.site_id WHERE s.name = ?",
        )
        .bind(site)
        .fetch_all(&self.writer)
        .await
        .map_err(map_err)
    }

    async fn certificates_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueCertificate>> {
        let now = now.timestamp_millis();
        let rows = sqlx::query(
            "SELECT d.id AS domain_id, d.name AS domain, COALESCE(c.failures, 0) AS failures \
             FROM domains d LEFT JOIN certificates c ON c.domain_id = d.id \
             WHERE d.status = 'verified' AND (c.domain_id IS NULL OR (c.next_attempt_at <= ? \
             AND (c.lease_until IS NULL OR c.lease_until <= ?))) \
             ORDER BY COALESCE(c.next_attempt_at, d.verified_at, d.created_at), d.id LIMIT ?",
        )
        .bind(now)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
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

    async fn lease_certificate(
        &self,
        domain_id: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // Selecting from domains (rather than VALUES) makes a domain deleted meanwhile a
        // lost lease instead of a foreign-key error.
        let now = now.timestamp_millis();
        let done = sqlx::query(
            "INSERT INTO certificates (domain_id, status, next_attempt_at, lease_until, updated_at) \
             SELECT id, ?, ?, ?, ? FROM domains WHERE id = ? \
             ON CONFLICT (domain_id) DO UPDATE SET lease_until = excluded.lease_until, \
             updated_at = excluded.updated_at \
             WHERE certificates.lease_until IS NULL OR certificates.lease_until <= ?",
        )
        .bind(certificate_status_str(CertificateStatus::Pending))
        .bind(now)
        .bind(until.timestamp_millis())
        .bind(now)
        .bind(domain_id)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn release_certificate_lease(
        &self,
        domain_id: i64,
        until: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE certificates SET lease_until = NULL WHERE domain_id = ? AND lease_until = ?",
        )
        .bind(domain_id)
        .bind(until.timestamp_millis())
        .execute(&self.writer)
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
             updated_at) SELECT id, ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, ?, NULL, ? FROM domains WHERE id = ? \
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
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn record_certificate_failure(
        &self,
        domain_id: i64,
        failure: &CertificateFailure,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO certificates (domain_id, status, failures, last_error, next_attempt_at, \
             lease_until, updated_at) SELECT id, ?, ?, ?, ?, NULL, ? FROM domains WHERE id = ? \
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
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn request_certificate(&self, domain_id: i64, now: DateTime<Utc>) -> StoreResult<()> {
        let now = now.timestamp_millis();
        sqlx::query(
            "INSERT INTO certificates (domain_id, status, next_attempt_at, updated_at) \
             SELECT id, ?, ?, ? FROM domains WHERE id = ? \
             ON CONFLICT (domain_id) DO UPDATE SET next_attempt_at = excluded.next_attempt_at, \
             updated_at = excluded.updated_at",
        )
        .bind(certificate_status_str(CertificateStatus::Pending))
        .bind(now)
        .bind(now)
        .bind(domain_id)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn certificate(&self, domain_id: i64) -> StoreResult<Option<CertificateRecord>> {
        let row = sqlx::query(&format!("{CERTIFICATE_COLUMNS} WHERE c.domain_id = ?"))
            .bind(domain_id)
            .fetch_optional(&self.writer)
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
        .fetch_all(&self.writer)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(certificate_from_row)
            .collect::<sqlx::Result<_>>()
            .map_err(other)
    }

    async fn site_certificates(&self, site_id: i64) -> StoreResult<Vec<CertificateRecord>> {
        let rows = sqlx::query(&format!(
            "{CERTIFICATE_COLUMNS} WHERE d.site_id = ? ORDER BY d.name"
        ))
        .bind(site_id)
        .fetch_all(&self.writer)
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
             ORDER BY c.not_after, d.name LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
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
        .fetch_all(&self.writer)
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
        sqlx::query_scalar("SELECT credentials_sealed FROM acme_accounts WHERE directory = ?")
            .bind(directory)
            .fetch_optional(&self.writer)
            .await
            .map_err(map_err)
    }

    async fn save_acme_account(
        &self,
        directory: &str,
        sealed: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<u8>> {
        // The no-op update makes RETURNING yield the row that won, whoever wrote it.
        sqlx::query_scalar(
            "INSERT INTO acme_accounts (directory, credentials_sealed, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (directory) DO UPDATE SET credentials_sealed = acme_accounts.credentials_sealed \
             RETURNING credentials_sealed",
        )
        .bind(directory)
        .bind(sealed)
        .bind(now.timestamp_millis())
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)
    }

    async fn forget_acme_account(&self, directory: &str, sealed: &[u8]) -> StoreResult<()> {
        sqlx::query("DELETE FROM acme_accounts WHERE directory = ? AND credentials_sealed = ?")
            .bind(directory)
            .bind(sealed)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
