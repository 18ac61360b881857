//! Bodies of the audit log (`GET /audit`) and of site webhooks (`/sites/{site}/webhooks`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One audit entry: who did what, to what, from where, and how it ended.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The user name, `system` (the platform itself), or the name a failed sign-in gave.
    pub actor: String,
    pub actor_id: Option<i64>,
    pub client_address: Option<String>,
    /// `session.sign_in`, `token.create`, `site.delete`, `deploy.publish`, ...
    pub action: String,
    /// `site:blog`, `deploy:<id>`, `user:alice`, `domain:www.example.com`, ...
    pub target: String,
    pub site: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    pub detail: Option<String>,
}

/// A page of audit entries, newest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A site's webhook endpoint.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Webhook {
    pub id: i64,
    pub site: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateWebhook {
    /// An `http` or `https` URL on a public address.
    pub url: String,
    /// Event types to send (`deploy.created`, `deploy.published`, `deploy.failed`,
    /// `deploy.rolled_back`, `domain.verified`, `certificate.issued`,
    /// `certificate.failed`); empty or absent: all of them.
    #[serde(default)]
    pub events: Vec<String>,
}

/// A new endpoint with its signing secret, shown this once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    /// `whsec_<base64>`: verifies the `webhook-signature` header (Standard Webhooks).
    pub secret: String,
}

/// One message to an endpoint and its attempts.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub id: i64,
    /// The `webhook-id` header: the same on every attempt.
    pub message_id: String,
    pub event: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    pub attempts: u64,
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub log: Vec<WebhookAttempt>,
}

/// One attempt of a delivery.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookAttempt {
    pub at: DateTime<Utc>,
    /// The receiver's status; absent when it did not answer.
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
}
