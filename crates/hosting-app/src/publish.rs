//! How a publish reaches every cache: the host's entries are dropped from this replica's
//! cache and the shared one, and every other replica is told (Redis pub/sub), with the
//! write's WAL position so it reads the new live deploy from a replica that has it.

use std::sync::Arc;
use std::time::Duration;

use crate::shared::Invalidation;
use crate::state::{host_key, App};

/// A second delete of a host's shared cache entry after publish: a replica that read
/// the old value just before the publish may have written it back meanwhile.
const SECOND_INVALIDATION_DELAY: Duration = Duration::from_millis(500);

/// After a site's live deploy changed: drops its host and its custom domains from
/// this replica's cache and the shared one, and tells every other replica.
pub async fn invalidate_site(app: &Arc<App>, site: &str) {
    invalidate_host(app, &app.site_host(site)).await;
    match app.store.site_domains(site).await {
        Ok(domains) => {
            for domain in domains {
                invalidate_host(app, &domain).await;
            }
        }
        // The host cache's TTL bounds how long a custom domain may lag.
        Err(e) => {
            tracing::warn!(site.name = %site, error = %e, "listing custom domains to invalidate failed")
        }
    }
}

/// Drops one host (a site host with its previews, or a custom domain) from this
/// replica's cache and the shared one, and tells every other replica (with the
/// write's WAL position).
pub async fn invalidate_host(app: &Arc<App>, host: &str) {
    app.cache.forget_site_hosts(host).await;
    let key = host_key(host);
    app.shared.delete(&key).await;
    let event = Invalidation {
        site_host: host.to_owned(),
        position: app.store.write_position(),
    };
    app.shared.publish(&event).await;
    let later = app.clone();
    tokio::spawn(async move {
        tokio::time::sleep(SECOND_INVALIDATION_DELAY).await;
        later.shared.delete(&key).await;
    });
}

/// An invalidation published by another replica (or this one) arrived.
pub async fn apply_invalidation(app: &App, event: Invalidation) {
    if let Some(position) = event.position {
        app.store.observe_write(position);
    }
    app.cache.forget_site_hosts(&event.site_host).await;
}
