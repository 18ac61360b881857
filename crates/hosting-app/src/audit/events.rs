//! The audited events by kind: what each records as target, site and owner, and which
//! webhook event it sends, so a hook in the domain layer stays one call.

use hosting_api::DomainStatus;
use serde_json::json;

use super::{record, record_in, Actor, Event};
use crate::domain::quota::QuotaOverrides;
use crate::state::App;
use crate::store::{
    CreatedDeploy, DeployRecord, DomainCheck, DomainRecord, SiteRecord, Store, UserRecord,
};

/// An event on a site itself (`site.create`, `site.delete`).
pub fn site(action: &'static str, site: &SiteRecord) -> Event {
    Event::new(action, format!("site:{}", site.name)).on_site(site)
}

/// An event on a deploy; `hook` is the webhook event it sends, if any.
pub fn deploy(action: &'static str, deploy: &DeployRecord, hook: Option<&'static str>) -> Event {
    let event = Event::new(action, format!("deploy:{}", deploy.id)).on_site_parts(
        deploy.site_id,
        &deploy.site_name,
        deploy.owner_id,
    );
    match hook {
        Some(hook) => event.webhook(hook, json!({ "deploy": deploy_json(deploy) })),
        None => event,
    }
}

/// A deploy as webhook payloads show it.
fn deploy_json(deploy: &DeployRecord) -> serde_json::Value {
    json!({
        "id": deploy.id,
        "state": deploy.state,
        "live": deploy.live,
        "file_count": deploy.file_count,
        "total_bytes": deploy.total_bytes,
        "created_at": deploy.created_at,
        "published_at": deploy.published_at,
        "message": deploy.message,
    })
}

/// An event on a custom domain (`domain.add`, `domain.remove`).
pub fn domain(action: &'static str, domain: &DomainRecord) -> Event {
    Event::new(action, format!("domain:{}", domain.name)).on_site_parts(
        domain.site_id,
        &domain.site_name,
        domain.owner_id,
    )
}

/// An event on a user account (`user.create`, `user.disable`, `quota.set`): the user
/// may read it too.
pub fn user(action: &'static str, user: &UserRecord) -> Event {
    Event::new(action, format!("user:{}", user.username)).owned_by(user.id)
}

/// An event on one of `owner`'s API tokens.
pub fn token(action: &'static str, owner_id: i64, token_id: i64, name: Option<&str>) -> Event {
    let event = Event::new(action, format!("token:{token_id}")).owned_by(owner_id);
    match name {
        Some(name) => event.detail(format!("name {name:?}")),
        None => event,
    }
}

/// Records an ownership check of `before` that ended as `check`: always when a user
/// asked for it, only on a status change when the periodic re-check ran it. A domain
/// that became verified sends `domain.verified`.
pub async fn domain_checked(
    app: &App,
    actor: Actor<'_>,
    before: &DomainRecord,
    check: &DomainCheck,
) {
    let changed = check.status != before.status;
    if matches!(actor, Actor::System) && !changed {
        return;
    }
    let mut event = domain("domain.verify", before);
    event = match (check.status, &check.detail) {
        (DomainStatus::Verified, detail) => event.detail(detail.clone().unwrap_or_default()),
        (_, detail) => event.failed(detail.clone().unwrap_or_else(|| "not verified".into())),
    };
    if changed && check.status == DomainStatus::Verified {
        event = event.webhook("domain.verified", json!({ "domain": before.name }));
    }
    record(app, actor, event).await;
}

/// Records a certificate order's outcome for the domain `name` (`certificate.issue`),
/// with its webhook (`certificate.issued` / `certificate.failed`).
pub async fn certificate(app: &App, domain_id: i64, name: &str, error: Option<&str>) {
    let owner = app.store.domain_by_id(domain_id).await.ok().flatten();
    let mut event = Event::new("certificate.issue", format!("domain:{name}"));
    if let Some(owner) = &owner {
        event = event.on_site_parts(owner.site_id, &owner.site_name, owner.owner_id);
    }
    event = match error {
        None => event.webhook("certificate.issued", json!({ "domain": name })),
        Some(error) => event.failed(error).webhook(
            "certificate.failed",
            json!({ "domain": name, "error": error }),
        ),
    };
    record(app, Actor::System, event).await;
}

/// A deploy was recorded (`deploy.create`, webhook `deploy.created`); a replayed
/// idempotent retry is not a new event.
pub async fn deploy_created(app: &App, owner_id: i64, created: &CreatedDeploy) {
    if let CreatedDeploy::Created {
        deploy: created, ..
    } = created
    {
        let event = deploy("deploy.create", created, Some("deploy.created"));
        record(app, Actor::Id(owner_id), event).await;
    }
}

/// A deploy went live (`deploy.publish`, webhook `deploy.published`).
pub async fn deploy_published(app: &App, owner_id: i64, published: &DeployRecord) {
    let event = deploy("deploy.publish", published, Some("deploy.published"));
    record(app, Actor::Id(owner_id), event).await;
}

/// A rollback made an earlier deploy live (`deploy.rollback`, webhook
/// `deploy.rolled_back`), after its `deploy.publish`.
pub async fn deploy_rolled_back(app: &App, owner_id: i64, live: &DeployRecord) {
    let event = deploy("deploy.rollback", live, Some("deploy.rolled_back"));
    record(app, Actor::Id(owner_id), event).await;
}

