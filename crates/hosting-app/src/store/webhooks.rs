//! Deploy webhooks, their delivery queue and attempt log: the statements and the rows,
//! written once for both databases. Only claiming differs: PostgreSQL appends
//! `FOR UPDATE OF d SKIP LOCKED` so replicas claim disjoint rows without waiting.

use chrono::{DateTime, Utc};

use super::columns::{count, opt_time, time};

pub(super) const INSERT: &str = "INSERT INTO webhooks (site_id, url, events, secret, created_at) \
     VALUES ($1, $2, $3, $4, $5) RETURNING id";
const COLUMNS: &str = "w.id, w.site_id, s.name AS site_name, w.url, w.events, w.created_at";
pub(super) fn of_site() -> String {
    format!(
        "SELECT {COLUMNS} FROM webhooks w JOIN sites s ON s.id = w.site_id \
         WHERE s.owner_id = $1 AND w.site_id = $2 ORDER BY w.id"
    )
}
pub(super) fn by_id() -> String {
    format!(
        "SELECT {COLUMNS} FROM webhooks w JOIN sites s ON s.id = w.site_id \
         WHERE s.owner_id = $1 AND w.site_id = $2 AND w.id = $3"
    )
}
pub(super) const DELETE: &str = "DELETE FROM webhooks WHERE id = $1 AND site_id = $2 \
     AND site_id IN (SELECT id FROM sites WHERE owner_id = $3)";

/// One message per endpoint of the site subscribed to the event, in the event's
/// transaction. `events` is `,a,b,`, so `%,<event>,%` matches a whole name (`_` is a
/// LIKE wildcard, but event names never differ by one character alone).
pub(super) const ENQUEUE: &str = "INSERT INTO webhook_deliveries \
     (webhook_id, message_id, event, payload, status, attempts, created_at, next_attempt_at) \
     SELECT w.id, $1 || '_' || w.id, $2, $3, 'pending', 0, $4, $4 FROM webhooks w \
     WHERE w.site_id = $5 AND w.events LIKE '%,' || $2 || ',%'";

/// Due deliveries with their endpoint, oldest first; whoever holds a running lease is
/// left alone. The backend appends its row lock.
pub(super) const DUE: &str = "SELECT d.id, d.message_id, d.event, d.payload, d.attempts, \
     d.created_at, w.site_id, w.url, w.secret FROM webhook_deliveries d \
     JOIN webhooks w ON w.id = d.webhook_id \
     WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
     AND (d.lease_until IS NULL OR d.lease_until <= $1) \
     ORDER BY d.next_attempt_at, d.id LIMIT $2";
pub(super) const LOCK_DUE: &str = " FOR UPDATE OF d SKIP LOCKED";
pub(super) const LEASE: &str = "UPDATE webhook_deliveries SET lease_until = $1 WHERE id = $2";

pub(super) const INSERT_ATTEMPT: &str = "INSERT INTO webhook_attempts \
     (delivery_id, at, status_code, duration_ms, error) VALUES ($1, $2, $3, $4, $5)";
pub(super) const AFTER_ATTEMPT: &str = "UPDATE webhook_deliveries SET attempts = attempts + 1, \
     status = $1, next_attempt_at = $2, completed_at = $3, lease_until = NULL WHERE id = $4";

pub(super) const DELIVERIES: &str = "SELECT d.id, d.webhook_id, d.message_id, d.event, d.status, \
     d.attempts, d.created_at, d.next_attempt_at, d.completed_at FROM webhook_deliveries d \
     JOIN webhooks w ON w.id = d.webhook_id JOIN sites s ON s.id = w.site_id \
     WHERE d.webhook_id = $1 AND s.owner_id = $2 ORDER BY d.id DESC LIMIT $3";
pub(super) const ATTEMPTS: &str = "SELECT a.delivery_id, a.at, a.status_code, a.duration_ms, \
     a.error FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id \
     WHERE d.webhook_id = $1 AND a.delivery_id >= $2 ORDER BY a.id";

/// Secrets still stored as written before sealing (`whsec_...`), to seal at start-up.
pub(super) const CLEAR_SECRETS: &str = "SELECT id, site_id, secret FROM webhooks \
     WHERE secret LIKE 'whsec_%' ORDER BY id LIMIT $1";
/// Replaces a clear secret by its sealed form, unless another replica did first.
pub(super) const SEAL_SECRET: &str =
    "UPDATE webhooks SET secret = $1 WHERE id = $2 AND secret = $3";
