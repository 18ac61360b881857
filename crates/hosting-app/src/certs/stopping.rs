//! How an order under way ends when its replica stops: shared by the custom domains'
//! issuer (`certs/mod.rs`) and the platform wildcard's (`tls/wildcard.rs`).

use std::time::Duration;

/// How long a stopping replica lets an order under way finish before giving its lease back.
pub const STOPPING_ORDER_GRACE: Duration = Duration::from_secs(10);

/// Resolves once `stopping` is true (or its sender is gone).
pub async fn stopped(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}
