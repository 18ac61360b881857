//! When a failed certificate order is tried again: doubling waits from the configured
//! base, capped at a day (custom domains and the platform certificate alike).

use std::time::Duration;

/// Longest wait between retries of a failing order.
pub const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);

/// When the next order is due after `failures` consecutive failures.
pub fn retry_after(base: Duration, failures: u32) -> Duration {
    base.saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_the_base_to_a_day() {
        let base = Duration::from_secs(300);
        assert_eq!(retry_after(base, 1), Duration::from_secs(300));
        assert_eq!(retry_after(base, 2), Duration::from_secs(600));
        assert_eq!(retry_after(base, 4), Duration::from_secs(2400));
        assert_eq!(retry_after(base, 40), MAX_BACKOFF);
    }
}
