//! Site routing beyond the deploy's files: proxy rules of `_redirects` (timeouts,
//! per-site concurrency, which private hosts they may reach) and the GeoIP database
//! behind `Country=` conditions.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::error::{ConfigError, ConfigErrors, Problems, Setting, Value};

/// Settings of proxy rules and rule conditions.
#[derive(Debug, Clone, Args)]
pub struct Routing {
    /// Time allowed to connect to the upstream of a proxy rule
    /// (`/api/* https://api.example.com/:splat 200`); past it the visitor gets a 502.
    #[arg(long, env = "HOSTING_PROXY_CONNECT_TIMEOUT", default_value = "5", value_parser = super::duration::parse)]
    pub proxy_connect_timeout: Duration,

    /// Time allowed for an upstream to start answering (its status and headers), and
    /// for each read of its body after that; past it the visitor gets a 504.
    #[arg(long, env = "HOSTING_PROXY_RESPONSE_TIMEOUT", default_value = "30", value_parser = super::duration::parse)]
    pub proxy_response_timeout: Duration,

    /// Proxied requests one site may have in flight on this replica; more get a 503.
    #[arg(long, env = "HOSTING_PROXY_MAX_CONCURRENT", default_value = "64")]
    pub proxy_max_concurrent: usize,

    /// Hosts (names or IP addresses, comma-separated) that proxy rules may reach even
    /// though they resolve to a loopback or private address. Every other target must
    /// resolve to public addresses only, so a site cannot make the platform probe its
    /// own network.
    #[arg(
        long,
        env = "HOSTING_PROXY_ALLOWED_PRIVATE_HOSTS",
        value_delimiter = ','
    )]
    pub proxy_allowed_private_hosts: Vec<String>,

    /// A GeoIP2 / GeoLite2 Country or City database (`.mmdb`) for `Country=` conditions
    /// of `_redirects`. Without one, rules with a `Country=` condition never apply.
    #[arg(long, env = "HOSTING_GEOIP_DB")]
    pub geoip_db: Option<PathBuf>,
}

impl Routing {
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut problems = Problems::new();
        for (setting, timeout) in [
            ("HOSTING_PROXY_CONNECT_TIMEOUT", self.proxy_connect_timeout),
            (
                "HOSTING_PROXY_RESPONSE_TIMEOUT",
                self.proxy_response_timeout,
            ),
        ] {
            problems.check(timeout.is_zero(), || {
                ConfigError::invalid(
                    Setting(setting),
                    Value::duration(timeout),
                    "must be above 0",
                )
            });
        }
        problems.check(self.proxy_max_concurrent == 0, || {
            ConfigError::invalid(
                Setting("HOSTING_PROXY_MAX_CONCURRENT"),
                Value::shown(self.proxy_max_concurrent),
                "must be at least 1",
            )
        });
        if let Some(path) = &self.geoip_db {
            problems.check(!path.is_file(), || {
                ConfigError::invalid(
                    Setting("HOSTING_GEOIP_DB"),
                    Value::path(path),
                    "is not a file",
                )
            });
        }
        problems.finish()
    }
    /// Whether `host` (lower-case name or IP address as written in a URL) is allowed to
    /// resolve to a private address.
    pub fn allows_private(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.proxy_allowed_private_hosts
            .iter()
            .any(|allowed| allowed.trim().eq_ignore_ascii_case(host))
    }
}
