//! Request and response bodies of the `/api/v1` HTTP API, shared by the server
//! (`hosting-app`) and the CLI (`hostctl`) so the two can never disagree on the wire format.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
pub mod schema;

mod analytics;
pub use analytics::{
    AnalyticsFigures, AnalyticsGranularity, AnalyticsPoint, SiteAnalytics, TopEntry,
};
mod access;
pub use access::*;

/// Media type of every API error body (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Header that makes `POST /sites/{site}/deploys` safe to retry.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// Longest deploy message, in characters (a commit subject line, with room to spare).
pub const MAX_DEPLOY_MESSAGE_CHARS: usize = 500;

/// An RFC 9457 problem document: the one error shape of the whole API.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Problem {
    /// A URI naming the class of problem (relative to the API, e.g. `/problems/not-found`).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What exactly was wrong with this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

/// `POST /api/v1/users` (admin only).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateUser {
    #[cfg_attr(feature = "openapi", schema(value_type = schema::Username))]
    pub username: String,
    #[serde(default)]
    pub role: Option<Role>,
    /// Optional password for the web dashboard; the API itself uses tokens.
    #[cfg_attr(feature = "openapi", schema(min_length = 10))]
    #[serde(default)]
    pub password: Option<String>,
}

/// Response to `POST /api/v1/users`: the user and a first API token, shown once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedUser {
    pub user: User,
    pub token: CreatedToken,
}

/// `PATCH /api/v1/users/{id}` (admin only).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateUser {
    pub disabled: bool,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateToken {
    #[cfg_attr(feature = "openapi", schema(value_type = schema::TokenName))]
    pub name: String,
}

/// A token as listed: never the secret itself.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Token {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A freshly created token; `secret` is returned this once and stored only hashed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: Token,
    pub secret: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateSite {
    #[cfg_attr(feature = "openapi", schema(value_type = schema::SiteName))]
    pub name: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Site {
    #[cfg_attr(feature = "openapi", schema(value_type = schema::SiteName))]
    pub name: String,
    /// `http(s)://<name>.<base-domain>/`
    pub url: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<schema::DeployId>))]
    pub live_deploy_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Body of `POST /api/v1/sites/{site}/domains`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddDomain {
    /// Lower-case ASCII host name, e.g. `www.example.com` (not under the platform's base domain).
    #[cfg_attr(feature = "openapi", schema(value_type = schema::DomainName))]
    pub name: String,
}

/// Where a custom domain is in its ownership check.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DomainStatus {
    /// Added; not proven yet. The domain serves the platform's 404.
    Pending,
    /// Ownership proven: the domain serves its site's live deploy.
    Verified,
    /// Not proven within the grace period, or no longer proven: serves the platform's 404.
    Failed,
}

/// How the owner proves control of a domain: either record is enough.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DomainVerification {
    /// DNS name of the TXT record to create, `_hosting-verify.<domain>`.
    pub txt_name: String,
    /// Value of that TXT record.
    pub txt_value: String,
    /// Path the platform itself answers on the domain once it points at the platform.
    pub http_path: String,
    /// Body the platform answers at `http_path`.
    pub http_token: String,
}

/// A custom domain of a site.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Domain {
    pub name: String,
    pub site: String,
    pub status: DomainStatus,
    /// Why the domain is pending or failed (the last check's result).
    pub status_detail: Option<String>,
    pub verification: DomainVerification,
    pub created_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
    pub checked_at: Option<DateTime<Utc>>,
    /// The domain's TLS certificate; `null` while the domain is not verified or when the
    /// platform runs without ACME (then the platform's own certificate is served).
    #[serde(default)]
    pub certificate: Option<Certificate>,
}

/// Where a custom domain's certificate is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CertificateStatus {
    /// No certificate yet; an order is due (HTTPS serves the platform's certificate).
    Pending,
    /// A certificate is served; renewal is scheduled.
    Issued,
    /// The last order failed; it is retried with backoff. A certificate issued before,
    /// if any, is still served until it expires.
    Failed,
}

/// A custom domain's TLS certificate (the private key never leaves the platform).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Certificate {
    pub status: CertificateStatus,
    /// Serial number of the certificate served, upper-case hex.
    pub serial: Option<String>,
    pub issuer: Option<String>,
    pub not_before: Option<DateTime<Utc>>,
    pub not_after: Option<DateTime<Utc>>,
    pub issued_at: Option<DateTime<Utc>>,
    /// Consecutive failed orders.
    pub failures: u32,
    /// Why the last order failed.
    pub last_error: Option<String>,
    /// When the next order (renewal or retry) is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DeployState {
    /// Created; waiting for the files listed in `required`.
    Uploading,
    /// Every file is present; can be published.
    Ready,
    /// Abandoned before all files arrived; can never be published.
    Expired,
    /// Rejected (bad archive, limits); nothing was published.
    Failed,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Deploy {
    #[cfg_attr(feature = "openapi", schema(value_type = schema::DeployId))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = schema::SiteName))]
    pub site: String,
    pub state: DeployState,
    /// True when this deploy is the site's live one.
    pub live: bool,
    pub file_count: u64,
    pub total_bytes: u64,
    /// Username of whoever created the deploy.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    /// Per-deploy preview URL: `http(s)://<id>--<site>.<base-domain>/`
    pub preview_url: String,
    /// Why the deploy failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the deploy is, in the deployer's words (`hostctl deploy --message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `POST /api/v1/sites/{site}/deploys` with `Content-Type: application/json`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateDeploy {
    /// Site path (`/index.html`) to lower-case hex SHA-256 of the file's bytes.
    #[cfg_attr(feature = "openapi", schema(value_type = schema::FileList))]
    pub files: BTreeMap<String, String>,
    /// A note stored with the deploy, at most [`MAX_DEPLOY_MESSAGE_CHARS`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 500, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")
    )]
    pub message: Option<String>,
}

