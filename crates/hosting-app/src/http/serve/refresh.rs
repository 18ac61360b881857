//! The host cache's background refresh. A host entry past the TTL keeps answering while
//! its host waits here; the refresher gathers the hosts that expired meanwhile and looks
//! the site hosts among them up in one query (deploy and visitor access joined), the
//! others (previews, aliases, custom domains) one by one as a miss would.
//!
//! Before (issue 23) every expired host spawned its own task and made two queries, each
//! a hand-off to the database driver's worker thread and back: with 10,000 hosts on a
//! 5 s TTL up to 4,000 queries a second for nothing, since publish invalidates at once.

use std::collections::HashMap;
use std::time::Duration;

use super::{fresh_host_entry, protection_applies, ServeError};
use crate::cache::HostEntry;
use crate::http::host::{classify, HostKind};
use crate::state::AppState;
use crate::store::SiteServing;

/// How long the refresher waits for more hosts before its first batch: long enough that
/// a mix over many hosts fills a batch, short against any TTL.
const GATHER: Duration = Duration::from_millis(20);

/// Hosts per batch (one query each for their sites).
const BATCH: usize = 500;

/// Hands a host that [`crate::cache::SiteCache::begin_refresh`] gave this caller to the
/// refresher, starting one when none runs.
pub fn refresh_later(state: &AppState, host: &str) {
    if state.cache.queue_refresh(host) {
        let state = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(GATHER).await;
            loop {
                let hosts = state.cache.take_refreshes(BATCH);
                if hosts.is_empty() {
                    return;
                }
                refresh(&state, &hosts).await;
                for host in &hosts {
                    state.cache.end_refresh(host);
                }
            }
        });
    }
}

/// Looks `hosts` up again and replaces their entries. An entry that cannot be looked up
/// is kept (the next request past the TTL queues it again). Should any invalidation
/// arrive while the batch is read, its entries are dropped rather than kept until the
/// next TTL: the rows read may predate it.
async fn refresh(state: &AppState, hosts: &[String]) {
    let invalidations = state.cache.host_invalidations();
    let config = &state.config.public;
    let mut sites = Vec::new();
    let mut others = Vec::new();
    for host in hosts {
        match classify(host, &state.control_host, &config.base_domain) {
            HostKind::Site(site) => sites.push((host, site)),
            kind => others.push((host, kind)),
        }
    }
    let mut fresh: Vec<(&String, HostEntry)> = Vec::with_capacity(hosts.len());
    if !sites.is_empty() {
        let names: Vec<String> = sites.iter().map(|(_, s)| s.as_str().to_owned()).collect();
        match state.store.sites_serving(&names).await {
            Ok(found) => {
                let mut found: HashMap<String, SiteServing> =
                    found.into_iter().map(|s| (s.name.clone(), s)).collect();
                for (host, site) in sites {
                    let serving = found.remove(site.as_str());
                    let kind = HostKind::Site(site);
                    let (deploy, protection) = serving.map_or((None, None), |s| {
                        let protection =
                            s.protection.filter(|p| protection_applies(p.scope, &kind));
                        (s.deploy, protection)
                    });
                    fresh.push((
                        host,
                        HostEntry::new(
                            deploy.map(std::sync::Arc::new),
                            protection.map(std::sync::Arc::new),
                        ),
                    ));
                }
            }
            Err(e) => {
                let e = ServeError::from(e);
                tracing::warn!(error = %e, hosts = names.len(), "refreshing site hosts failed");
            }
        }
    }
    let lookups = others.iter().map(|(host, kind)| async move {
        match fresh_host_entry(state, host, kind).await {
            Ok(entry) => Some((*host, entry)),
            Err(e) => {
                tracing::warn!(error = %e, host = %host, "refreshing a host failed");
                None
            }
        }
    });
    fresh.extend(
        futures::future::join_all(lookups)
            .await
            .into_iter()
            .flatten(),
    );
    for (host, entry) in fresh {
        state.cache.hosts.insert(host.clone(), entry).await;
    }
    if state.cache.host_invalidations() != invalidations {
        for host in hosts {
            state.cache.hosts.invalidate(host).await;
        }
    }
}
