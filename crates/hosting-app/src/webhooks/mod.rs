//! Deploy webhooks: per-site endpoints called when a deploy, domain or certificate event
//! happens. The events are queued by the audit recorder (`audit::record`) in the same
//! transaction as their audit entry; `deliver.rs` sends them, signed (`sign.rs`), at
//! least once, with retries; `target.rs` keeps them off private networks.
//! The functions here are the rules of managing endpoints, shared by API and dashboard.

mod deliver;
pub mod secrets;
pub mod sign;
mod target;

use url::Url;

pub use self::deliver::run_deliveries;
use crate::actions::{ActionError, ActionResult};
use crate::audit::{self, Actor, Event};
use crate::state::App;
use crate::store::{DeliveryRecord, NewWebhook, SiteRecord, WebhookRecord};

/// The events an endpoint may subscribe to.
pub const EVENTS: [&str; 7] = [
    "deploy.created",
    "deploy.published",
    "deploy.failed",
    "deploy.rolled_back",
    "domain.verified",
    "certificate.issued",
    "certificate.failed",
];

/// Endpoints per site: enough for a chat hook, a CI trigger and a few more.
pub const MAX_PER_SITE: usize = 10;

/// Longest target URL accepted.
const MAX_URL_CHARS: usize = 2048;

/// A new endpoint and its secret (shown this once).
pub struct CreatedWebhook {
    pub webhook: WebhookRecord,
    pub secret: String,
}

/// Adds an endpoint to the caller's `site`: `events` empty means all of them.
pub async fn add(
    app: &App,
    owner_id: i64,
    site: &SiteRecord,
    url: &str,
    events: &[String],
) -> ActionResult<CreatedWebhook> {
    let url = checked_url(app, url)?;
    let events = checked_events(events)?;
    if app.store.list_webhooks(owner_id, site.id).await?.len() >= MAX_PER_SITE {
        return Err(ActionError::Conflict(format!(
            "site {:?} has {MAX_PER_SITE} webhooks already; remove one first",
            site.name
        )));
    }
    let secret = sign::generate_secret();
    let stored = secrets::seal(app.webhook_sealer.as_deref(), site.id, &secret)
        .map_err(|e| ActionError::Store(crate::store::StoreError::Other(Box::new(e))))?;
    let webhook = app
        .store
        .create_webhook(&NewWebhook {
            owner_id,
            site_id: site.id,
            url: url.to_string(),
            events,
            secret: stored,
        })
        .await?;
    tracing::info!(site.name = %site.name, webhook.id = webhook.id, "webhook added");
    let event = Event::new("webhook.add", format!("webhook:{}", webhook.id)).on_site(site);
    audit::record(app, Actor::Id(owner_id), event.detail(webhook.url.clone())).await;
    Ok(CreatedWebhook { webhook, secret })
}

/// The caller's endpoint `id` of `site`, or not found.
pub async fn owned(
    app: &App,
    owner_id: i64,
    site: &SiteRecord,
    id: i64,
) -> ActionResult<WebhookRecord> {
    app.store
        .webhook(owner_id, site.id, id)
        .await?
        .ok_or_else(|| ActionError::not_found(format!("webhook {id}")))
}

/// Removes the caller's endpoint `id` of `site`, with its queued deliveries.
pub async fn remove(app: &App, owner_id: i64, site: &SiteRecord, id: i64) -> ActionResult<()> {
    if !app.store.delete_webhook(owner_id, site.id, id).await? {
        return Err(ActionError::not_found(format!("webhook {id}")));
    }
    tracing::info!(site.name = %site.name, webhook.id = id, "webhook removed");
    let event = Event::new("webhook.remove", format!("webhook:{id}")).on_site(site);
    audit::record(app, Actor::Id(owner_id), event).await;
    Ok(())
}

/// The latest deliveries of the caller's endpoint, each with its attempt log.
pub async fn deliveries(
    app: &App,
    owner_id: i64,
    site: &SiteRecord,
    id: i64,
) -> ActionResult<Vec<DeliveryRecord>> {
    let webhook = owned(app, owner_id, site, id).await?;
    Ok(app
        .store
        .webhook_deliveries(owner_id, webhook.id, 50)
        .await?)
}

fn checked_url(app: &App, raw: &str) -> ActionResult<Url> {
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(ActionError::Invalid(format!(
            "a webhook URL has at most {MAX_URL_CHARS} characters"
        )));
    }
    let url = Url::parse(raw.trim())
        .map_err(|e| ActionError::Invalid(format!("webhook URL {raw:?}: {e}")))?;
    target::check_url(&url, app.config.events.webhook_allow_private)
        .map_err(|why| ActionError::Invalid(format!("webhook URL {raw:?}: {why}")))?;
    Ok(url)
}

fn checked_events(events: &[String]) -> ActionResult<Vec<String>> {
    if events.is_empty() {
        return Ok(EVENTS.iter().map(|e| (*e).to_owned()).collect());
    }
    let mut chosen = Vec::new();
    for event in events {
        if !EVENTS.contains(&event.as_str()) {
            return Err(ActionError::Invalid(format!(
                "unknown webhook event {event:?}; the events are {}",
                EVENTS.join(", ")
            )));
        }
        if !chosen.contains(event) {
            chosen.push(event.clone());
        }
    }
    Ok(chosen)
}
