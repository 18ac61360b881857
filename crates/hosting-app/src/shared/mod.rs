//! State shared between app replicas beyond the database: the L2 cache, publish
//! invalidations, rate-limit counters and ACME challenge answers. Redis in cluster mode; in embedded mode (one
//! process) there is nothing to share and `Disabled` answers "miss" to everything.
//!
//! Every operation is best-effort: an error is a miss, never a failed request.

mod redis;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use self::redis::RedisShared;

/// Published when a host's live deploy changes, so every replica drops its copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invalidation {
    /// The site's host; preview hosts of the site are dropped with it.
    pub site_host: String,
    /// The writer's WAL position, so readers know when the replica has the change.
    pub position: Option<u64>,
}

#[async_trait]
pub trait SharedState: Send + Sync {
    async fn get(&self, key: &str) -> Option<Bytes>;
    /// Stores `value` for `ttl`; false when it could not be stored.
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> bool;
    async fn delete(&self, key: &str);
    async fn publish(&self, event: &Invalidation);
    /// Adds one to a counter that lives `window`, returning the new count, or `None`
    /// when the shared state is unavailable (callers then count locally).
    async fn increment(&self, key: &str, window: Duration) -> Option<u64>;
    /// `"disabled"`, `"up"` or `"down"`, for `/readyz`.
    fn status(&self) -> &'static str;

    fn is_enabled(&self) -> bool {
        self.status() != "disabled"
    }
}

/// Counts a shared-cache (L2) lookup; nothing is counted when there is no L2.
pub fn count_l2(shared: &dyn SharedState, kind: &'static str, hit: bool) {
    if shared.is_enabled() {
        crate::telemetry::record_cache_lookup("l2", kind, hit);
    }
}

/// Embedded mode: nothing is shared.
pub struct Disabled;

#[async_trait]
impl SharedState for Disabled {
    async fn get(&self, _key: &str) -> Option<Bytes> {
        None
    }
    async fn set(&self, _key: &str, _value: &[u8], _ttl: Duration) -> bool {
        false
    }
    async fn delete(&self, _key: &str) {}
    async fn publish(&self, _event: &Invalidation) {}
    async fn increment(&self, _key: &str, _window: Duration) -> Option<u64> {
        None
    }
    fn status(&self) -> &'static str {
        "disabled"
    }
}
