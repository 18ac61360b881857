//! The in-process (L1) caches of the serving path, bounded in bytes.
//!
//! Deploy manifests and file bytes are immutable (keyed by deploy id and content hash)
//! and never need invalidation. Only host -> live deploy changes: publish invalidates it
//! directly, and a TTL bounds staleness should an invalidation ever be missed (five
//! minutes embedded, where invalidation is in-process; five seconds in cluster mode).
//!
//! A host entry outlives its TTL: past it, the entry is still served while one lookup
//! refreshes it in the background (see [`SiteCache::begin_refresh`]); the refresher
//! looks up the site hosts gathered meanwhile in one query. With a plain TTL,
//! a uniform mix over thousands of sites expired every host every few seconds and each
//! expiry made its requests wait for the database (issue 23). The entry holds the host's
//! visitor access too, looked up, refreshed and invalidated with its deploy: kept in a
//! cache of its own with a plain TTL, it made 61 % of the requests of that mix wait for a
//! `site_protection` query.

use std::collections::{HashMap, HashSet};
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};
use bytes::Bytes;
use moka::future::Cache;

use crate::domain::manifest::{Digest, SiteManifest};
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

    /// A small index, one per encoding (slots of [`PathHeaders`]).
    fn slot(self) -> usize {
        match self {
            Encoding::Identity => 0,
            Encoding::Gzip => 1,
            Encoding::Brotli => 2,
        }
    }
}

/// A deploy as the manifest cache keeps it: the manifest, and the response headers of
/// its files as they get served.
#[derive(Debug)]
pub struct CachedDeploy {
    pub manifest: SiteManifest,
    pub responses: ResponseHeaders,
}

impl CachedDeploy {
    /// `budget` bounds the prebuilt headers of all cached deploys together (see
    /// [`SiteCache::deploy`]).
    pub fn new(manifest: SiteManifest, budget: Arc<PrebuiltBudget>) -> CachedDeploy {
        CachedDeploy {
            manifest,
            responses: ResponseHeaders {
                by_path: RwLock::default(),
                bytes: AtomicU64::new(0),
                budget,
            },
        }
    }
}

/// The bytes that prebuilt header blocks may hold across every cached deploy. A block
/// weighs ~2-3 KiB, twenty times a small page's share of its manifest: counted in the
/// manifest cache alone, 10,000 sites' blocks evicted six in ten manifests (issue 23's
/// cluster mix: manifest hits 99 % -> 40 %). With this bound the first paths served get
/// their block and the rest are built per request, as before blocks existed.
#[derive(Debug)]
pub struct PrebuiltBudget {
    limit: u64,
    used: AtomicU64,
}

impl PrebuiltBudget {
    pub fn new(limit: u64) -> PrebuiltBudget {
        PrebuiltBudget {
            limit,
            used: AtomicU64::new(0),
        }
    }

    /// Takes `bytes` from the budget; false, taking nothing, when they do not fit.
    fn reserve(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used + bytes <= self.limit).then_some(used + bytes)
            })
            .is_ok()
    }

    fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// The bytes the blocks of all cached deploys hold now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

/// The fixed headers of one representation of a file, built once on its first response
/// and copied by every later one: content type, ETag, Last-Modified, Cache-Control,
/// `Vary`, `Content-Encoding` or `Accept-Ranges`, the security headers, the `_headers`
/// values of the path and the full `Content-Length` (issue 17: copying the block costs
/// a fraction of inserting a dozen headers one by one and making the ETag per request).
#[derive(Debug)]
pub struct Prebuilt {
    pub headers: HeaderMap,
    /// The representation's own ETag (a `_headers` rule may have replaced the header),
    /// which conditional requests are compared with.
    pub etag: HeaderValue,
}

/// What [`ResponseHeaders`] holds for one request path: the file it resolved to and a
/// prebuilt block per encoding.
#[derive(Debug)]
struct PathHeaders {
    file_path: Box<str>,
    slots: [Option<Arc<Prebuilt>>; 3],
}

/// The prebuilt headers of a deploy's responses, by the path whose `_headers` rules apply
/// (the request path, a rewrite's target or `/404.html`). Those are normalized paths that
/// resolve to a file, so the table is bounded by the deploy's files (a few paths each:
/// `/a.html`, `/a`, `/a/`) times three encodings. Filled on first serve: the manifest
/// cache reweighs the entry then (see [`ResponseHeaders::bytes`]).
#[derive(Debug)]
pub struct ResponseHeaders {
    by_path: RwLock<HashMap<Box<str>, PathHeaders, KeyHasher>>,
    /// Heap bytes of the table, for the manifest cache's weigher.
    bytes: AtomicU64,
    /// Shared by every cached deploy; this table's bytes go back to it when it is dropped.
    budget: Arc<PrebuiltBudget>,
}

