//! Per-replica fixed-window counters: the rate limiter counts here while the shared
//! (Redis) counters are unavailable. A component of the application state, so it lives
//! below both the state and the limiter that uses it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

/// The rate limits' window; a counter outlives two of them.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Per-replica counters, used while the shared ones are unavailable.
pub struct LocalCounters(Cache<String, Arc<AtomicU64>>);

impl Default for LocalCounters {
    fn default() -> LocalCounters {
        LocalCounters(
            Cache::builder()
                .max_capacity(100_000)
                .time_to_live(WINDOW * 2)
                .build(),
        )
    }
}

impl LocalCounters {
    pub fn increment(&self, key: &str) -> u64 {
        let counter = self
            .0
            .get_with(key.to_owned(), || Arc::new(AtomicU64::new(0)));
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }
}