/// `GET /api/v1/limits`: what the server accepts in one deploy, so a client can refuse
/// an oversized folder before creating anything.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Limits {
    /// Most files in one deploy.
    pub max_files: u64,
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// Largest deploy (all files together), in bytes.
    pub max_deploy_bytes: u64,
}

/// Response to a digest deploy: which hashes must still be uploaded.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedDeploy {
    #[serde(flatten)]
    pub deploy: Deploy,
    /// Hashes this owner has never uploaded; `PUT /api/v1/deploys/{id}/files/{sha256}` each.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<schema::Sha256>))]
    pub required: Vec<String>,
}

/// Most digests one `POST /api/v1/blobs/missing` may ask about.
pub const MAX_MISSING_QUERY: usize = 5_000;

/// `POST /api/v1/blobs/missing`: which of these digests must the caller still upload
/// (the "which of these are missing" call a client makes per chunk of hashed files,
/// before the deploy exists).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MissingQuery {
    /// At most [`MAX_MISSING_QUERY`] digests.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<schema::Sha256>, max_items = 5000)
    )]
    pub digests: Vec<String>,
}

/// Response to [`MissingQuery`]: the digests this owner has not uploaded, sorted.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Missing {
    /// Upload these with `POST /api/v1/blobs` (or, once the deploy exists, to the deploy).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<schema::Sha256>))]
    pub missing: Vec<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct List<T> {
    pub items: Vec<T>,
}

/// `POST /api/v1/sites/{site}/rollback`: publish `deploy_id`, or when absent the deploy
/// that was live before the current one.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rollback {
    #[cfg_attr(feature = "openapi", schema(value_type = Option<schema::DeployId>))]
    #[serde(default)]
    pub deploy_id: Option<String>,
}

/// The three per-user quotas.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum QuotaKind {
    /// Bytes of the distinct files the user's deploys reference (see the README's "Quotas").
    StorageBytes,
    /// Sites the user owns.
    Sites,
    /// Deploys the user created in the last rolling hour.
    DeploysPerHour,
}

impl QuotaKind {
    /// The name used on the wire and in messages (`storage_bytes`, `sites`, `deploys_per_hour`).
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaKind::StorageBytes => "storage_bytes",
            QuotaKind::Sites => "sites",
            QuotaKind::DeploysPerHour => "deploys_per_hour",
        }
    }
}

/// One quota of a user: what is used and the limit that applies.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuotaItem {
    pub used: u64,
    /// `null`: unlimited.
    pub limit: Option<u64>,
    /// True when an admin set this user's limit; false when the platform default applies.
    pub overridden: bool,
}

/// A user's usage and limits (`GET /api/v1/whoami`, `GET|PUT /api/v1/users/{id}/quota`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Quota {
    pub storage_bytes: QuotaItem,
    pub sites: QuotaItem,
    pub deploys_per_hour: QuotaItem,
}

/// `GET /api/v1/whoami`: the caller and their quota usage.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WhoAmI {
    #[serde(flatten)]
    pub user: User,
    pub quota: Quota,
}

/// `PUT /api/v1/users/{id}/quota` (admin only): replaces the user's overrides. Each field:
/// absent or `null` = the platform default, `0` = unlimited, otherwise the limit.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SetQuota {
    #[serde(default, deserialize_with = "optional_whole_number")]
    pub storage_bytes: Option<u64>,
    #[serde(default, deserialize_with = "optional_whole_number")]
    pub sites: Option<u64>,
    #[serde(default, deserialize_with = "optional_whole_number")]
    pub deploys_per_hour: Option<u64>,
}

/// A JSON number that must be whole and 0 or more, also when a client writes it as `3.0`:
/// JSON Schema's `integer` (what the OpenAPI document promises) includes numbers with a
/// zero fraction.
#[derive(Deserialize)]
#[serde(untagged)]
enum WholeNumber {
    Whole(u64),
    Float(f64),
}