impl Drop for ResponseHeaders {
    fn drop(&mut self) {
        self.budget.release(*self.bytes.get_mut());
    }
}

impl ResponseHeaders {
    /// The block built for `rules_path` served from `file_path` in `encoding`.
    pub fn get(
        &self,
        rules_path: &str,
        file_path: &str,
        encoding: Encoding,
    ) -> Option<Arc<Prebuilt>> {
        let table = self.by_path.read().ok()?;
        let found = table.get(rules_path)?;
        if &*found.file_path != file_path {
            return None;
        }
        found.slots[encoding.slot()].clone()
    }

    /// Keeps `prebuilt` for later requests; true when it was new (the caller then has
    /// the manifest cache weigh the entry again).
    pub fn keep(
        &self,
        rules_path: &str,
        file_path: &str,
        encoding: Encoding,
        prebuilt: Arc<Prebuilt>,
    ) -> bool {
        let Ok(mut table) = self.by_path.write() else {
            return false;
        };
        let mut added = weigh::prebuilt(&prebuilt);
        match table.get(rules_path) {
            // Paths resolve the same way for the life of a deploy: a different file here
            // would be a bug, and the block is then simply not kept.
            Some(row) if &*row.file_path != file_path => return false,
            Some(row) if row.slots[encoding.slot()].is_some() => return false,
            Some(_) => {}
            None => added += weigh::path_headers(rules_path, file_path),
        }
        if !self.budget.reserve(added) {
            return false;
        }
        let row = table.entry(rules_path.into()).or_insert(PathHeaders {
            file_path: file_path.into(),
            slots: [None, None, None],
        });
        row.slots[encoding.slot()] = Some(prebuilt);
        self.bytes.fetch_add(added, Ordering::Relaxed);
        true
    }

    /// The bytes the table holds (its own growth included, estimated per entry).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// A host's deploy and visitor access as last looked up.
#[derive(Debug, Clone)]
pub struct HostEntry {
    /// The deploy to serve (`None`: no such site or nothing live).
    pub deploy: Option<Arc<LiveDeploy>>,
    /// The visitor access that applies to this host (`None`: public).
    pub protection: Option<Arc<ProtectionRecord>>,
    pub loaded: Instant,
}

impl HostEntry {
    pub fn new(
        deploy: Option<Arc<LiveDeploy>>,
        protection: Option<Arc<ProtectionRecord>>,
    ) -> HostEntry {
        HostEntry {
            deploy,
            protection,
            loaded: Instant::now(),
        }
    }
}

/// What moka keeps per entry besides the key and value (the key's `Arc`, the entry's
/// info and deque nodes, its hash-table slot, the frequency sketch's share), measured
/// against the process's resident memory in `tests/cache_weights.rs`, which fails when
/// a weight no longer covers what its entries hold.
pub const CACHE_ENTRY_BYTES: u64 = 400;

/// Heap bytes per allocation beyond the size asked (size classes), on average.
const ALLOCATION_SLACK: u64 = 16;

/// A heap string's cost: its bytes and its allocation.
fn string_bytes(text: &str) -> u64 {
    text.len() as u64 + ALLOCATION_SLACK
}

/// The weights the caches are bounded by: what an entry really holds, so that the sum
/// of the budgets bounds the memory (issue 23: an estimate of a third of the real cost
/// let the caches hold 210 MiB of a 64 MiB budget).
pub mod weigh {
    use super::*;

    pub fn host(host: &str, entry: &HostEntry) -> u64 {
        let deploy = entry.deploy.as_ref().map_or(0, |d| {
            2 * size_of::<usize>() as u64
                + size_of::<LiveDeploy>() as u64
                + string_bytes(&d.deploy_id)
                + ALLOCATION_SLACK
        });
        let protection = entry.protection.as_ref().map_or(0, |r| {
            2 * size_of::<usize>() as u64
                + size_of::<ProtectionRecord>() as u64
                + string_bytes(&r.password_hash)
                + string_bytes(&r.cookie_key)
                + ALLOCATION_SLACK
        });
        CACHE_ENTRY_BYTES + string_bytes(host) + size_of::<HostEntry>() as u64 + deploy + protection
    }

    pub fn manifest(deploy_id: &str, deploy: &CachedDeploy) -> u64 {
        CACHE_ENTRY_BYTES
            + string_bytes(deploy_id)
            + deploy.manifest.weight()
            + size_of::<ResponseHeaders>() as u64
            + deploy.responses.bytes()
    }

    /// What a header map entry takes in its vector (name, value, hash and links), and
    /// per entry in the index table (which keeps room for a quarter more).
    const HEADER_ENTRY_BYTES: u64 = 112;
    const HEADER_INDEX_BYTES: u64 = 8;

