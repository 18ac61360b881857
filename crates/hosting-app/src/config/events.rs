//! The audit log's retention and the webhook deliveries: how long entries are kept,
//! which targets may be called, timeouts and retries.

use std::time::Duration;

use clap::Args;

/// Settings of the audit log and of webhook deliveries.
#[derive(Debug, Clone, Args)]
pub struct Events {
    /// How long audit entries (and finished webhook deliveries with their attempt log)
    /// are kept.
    #[arg(long, env = "HOSTING_AUDIT_RETENTION", default_value = "365d", value_parser = super::duration::parse)]
    pub audit_retention: Duration,

    /// How often old audit entries are pruned; 0 disables pruning.
    #[arg(long, env = "HOSTING_AUDIT_PRUNE_INTERVAL", default_value = "1h", value_parser = super::duration::parse)]
    pub audit_prune_interval: Duration,

    /// Allow webhook targets on loopback, private and link-local addresses (tests,
    /// private networks). Off: only public addresses are called.
    #[arg(long, env = "HOSTING_WEBHOOK_ALLOW_PRIVATE", default_value_t = false)]
    pub webhook_allow_private: bool,

    /// Time allowed to one webhook delivery attempt (connect, send, answer).
    #[arg(long, env = "HOSTING_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = super::duration::parse)]
    pub webhook_timeout: Duration,

    /// Wait before the first retry of a failed delivery; each retry waits twice as long,
    /// up to an hour.
    #[arg(long, env = "HOSTING_WEBHOOK_RETRY_BASE", default_value = "30s", value_parser = super::duration::parse)]
    pub webhook_retry_base: Duration,

    /// How long a failing delivery is retried before it is given up.
    #[arg(long, env = "HOSTING_WEBHOOK_RETRY_FOR", default_value = "1d", value_parser = super::duration::parse)]
    pub webhook_retry_for: Duration,

    /// How often each replica looks for due deliveries; 0 stops this replica delivering
    /// (the queue waits for another replica or a restart).
    #[arg(long, env = "HOSTING_WEBHOOK_POLL_INTERVAL", default_value = "1s", value_parser = super::duration::parse)]
    pub webhook_poll_interval: Duration,
}
