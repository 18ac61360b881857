//! The application state shared by every handler: built once at start-up.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use std::time::Duration;

use crate::blobs::BlobStore;
use crate::cache::SiteCache;
use crate::certs::challenge::ChallengeAnswers;
use crate::certs::CertificateGauges;
use crate::config::Config;
use crate::http::ratelimit::LocalCounters;
use crate::sessions::{SessionStore, StoreSessions};
use crate::shared::{Invalidation, SharedState};
use crate::store::Store;

/// A second delete of a host's shared cache entry after publish: a replica that read
/// the old value just before the publish may have written it back meanwhile.
const SECOND_INVALIDATION_DELAY: Duration = Duration::from_millis(500);

pub struct App {
    pub config: Config,
    pub control_host: String,
    /// `Cache-Control` of every site response (from the proxy cache setting).
    pub site_cache_control: axum::http::HeaderValue,
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn BlobStore>,
    pub cache: SiteCache,
    /// Shared with the other replicas (Redis); `Disabled` in embedded mode.
    pub shared: Arc<dyn SharedState>,
    pub local_counters: LocalCounters,
    /// Dashboard sessions: the database by default, Redis in cluster mode.
    pub sessions: Arc<dyn SessionStore>,
    /// Uploads hold it shared, garbage collection exclusively while deleting blob
    /// files, so a blob being re-uploaded is never deleted under the uploader.
    pub blob_gc_lock: tokio::sync::RwLock<()>,
    /// ACME HTTP-01 answers of orders in progress.
    pub challenges: ChallengeAnswers,
    /// Certificate figures for `/metrics` (filled by the issuer).
    pub certificate_gauges: CertificateGauges,
    /// Signalled when this replica stored a new certificate (the installer runs at once).
    pub certificates_changed: tokio::sync::watch::Sender<()>,
    ready: AtomicBool,
}

impl App {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        shared: Arc<dyn SharedState>,
    ) -> App {
        let cache = SiteCache::new(config.cache.cache_bytes, config.cache.host_cache_ttl);
        let site_cache_control =
            crate::http::serve::site_cache_control(config.cache.proxy_cache_seconds.as_secs());
        App {
            site_cache_control: axum::http::HeaderValue::from_str(&site_cache_control)
                .unwrap_or(axum::http::HeaderValue::from_static("no-cache")),
            control_host: config.control_host(),
            config,
            sessions: Arc::new(StoreSessions(store.clone())),
            store,
            blobs,
            cache,
            shared,
            local_counters: LocalCounters::default(),
            blob_gc_lock: tokio::sync::RwLock::new(()),
            challenges: ChallengeAnswers::default(),
            certificate_gauges: CertificateGauges::default(),
            certificates_changed: tokio::sync::watch::Sender::new(()),
            ready: AtomicBool::new(true),
        }
    }

    /// Keeps sessions somewhere else than the database (Redis in cluster mode).
    pub fn with_sessions(mut self, sessions: Arc<dyn SessionStore>) -> App {
        self.sessions = sessions;
        self
    }

    /// False once shutdown has begun, so load balancers stop sending traffic.
    pub fn is_accepting(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn stop_accepting(&self) {
        self.ready.store(false, Ordering::SeqCst);
    }

    /// After a site's live deploy changed: drops its host and its custom domains from
    /// this replica's cache and the shared one, and tells every other replica.
    pub async fn invalidate_site(self: &Arc<Self>, site: &str) {
        self.invalidate_host(&self.site_host(site)).await;
        match self.store.site_domains(site).await {
            Ok(domains) => {
                for domain in domains {
                    self.invalidate_host(&domain).await;
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
    pub async fn invalidate_host(self: &Arc<Self>, host: &str) {
        self.cache.forget_site_hosts(host).await;
        let key = host_key(host);
        self.shared.delete(&key).await;
        let event = Invalidation {
            site_host: host.to_owned(),
            position: self.store.write_position(),
        };
        self.shared.publish(&event).await;
        let app = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SECOND_INVALIDATION_DELAY).await;
            app.shared.delete(&key).await;
        });
    }

    /// An invalidation published by another replica (or this one) arrived.
    pub async fn apply_invalidation(&self, event: Invalidation) {
        if let Some(position) = event.position {
            self.store.observe_write(position);
        }
        self.cache.forget_site_hosts(&event.site_host).await;
    }

    /// `<site>.<base-domain>`
    pub fn site_host(&self, site: &str) -> String {
        format!("{site}.{}", self.config.public.base_domain)
    }

    pub fn site_url(&self, site: &str) -> String {
        self.config.public_url(&self.site_host(site))
    }

    /// `<deploy>--<site>.<base-domain>`
    pub fn preview_url(&self, site: &str, deploy_id: &str) -> String {
        self.config
            .public_url(&format!("{deploy_id}--{}", self.site_host(site)))
    }
}

/// Shared-cache key of a host's live deploy.
pub fn host_key(host: &str) -> String {
    format!("host:{host}")
}

#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