    /// A prebuilt header block: the map's two allocations at their capacity, the bytes of
    /// its names and values (counted as if each were its own: some are static or shared
    /// with the manifest, so this errs high), the `Arc`.
    pub fn prebuilt(prebuilt: &Prebuilt) -> u64 {
        let headers = &prebuilt.headers;
        let capacity = headers.capacity() as u64;
        let text: u64 = headers
            .iter()
            .map(|(name, value)| string_bytes(name.as_str()) + value.len() as u64)
            .sum();
        2 * size_of::<usize>() as u64
            + size_of::<Prebuilt>() as u64
            + capacity * (HEADER_ENTRY_BYTES + HEADER_INDEX_BYTES)
            + text
            + string_bytes(prebuilt.etag.to_str().unwrap_or_default())
            + 3 * ALLOCATION_SLACK
    }

    /// A request path's row of the table: its key, the file path, the slots, the
    /// hash table's share.
    pub fn path_headers(rules_path: &str, file_path: &str) -> u64 {
        string_bytes(rules_path)
            + string_bytes(file_path)
            + size_of::<PathHeaders>() as u64
            + 2 * size_of::<usize>() as u64
    }

    pub fn file(_key: &(Digest, Encoding), bytes: &Bytes) -> u64 {
        CACHE_ENTRY_BYTES + bytes.len() as u64 + ALLOCATION_SLACK
    }

    /// moka takes a `u32` weight.
    pub fn clamp(weight: u64) -> u32 {
        u32::try_from(weight).unwrap_or(u32::MAX)
    }
}

/// How the caches hash their keys: foldhash, seeded per process, where moka's default
/// SipHash took 1.6 % of the app's CPU under the 10,000-site mix (three lookups per
/// request, issue 23). Host keys come from clients; the per-process seed keeps their
/// hashes unpredictable.
pub type KeyHasher = foldhash::fast::RandomState;

/// The refresher's queue: hosts to look up again, and whether a refresher runs.
#[derive(Default)]
struct PendingRefreshes {
    hosts: Vec<String>,
    running: bool,
}

pub struct SiteCache {
    /// Host -> deploy to serve and visitor access; refreshed once older than `host_ttl`.
    pub hosts: Cache<String, HostEntry, KeyHasher>,
    host_ttl: Duration,
    /// Hosts whose refresh is under way (one lookup per host at a time).
    refreshing: Mutex<HashSet<String>>,
    /// Hosts past the TTL waiting for the background refresher, which looks them up in
    /// batches (see `http::serve::refresh`).
    pending: Mutex<PendingRefreshes>,
    /// Counts host invalidations. An invalidation does not stop a lookup already under way,
    /// which may have read the old mapping: the lookup compares this count before and after
    /// and reads again rather than cache what may be stale until the TTL.
    host_invalidations: AtomicU64,
    pub manifests: Cache<String, Arc<CachedDeploy>, KeyHasher>,
    /// File bytes, identity and compressed variants alike, by content hash.
    pub files: Cache<(Digest, Encoding), Bytes, KeyHasher>,
    /// The byte budget of hosts, manifests and files.
    budgets: [u64; 3],
    /// What the manifests' prebuilt headers may hold, within the manifest budget.
    prebuilt: Arc<PrebuiltBudget>,
}

/// The prebuilt headers get an eighth of the manifest budget (~2.7 MiB, a thousand
/// blocks, at the default 64 MiB): enough for the hot paths, never the manifests' room.
const PREBUILT_SHARE: u64 = 8;

impl SiteCache {
    /// `bytes` is shared: 6/32 for hosts (deploy and visitor access), 11/32 for
    /// manifests, the rest (15/32) for file bytes. A miss of the first two waits for the
    /// database, a file miss only reads the blob (from the page cache when it is warm),
    /// so the metadata gets more than its old eighth and quarter now that weights are
    /// honest: at the default 64 MiB it holds ~22,000 hosts of public sites (previews and
    /// aliases are hosts too) and ~14,000 manifests of ten files (issue 23).
    pub fn new(bytes: u64, host_ttl: Duration) -> SiteCache {
        let host_bytes = bytes / 32 * 6;
        let manifest_bytes = bytes / 32 * 11;
        SiteCache {
            hosts: Cache::builder()
                .max_capacity(host_bytes)
                .weigher(|host: &String, entry| weigh::clamp(weigh::host(host, entry)))
                .support_invalidation_closures()
                .build_with_hasher(KeyHasher::default()),
            host_ttl,
            refreshing: Mutex::new(HashSet::new()),
            pending: Mutex::new(PendingRefreshes::default()),
            host_invalidations: AtomicU64::new(0),
            manifests: Cache::builder()
                .max_capacity(manifest_bytes)
                .weigher(|id: &String, deploy: &Arc<CachedDeploy>| {
                    weigh::clamp(weigh::manifest(id, deploy))
                })
                .build_with_hasher(KeyHasher::default()),
            files: Cache::builder()
                .max_capacity(bytes - manifest_bytes - host_bytes)
                .weigher(|key, bytes| weigh::clamp(weigh::file(key, bytes)))
                .build_with_hasher(KeyHasher::default()),
            budgets: [
                host_bytes,
                manifest_bytes,
                bytes - manifest_bytes - host_bytes,
            ],
            prebuilt: Arc::new(PrebuiltBudget::new(manifest_bytes / PREBUILT_SHARE)),
        }
    }

