//! Sites of a tenant: the ownership check, creation through the sites quota, deletion.

use std::sync::Arc;

use super::{ActionError, ActionResult};
use crate::audit::{self, Actor};
use crate::domain::names::SiteName;
use crate::domain::quota::Quotas;
use crate::state::App;
use crate::store::{SiteRecord, StoreError};

/// The caller's site named `raw`, or not found (also for another tenant's site).
pub async fn owned_site(app: &App, owner_id: i64, raw: &str) -> ActionResult<SiteRecord> {
    let name = SiteName::parse(raw).map_err(|_| ActionError::not_found(format!("site {raw:?}")))?;
    app.store
        .site(owner_id, name.as_str())
        .await?
        .ok_or_else(|| ActionError::not_found(format!("site {raw:?}")))
}

/// Creates a site for `owner_id` if the sites quota admits it: the one way to create a
/// site (API, dashboard, and any route that creates a missing site).
pub async fn create_site(app: &App, owner_id: i64, name: &SiteName) -> ActionResult<SiteRecord> {
    let quotas = Quotas::from_config(&app.config);
    let site = app
        .store
        .create_site(owner_id, name.as_str(), &quotas)
        .await?;
    audit::record(
        app,
        Actor::Id(owner_id),
        audit::events::site("site.create", &site),
    )
    .await;
    Ok(site)
}

/// The caller's site `raw` for an archive deploy, created when missing: `(site, true)`
/// when this call created it, `(site, false)` when it existed or a concurrent request of
/// the same owner created it. Another tenant's site stays not found.
pub async fn site_for_archive(
    app: &App,
    owner_id: i64,
    raw: &str,
) -> ActionResult<(SiteRecord, bool)> {
    let missing = match owned_site(app, owner_id, raw).await {
        Ok(site) => return Ok((site, false)),
        Err(missing @ ActionError::NotFound(_)) => missing,
        Err(refused) => return Err(refused),
    };
    let name = SiteName::parse(raw)
        .map_err(|reason| ActionError::Invalid(format!("site name {raw:?}: {reason}")))?;
    match create_site(app, owner_id, &name).await {
        Ok(site) => {
            tracing::info!(site.name = %site.name, "created the site for an archive deploy");
            Ok((site, true))
        }
        Err(ActionError::Store(StoreError::Conflict(_))) => {
            match owned_site(app, owner_id, raw).await {
                Ok(site) => Ok((site, false)),
                Err(_) => Err(missing),
            }
        }
        Err(e) => Err(e),
    }
}

/// Deletes a site this request created for an archive that was then refused, unless
/// a deploy of it was recorded in the meantime (a concurrent request of the owner).
pub async fn forget_new_site(app: &App, owner_id: i64, site: &SiteRecord) {
    let unused = match app.store.list_deploys(owner_id, site.id).await {
        Ok(deploys) => deploys.is_empty(),
        Err(_) => false,
    };
    if unused {
        if let Err(e) = app.store.delete_site(owner_id, &site.name).await {
            tracing::warn!(site.name = %site.name, error = %e, "could not delete the site created for a refused archive");
        }
    }
}

/// Deletes the caller's site with its deploys and domains; every cache drops its hosts.
/// False when it was gone already.
pub async fn delete_site(app: &Arc<App>, owner_id: i64, site: &SiteRecord) -> ActionResult<bool> {
    // Read before the delete cascades them away, so their cached hosts can be dropped.
    let domains = app.store.site_domains(&site.name).await.unwrap_or_default();
    if !app.store.delete_site(owner_id, &site.name).await? {
        return Ok(false);
    }
    audit::record(
        app,
        Actor::Id(owner_id),
        audit::events::site("site.delete", site),
    )
    .await;
    crate::publish::invalidate_site(app, &site.name).await;
    for domain in domains {
        crate::publish::invalidate_host(app, &domain).await;
    }
    Ok(true)
}