impl WholeNumber {
    fn value<E: serde::de::Error>(self) -> Result<u64, E> {
        match self {
            WholeNumber::Whole(n) => Ok(n),
            // `u64::MAX as f64` rounds up to 2^64, so `<` keeps the cast exact.
            WholeNumber::Float(f) if f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => {
                Ok(f as u64)
            }
            WholeNumber::Float(f) => {
                Err(E::custom(format!("{f} is not a whole number of 0 or more")))
            }
        }
    }
}

fn optional_whole_number<'de, D>(deserializer: D) -> Result<Option<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<WholeNumber>::deserialize(deserializer)?
        .map(WholeNumber::value)
        .transpose()
}

/// A whole number that fits 32 bits (see [`WholeNumber`]).
fn whole_u32<'de, D>(deserializer: D) -> Result<u32, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let n = WholeNumber::deserialize(deserializer)?.value()?;
    u32::try_from(n).map_err(|_| serde::de::Error::custom(format!("{n} is more than {}", u32::MAX)))
}

/// The problem document of a refused quota (status 403, type `/problems/quota-exceeded`):
/// the RFC 9457 members plus which quota, its limit and the usage before the request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QuotaProblem {
    #[serde(flatten)]
    pub problem: Problem,
    pub quota: QuotaKind,
    pub limit: u64,
    pub used: u64,
}

/// A byte count written as plain bytes (`1048576`) or with a binary or decimal unit
/// (`512KiB`, `1 GiB`, `10MB`, `2G` = 2 GiB), for settings and command-line flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(raw: &str) -> Result<ByteSize, String> {
        let text = raw.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let number: u64 = digits
            .parse()
            .map_err(|_| format!("{raw:?} is not a size: write bytes, or a number and a unit such as 512MiB or 10GiB"))?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kib" => 1 << 10,
            "m" | "mib" => 1 << 20,
            "g" | "gib" => 1 << 30,
            "t" | "tib" => 1 << 40,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            other => return Err(format!("unknown size unit {other:?} in {raw:?} (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)")),
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("{raw:?} is too large"))
    }
}

impl std::fmt::Display for ByteSize {
    /// The largest binary unit that divides the size exactly, so the output parses back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const UNITS: [(u64, &str); 4] = [
            (1 << 40, "TiB"),
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
        ];
        for (size, unit) in UNITS {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quota_limits_are_whole_numbers_also_written_with_a_zero_fraction() {
        let set: super::SetQuota =
            serde_json::from_str(r#"{"sites": 3.0, "deploys_per_hour": 5}"#).expect("whole");
        assert_eq!(
            (set.sites, set.deploys_per_hour, set.storage_bytes),
            (Some(3), Some(5), None)
        );
        for refused in [r#"{"sites": 2.5}"#, r#"{"sites": -1}"#, r#"{"sites": "3"}"#] {
            assert!(
                serde_json::from_str::<super::SetQuota>(refused).is_err(),
                "{refused}"
            );
        }
    }

    #[test]
    fn an_hsts_max_age_is_a_whole_number_of_32_bits_also_written_with_a_zero_fraction() {
        let hsts: super::Hsts = serde_json::from_str(r#"{"max_age": 979.0}"#).expect("whole");
        assert_eq!((hsts.max_age, hsts.include_subdomains), (979, false));
        for refused in [
            r#"{"max_age": 2.5}"#,
            r#"{"max_age": -1}"#,
            r#"{"max_age": 4294967296}"#,
            r#"{"max_age": "3"}"#,
        ] {
            assert!(
                serde_json::from_str::<super::Hsts>(refused).is_err(),
                "{refused}"
            );
        }
    }

    use super::ByteSize;

    #[test]
    fn sizes_parse_as_bytes_or_with_a_unit() {
        assert_eq!("1048576".parse(), Ok(ByteSize(1 << 20)));
        assert_eq!("512KiB".parse(), Ok(ByteSize(512 << 10)));
        assert_eq!("1 GiB".parse(), Ok(ByteSize(1 << 30)));
        assert_eq!("10MB".parse(), Ok(ByteSize(10_000_000)));
        assert_eq!("2g".parse(), Ok(ByteSize(2 << 30)));
        assert!("ten".parse::<ByteSize>().is_err());
        assert!("5 parsecs".parse::<ByteSize>().is_err());
        assert!("99999999999TiB".parse::<ByteSize>().is_err());
    }

    #[test]
    fn sizes_print_in_a_unit_that_parses_back() {
        for size in [0, 1, 1000, 1 << 10, 3 << 20, (1 << 30) + 1, 10 << 30] {
            let printed = ByteSize(size).to_string();
            assert_eq!(printed.parse(), Ok(ByteSize(size)), "{printed}");
        }
        assert_eq!(ByteSize(10 << 30).to_string(), "10GiB");
    }
}

mod events;
pub use events::{
    AuditEntry, AuditPage, CreateWebhook, CreatedWebhook, Webhook, WebhookAttempt, WebhookDelivery,
};

mod hsts;
pub use hsts::{Hsts, HSTS_MAX_AGE_LIMIT};
