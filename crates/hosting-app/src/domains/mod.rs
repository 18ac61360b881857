//! Custom domains: ownership checks (DNS TXT or an HTTP token the platform serves on
//! the domain), the outcome rules, and the periodic re-check.
//!
//! Rules:
//! - A new claim is `pending`. A successful check makes it `verified` (it serves the
//!   site). A pending claim whose checks keep failing becomes `failed` once it is older
//!   than [`CLAIM_GRACE`]; a verified domain becomes `failed` after
//!   [`VERIFIED_FAILURES_ALLOWED`] consecutive failed checks (the owner moved it away).
//! - Another owner may replace a claim only when it is not verified and either failed
//!   or older than [`CLAIM_GRACE`] (see `Store::add_domain`); a verified claim is never
//!   taken over.

pub(crate) mod verify;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hosting_api::DomainStatus;

pub use self::verify::{check_ownership, txt_name, HTTP_VERIFY_PREFIX};
pub(crate) use self::verify::{error_chain, is_public};
use crate::state::App;
use crate::store::{DomainCheck, DomainRecord};

/// How long an unverified claim holds a name against other owners.
pub const CLAIM_GRACE: chrono::Duration = chrono::Duration::days(7);

/// Failed re-checks a verified domain survives before it stops serving.
pub const VERIFIED_FAILURES_ALLOWED: u32 = 3;

/// Longest wait between checks of a failing domain.
const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);

/// Base interval when the periodic check is disabled (only used to fill `next_check_at`).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);

/// Domains checked per periodic round.
const BATCH: u32 = 100;

/// A fresh verification token: 128 random bits, hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    format!("hosting-verify={}", hex::encode(bytes))
}

fn base_interval(app: &App) -> Duration {
    match app.config.domains.domain_check_interval {
        Duration::ZERO => DEFAULT_INTERVAL,
        interval => interval,
    }
}

/// The record to store after a check of `domain` that gave `result` at `now`.
pub fn outcome(
    domain: &DomainRecord,
    result: Result<&'static str, String>,
    interval: Duration,
    now: DateTime<Utc>,
) -> DomainCheck {
    match result {
        Ok(method) => DomainCheck {
            status: DomainStatus::Verified,
            detail: Some(format!("verified by {method}")),
            failures: 0,
            next_check_at: now + chrono::Duration::from_std(interval).unwrap_or_default(),
        },
        Err(reason) => {
            let failures = domain.failures.saturating_add(1);
            let status = match domain.status {
                DomainStatus::Verified if failures < VERIFIED_FAILURES_ALLOWED => {
                    DomainStatus::Verified
                }
                DomainStatus::Pending if now - domain.created_at < CLAIM_GRACE => {
                    DomainStatus::Pending
                }
                _ => DomainStatus::Failed,
            };
            let detail = match status {
                DomainStatus::Verified => format!(
                    "still serving; check {failures} of {VERIFIED_FAILURES_ALLOWED} failed: {reason}"
                ),
                _ => reason,
            };
            let backoff = interval
                .saturating_mul(1 << failures.min(6))
                .min(MAX_BACKOFF);
            DomainCheck {
                status,
                detail: Some(detail),
                failures,
                next_check_at: now + chrono::Duration::from_std(backoff).unwrap_or_default(),
            }
        }
    }
}

/// Checks a domain now, records the outcome and, when serving may change, drops the
/// domain's cached host entry everywhere. Returns the stored check.
pub async fn check_and_record(
    app: &Arc<App>,
    domain: &DomainRecord,
) -> crate::store::StoreResult<DomainCheck> {
    let result = check_ownership(&app.config, &domain.name, &domain.token).await;
    let label = if result.is_ok() { "verified" } else { "failed" };
    metrics::counter!(crate::metrics::DOMAIN_CHECKS_TOTAL, "result" => label).increment(1);
    let check = outcome(domain, result, base_interval(app), Utc::now());
    app.store.record_domain_check(domain.id, &check).await?;
    if check.status != domain.status {
        tracing::info!(
            domain.name = %domain.name,
            site.name = %domain.site_name,
            status = ?check.status,
            "custom domain status changed"
        );
        crate::publish::invalidate_host(app, &domain.name).await;
    }
    Ok(check)
}

/// Re-checks due domains every `interval` (or every minute, if shorter), forever.
pub async fn run_periodically(app: Arc<App>, interval: Duration) {
    let tick = interval.min(Duration::from_secs(60));
    loop {
        tokio::time::sleep(tick).await;
        let due = match app.store.domains_due(Utc::now(), BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "listing custom domains to re-check failed");
                continue;
            }
        };
        for domain in due {
            match check_and_record(&app, &domain).await {
                Ok(check) => {
                    let system = crate::audit::Actor::System;
                    crate::audit::events::domain_checked(&app, system, &domain, &check).await;
                }
                Err(e) => {
                    tracing::warn!(domain.name = %domain.name, error = %e, "recording a domain check failed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: DomainStatus, failures: u32, age: chrono::Duration) -> DomainRecord {
        DomainRecord {
            id: 1,
            name: "shop.example.test".into(),
            site_id: 1,
            site_name: "shop".into(),
            owner_id: 1,
            status,
            status_detail: None,
            token: "t".into(),
            created_at: Utc::now() - age,
            checked_at: None,
            verified_at: None,
            failures,
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_passing_check_verifies_and_resets_the_backoff() {
        let now = Utc::now();
        let check = outcome(
            &record(DomainStatus::Pending, 4, chrono::Duration::hours(1)),
            Ok("HTTP token"),
            HOUR,
            now,
        );
        assert_eq!(check.status, DomainStatus::Verified);
        assert_eq!(check.failures, 0);
        assert_eq!(check.next_check_at, now + chrono::Duration::hours(1));
    }

    #[test]
    fn a_young_pending_claim_stays_pending_and_an_old_one_fails() {
        let now = Utc::now();
        let young = record(DomainStatus::Pending, 0, chrono::Duration::hours(1));
        let old = record(DomainStatus::Pending, 0, chrono::Duration::days(8));
        let reason = || Err("no TXT record".to_owned());
        assert_eq!(
            outcome(&young, reason(), HOUR, now).status,
            DomainStatus::Pending
        );
        assert_eq!(
            outcome(&old, reason(), HOUR, now).status,
            DomainStatus::Failed
        );
    }

    #[test]
    fn a_verified_domain_survives_a_few_failed_checks_with_growing_backoff() {
        let now = Utc::now();
        let age = chrono::Duration::days(30);
        let first = outcome(
            &record(DomainStatus::Verified, 0, age),
            Err("x".into()),
            HOUR,
            now,
        );
        assert_eq!(first.status, DomainStatus::Verified);
        assert_eq!(first.next_check_at, now + chrono::Duration::hours(2));
        let second = outcome(
            &record(DomainStatus::Verified, 1, age),
            Err("x".into()),
            HOUR,
            now,
        );
        assert_eq!(second.next_check_at, now + chrono::Duration::hours(4));
        let last = outcome(
            &record(DomainStatus::Verified, VERIFIED_FAILURES_ALLOWED - 1, age),
            Err("x".into()),
            HOUR,
            now,
        );
        assert_eq!(last.status, DomainStatus::Failed);
        let capped = outcome(
            &record(DomainStatus::Failed, 30, age),
            Err("x".into()),
            HOUR,
            now,
        );
        assert_eq!(capped.next_check_at, now + chrono::Duration::hours(24));
    }
}
