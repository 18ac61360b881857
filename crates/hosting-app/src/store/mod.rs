//! The platform's state (users, tokens, sites, deploys, which owner has which blob)
//! behind the `Store` trait. Each statement is written once, in its entity's module
//! (`users`, `tokens`, `sessions`, `sites`, `deploys`, `blobs`, `quotas`, `domains`,
//! `certificates`), and run by one implementation (`sql.rs`) that is compiled for each
//! database: SQLite in embedded mode, PostgreSQL in cluster mode. The backends keep
//! only connecting, migrations, row and advisory locks and read routing.

mod aliases;
mod analytics;
mod audit;
mod blobs;
mod certificates;
mod columns;
mod deploys;
mod domains;
mod hsts;
mod postgres;
mod quotas;
mod sessions;
mod sites;
mod sqlite;
mod tokens;
mod users;
mod webhooks;

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hosting_api::{CertificateStatus, DeployState, DomainStatus, Role};

pub use aliases::{AliasRecord, ProtectionRecord};
pub use analytics::{
    AnalyticsBatch, AnalyticsCutoffs, BucketIncrement, BucketRecord, Counts, Granularity,
    TopIncrement, TopKind,
};
pub use audit::{AuditFilter, AuditRecord, NewAuditEntry, Outcome};
pub(crate) use certificates::certificate_status_str;
pub use certificates::PlatformCertificateRecord;
pub use hsts::HstsHost;
pub(crate) use postgres::is_unreachable;
pub use postgres::{parse_lsn, PgStore, Pools};
pub use sqlite::SqliteStore;
pub use webhooks::{
    AfterAttempt, AttemptRecord, DeliveryRecord, DueDelivery, NewWebhook, WebhookEvent,
    WebhookRecord,
};
pub use webhooks::{QueueStats, StoredSecret};

use crate::domain::names::{DeployId, Sha256};
use crate::domain::quota::{QuotaExceeded, QuotaOverrides, QuotaPolicy, UserQuota};

/// The cause of a database failure, kept for the error chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint was violated; the string names what already exists.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A foreign key was violated: the record the write refers to was deleted meanwhile
    /// (a site deleted while a deploy to it is created). The string names what is gone.
    #[error("{0} no longer exists")]
    Gone(&'static str),
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    #[error("database error: {0}")]
    Other(#[source] BoxError),
    /// The quota policy refused the write; nothing was written.
    #[error(transparent)]
    QuotaExceeded(#[from] QuotaExceeded),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub password_hash: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct SiteRecord {
    pub id: i64,
    pub owner_id: i64,
    pub name: String,
    pub live_deploy_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct DeployRecord {
    pub id: String,
    pub site_id: i64,
    pub site_name: String,
    pub owner_id: i64,
    pub state: DeployState,
    /// True when this deploy is its site's live one.
    pub live: bool,
    pub file_count: u64,
    pub total_bytes: u64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// The deployer's note, if any (`hostctl deploy --message`).
    pub message: Option<String>,
}

/// A dashboard browser session, stored under the SHA-256 of its id.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionRecord {
    pub user_id: i64,
    /// The synchronizer token every form and upload of this session must send back.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// One file of a deploy.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ManifestEntry {
    pub path: String,
    pub sha256: Sha256,
    pub size: u64,
}

/// What `create_deploy` needs; sizes of digest-deploy files are learnt on upload.
#[derive(Debug, Clone)]
pub struct NewDeploy {
    pub id: DeployId,
    pub site_id: i64,
    pub owner_id: i64,
    pub created_by: i64,
    pub files: Vec<ManifestEntry>,
    /// `(key, fingerprint of the request)` from an `Idempotency-Key` header.
    pub idempotency: Option<(String, String)>,
    /// True when the request itself carried every file (an archive deploy): the files'
    /// sizes are known and the owner is recorded as having their blobs.
    pub files_uploaded: bool,
    /// The deployer's note, already checked against its length bound.
    pub message: Option<String>,
}

/// The outcome of `create_deploy`.
#[derive(Debug, Clone)]
pub enum CreatedDeploy {
    Created {
        deploy: DeployRecord,
        required: Vec<Sha256>,
    },
    /// The idempotency key was used before with the same request: the earlier deploy.
    Replayed {
        deploy: DeployRecord,
        required: Vec<Sha256>,
    },
    /// The idempotency key was used before with a different request.
    KeyReused,
}

/// The outcome of recording one uploaded file against a deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadOutcome {
    /// Recorded; the deploy may now be ready.
    Accepted { now_ready: bool },
    /// The hash is not part of this deploy.
    NotInDeploy,
}

/// What the serving path needs to know about a host.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LiveDeploy {
    pub site_id: i64,
    pub deploy_id: String,
    pub created_at: DateTime<Utc>,
}

