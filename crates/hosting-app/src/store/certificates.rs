//! Custom domains' certificates, their order leases and the ACME account: the statements
//! and rows, written once for both databases. Upserts select from `domains` (rather than
//! `VALUES`), so a domain deleted meanwhile is a no-op instead of a foreign-key error.

use chrono::{DateTime, Utc};
use hosting_api::CertificateStatus;

use super::columns::{failures, opt_time, time};
use super::{CertificateRecord, DueCertificate};

macro_rules! columns {
    () => {
        "SELECT c.domain_id, d.name AS domain, c.status, c.chain_pem, c.key_sealed, c.serial, \
         c.issuer, c.not_before, c.not_after, c.issued_at, c.failures, c.last_error, \
         c.next_attempt_at FROM certificates c JOIN domains d ON d.id = c.domain_id"
    };
}

/// Verified domains due at `$1` and not leased, most overdue first, `$2` at most.
pub(super) const DUE: &str = "SELECT d.id AS domain_id, d.name AS domain, \
     COALESCE(c.failures, 0) AS failures \
     FROM domains d LEFT JOIN certificates c ON c.domain_id = d.id \
     WHERE d.status = 'verified' AND (c.domain_id IS NULL OR (c.next_attempt_at <= $1 \
     AND (c.lease_until IS NULL OR c.lease_until <= $1))) \
     ORDER BY COALESCE(c.next_attempt_at, d.verified_at, d.created_at), d.id LIMIT $2";
/// Under READ COMMITTED a racing INSERT waits for the other one's row, then re-evaluates
/// the ON CONFLICT WHERE on it: the later replica sees a running lease.
pub(super) const LEASE: &str = "INSERT INTO certificates \
     (domain_id, status, next_attempt_at, lease_until, updated_at) \
     SELECT id, $1, $2, $3, $2 FROM domains WHERE id = $4 \
     ON CONFLICT (domain_id) DO UPDATE SET lease_until = excluded.lease_until, \
     updated_at = excluded.updated_at \
     WHERE certificates.lease_until IS NULL OR certificates.lease_until <= $2";
pub(super) const RELEASE: &str =
    "UPDATE certificates SET lease_until = NULL WHERE domain_id = $1 AND lease_until = $2";
pub(super) const ISSUED: &str = "INSERT INTO certificates (domain_id, status, chain_pem, \
     key_sealed, serial, issuer, not_before, not_after, issued_at, failures, last_error, \
     next_attempt_at, lease_until, updated_at) \
     SELECT id, $1, $2, $3, $4, $5, $6, $7, $8, 0, NULL, $9, NULL, $10 FROM domains WHERE id = $11 \
     ON CONFLICT (domain_id) DO UPDATE SET status = excluded.status, \
     chain_pem = excluded.chain_pem, key_sealed = excluded.key_sealed, \
     serial = excluded.serial, issuer = excluded.issuer, not_before = excluded.not_before, \
     not_after = excluded.not_after, issued_at = excluded.issued_at, failures = 0, \
     last_error = NULL, next_attempt_at = excluded.next_attempt_at, lease_until = NULL, \
     updated_at = excluded.updated_at";
/// Keeps an earlier certificate's chain, key and details.
pub(super) const FAILED: &str = "INSERT INTO certificates (domain_id, status, failures, \
     last_error, next_attempt_at, lease_until, updated_at) \
     SELECT id, $1, $2, $3, $4, NULL, $5 FROM domains WHERE id = $6 \
     ON CONFLICT (domain_id) DO UPDATE SET status = excluded.status, \
     failures = excluded.failures, last_error = excluded.last_error, \
     next_attempt_at = excluded.next_attempt_at, lease_until = NULL, \
     updated_at = excluded.updated_at";
