//! Site routing beyond the deploy's files: proxy rules of `_redirects` (timeouts,
//! per-site concurrency, which private hosts they may reach) and the GeoIP database
//! behind `Country=` conditions.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

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
    pub fn validate(&self) -> Result<(), String> {
        if self.proxy_connect_timeout.is_zero() || self.proxy_response_timeout.is_zero() {
            return Err(
                "HOSTING_PROXY_CONNECT_TIMEOUT and HOSTING_PROXY_RESPONSE_TIMEOUT must be above 0"
                    .into(),
            );
        }
        if self.proxy_max_concurrent == 0 {
            return Err("HOSTING_PROXY_MAX_CONCURRENT must be at least 1".into());
        }
        if let Some(path) = &self.geoip_db {
            if !path.is_file() {
                return Err(format!(
                    "HOSTING_GEOIP_DB: {} is not a file",
                    path.display()
                ));
            }
        }
        Ok(())
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
