//! Retention: entries older than `HOSTING_AUDIT_RETENTION` (and webhook deliveries that
//! finished as long ago) are deleted by a periodic task on every replica; the delete is
//! idempotent, so replicas running it together only repeat each other's work.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::state::App;

/// Prunes once now and then every `interval` until the process exits.
pub async fn run_periodically(app: Arc<App>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        let keep = chrono::Duration::from_std(app.config.events.audit_retention)
            .unwrap_or(chrono::Duration::days(365));
        match app.store.prune_events(Utc::now() - keep).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "pruned audit entries and webhook deliveries"),
            Err(e) => tracing::warn!(error = %e, "pruning the audit log failed"),
        }
    }
}
