//! The in-process (L1) caches of the serving path, bounded in bytes.
//!
//! Deploy manifests and file bytes are immutable (keyed by deploy id and content hash)
//! and never need invalidation. Only host -> live deploy changes: publish invalidates it
//! directly, and a short TTL bounds staleness should an invalidation ever be missed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use moka::future::Cache;

use crate::domain::manifest::SiteManifest;
use crate::domain::names::Sha256;
use crate::store::LiveDeploy;

/// A stored representation of a file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Encoding {
    pub fn header_value(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Brotli => Some("br"),
        }
    }
}

pub struct SiteCache {
    /// Host -> deploy to serve (`None`: no such site or nothing live), with a TTL.
    pub hosts: Cache<String, Option<Arc<LiveDeploy>>>,
    /// Counts host invalidations. An invalidation does not stop a lookup already under way,
    /// which may have read the old mapping: the lookup compares this count before and after
    /// and reads again rather than cache what may be stale until the TTL.
    host_invalidations: AtomicU64,
    pub manifests: Cache<String, Arc<SiteManifest>>,
    pub files: Cache<(Sha256, Encoding), Bytes>,
}

impl SiteCache {
    /// `bytes` is shared: a quarter for manifests, the rest for file bytes.
    pub fn new(bytes: u64, host_ttl: Duration) -> SiteCache {
        let manifest_bytes = bytes / 4;
        SiteCache {
            hosts: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(host_ttl)
                .support_invalidation_closures()
                .build(),
            host_invalidations: AtomicU64::new(0),
            manifests: Cache::builder()
                .max_capacity(manifest_bytes)
                .weigher(|_, manifest: &Arc<SiteManifest>| manifest.weight())
                .build(),
            files: Cache::builder()
                .max_capacity(bytes - manifest_bytes)
                .weigher(|_, bytes: &Bytes| u32::try_from(bytes.len() + 96).unwrap_or(u32::MAX))
                .build(),
        }
    }

    /// Drops every cached host -> deploy mapping of a site (after publish or delete).
    pub async fn forget_site_hosts(&self, site_host: &str) {
        self.host_invalidations.fetch_add(1, Ordering::AcqRel);
        self.hosts.invalidate(site_host).await;
        // Preview hosts end with `--<site host>`; they change only when a site is deleted.
        let suffix = format!("--{site_host}");
        let _ = self
            .hosts
            .invalidate_entries_if(move |host, _| host.ends_with(&suffix));
    }

    /// Drops every cached host -> deploy mapping (invalidations may have been missed).
    pub fn forget_all_hosts(&self) {
        self.host_invalidations.fetch_add(1, Ordering::AcqRel);
        self.hosts.invalidate_all();
    }

    /// How many host invalidations this process has applied so far.
    pub fn host_invalidations(&self) -> u64 {
        self.host_invalidations.load(Ordering::Acquire)
    }
}
