//! The application state shared by every handler: built once at start-up.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::blobs::BlobStore;
use crate::cache::SiteCache;
use crate::config::Config;
use crate::store::Store;

pub struct App {
    pub config: Config,
    pub control_host: String,
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn BlobStore>,
    pub cache: SiteCache,
    /// Uploads hold it shared, garbage collection exclusively while deleting blob
    /// files, so a blob being re-uploaded is never deleted under the uploader.
    pub blob_gc_lock: tokio::sync::RwLock<()>,
    ready: AtomicBool,
}

impl App {
    pub fn new(config: Config, store: Arc<dyn Store>, blobs: Arc<dyn BlobStore>) -> App {
        let cache = SiteCache::new(config.cache_bytes, config.host_cache_ttl());
        App {
            control_host: config.control_host(),
            config,
            store,
            blobs,
            cache,
            blob_gc_lock: tokio::sync::RwLock::new(()),
            ready: AtomicBool::new(true),
        }
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
        format!("{site}.{}", self.config.base_domain)
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

#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
