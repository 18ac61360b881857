//! Garbage collection: abandoned deploys expire, then blobs that no deploy
//! references are deleted, without racing a deploy that is still being made.

use std::time::Duration;

use chrono::Utc;

use crate::state::App;
use crate::store::StoreResult;

/// Blobs deleted per database round trip.
const BATCH: u32 = 500;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub expired_deploys: u64,
    pub deleted_blobs: u64,
}

/// A blob written for a deploy is referenced by the time the request that wrote it
/// ends; twice the request timeout leaves a wide margin.
fn blob_grace(app: &App) -> Duration {
    app.config
        .listeners
        .request_timeout
        .saturating_mul(2)
        .max(Duration::from_secs(60))
}

pub async fn run_once(app: &App) -> StoreResult<GcReport> {
    let expiry = chrono::Duration::seconds(
        i64::try_from(app.config.limits.deploy_expiry.as_secs()).unwrap_or(i64::MAX / 2),
    );
    let expired = app.store.expire_deploys(Utc::now() - expiry).await?;
    crate::audit::events::deploys_expired(app, &expired).await;
    let expired_deploys = expired.len() as u64;
    // Expired browser sessions are refused anyway; this only keeps the table small.
    app.store.delete_expired_sessions(Utc::now()).await?;
    crate::blobs::batch::sweep_stale_temps(app.blobs.as_ref(), blob_grace(app)).await;
    let grace = chrono::Duration::from_std(blob_grace(app)).unwrap_or(chrono::Duration::hours(1));
    collect_blobs(app, Utc::now() - grace)
        .await
        .map(|deleted_blobs| GcReport {
            expired_deploys,
            deleted_blobs,
        })
}

/// Deletes unreferenced blobs untouched since `cutoff`. Uploads on this replica are
/// held off by `blob_gc_lock`; one on another replica is covered by the grace period
/// only: re-uploading the very bytes of a blob unreferenced for longer than the grace,
/// between its row being forgotten and its bytes deleted, would lose them (the same
/// window a shared folder has always had; see docs/operations/runbooks/31-storage-node-loss.md).
pub async fn collect_blobs(app: &App, cutoff: chrono::DateTime<Utc>) -> StoreResult<u64> {
    let mut deleted = 0;
    loop {
        let candidates = app.store.unreferenced_blobs(cutoff, BATCH).await?;
        if candidates.is_empty() {
            break;
        }
        // Exclusive: no upload is between writing a blob file and recording it.
        let _exclusive = app.blob_gc_lock.write().await;
        let mut forgotten = Vec::with_capacity(candidates.len());
        for sha in &candidates {
            // Each row re-checked and deleted first: a blob a deploy or an upload took
            // meanwhile keeps its row and its bytes.
            if app.store.forget_blob(sha, cutoff).await? {
                forgotten.push(sha.clone());
            }
        }
        // The bytes of the whole batch at once (S3: one DeleteObjects per 1,000 keys). A
        // failure leaves bytes no row names: wasted space, never a missing file.
        if let Err(e) = app.blobs.delete_many(&forgotten).await {
            tracing::warn!(blobs = forgotten.len(), error = %e, "deleting blob bytes failed");
        }
        deleted += forgotten.len() as u64;
        if forgotten.is_empty() || candidates.len() < BATCH as usize {
            break;
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, "garbage-collected unreferenced blobs");
    }
    metrics::counter!(crate::metrics::GC_BLOBS_DELETED_TOTAL).increment(deleted);
    Ok(deleted)
}

/// Runs garbage collection every `interval` until the process exits.
pub async fn run_periodically(app: std::sync::Arc<App>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        match run_once(&app).await {
            Ok(report) if report != GcReport::default() => {
                tracing::info!(?report, "garbage collection done")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
        }
    }
}