pub(super) const REQUEST: &str = "INSERT INTO certificates \
     (domain_id, status, next_attempt_at, updated_at) \
     SELECT id, $1, $2, $2 FROM domains WHERE id = $3 \
     ON CONFLICT (domain_id) DO UPDATE SET next_attempt_at = excluded.next_attempt_at, \
     updated_at = excluded.updated_at";
pub(super) const OF_DOMAIN: &str = concat!(columns!(), " WHERE c.domain_id = $1");
pub(super) const SERVED: &str = concat!(
    columns!(),
    " WHERE c.chain_pem IS NOT NULL AND d.status = 'verified' ORDER BY d.name"
);
pub(super) const OF_SITE: &str = concat!(columns!(), " WHERE d.site_id = $1 ORDER BY d.name");
pub(super) const EXPIRIES: &str = "SELECT d.name, c.not_after \
     FROM certificates c JOIN domains d ON d.id = c.domain_id \
     WHERE c.chain_pem IS NOT NULL AND c.not_after IS NOT NULL AND d.status = 'verified' \
     ORDER BY c.not_after, d.name LIMIT $1";
pub(super) const COUNTS: &str =
    "SELECT status, COUNT(*) FROM certificates GROUP BY status ORDER BY status";
pub(super) const ACME_ACCOUNT: &str =
    "SELECT credentials_sealed FROM acme_accounts WHERE directory = $1";
/// The no-op update makes RETURNING yield the row that won, whoever wrote it (a racing
/// INSERT waits for the other one's row, then updates that).
pub(super) const SAVE_ACME_ACCOUNT: &str = "INSERT INTO acme_accounts \
     (directory, credentials_sealed, created_at) VALUES ($1, $2, $3) ON CONFLICT (directory) \
     DO UPDATE SET credentials_sealed = acme_accounts.credentials_sealed \
     RETURNING credentials_sealed";
pub(super) const FORGET_ACME_ACCOUNT: &str =
    "DELETE FROM acme_accounts WHERE directory = $1 AND credentials_sealed = $2";

pub(crate) fn certificate_status_str(status: CertificateStatus) -> &'static str {
    match status {
        CertificateStatus::Pending => "pending",
        CertificateStatus::Issued => "issued",
        CertificateStatus::Failed => "failed",
    }
}

