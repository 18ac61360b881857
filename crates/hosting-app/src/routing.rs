//! What a deploy's rules need beyond its files, built once at start-up: the outbound
//! client of proxy rules (its resolver refuses private addresses), the per-site limit
//! on proxied requests in flight, and the GeoIP database of `Country=` conditions.
//! Components only: `http/serve/proxy.rs` forwards requests with them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{Config, Routing};
use crate::domains::verify::is_public;

/// The routing components of one app.
pub struct SiteRouting {
    /// Sends proxied requests: no redirects followed, no environment proxy, the
    /// configured timeouts, and only public addresses (or allowed private hosts).
    pub proxy_client: reqwest::Client,
    pub proxy_slots: ProxySlots,
    /// `None` when `HOSTING_GEOIP_DB` is unset or could not be read.
    pub geoip: Option<maxminddb::Reader<Vec<u8>>>,
}

impl SiteRouting {
    pub fn new(config: &Config) -> SiteRouting {
        let routing = &config.routing;
        SiteRouting {
            proxy_client: proxy_client(routing),
            proxy_slots: ProxySlots::new(routing.proxy_max_concurrent),
            geoip: geoip(routing),
        }
    }

    /// The ISO country code of `ip` from the GeoIP database, upper-case.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let found = self.geoip.as_ref()?.lookup(ip).ok()?;
        let record = found.decode::<maxminddb::geoip2::Country>().ok()??;
        record.country.iso_code.map(str::to_ascii_uppercase)
    }
}

fn proxy_client(routing: &Routing) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        // The upstream's redirects go back to the visitor as they are.
        .redirect(reqwest::redirect::Policy::none())
        // SECURITY: an `HTTP_PROXY` in the environment must not carry tenant traffic.
        .no_proxy()
        .connect_timeout(routing.proxy_connect_timeout)
        .read_timeout(routing.proxy_response_timeout)
        .user_agent(concat!("hosting/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(PublicResolver {
            routing: routing.clone(),
        }));
    builder.build().unwrap_or_else(|e| {
        // Only a broken TLS backend fails here; proxy rules then answer 502.
        tracing::error!(error = %e, "building the proxy client failed; using the default");
        reqwest::Client::new()
    })
}

fn geoip(routing: &Routing) -> Option<maxminddb::Reader<Vec<u8>>> {
    let Some(path) = &routing.geoip_db else {
        tracing::info!(
            "HOSTING_GEOIP_DB is not set: Country= conditions of _redirects never apply"
        );
        return None;
    };
    match maxminddb::Reader::open_readfile(path) {
        Ok(reader) => Some(reader),
        Err(e) => {
            tracing::error!(error = %e, path = %path.display(), "reading the GeoIP database failed: Country= conditions never apply");
            None
        }
    }
}

/// Why a proxy target was refused before any connection.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to no public address (HOSTING_PROXY_ALLOWED_PRIVATE_HOSTS lists the private hosts allowed)")]
pub struct TargetRefused(pub String);

/// Resolves proxy targets with the system resolver and keeps public addresses only,
/// unless the name is an allowed private host.
///
/// SECURITY: the connection goes to the addresses checked here, not to a second
/// resolution, so a name cannot pass the check and then rebind to an internal address.
struct PublicResolver {
    routing: Routing,
}

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let allow_private = self.routing.allows_private(&host);
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| allow_private || is_public(addr.ip()))
                .collect();
            if found.is_empty() {
                return Err(Box::new(TargetRefused(host)) as Box<_>);
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Proxied requests in flight per site on this replica, bounded.
pub struct ProxySlots {
    limit: usize,
    sites: Mutex<HashMap<i64, Arc<Semaphore>>>,
}

impl ProxySlots {
    fn new(limit: usize) -> ProxySlots {
        ProxySlots {
            limit,
            sites: Mutex::default(),
        }
    }

    /// A slot for one proxied request of `site_id`, held until its response body is
    /// done; `None` when the site has `limit` in flight already.
    pub fn try_take(&self, site_id: i64) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut sites = self.sites.lock().unwrap_or_else(PoisonError::into_inner);
            sites
                .entry(site_id)
                .or_insert_with(|| Arc::new(Semaphore::new(self.limit)))
                .clone()
        };
        semaphore.try_acquire_owned().ok()
    }
}