/// What serving a site's own host needs: its live deploy and its visitor access.
#[derive(Debug, Clone)]
pub struct SiteServing {
    pub name: String,
    pub deploy: Option<LiveDeploy>,
    pub protection: Option<ProtectionRecord>,
}

/// A custom domain of a site; the owner is the site's.
#[derive(Debug, Clone)]
pub struct DomainRecord {
    pub id: i64,
    pub name: String,
    pub site_id: i64,
    pub site_name: String,
    pub owner_id: i64,
    pub status: DomainStatus,
    pub status_detail: Option<String>,
    /// The verification token (TXT value and HTTP token body); not a secret.
    pub token: String,
    pub created_at: DateTime<Utc>,
    pub checked_at: Option<DateTime<Utc>>,
    pub verified_at: Option<DateTime<Utc>>,
    /// Consecutive failed checks.
    pub failures: u32,
}

/// What `add_domain` needs.
#[derive(Debug, Clone)]
pub struct NewDomain {
    pub owner_id: i64,
    pub site_id: i64,
    pub name: String,
    pub token: String,
    pub next_check_at: DateTime<Utc>,
    /// Another owner's unverified claim created before this may be replaced (a failed
    /// one always may); a verified claim never is.
    pub replace_unverified_before: DateTime<Utc>,
}

/// The result of one ownership check.
#[derive(Debug, Clone)]
pub struct DomainCheck {
    pub status: DomainStatus,
    pub detail: Option<String>,
    pub failures: u32,
    pub next_check_at: DateTime<Utc>,
}

/// Sealed bytes in `Debug` output: their length only, never their contents.
struct SealedBytes<'a>(&'a [u8]);

impl std::fmt::Debug for SealedBytes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

/// A custom domain's certificate as stored; the private key is sealed (never printed).
#[derive(Clone)]
pub struct CertificateRecord {
    pub domain_id: i64,
    /// The domain's name.
    pub domain: String,
    pub status: CertificateStatus,
    /// Leaf and intermediates, PEM (public).
    pub chain_pem: Option<String>,
    /// The private key, sealed by the caller.
    pub key_sealed: Option<Vec<u8>>,
    pub serial: Option<String>,
    pub issuer: Option<String>,
    pub not_before: Option<DateTime<Utc>>,
    pub not_after: Option<DateTime<Utc>>,
    pub issued_at: Option<DateTime<Utc>>,
    /// Consecutive failed orders.
    pub failures: u32,
    pub last_error: Option<String>,
    /// When the next order (renewal or retry) is due.
    pub next_attempt_at: DateTime<Utc>,
}

impl std::fmt::Debug for CertificateRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateRecord")
            .field("domain_id", &self.domain_id)
            .field("domain", &self.domain)
            .field("status", &self.status)
            .field("chain_pem", &self.chain_pem)
            .field("key_sealed", &self.key_sealed.as_deref().map(SealedBytes))
            .field("serial", &self.serial)
            .field("issuer", &self.issuer)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("issued_at", &self.issued_at)
            .field("failures", &self.failures)
            .field("last_error", &self.last_error)
            .field("next_attempt_at", &self.next_attempt_at)
            .finish()
    }
}

/// A freshly issued certificate to store; the private key is sealed (never printed).
#[derive(Clone)]
pub struct IssuedCertificate {
    pub chain_pem: String,
    pub key_sealed: Vec<u8>,
    pub serial: String,
    pub issuer: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
    /// When to renew.
    pub next_attempt_at: DateTime<Utc>,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("chain_pem", &self.chain_pem)
            .field("key_sealed", &SealedBytes(&self.key_sealed))
            .field("serial", &self.serial)
            .field("issuer", &self.issuer)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("issued_at", &self.issued_at)
            .field("next_attempt_at", &self.next_attempt_at)
            .finish()
    }
}