    /// A manifest as the manifest cache keeps it, its prebuilt headers bounded with
    /// every other deploy's.
    pub fn deploy(&self, manifest: SiteManifest) -> CachedDeploy {
        CachedDeploy::new(manifest, self.prebuilt.clone())
    }

    /// Sets the size gauges of the three caches (called when metrics are scraped).
    pub fn export_metrics(&self) {
        let sizes = [
            ("host", self.hosts.weighted_size(), self.hosts.entry_count()),
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
        // Preview and alias hosts end with `--<site host>`; previews change only when a
        // site is deleted, aliases when they move, the visitor access when the owner
        // sets it.
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

    /// Queues a host that [`SiteCache::begin_refresh`] handed to this caller for the
    /// background refresher; true when no refresher runs, and the caller must start one
    /// (which then calls [`SiteCache::take_refreshes`] until it gets none).
    pub fn queue_refresh(&self, host: &str) -> bool {
        let Ok(mut pending) = self.pending.lock() else {
            return false;
        };
        pending.hosts.push(host.to_owned());
        !std::mem::replace(&mut pending.running, true)
    }

    /// Up to `max` queued hosts. None means the refresher stops: the next queued host
    /// starts another (the check and the stop are one step, so no host waits unseen).
    pub fn take_refreshes(&self, max: usize) -> Vec<String> {
        let Ok(mut pending) = self.pending.lock() else {
            return Vec::new();
        };
        if pending.hosts.is_empty() {
            pending.running = false;
            return Vec::new();
        }
        let from = pending.hosts.len().saturating_sub(max);
        pending.hosts.split_off(from)
    }

    /// The safety-net TTL of host entries.
    pub fn host_ttl(&self) -> Duration {
        self.host_ttl
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::names::Sha256;
    use crate::store::ManifestEntry;
    use chrono::Utc;
    use hosting_rules::{HeaderRules, Redirects};

    fn deploy(budget: &Arc<PrebuiltBudget>, id: &str) -> CachedDeploy {
        let files = vec![ManifestEntry {
            path: "/index.html".to_owned(),
            sha256: Sha256::parse(&"ab".repeat(32)).expect("digest"),
            size: 10,
        }];
        let manifest = SiteManifest::new(
            id.to_owned(),
            Utc::now(),
            files,
            Redirects::default(),
            HeaderRules::default(),
        );
        CachedDeploy::new(manifest, budget.clone())
    }

    fn block() -> Arc<Prebuilt> {
        let mut headers = HeaderMap::new();
        headers.insert("etag", HeaderValue::from_static("\"x\""));
        Arc::new(Prebuilt {
            headers,
            etag: HeaderValue::from_static("\"x\""),
        })
    }

    #[test]
    fn prebuilt_blocks_stop_at_the_shared_budget_and_a_dropped_deploy_gives_its_bytes_back() {
        let one = weigh::prebuilt(&block()) + weigh::path_headers("/a", "/index.html");
        let budget = Arc::new(PrebuiltBudget::new(one + one / 2));
        let first = deploy(&budget, "d1");
        let second = deploy(&budget, "d2");

        assert!(first
            .responses
            .keep("/a", "/index.html", Encoding::Identity, block()));
        assert_eq!(budget.used(), one);
        assert_eq!(first.responses.bytes(), one);
        // The second block does not fit: not kept, nothing taken, nothing left behind.
        assert!(!second
            .responses
            .keep("/a", "/index.html", Encoding::Identity, block()));
        assert!(second
            .responses
            .get("/a", "/index.html", Encoding::Identity)
            .is_none());
        assert_eq!(budget.used(), one);
        assert_eq!(second.responses.bytes(), 0);

        drop(first);
        assert_eq!(budget.used(), 0);
        assert!(second
            .responses
            .keep("/a", "/index.html", Encoding::Identity, block()));
        assert!(second
            .responses
            .get("/a", "/index.html", Encoding::Identity)
            .is_some());
        assert_eq!(budget.used(), one);
    }
}
