//! State shared between app replicas beyond the database: the L2 cache, publish
//! invalidations, rate-limit counters and ACME challenge answers. Redis in cluster mode; in embedded mode (one
//! process) there is nothing to share and `Disabled` answers "miss" to everything.
//!
//! Every operation is best-effort: an error is a miss, never a failed request.

mod contract;
mod redis;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use self::contract::{Invalidation, SharedState};
pub use self::redis::RedisShared;

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
