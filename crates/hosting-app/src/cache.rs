//! The in-process (L1) caches of the serving path, bounded in bytes.
//!
//! Deploy manifests and file bytes are immutable (keyed by deploy id and content hash)
//! and never need invalidation. Only host -> live deploy changes: publish invalidates it
//! directly, and a short TTL bounds staleness should an invalidation ever be missed.
//!
//! A host entry outlives its TTL: past it, the entry is still served while one lookup
//! refreshes it in the background (see [`SiteCache::begin_refresh`]). With a plain TTL,
//! a uniform mix over thousands of sites expired every host every few seconds and each
//! expiry made its requests wait for the database (issue 23).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::future::Cache;

use crate::domain::manifest::SiteManifest;
use crate::domain::names::Sha256;
use crate::store::{LiveDeploy, ProtectionRecord};

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

/// A host's deploy as last looked up (`None`: no such site or nothing live).
#[derive(Debug, Clone)]
pub struct HostEntry {
    pub deploy: Option<Arc<LiveDeploy>>,
    pub loaded: Instant,
}

impl HostEntry {
    pub fn new(deploy: Option<Arc<LiveDeploy>>) -> HostEntry {
        HostEntry {
            deploy,
            loaded: Instant::now(),
        }
    }
}

/// What one cached host costs beyond its name: the entry, the deploy id and moka's own
/// bookkeeping (measured roughly; the budget needs an order of magnitude, not a byte).
const HOST_ENTRY_BYTES: usize = 256;

pub struct SiteCache {
    /// Host -> deploy to serve; refreshed once older than `host_ttl`.
    pub hosts: Cache<String, HostEntry>,
    host_ttl: Duration,
    /// Hosts whose refresh is under way (one lookup per host at a time).
    refreshing: Mutex<HashSet<String>>,
    /// Counts host invalidations. An invalidation does not stop a lookup already under way,
    /// which may have read the old mapping: the lookup compares this count before and after
    /// and reads again rather than cache what may be stale until the TTL.
    host_invalidations: AtomicU64,
    /// Host -> the visitor access of its site (`None`: public), dropped with the host's
    /// entry on publish or a protection change, and past `host_ttl` as a safety net.
    pub protection: Cache<String, Option<Arc<ProtectionRecord>>>,
    pub manifests: Cache<String, Arc<SiteManifest>>,
    /// File bytes, identity and compressed variants alike.
    pub files: Cache<(Sha256, Encoding), Bytes>,
    /// The byte budget of hosts, manifests and files.
    budgets: [u64; 3],
}

impl SiteCache {
    /// `bytes` is shared: an eighth for hosts (half of it for their deploys, half for
    /// their visitor access: every served host has an entry in both), a quarter for
    /// manifests, the rest for file bytes. With a sixteenth split 3:1, the default 64 MiB
    /// held the deploys of ~11,000 hosts but the visitor access of only ~3,800, so at
    /// 10,000 sites most requests waited for a database query (issue 23).
    pub fn new(bytes: u64, host_ttl: Duration) -> SiteCache {
        let host_bytes = bytes / 8;
        let protection_bytes = host_bytes / 2;
        let manifest_bytes = bytes / 4;
        SiteCache {
            hosts: Cache::builder()
                .max_capacity(host_bytes - protection_bytes)
                .weigher(|host: &String, _| {
                    u32::try_from(host.len() + HOST_ENTRY_BYTES).unwrap_or(u32::MAX)
                })
                .support_invalidation_closures()
                .build(),
            protection: Cache::builder()
                .max_capacity(protection_bytes)
                .weigher(|host: &String, _| {
                    u32::try_from(host.len() + HOST_ENTRY_BYTES).unwrap_or(u32::MAX)
                })
                .time_to_live(host_ttl)
                .support_invalidation_closures()
                .build(),
            host_ttl,
            refreshing: Mutex::new(HashSet::new()),
            host_invalidations: AtomicU64::new(0),
            manifests: Cache::builder()
                .max_capacity(manifest_bytes)
                .weigher(|_, manifest: &Arc<SiteManifest>| manifest.weight())
                .build(),
            files: Cache::builder()
                .max_capacity(bytes - manifest_bytes - host_bytes)
                .weigher(|_, bytes: &Bytes| u32::try_from(bytes.len() + 96).unwrap_or(u32::MAX))
                .build(),
            budgets: [
                host_bytes,
                manifest_bytes,
                bytes - manifest_bytes - host_bytes,
            ],
        }
    }

    /// Sets the size gauges of the three caches (called when metrics are scraped).
    pub fn export_metrics(&self) {
        let sizes = [
            (
                "host",
                self.hosts.weighted_size() + self.protection.weighted_size(),
                self.hosts.entry_count() + self.protection.entry_count(),
            ),
            (
                "manifest",
                self.manifests.weighted_size(),
                self.manifests.entry_count(),
            ),
            ("file", self.files.weighted_size(), self.files.entry_count()),
        ];
        for ((kind, bytes, entries), budget) in sizes.into_iter().zip(self.budgets) {
            metrics::gauge!(crate::metrics::CACHE_BYTES, "kind" => kind).set(bytes as f64);
            metrics::gauge!(crate::metrics::CACHE_ENTRIES, "kind" => kind).set(entries as f64);
            metrics::gauge!(crate::metrics::CACHE_BUDGET_BYTES, "kind" => kind).set(budget as f64);
        }
    }

    /// Drops every cached host -> deploy mapping of a site (after publish or delete).
    pub async fn forget_site_hosts(&self, site_host: &str) {
        self.host_invalidations.fetch_add(1, Ordering::AcqRel);
        self.hosts.invalidate(site_host).await;
        self.protection.invalidate(site_host).await;
        // Preview and alias hosts end with `--<site host>`; previews change only when a
        // site is deleted, aliases when they move, the protection when the owner sets it.
        let suffix = format!("--{site_host}");
        let in_protection = suffix.clone();
        let _ = self
            .hosts
            .invalidate_entries_if(move |host, _| host.ends_with(&suffix));
        let _ = self
            .protection
            .invalidate_entries_if(move |host, _| host.ends_with(&in_protection));
    }

    /// Drops every cached host -> deploy mapping (invalidations may have been missed).
    pub fn forget_all_hosts(&self) {
        self.host_invalidations.fetch_add(1, Ordering::AcqRel);
        self.hosts.invalidate_all();
        self.protection.invalidate_all();
    }

    /// Whether `entry` is past the TTL and this caller should refresh it: true for one
    /// caller at a time per host, who must call [`SiteCache::end_refresh`] afterwards.
    pub fn begin_refresh(&self, host: &str, entry: &HostEntry) -> bool {
        if entry.loaded.elapsed() < self.host_ttl {
            return false;
        }
        match self.refreshing.lock() {
            Ok(mut refreshing) => refreshing.insert(host.to_owned()),
            Err(_) => false,
        }
    }

    pub fn end_refresh(&self, host: &str) {
        if let Ok(mut refreshing) = self.refreshing.lock() {
            refreshing.remove(host);
        }
    }

    /// How many host invalidations this process has applied so far.
    pub fn host_invalidations(&self) -> u64 {
        self.host_invalidations.load(Ordering::Acquire)
    }
}
