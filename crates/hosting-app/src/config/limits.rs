//! Bounds on deploys and API use, and how long unfinished deploys and garbage live.

use std::time::Duration;

use clap::Args;

use super::error::{ConfigError, ConfigErrors, Problems, Setting, Value};

/// Per-deploy limits, the API rate limit, expiry and garbage collection.
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// API requests per minute per token and per client address; 0 disables.
    #[arg(long, env = "HOSTING_RATE_LIMIT_PER_MINUTE", default_value_t = 1200)]
    pub rate_limit_per_minute: u64,

    /// Most files in one deploy.
    #[arg(long, env = "HOSTING_MAX_FILES", default_value_t = 20_000)]
    pub max_files: u64,

    /// Largest file in a deploy.
    #[arg(long, env = "HOSTING_MAX_FILE_BYTES", default_value_t = 25 * 1024 * 1024)]
    pub max_file_bytes: u64,

    /// Largest deploy (sum of its files).
    #[arg(long, env = "HOSTING_MAX_DEPLOY_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub max_deploy_bytes: u64,

    /// Largest ratio of uncompressed to compressed bytes in a `.tar.gz` deploy.
    #[arg(long, env = "HOSTING_MAX_EXPANSION_RATIO", default_value_t = 200)]
    pub max_expansion_ratio: u64,

    /// Seconds after which a deploy still waiting for files expires.
    #[arg(long, env = "HOSTING_DEPLOY_EXPIRY", default_value = "3600", value_parser = super::duration::parse)]
    pub deploy_expiry: Duration,

    /// Seconds between garbage-collection runs (expired deploys, unreferenced blobs); 0 disables.
    #[arg(long, env = "HOSTING_GC_INTERVAL", default_value = "600", value_parser = super::duration::parse)]
    pub gc_interval: Duration,

    /// Most files in one bulk upload request (`POST /api/v1/deploys/{id}/files`).
    #[arg(long, env = "HOSTING_MAX_BATCH_FILES", default_value_t = 5_000)]
    pub max_batch_files: u64,

    /// Most file bytes in one bulk upload request. In cluster mode it is also what an
    /// upload holds in memory at most: a bulk request's files, or an archive's files
    /// between two writes to the database.
    #[arg(long, env = "HOSTING_MAX_BATCH_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_batch_bytes: u64,
}

impl Limits {
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut problems = Problems::new();
        for (setting, limit) in [
            ("HOSTING_MAX_FILES", self.max_files),
            ("HOSTING_MAX_FILE_BYTES", self.max_file_bytes),
            ("HOSTING_MAX_DEPLOY_BYTES", self.max_deploy_bytes),
            ("HOSTING_MAX_BATCH_FILES", self.max_batch_files),
            ("HOSTING_MAX_BATCH_BYTES", self.max_batch_bytes),
        ] {
            problems.check(limit == 0, || {
                ConfigError::invalid(
                    Setting(setting),
                    Value::shown(limit),
                    "must be greater than zero",
                )
            });
        }
        problems.finish()
    }
}
/// Default per-user quotas (admins are exempt; an admin may override them per user).
#[derive(Debug, Clone, Args)]
pub struct Quotas {
    /// Default per-user storage quota (bytes of the distinct files of the user's deploys;
    /// plain bytes or with a unit: 10GiB, 500MB). 0 = unlimited. Not applied to admins.
    #[arg(long, env = "HOSTING_QUOTA_STORAGE_BYTES", default_value = "10GiB")]
    pub quota_storage_bytes: hosting_api::ByteSize,

    /// Default per-user number of sites. 0 = unlimited. Not applied to admins.
    #[arg(long, env = "HOSTING_QUOTA_SITES", default_value_t = 100)]
    pub quota_sites: u64,

    /// Default per-user deploys created per rolling hour. 0 = unlimited. Not applied to admins.
    #[arg(long, env = "HOSTING_QUOTA_DEPLOYS_PER_HOUR", default_value_t = 100)]
    pub quota_deploys_per_hour: u64,
}