pub(crate) fn parse_certificate_status(raw: &str) -> CertificateStatus {
    match raw {
        "issued" => CertificateStatus::Issued,
        "failed" => CertificateStatus::Failed,
        _ => CertificateStatus::Pending,
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CertificateRow {
    domain_id: i64,
    domain: String,
    status: String,
    chain_pem: Option<String>,
    key_sealed: Option<Vec<u8>>,
    serial: Option<String>,
    issuer: Option<String>,
    not_before: Option<i64>,
    not_after: Option<i64>,
    issued_at: Option<i64>,
    failures: i64,
    last_error: Option<String>,
    next_attempt_at: i64,
}

impl From<CertificateRow> for CertificateRecord {
    fn from(row: CertificateRow) -> CertificateRecord {
        CertificateRecord {
            domain_id: row.domain_id,
            domain: row.domain,
            status: parse_certificate_status(&row.status),
            chain_pem: row.chain_pem,
            key_sealed: row.key_sealed,
            serial: row.serial,
            issuer: row.issuer,
            not_before: opt_time(row.not_before),
            not_after: opt_time(row.not_after),
            issued_at: opt_time(row.issued_at),
            failures: failures(row.failures),
            last_error: row.last_error,
            next_attempt_at: time(row.next_attempt_at),
        }
    }
}

/// One [`DUE`] row.
#[derive(sqlx::FromRow)]
pub(super) struct DueRow {
    domain_id: i64,
    domain: String,
    failures: i64,
}

impl From<DueRow> for DueCertificate {
    fn from(row: DueRow) -> DueCertificate {
        DueCertificate {
            domain_id: row.domain_id,
            domain: row.domain,
            failures: failures(row.failures),
        }
    }
}

/// The platform certificate of one set of names ([`PlatformCertificateRecord`]).
pub(super) const PLATFORM: &str = "SELECT names, chain_pem, key_sealed, serial, not_before, \
     not_after, issued_at, failures, last_error, next_attempt_at \
     FROM platform_certificates WHERE names = $1";
/// Takes the order of `$1` when it is due at `$2` and nobody holds it; as [`LEASE`], a
/// racing replica's INSERT waits for the first one's row and then sees its lease.
pub(super) const LEASE_PLATFORM: &str = "INSERT INTO platform_certificates \
     (names, next_attempt_at, lease_until, updated_at) VALUES ($1, $2, $3, $2) \
     ON CONFLICT (names) DO UPDATE SET lease_until = excluded.lease_until, \
     updated_at = excluded.updated_at \
     WHERE platform_certificates.next_attempt_at <= $2 \
     AND (platform_certificates.lease_until IS NULL OR platform_certificates.lease_until <= $2)";
pub(super) const RELEASE_PLATFORM: &str =
    "UPDATE platform_certificates SET lease_until = NULL WHERE names = $1 AND lease_until = $2";
pub(super) const PLATFORM_ISSUED: &str = "UPDATE platform_certificates SET chain_pem = $1, \
     key_sealed = $2, serial = $3, not_before = $4, not_after = $5, issued_at = $6, \
     failures = 0, last_error = NULL, next_attempt_at = $7, lease_until = NULL, \
     updated_at = $8 WHERE names = $9";
/// Keeps an earlier certificate's chain, key and details.
pub(super) const PLATFORM_FAILED: &str = "UPDATE platform_certificates SET failures = $1, \
     last_error = $2, next_attempt_at = $3, lease_until = NULL, updated_at = $4 \
     WHERE names = $5";

/// The platform certificate (`*.<base-domain>` and friends) as stored; the private key is
/// sealed. `chain_pem` is `None` until the first order succeeds.
#[derive(Clone)]
pub struct PlatformCertificateRecord {
    /// The names ordered, space-separated.
    pub names: String,
    pub chain_pem: Option<String>,
    pub key_sealed: Option<Vec<u8>>,
    pub serial: Option<String>,
    pub not_before: Option<DateTime<Utc>>,
    pub not_after: Option<DateTime<Utc>>,
    pub issued_at: Option<DateTime<Utc>>,
    /// Consecutive failed orders.
    pub failures: u32,
    pub last_error: Option<String>,
    /// When the next order (renewal or retry) is due.
    pub next_attempt_at: DateTime<Utc>,
}

// SECURITY: no derive: never print the sealed key.
impl std::fmt::Debug for PlatformCertificateRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformCertificateRecord")
            .field("names", &self.names)
            .field("serial", &self.serial)
            .field("not_after", &self.not_after)
            .field("failures", &self.failures)
            .field("last_error", &self.last_error)
            .field("next_attempt_at", &self.next_attempt_at)
            .finish_non_exhaustive()
    }
}

/// One [`PLATFORM`] row.
#[derive(sqlx::FromRow)]
pub(super) struct PlatformRow {
    names: String,
    chain_pem: Option<String>,
    key_sealed: Option<Vec<u8>>,
    serial: Option<String>,
    not_before: Option<i64>,
    not_after: Option<i64>,
    issued_at: Option<i64>,
    failures: i64,
    last_error: Option<String>,
    next_attempt_at: i64,
}

impl From<PlatformRow> for PlatformCertificateRecord {
    fn from(row: PlatformRow) -> PlatformCertificateRecord {
        PlatformCertificateRecord {
            names: row.names,
            chain_pem: row.chain_pem,
            key_sealed: row.key_sealed,
            serial: row.serial,
            not_before: opt_time(row.not_before),
            not_after: opt_time(row.not_after),
            issued_at: opt_time(row.issued_at),
            failures: failures(row.failures),
            last_error: row.last_error,
            next_attempt_at: time(row.next_attempt_at),
        }
    }
}
