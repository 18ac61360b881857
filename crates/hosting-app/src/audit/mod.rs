//! The audit log's one recorder: every state change (and refused sign-in) is appended
//! here by the domain layer, with who did it, from which address, what on which target,
//! and the outcome. The same call queues the event's webhook deliveries, in the same
//! transaction as the entry, so an event is either logged and queued or neither.
//!
//! The entry is written right after the change it records, not inside the change's own
//! transaction: the store's write methods own their transactions, and threading an audit
//! entry through each of them would widen every signature of the `Store` trait. A failed
//! audit write never fails the action (it has already happened; an error would make the
//! client retry a change that was made): it is logged at error level with the whole
//! entry, so the log shipper keeps it and an alert can be raised on it.

pub mod events;
mod retention;

use std::net::IpAddr;

use chrono::Utc;
use serde_json::json;

pub use self::retention::run_periodically;
use crate::state::App;
use crate::store::{NewAuditEntry, Outcome, SiteRecord, Store, UserRecord, WebhookEvent};

tokio::task_local! {
    /// The client address of the request being handled, set around every control-host
    /// request (`http::api::audit::client_scope`): request metadata rather than domain
    /// input, so the actions need no extra parameter for it.
    static CLIENT: Option<IpAddr>;
}

/// Runs `request` with `client` as the address its audit entries carry.
pub async fn with_client<F: std::future::Future>(client: Option<IpAddr>, request: F) -> F::Output {
    CLIENT.scope(client, request).await
}

fn client_addr() -> Option<String> {
    CLIENT
        .try_with(|client| client.map(|ip| ip.to_string()))
        .ok()
        .flatten()
}

/// Who acted.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A signed-in user or token holder.
    User(&'a UserRecord),
    /// A user known by id only (the domain layer's callers pass the owner's id).
    Id(i64),
    /// The platform itself (periodic checks, the certificate issuer).
    System,
    /// A sign-in attempt under this name, which may not exist.
    Attempt(&'a str),
    /// An operator at the server's command line (`hosting-app admin ...`), who holds
    /// the database itself rather than an account.
    Operator,
}

/// One auditable event; built with the helpers below, then [`record`]ed.
#[derive(Debug, Clone)]
pub struct Event {
    action: &'static str,
    target: String,
    site: Option<(i64, String)>,
    owner_id: Option<i64>,
    outcome: Outcome,
    detail: Option<String>,
    hook: Option<(&'static str, serde_json::Value)>,
}

impl Event {
    /// `action` (`site.create`) on `target` (`site:blog`), successful.
    pub fn new(action: &'static str, target: impl Into<String>) -> Event {
        Event {
            action,
            target: target.into(),
            site: None,
            owner_id: None,
            outcome: Outcome::Success,
            detail: None,
            hook: None,
        }
    }

    /// An event on one of `site`'s things: its owner may read it.
    pub fn on_site(self, site: &SiteRecord) -> Event {
        self.on_site_parts(site.id, &site.name, site.owner_id)
    }

    pub fn on_site_parts(mut self, site_id: i64, site: &str, owner_id: i64) -> Event {
        self.site = Some((site_id, site.to_owned()));
        self.owner_id = Some(owner_id);
        self
    }

    /// The user the target belongs to (besides admins, who may read it).
    pub fn owned_by(mut self, owner_id: i64) -> Event {
        self.owner_id = Some(owner_id);
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Event {
        self.detail = Some(detail.into());
        self
    }

    /// The attempt was refused or failed; `why` is kept as the detail.
    pub fn failed(mut self, why: impl Into<String>) -> Event {
        self.outcome = Outcome::Failure;
        self.detail = Some(why.into());
        self
    }

    /// Also delivers webhook `event` (`deploy.published`) to the site's endpoints, with
    /// `data` (the site's name is added).
    pub fn webhook(mut self, event: &'static str, data: serde_json::Value) -> Event {
        self.hook = Some((event, data));
        self
    }
}

/// Appends `event` to the audit log (and queues its webhook deliveries). Never fails:
/// see the module documentation.
pub async fn record(app: &App, actor: Actor<'_>, event: Event) {
    record_in(app.store.as_ref(), actor, event).await;
}

/// [`record`] for callers that hold a store but no running app: start-up (the first
/// admin) and the operator commands.
pub async fn record_in(store: &dyn Store, actor: Actor<'_>, event: Event) {
    let (actor_id, actor_name) = match actor {
        Actor::User(user) => (Some(user.id), user.username.clone()),
        Actor::Id(id) => match store.user_by_id(id).await {
            Ok(Some(user)) => (Some(id), user.username),
            _ => (Some(id), format!("user#{id}")),
        },
        Actor::System => (None, "system".to_owned()),
        Actor::Operator => (None, "operator".to_owned()),
        Actor::Attempt(name) => match store.user_by_name(name).await {
            Ok(Some(user)) => (Some(user.id), user.username),
            _ => (None, name.to_owned()),
        },
    };
    let entry = NewAuditEntry {
        actor_id,
        actor: actor_name,
        client_addr: client_addr(),
        action: event.action,
        target: event.target,
        site: event.site.as_ref().map(|(_, name)| name.clone()),
        owner_id: event.owner_id,
        outcome: event.outcome,
        detail: event.detail,
    };
    let hook = match (&event.hook, &event.site) {
        (Some((name, data)), Some((site_id, site))) => {
            Some(webhook_event(*site_id, site, name, data))
        }
        _ => None,
    };
    if let Err(e) = store.record_event(&entry, hook.as_ref()).await {
        // Loud on purpose: this is the only trace of the change left.
        metrics::counter!(crate::metrics::AUDIT_ENTRIES_LOST_TOTAL).increment(1);
        tracing::error!(
            audit.action = entry.action,
            audit.actor = %entry.actor,
            audit.target = %entry.target,
            audit.site = ?entry.site,
            audit.outcome = entry.outcome.as_str(),
            audit.detail = ?entry.detail,
            audit.client = ?entry.client_addr,
            webhook.event = ?hook.as_ref().map(|h| h.event),
            error = %e,
            "AUDIT ENTRY LOST: writing the audit log failed"
        );
    }
}

/// The Standard Webhooks envelope: `type`, `timestamp`, `data`.
fn webhook_event(
    site_id: i64,
    site: &str,
    event: &'static str,
    data: &serde_json::Value,
) -> WebhookEvent {
    let mut data = data.clone();
    if let Some(object) = data.as_object_mut() {
        object.insert("site".into(), json!(site));
    }
    let payload = json!({
        "type": event,
        "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    });
    WebhookEvent {
        site_id,
        event,
        payload: payload.to_string(),
        message_prefix: format!("msg_{}", random_hex()),
    }
}

/// 96 random bits, hex: the unique part of a message id.
fn random_hex() -> String {
    let mut bytes = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    hex::encode(bytes)
}