/// A failed certificate order to record.
#[derive(Debug, Clone)]
pub struct CertificateFailure {
    pub error: String,
    /// Consecutive failed orders, this one included.
    pub failures: u32,
    /// When to retry.
    pub next_attempt_at: DateTime<Utc>,
}

/// A verified domain whose certificate order is due.
#[derive(Debug, Clone)]
pub struct DueCertificate {
    pub domain_id: i64,
    pub domain: String,
    /// Consecutive failed orders so far.
    pub failures: u32,
}

/// Platform state. Every site-scoped method takes the owner and filters by it, so a
/// tenant can never see or change another tenant's sites or deploys.
#[async_trait]
pub trait Store: Send + Sync {
    /// Round-trip to the primary database (readiness).
    async fn ping(&self) -> StoreResult<()>;

    /// WAL position of the latest write this process knows of (cluster mode), sent with
    /// invalidations so other app replicas read their writes.
    fn write_position(&self) -> Option<u64> {
        None
    }

    /// Another app replica wrote up to `position`.
    fn observe_write(&self, _position: u64) {}

    /// The read replica's state for `/readyz` (cluster mode).
    fn replica_status(&self) -> Option<&'static str> {
        None
    }

    async fn count_users(&self) -> StoreResult<u64>;
    async fn create_user(
        &self,
        username: &str,
        role: Role,
        password_hash: Option<&str>,
    ) -> StoreResult<UserRecord>;
    async fn list_users(&self) -> StoreResult<Vec<UserRecord>>;
    async fn set_user_disabled(
        &self,
        user_id: i64,
        disabled: bool,
    ) -> StoreResult<Option<UserRecord>>;

    async fn user_by_id(&self, user_id: i64) -> StoreResult<Option<UserRecord>>;
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// Replaces a user's argon2id password hash; false when there is no such user.
    async fn set_password(&self, user_id: i64, password_hash: &str) -> StoreResult<bool>;

    /// Browser sessions (used when no Redis is configured), keyed by the id's hash.
    async fn create_session(&self, id_hash: &str, session: &SessionRecord) -> StoreResult<()>;
    /// The session if it exists and has not expired.
    async fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>>;
    async fn delete_session(&self, id_hash: &str) -> StoreResult<()>;
    /// Signs a user out everywhere (password changed, account disabled).
    async fn delete_user_sessions(&self, user_id: i64) -> StoreResult<()>;
    /// Deletes sessions that expired before `now`.
    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64>;

    async fn create_token(
        &self,
        user_id: i64,
        name: &str,
        secret_hash: &str,
    ) -> StoreResult<TokenRecord>;
    async fn list_tokens(&self, user_id: i64) -> StoreResult<Vec<TokenRecord>>;
    async fn delete_token(&self, user_id: i64, token_id: i64) -> StoreResult<bool>;
    /// The enabled user owning a token, and records the token's use.
    async fn authenticate(&self, secret_hash: &str) -> StoreResult<Option<UserRecord>>;

    /// Creates a site if `quotas` admits one more for the owner (checked under the owner's
    /// row lock, in the inserting transaction).
    async fn create_site(
        &self,
        owner_id: i64,
        name: &str,
        quotas: &dyn QuotaPolicy,
    ) -> StoreResult<SiteRecord>;
    async fn list_sites(&self, owner_id: i64) -> StoreResult<Vec<SiteRecord>>;
    async fn site(&self, owner_id: i64, name: &str) -> StoreResult<Option<SiteRecord>>;
    /// Deletes a site and its deploys; blobs are left to garbage collection.
    async fn delete_site(&self, owner_id: i64, name: &str) -> StoreResult<bool>;

    /// Creates a deploy and its file list in one transaction; `required` are the
    /// hashes this owner has never uploaded. With no required hash the deploy is ready.
    /// `quotas` must admit one more deploy this hour and the bytes the deploy adds to the
    /// owner's stored bytes (checked under the owner's row lock, before the commit).
    async fn create_deploy(
        &self,
        new: NewDeploy,
        quotas: &dyn QuotaPolicy,
    ) -> StoreResult<CreatedDeploy>;
    async fn deploy(&self, owner_id: i64, id: &str) -> StoreResult<Option<DeployRecord>>;
    async fn list_deploys(&self, owner_id: i64, site_id: i64) -> StoreResult<Vec<DeployRecord>>;
    /// The files of a ready deploy (empty for any other state).
    async fn manifest(&self, deploy_id: &str) -> StoreResult<Vec<ManifestEntry>>;
    /// Hashes this deploy still waits for.
    async fn missing_blobs(&self, deploy_id: &str) -> StoreResult<Vec<Sha256>>;
    /// Records that the deploy's owner uploaded `sha256` (verified, `size` bytes), if
    /// `quotas` admits the bytes it adds to the owner's stored bytes.
    async fn record_upload(
        &self,
        owner_id: i64,
        deploy_id: &str,
        sha256: &Sha256,
        size: u64,
        quotas: &dyn QuotaPolicy,
    ) -> StoreResult<UploadOutcome>;
    /// Makes a ready deploy the site's live one, atomically. Returns the updated deploy,
    /// or `None` when it is not ready (the caller reports why).
    async fn publish(&self, owner_id: i64, deploy_id: &str) -> StoreResult<Option<DeployRecord>>;
    /// The deploy that was live before the current one.
    async fn previous_live(&self, owner_id: i64, site_id: i64)
        -> StoreResult<Option<DeployRecord>>;

    /// A user's role, quota overrides and usage; `None` when there is no such user.
    async fn user_quota(&self, user_id: i64) -> StoreResult<Option<UserQuota>>;
    /// Replaces a user's quota overrides; false when there is no such user.
    async fn set_user_quota(&self, user_id: i64, overrides: &QuotaOverrides) -> StoreResult<bool>;
    /// The hashes that count towards the owner's stored bytes (uploaded by the owner and
    /// referenced by one of the owner's deploys): an archive adds only the others.
    async fn counted_blobs(&self, owner_id: i64) -> StoreResult<HashSet<Sha256>>;

    /// Which of `hashes` this owner has uploaded before.
    async fn has_blobs(&self, owner_id: i64, hashes: &[Sha256]) -> StoreResult<HashSet<Sha256>>;
    /// Notes that a blob was (re)written now, so garbage collection leaves it alone for a while.
    async fn touch_blob(&self, sha256: &Sha256, size: u64) -> StoreResult<()>;

    /// The live deploy of the site named `site`.
    async fn live_deploy(&self, site: &str) -> StoreResult<Option<LiveDeploy>>;
    /// The live deploy and visitor access of each named site that exists, in one query
    /// per few thousand names: the host cache refreshes many site hosts at once with it.
    async fn sites_serving(&self, sites: &[String]) -> StoreResult<Vec<SiteServing>>;
    /// A deploy of `site` by id, for preview hosts (any state but expired or failed).
    async fn preview_deploy(&self, site: &str, deploy_id: &str) -> StoreResult<Option<LiveDeploy>>;

    /// Marks deploys still uploading since before `cutoff` expired and drops their file
    /// lists; the expired deploys as `(id, owner id)`.
    async fn expire_deploys(&self, cutoff: DateTime<Utc>) -> StoreResult<Vec<(String, i64)>>;
    /// Blobs no deploy references and nothing touched since `cutoff`.
    async fn unreferenced_blobs(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Sha256>>;
    /// Forgets a blob if it is still unreferenced and untouched since `cutoff`; true when forgotten.
    async fn forget_blob(&self, sha256: &Sha256, cutoff: DateTime<Utc>) -> StoreResult<bool>;

    /// Claims a domain for a site, in one transaction: 409 when the name is verified by
    /// anyone, already claimed by this owner, or claimed (unverified) by another owner
    /// more recently than `replace_unverified_before` and not failed.
    async fn add_domain(&self, new: NewDomain) -> StoreResult<DomainRecord>;
    async fn list_domains(&self, owner_id: i64, site_id: i64) -> StoreResult<Vec<DomainRecord>>;
    async fn domain(
        &self,
        owner_id: i64,
        site_id: i64,
        name: &str,
    ) -> StoreResult<Option<DomainRecord>>;
    async fn delete_domain(&self, owner_id: i64, site_id: i64, name: &str) -> StoreResult<bool>;
    /// Records the outcome of an ownership check of the domain with this id.
    async fn record_domain_check(&self, id: i64, check: &DomainCheck) -> StoreResult<()>;
    /// Domains whose next check is due at `now`, oldest first.
    async fn domains_due(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<DomainRecord>>;
    /// The live deploy of the site a VERIFIED domain belongs to.
    async fn domain_live_deploy(&self, name: &str) -> StoreResult<Option<LiveDeploy>>;
    /// The verification token of a claimed domain (any status), for the HTTP check.
    async fn domain_token(&self, name: &str) -> StoreResult<Option<String>>;
    /// Names of a site's custom domains (cache invalidation).
    async fn site_domains(&self, site: &str) -> StoreResult<Vec<String>>;

    /// Verified domains whose certificate order is due at `now`: no certificates row yet, or
    /// next_attempt_at <= now — skipping rows whose lease_until > now. Most overdue first
    /// (rows missing count as due since the domain's verified_at).
    async fn certificates_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueCertificate>>;
    /// Takes the order lease of a domain's certificate until `until`, unless another holder's
    /// lease is still running at `now`; creates the row (status pending, next_attempt_at now) if
    /// missing. True when the caller got the lease. One statement (INSERT .. ON CONFLICT DO
    /// UPDATE .. WHERE lease is free), so two replicas racing get one winner.
    async fn lease_certificate(
        &self,
        domain_id: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Gives back the lease taken until `until` (a replica stopping mid-order), so another
    /// replica may order at once; a lease taken since by someone else is left alone.
    async fn release_certificate_lease(
        &self,
        domain_id: i64,
        until: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Stores a new certificate: status issued, failures 0, last_error NULL, lease cleared.
    async fn record_certificate_issued(
        &self,
        domain_id: i64,
        issued: &IssuedCertificate,
    ) -> StoreResult<()>;
    /// Records a failed order: status failed, failures/last_error/next_attempt_at set, lease
    /// cleared; chain_pem/key_sealed/serial etc. of an earlier certificate are KEPT.
    async fn record_certificate_failure(
        &self,
        domain_id: i64,
        failure: &CertificateFailure,
    ) -> StoreResult<()>;
    /// Makes a domain's certificate order due at `now` (owner asked to renew / retry): creates
    /// the row as pending if missing, otherwise only sets next_attempt_at (status unchanged).
    async fn request_certificate(&self, domain_id: i64, now: DateTime<Utc>) -> StoreResult<()>;
    /// The certificate row of a domain, if any.
    async fn certificate(&self, domain_id: i64) -> StoreResult<Option<CertificateRecord>>;
    /// Certificates the proxies should serve: rows WITH a chain whose domain is verified,
    /// ordered by domain name.
    async fn served_certificates(&self) -> StoreResult<Vec<CertificateRecord>>;
    /// The certificate rows of a site's domains (one query for a domain list).
    async fn site_certificates(&self, site_id: i64) -> StoreResult<Vec<CertificateRecord>>;
    /// Domain and expiry of the `limit` served certificates that expire first (metrics).
    async fn certificate_expiries(&self, limit: u32) -> StoreResult<Vec<(String, DateTime<Utc>)>>;
    /// Number of certificate rows per status, for metrics (statuses with 0 rows may be omitted).
    async fn certificate_counts(&self) -> StoreResult<Vec<(CertificateStatus, u64)>>;
    /// The sealed ACME account credentials stored for a directory URL.
    async fn acme_account(&self, directory: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Stores account credentials unless the directory already has some; returns the stored
    /// ones (the first writer wins, so racing replicas end up with one account).
    async fn save_acme_account(
        &self,
        directory: &str,
        sealed: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<u8>>;
    /// Forgets the stored account of a directory when it is still `sealed` (the CA no
    /// longer knows it), so the next order creates a new one; a replica that already
    /// stored a newer one keeps it.
    async fn forget_acme_account(&self, directory: &str, sealed: &[u8]) -> StoreResult<()>;

    // Analytics (issue 20), statements in `analytics.rs`.
    /// Adds one flush of figures: a few multi-row statements per transaction of up to a
    /// thousand buckets, sketches merged under the bucket rows' locks. Every transaction
    /// is tried; the last failure is returned.
    async fn add_analytics(&self, batch: &AnalyticsBatch) -> StoreResult<()>;
    /// A site's buckets of one granularity starting in [`from`, `to`) (unix seconds).
    async fn analytics_buckets(
        &self,
        site_id: i64,
        granularity: Granularity,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<BucketRecord>>;
    /// The `limit` largest entries of one top list over a site's buckets in [`from`, `to`).
    async fn analytics_top(
        &self,
        site_id: i64,
        granularity: Granularity,
        range: (i64, i64),
        kind: TopKind,
        limit: u32,
    ) -> StoreResult<Vec<(String, u64)>>;
    /// Deletes figures and salts past their retention; the rows deleted.
    async fn prune_analytics(&self, cutoffs: &AnalyticsCutoffs) -> StoreResult<u64>;
    /// Day `day`'s visitor salt: `candidate` unless a replica stored one first.
    async fn analytics_salt(&self, day: i64, candidate: &[u8]) -> StoreResult<Vec<u8>>;
    /// The site named `name`, whoever owns it (admins read every site's figures).
    async fn site_of_any_owner(&self, name: &str) -> StoreResult<Option<SiteRecord>>;
    /// The distinct digests of a deploy's files.
    async fn deploy_digests(&self, deploy_id: &str) -> StoreResult<HashSet<Sha256>>;
    /// [`Store::record_upload`] for a whole batch of blobs of the deploy, in one
    /// transaction: `quotas` must admit the bytes the batch adds to the owner's storage.
    async fn record_uploads(
        &self,
        owner_id: i64,
        deploy_id: &str,
        blobs: &[(Sha256, u64)],
        quotas: &dyn QuotaPolicy,
    ) -> StoreResult<UploadOutcome>;
    /// Records blobs the owner uploaded before any deploy names them (`POST /blobs`), in
    /// one transaction: `quotas` must admit the bytes new to the owner. They start counting
    /// towards the owner's stored bytes when a deploy references them (`create_deploy`);
    /// until then garbage collection may take them after its grace period.
    async fn record_owned_uploads(
        &self,
        owner_id: i64,
        blobs: &[(Sha256, u64)],
        quotas: &dyn QuotaPolicy,
    ) -> StoreResult<()>;
    /// [`Store::touch_blob`] for many blobs, in one statement per chunk.
    async fn touch_blobs(&self, blobs: &[(Sha256, u64)]) -> StoreResult<()>;
    // Deploy aliases and visitor access (`aliases.rs`).
    /// Points alias `name` of the owner's site at a ready deploy of it (created or moved);
    /// false when the site or deploy does not qualify.
    async fn set_alias(
        &self,
        owner_id: i64,
        site_id: i64,
        name: &str,
        deploy_id: &str,
    ) -> StoreResult<bool>;
    async fn list_aliases(&self, owner_id: i64, site_id: i64) -> StoreResult<Vec<AliasRecord>>;
    async fn delete_alias(&self, owner_id: i64, site_id: i64, name: &str) -> StoreResult<bool>;
    /// The deploy `<alias>--<site>` serves (serving path).
    async fn alias_deploy(&self, site: &str, alias: &str) -> StoreResult<Option<LiveDeploy>>;
    /// Sets the owner's site's visitor access; false when the site is not the owner's.
    async fn set_protection(
        &self,
        owner_id: i64,
        site_id: i64,
        protection: &ProtectionRecord,
    ) -> StoreResult<bool>;
    async fn delete_protection(&self, owner_id: i64, site_id: i64) -> StoreResult<bool>;
    async fn protection(
        &self,
        owner_id: i64,
        site_id: i64,
    ) -> StoreResult<Option<ProtectionRecord>>;
    /// The visitor access of site `site` (serving path).
    async fn site_protection(&self, site: &str) -> StoreResult<Option<ProtectionRecord>>;
    /// The visitor access of the site a verified custom domain serves (serving path).
    async fn domain_protection(&self, domain: &str) -> StoreResult<Option<ProtectionRecord>>;
    /// Appends an audit entry and, in the same transaction, queues `hook` for the
    /// site's subscribed webhook endpoints.
    async fn record_event(
        &self,
        entry: &NewAuditEntry,
        hook: Option<&WebhookEvent>,
    ) -> StoreResult<()>;
    /// Audit entries matching `filter`, newest first.
    async fn audit_entries(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>>;
    /// Deletes audit entries older than `before`, and finished webhook deliveries.
    async fn prune_events(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    async fn create_webhook(&self, new: &NewWebhook) -> StoreResult<WebhookRecord>;
    async fn list_webhooks(&self, owner_id: i64, site_id: i64) -> StoreResult<Vec<WebhookRecord>>;
    async fn webhook(
        &self,
        owner_id: i64,
        site_id: i64,
        id: i64,
    ) -> StoreResult<Option<WebhookRecord>>;
    async fn delete_webhook(&self, owner_id: i64, site_id: i64, id: i64) -> StoreResult<bool>;
    /// Claims up to `limit` deliveries due at `now` until `lease_until`: on PostgreSQL
    /// with `FOR UPDATE SKIP LOCKED`, so replicas claim disjoint rows.
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>>;
    /// Logs an attempt of a claimed delivery and sets what follows, releasing the lease.
    async fn record_attempt(
        &self,
        delivery_id: i64,
        attempt: &AttemptRecord,
        after: AfterAttempt,
    ) -> StoreResult<()>;
    /// The latest `limit` deliveries of the owner's webhook, with their attempt logs.
    async fn webhook_deliveries(
        &self,
        owner_id: i64,
        webhook_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>>;
    /// A custom domain by id, whoever owns it (the audit entry of a certificate order).
    async fn domain_by_id(&self, id: i64) -> StoreResult<Option<DomainRecord>>;
    /// Up to `limit` blobs with their sizes, in digest order after `after`, read on the
    /// primary (`hosting-app blobs migrate` / `verify`): every recorded blob, or with
    /// `referenced` the uploaded files of deploys.
    async fn blob_page(
        &self,
        after: Option<&Sha256>,
        limit: u32,
        referenced: bool,
    ) -> StoreResult<Vec<(Sha256, u64)>>;
    /// Up to `limit` webhook secrets still stored in clear (written before sealing).
    async fn clear_webhook_secrets(&self, limit: u32) -> StoreResult<Vec<StoredSecret>>;
    /// Replaces webhook `id`'s secret `clear` by `sealed`; false when it was no longer
    /// `clear` (another replica sealed it first).
    async fn seal_webhook_secret(&self, id: i64, clear: &str, sealed: &str) -> StoreResult<bool>;
    /// Pending webhook deliveries and the oldest one's queueing time.
    async fn webhook_queue(&self) -> StoreResult<QueueStats>;
    /// The platform certificate ordered for `names` (space-separated), if any.
    async fn platform_certificate(
        &self,
        names: &str,
    ) -> StoreResult<Option<PlatformCertificateRecord>>;
    /// Takes the order of the platform certificate for `names` until `until`, if it is due
    /// at `now` and no other replica holds it (a first order is always due).
    async fn lease_platform_certificate(
        &self,
        names: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Gives a lease back early (the order was abandoned).
    async fn release_platform_certificate_lease(
        &self,
        names: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Stores the issued platform certificate and ends the lease.
    async fn record_platform_certificate_issued(
        &self,
        names: &str,
        issued: &IssuedCertificate,
    ) -> StoreResult<()>;
    /// Records a failed order (the earlier certificate stays) and ends the lease.
    async fn record_platform_certificate_failure(
        &self,
        names: &str,
        failure: &CertificateFailure,
    ) -> StoreResult<()>;
    /// The owner's site's HSTS `(max-age, includeSubDomains)`, if it sends one.
    async fn site_hsts(&self, owner_id: i64, site_id: i64) -> StoreResult<Option<(i64, bool)>>;
    /// Sets the owner's site's HSTS (`max_age` > 0).
    async fn set_site_hsts(
        &self,
        owner_id: i64,
        site_id: i64,
        max_age: i64,
        include_subdomains: bool,
    ) -> StoreResult<()>;
    /// Stops the owner's site's HSTS.
    async fn delete_site_hsts(&self, owner_id: i64, site_id: i64) -> StoreResult<()>;
    /// Every host that sends HSTS, for the TLS listener's table.
    async fn hsts_hosts(&self) -> StoreResult<Vec<HstsHost>>;
}
