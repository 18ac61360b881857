//! What every kind of shared state answers, and the invalidation event it carries.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

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
