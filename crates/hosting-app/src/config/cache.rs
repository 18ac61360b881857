//! Redis and the caches: in-process (L1), Redis (L2), and how long proxies may keep a response.

use std::time::Duration;

use clap::Args;

use super::secret::SecretUrl;

/// Redis: shared cache, publish invalidation, sessions and rate-limit counters.
#[derive(Debug, Clone, Args)]
pub struct Redis {
    /// Redis (`redis://host:6379/0`): shared cache, publish invalidation, rate-limit counters.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<SecretUrl>,

    /// Prefix of every Redis key and channel, so several platforms can share one Redis.
    #[arg(long, env = "HOSTING_REDIS_PREFIX", default_value = "hosting")]
    pub redis_prefix: String,
}

/// Cache sizes and lifetimes.
#[derive(Debug, Clone, Args)]
pub struct Cache {
    /// Files up to this size are shared through Redis (the L2 cache).
    #[arg(long, env = "HOSTING_REDIS_BLOB_MAX_BYTES", default_value_t = 256 * 1024)]
    pub redis_blob_max_bytes: u64,

    /// Bytes of the in-process cache (manifests and small files).
    #[arg(long, env = "HOSTING_CACHE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub cache_bytes: u64,

    /// Files up to this size are kept in the in-process cache; larger ones stream from the blob store.
    #[arg(long, env = "HOSTING_CACHE_MAX_FILE_BYTES", default_value_t = 1024 * 1024)]
    pub cache_max_file_bytes: u64,

    /// Seconds before a cached host -> live deploy mapping is looked up again (a safety
    /// net; publish and access changes invalidate at once). Default: 300 embedded, where
    /// invalidation is in-process and cannot be missed; 5 in cluster mode, where a replica
    /// can miss a Redis message.
    #[arg(long, env = "HOSTING_HOST_CACHE_TTL", value_parser = super::duration::parse)]
    pub host_cache_ttl: Option<Duration>,

    /// Seconds shared caches (the proxies) may keep a site response (`s-maxage`).
    #[arg(long, env = "HOSTING_PROXY_CACHE_SECONDS", default_value = "1", value_parser = super::duration::parse)]
    pub proxy_cache_seconds: Duration,
}

/// The host cache's safety-net TTL in embedded mode: one process, every write that
/// changes a host's deploy or visitor access goes through it and invalidates in-process,
/// so the TTL only bounds what a bug could leave stale. At 10,000 hosts a 5 s TTL made
/// up to 2,000 background refreshes a second (issue 23); 300 s makes ~33.
pub const EMBEDDED_HOST_CACHE_TTL: Duration = Duration::from_secs(300);

/// The host cache's TTL in cluster mode: publish invalidations travel over Redis pub/sub,
/// which delivers at most once; a replica that reconnects drops its hosts, but one whose
/// publisher lost Redis hears nothing, so this bounds how long it may serve the old deploy.
pub const CLUSTER_HOST_CACHE_TTL: Duration = Duration::from_secs(5);

impl Cache {
    /// `HOSTING_HOST_CACHE_TTL`, or the mode's default.
    pub fn host_ttl(&self, cluster: bool) -> Duration {
        self.host_cache_ttl.unwrap_or(if cluster {
            CLUSTER_HOST_CACHE_TTL
        } else {
            EMBEDDED_HOST_CACHE_TTL
        })
    }
}
