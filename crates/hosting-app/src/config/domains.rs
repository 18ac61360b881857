//! Custom-domain ownership checks: how often, and which resolver and address they use.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

/// Settings of the custom-domain verifier.
#[derive(Debug, Clone, Args)]
pub struct DomainChecks {
    /// Seconds between re-checks of custom-domain ownership (failed checks back off, up
    /// to a day); 0 disables the periodic check (the verify endpoint still works).
    #[arg(long, env = "HOSTING_DOMAIN_CHECK_INTERVAL", default_value = "3600", value_parser = super::duration::parse)]
    pub domain_check_interval: Duration,

    /// DNS server (`IP:PORT`) asked for custom-domain TXT records; the system resolver
    /// (`/etc/resolv.conf`) when unset. Tests point it at a local mock DNS.
    #[arg(long, env = "HOSTING_DNS_RESOLVER")]
    pub dns_resolver: Option<SocketAddr>,

    /// Address (`IP:PORT`) the HTTP-token check connects to instead of resolving the
    /// domain (an ingress with a fixed address, or tests); port 0 means this app's own
    /// public listener.
    #[arg(long, env = "HOSTING_VERIFY_HTTP_ADDR")]
    pub verify_http_addr: Option<SocketAddr>,
}
