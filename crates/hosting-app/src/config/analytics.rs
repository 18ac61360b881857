//! Per-site traffic figures (issue 20): whether they are counted, how often each replica
//! writes what it counted, and how long each granularity is kept.

use std::time::Duration;

use clap::Args;

use super::error::{ConfigError, ConfigErrors, Problems, Setting, Value};

/// `on` counts every site request (in memory, written every flush interval); `off`
/// counts nothing and costs the serving path nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AnalyticsMode {
    On,
    Off,
}

/// Analytics settings.
#[derive(Debug, Clone, Args)]
pub struct Analytics {
    /// Count requests, page views, unique visitors (HyperLogLog sketches only), bytes,
    /// statuses, top pages, referrers and 404s per site: `on` or `off`.
    #[arg(long, env = "HOSTING_ANALYTICS", value_enum, default_value = "on")]
    pub analytics: AnalyticsMode,

    /// How often each replica writes what it counted: a replica that dies loses at most this.
    #[arg(long, env = "HOSTING_ANALYTICS_FLUSH_INTERVAL", default_value = "5s", value_parser = super::duration::parse)]
    pub analytics_flush_interval: Duration,

    /// How long per-minute figures are kept.
    #[arg(long, env = "HOSTING_ANALYTICS_MINUTE_RETENTION", default_value = "1d", value_parser = super::duration::parse)]
    pub analytics_minute_retention: Duration,

    /// How long hourly figures are kept.
    #[arg(long, env = "HOSTING_ANALYTICS_HOUR_RETENTION", default_value = "90d", value_parser = super::duration::parse)]
    pub analytics_hour_retention: Duration,

    /// How long daily figures are kept.
    #[arg(long, env = "HOSTING_ANALYTICS_DAY_RETENTION", default_value = "730d", value_parser = super::duration::parse)]
    pub analytics_day_retention: Duration,
}

impl Analytics {
    pub fn enabled(&self) -> bool {
        self.analytics == AnalyticsMode::On
    }

    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut problems = Problems::new();
        problems.check(
            self.enabled() && self.analytics_flush_interval.is_zero(),
            || {
                ConfigError::invalid(
                    Setting("HOSTING_ANALYTICS_FLUSH_INTERVAL"),
                    Value::duration(self.analytics_flush_interval),
                    "must be above zero",
                )
            },
        );
        // Coarser figures are kept at least as long as finer ones.
        let retentions = [
            (
                "HOSTING_ANALYTICS_MINUTE_RETENTION",
                self.analytics_minute_retention,
            ),
            (
                "HOSTING_ANALYTICS_HOUR_RETENTION",
                self.analytics_hour_retention,
            ),
            (
                "HOSTING_ANALYTICS_DAY_RETENTION",
                self.analytics_day_retention,
            ),
        ];
        for pair in retentions.windows(2) {
            let ((finer, finer_kept), (coarser, coarser_kept)) = (pair[0], pair[1]);
            problems.check(finer_kept > coarser_kept, || {
                ConfigError::invalid(
                    Setting(finer),
                    Value::duration(finer_kept),
                    format!(
                        "is longer than {} = {}: retention must not shrink with coarser \
                         granularity (minute <= hour <= day)",
                        Setting(coarser),
                        Value::duration(coarser_kept)
                    ),
                )
            });
        }
        problems.finish()
    }
}
