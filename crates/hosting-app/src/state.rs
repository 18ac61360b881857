//! The application state shared by every handler: built once at start-up. It holds
//! components; what is done with them (publishing, invalidating) lives elsewhere.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::blobs::BlobStore;
use crate::cache::SiteCache;
use crate::certs::challenge::ChallengeAnswers;
use crate::certs::gauges::CertificateGauges;
use crate::config::Config;
use crate::counters::LocalCounters;
use crate::sessions::{SessionStore, StoreSessions};
use crate::shared::SharedState;
use crate::store::Store;

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
    /// Proxy rules' client and slots, the GeoIP database of `Country=` conditions.
    pub routing: crate::routing::SiteRouting,
    ready: AtomicBool,
    /// Seals webhook signing secrets at rest (`webhooks::secrets`); `None` leaves them
    /// in clear (cluster mode without a key file).
    pub webhook_sealer: Option<Arc<crate::certs::seal::Sealer>>,
}

impl App {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        shared: Arc<dyn SharedState>,
    ) -> App {
        let host_ttl = config.cache.host_ttl(config.is_cluster());
        let cache = SiteCache::new(config.cache.cache_bytes, host_ttl);
        let routing = crate::routing::SiteRouting::new(&config);
        let site_cache_control =
            crate::freshness::site_cache_control(config.cache.proxy_cache_seconds.as_secs());
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
            routing,
            ready: AtomicBool::new(true),
            webhook_sealer: None,
        }
    }

    /// Keeps sessions somewhere else than the database (Redis in cluster mode).
    pub fn with_sessions(mut self, sessions: Arc<dyn SessionStore>) -> App {
        self.sessions = sessions;
        self
    }

    /// Seals webhook secrets with `sealer`.
    pub fn with_webhook_sealer(mut self, sealer: Option<Arc<crate::certs::seal::Sealer>>) -> App {
        self.webhook_sealer = sealer;
        self
    }

    /// False once shutdown has begun, so load balancers stop sending traffic.
    pub fn is_accepting(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn stop_accepting(&self) {
        self.ready.store(false, Ordering::SeqCst);
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