/// A deploy of `site` was refused or failed before it was recorded (`deploy.create`
/// with outcome failure, webhook `deploy.failed`); `why` is what the client was told.
pub async fn deploy_failed(app: &App, owner_id: i64, site: &SiteRecord, why: &str) {
    let event = Event::new("deploy.create", format!("site:{}", site.name))
        .on_site(site)
        .failed(why)
        .webhook("deploy.failed", json!({ "error": why }));
    record(app, Actor::Id(owner_id), event).await;
}

/// `action` on the recorded deploy `failed` was refused or failed (a publish of a
/// deploy still missing files or expired, a refused upload batch, the expiry of an
/// abandoned deploy): outcome failure, webhook `deploy.failed` with the deploy and `why`.
pub async fn deploy_failed_on(
    app: &App,
    actor: Actor<'_>,
    action: &'static str,
    failed: &DeployRecord,
    why: &str,
) {
    let event = deploy(action, failed, None).failed(why).webhook(
        "deploy.failed",
        json!({ "deploy": deploy_json(failed), "error": why }),
    );
    record(app, actor, event).await;
}

/// Garbage collection expired these abandoned deploys (`(deploy id, owner id)`): each
/// is a `deploy.expire` by the platform, with its `deploy.failed` webhook.
pub async fn deploys_expired(app: &App, expired: &[(String, i64)]) {
    for (id, owner_id) in expired {
        match app.store.deploy(*owner_id, id).await {
            Ok(Some(failed)) => {
                let why = failed
                    .error
                    .clone()
                    .unwrap_or_else(|| "expired before all files were uploaded".into());
                deploy_failed_on(app, Actor::System, "deploy.expire", &failed, &why).await;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(deploy.id = %id, error = %e, "reading an expired deploy failed")
            }
        }
    }
}

/// A dashboard sign-in under `username`: succeeded, or refused (wrong password, unknown
/// or disabled user; the entry does not say which, as the sign-in page does not).
pub async fn sign_in(app: &App, username: &str, succeeded: bool) {
    let mut event = Event::new("session.sign_in", format!("user:{username}"));
    if let Ok(Some(user)) = app.store.user_by_name(username).await {
        event = event.owned_by(user.id);
    }
    if !succeeded {
        event = event.failed("wrong user name or password, or a disabled account");
    }
    record(app, Actor::Attempt(username), event).await;
}

/// An admin created `user` (`user.create`) or disabled / enabled it (`user.disable`,
/// `user.enable`, from its state after the change).
pub async fn user_changed(app: &App, admin: &UserRecord, user: &UserRecord, created: bool) {
    let action = match (created, user.disabled) {
        (true, _) => "user.create",
        (false, true) => "user.disable",
        (false, false) => "user.enable",
    };
    record(app, Actor::User(admin), self::user(action, user)).await;
}

/// An admin replaced the quota overrides of the user `user_id` (`quota.set`).
pub async fn quota_set(app: &App, admin: &UserRecord, user_id: i64, overrides: &QuotaOverrides) {
    let target = match app.store.user_by_id(user_id).await {
        Ok(Some(user)) => format!("user:{}", user.username),
        _ => format!("user#{user_id}"),
    };
    let detail = format!(
        "storage_bytes {:?}, sites {:?}, deploys_per_hour {:?}",
        overrides.storage_bytes, overrides.sites, overrides.deploys_per_hour
    );
    let event = Event::new("quota.set", target)
        .owned_by(user_id)
        .detail(detail);
    record(app, Actor::User(admin), event).await;
}

/// `user`'s dashboard password was set (`user.password`): by themselves, an admin, the
/// operator's command or the first start; `refused` when the change was refused (a
/// wrong current password), so repeated guesses show in the log.
pub async fn password_set(
    store: &dyn Store,
    actor: Actor<'_>,
    user: &UserRecord,
    refused: Option<&str>,
) {
    let event = self::user("user.password", user);
    let event = match refused {
        Some(why) => event.failed(why),
        None => event,
    };
    record_in(store, actor, event).await;
}

/// `user` signed out of the dashboard (`session.sign_out`).
pub async fn sign_out(app: &App, user: &UserRecord) {
    let event = Event::new("session.sign_out", format!("user:{}", user.username)).owned_by(user.id);
    record(app, Actor::User(user), event).await;
}

/// The owner asked for `domain`'s certificate to be ordered now (`certificate.request`:
/// a first order, a retry or an early renewal); its outcome is `certificate.issue`.
pub async fn certificate_requested(app: &App, owner_id: i64, domain: &DomainRecord) {
    let event = Event::new("certificate.request", format!("domain:{}", domain.name)).on_site_parts(
        domain.site_id,
        &domain.site_name,
        domain.owner_id,
    );
    record(app, Actor::Id(owner_id), event).await;
}

/// The first start created `admin` and its bootstrap token (`user.create`,
/// `token.create`, by the platform itself).
pub async fn first_admin(store: &dyn Store, admin: &UserRecord, token_id: i64) {
    record_in(store, Actor::System, user("user.create", admin)).await;
    let event = token("token.create", admin.id, token_id, Some("bootstrap"));
    record_in(store, Actor::System, event).await;
}