/// The pending deliveries and when the oldest was queued (metrics).
pub(super) const QUEUE: &str = "SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries \
     WHERE status = 'pending'";

pub(super) const PRUNE: &str =
    "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND completed_at < $1";

/// A site's webhook endpoint (its secret is shown once, at creation, and never read back).
#[derive(Debug, Clone)]
pub struct WebhookRecord {
    pub id: i64,
    pub site_id: i64,
    pub site: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// What `create_webhook` needs.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub owner_id: i64,
    pub site_id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
}

/// An event to queue for the site's subscribed endpoints.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    pub site_id: i64,
    /// `deploy.published`, ...
    pub event: &'static str,
    /// The JSON body sent, as is, to every endpoint.
    pub payload: String,
    /// Unique per event; the message id is this and the endpoint's id.
    pub message_prefix: String,
}

/// A claimed delivery, with what sending it needs.
#[derive(Clone)]
pub struct DueDelivery {
    pub id: i64,
    pub message_id: String,
    pub event: String,
    pub payload: String,
    pub attempts: u64,
    pub created_at: DateTime<Utc>,
    /// The endpoint's site: its sealed secret is bound to it.
    pub site_id: i64,
    pub url: String,
    /// As stored: sealed (`webhooks::secrets`), or clear when written without a key.
    pub secret: String,
}

/// A webhook's stored secret, for sealing the clear ones.
#[derive(Clone)]
pub struct StoredSecret {
    pub id: i64,
    pub site_id: i64,
    pub secret: String,
}

/// The delivery queue as metrics show it.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueStats {
    pub pending: u64,
    pub oldest: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for DueDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueDelivery")
            .field("id", &self.id)
            .field("message_id", &self.message_id)
            .field("event", &self.event)
            .field("attempts", &self.attempts)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// One attempt to record.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    Delivered,
    RetryAt(DateTime<Utc>),
    GiveUp,
}

/// A delivery as the API shows it.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub id: i64,
    pub webhook_id: i64,
    pub message_id: String,
    pub event: String,
    pub status: String,
    pub attempts: u64,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub log: Vec<AttemptRecord>,
}

/// `,a,b,` for the `events` column.
pub(super) fn events_column(events: &[String]) -> String {
    format!(",{},", events.join(","))
}

#[derive(sqlx::FromRow)]
pub(super) struct WebhookRow {
    id: i64,
    site_id: i64,
    site_name: String,
    url: String,
    events: String,
    created_at: i64,
}

impl From<WebhookRow> for WebhookRecord {
    fn from(row: WebhookRow) -> WebhookRecord {
        WebhookRecord {
            id: row.id,
            site_id: row.site_id,
            site: row.site_name,
            url: row.url,
            events: row
                .events
                .split(',')
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            created_at: time(row.created_at),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct DueRow {
    id: i64,
    message_id: String,
    event: String,
    payload: String,
    attempts: i64,
    created_at: i64,
    site_id: i64,
    url: String,
    secret: String,
}

impl From<DueRow> for DueDelivery {
    fn from(row: DueRow) -> DueDelivery {
        DueDelivery {
            id: row.id,
            message_id: row.message_id,
            event: row.event,
            payload: row.payload,
            attempts: count(row.attempts),
            created_at: time(row.created_at),
            site_id: row.site_id,
            url: row.url,
            secret: row.secret,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct DeliveryRow {
    id: i64,
    webhook_id: i64,
    message_id: String,
    event: String,
    status: String,
    attempts: i64,
    created_at: i64,
    next_attempt_at: i64,
    completed_at: Option<i64>,
}

impl From<DeliveryRow> for DeliveryRecord {
    fn from(row: DeliveryRow) -> DeliveryRecord {
        DeliveryRecord {
            id: row.id,
            webhook_id: row.webhook_id,
            message_id: row.message_id,
            event: row.event,
            status: row.status,
            attempts: count(row.attempts),
            created_at: time(row.created_at),
            next_attempt_at: time(row.next_attempt_at),
            completed_at: opt_time(row.completed_at),
            log: Vec::new(),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct AttemptRow {
    pub delivery_id: i64,
    at: i64,
    status_code: Option<i64>,
    duration_ms: i64,
    error: Option<String>,
}

impl From<AttemptRow> for AttemptRecord {
    fn from(row: AttemptRow) -> AttemptRecord {
        AttemptRecord {
            at: time(row.at),
            status_code: row.status_code.and_then(|c| u16::try_from(c).ok()),
            duration_ms: count(row.duration_ms),
            error: row.error,
        }
    }
}
