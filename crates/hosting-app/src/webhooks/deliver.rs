//! Delivering queued webhook messages: every replica polls the queue, claims due rows
//! under a lease (`Store::claim_deliveries`: `FOR UPDATE SKIP LOCKED` on PostgreSQL),
//! sends each, signed, and logs the attempt. A failure is retried with exponential
//! backoff until `HOSTING_WEBHOOK_RETRY_FOR` after the event; a replica that dies
//! mid-delivery leaves its lease to run out, and the row is claimed again (at least once).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use url::Url;

use super::{secrets, sign, target};
use crate::state::App;
use crate::store::{AfterAttempt, AttemptRecord, DueDelivery};

/// Deliveries claimed per round (sent concurrently).
const BATCH: u32 = 16;

/// How often the queue gauges are read: about a Prometheus scrape interval.
const QUEUE_GAUGE_INTERVAL: Duration = Duration::from_secs(10);

/// The longest wait between two retries.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Polls for due deliveries every `interval` until the process exits.
pub async fn run_deliveries(app: Arc<App>, interval: Duration) {
    if let Some(sealer) = &app.webhook_sealer {
        match secrets::seal_clear_rows(app.store.as_ref(), sealer).await {
            Ok(0) => {}
            Ok(sealed) => tracing::info!(sealed, "sealed webhook secrets stored in clear"),
            Err(e) => tracing::warn!(error = %e, "sealing webhook secrets stored in clear failed"),
        }
    }
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut measured: Option<Instant> = None;
    loop {
        ticker.tick().await;
        if measured.is_none_or(|at| at.elapsed() >= QUEUE_GAUGE_INTERVAL) {
            measured = Some(Instant::now());
            set_queue_gauges(&app).await;
        }
        // Drain what is due before waiting again, so a burst is not spread over ticks.
        loop {
            match deliver_due(&app).await {
                Ok(claimed) if claimed == BATCH as usize => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming webhook deliveries failed");
                    break;
                }
            }
        }
    }
}

/// Sets the queue gauges from the database (every replica reads the same queue).
async fn set_queue_gauges(app: &App) {
    match app.store.webhook_queue().await {
        Ok(queue) => {
            let age = queue.oldest.map_or(0.0, |at| {
                (Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0
            });
            metrics::gauge!(crate::metrics::WEBHOOK_QUEUE_PENDING).set(queue.pending as f64);
            metrics::gauge!(crate::metrics::WEBHOOK_QUEUE_OLDEST_AGE_SECONDS).set(age);
        }
        Err(e) => tracing::warn!(error = %e, "reading the webhook queue's size failed"),
    }
}

/// Claims and sends one batch; the number claimed.
async fn deliver_due(app: &App) -> Result<usize, crate::store::StoreError> {
    let now = Utc::now();
    // The lease outlasts an attempt, so a slow receiver is not sent the message twice.
    let lease = app.config.events.webhook_timeout + Duration::from_secs(30);
    let lease_until =
        now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(1));
    let claimed = app.store.claim_deliveries(now, lease_until, BATCH).await?;
    let count = claimed.len();
    futures::future::join_all(claimed.into_iter().map(|d| deliver_one(app, d))).await;
    Ok(count)
}

async fn deliver_one(app: &App, delivery: DueDelivery) {
    let started = Instant::now();
    let result = send(app, &delivery).await;
    let at = Utc::now();
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (status_code, error) = match &result {
        Ok(status) if (200..300).contains(status) => (Some(*status), None),
        Ok(status) => (
            Some(*status),
            Some(format!("the receiver answered {status}")),
        ),
        Err(e) => (None, Some(e.clone())),
    };
    let after = if error.is_none() {
        AfterAttempt::Delivered
    } else {
        next_attempt(app, &delivery, at)
    };
    let result = match after {
        AfterAttempt::Delivered => "delivered",
        AfterAttempt::RetryAt(_) => "retry",
        AfterAttempt::GiveUp => "failed",
    };
    metrics::counter!(crate::metrics::WEBHOOK_DELIVERIES_TOTAL, "result" => result).increment(1);
    tracing::info!(
        webhook.delivery = delivery.id,
        webhook.event = %delivery.event,
        status = ?status_code,
        duration_ms,
        error = ?error,
        after = ?after,
        "webhook attempt"
    );
    let attempt = AttemptRecord {
        at,
        status_code,
        duration_ms,
        error,
    };
    if let Err(e) = app.store.record_attempt(delivery.id, &attempt, after).await {
        // The lease runs out and the delivery is tried again: at least once, not lost.
        tracing::warn!(webhook.delivery = delivery.id, error = %e, "recording a webhook attempt failed");
    }
}

/// Retry after `base * 2^attempts` (capped), unless that is past the retry window.
fn next_attempt(app: &App, delivery: &DueDelivery, now: DateTime<Utc>) -> AfterAttempt {
    let events = &app.config.events;
    let exponent = u32::try_from(delivery.attempts).unwrap_or(u32::MAX).min(20);
    let wait = events
        .webhook_retry_base
        .saturating_mul(1u32 << exponent)
        .min(MAX_BACKOFF);
    let next = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
    let deadline = delivery.created_at
        + chrono::Duration::from_std(events.webhook_retry_for).unwrap_or(chrono::Duration::days(1));
    if next > deadline {
        AfterAttempt::GiveUp
    } else {
        AfterAttempt::RetryAt(next)
    }
}

/// One POST of the message: the receiver's status, or why there was none.
async fn send(app: &App, delivery: &DueDelivery) -> Result<u16, String> {
    let events = &app.config.events;
    let url = Url::parse(&delivery.url).map_err(|e| format!("invalid URL: {e}"))?;
    let addr = target::resolve(&url, events.webhook_allow_private).await?;
    let mut client = reqwest::Client::builder()
        // SECURITY: a redirect could point anywhere, private addresses included.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(events.webhook_timeout)
        .connect_timeout(events.webhook_timeout.min(Duration::from_secs(5)))
        .user_agent("hosting-webhooks");
    if let Some(host) = url.host_str() {
        // The connection goes to the address checked, not to a second resolution.
        client = client.resolve(host, addr);
    }
    let client = client
        .build()
        .map_err(|e| format!("building the client failed: {e}"))?;
    let secret = secrets::open(
        app.webhook_sealer.as_deref(),
        delivery.site_id,
        &delivery.secret,
    )
    .map_err(|e| e.to_string())?;
    let timestamp = Utc::now().timestamp();
    let signature = sign::signature(
        &secret,
        &delivery.message_id,
        timestamp,
        delivery.payload.as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.payload.clone())
        .send()
        .await
        .map_err(|e| crate::domains::error_chain(&e))?;
    Ok(response.status().as_u16())
}
