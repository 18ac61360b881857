//! Listeners, their connection limits and the request timeouts.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::error::{ConfigError, ConfigErrors, Problems, Setting, Value};

/// Where the app listens and how long it waits on clients.
#[derive(Debug, Clone, Args)]
pub struct Listeners {
    /// Address of the public listener (API, dashboard and sites).
    #[arg(long, env = "HOSTING_LISTEN", default_value = "0.0.0.0:3000")]
    pub listen: SocketAddr,

    /// Address of the management listener (/metrics, /healthz, /readyz).
    #[arg(long, env = "HOSTING_MGMT_LISTEN", default_value = "0.0.0.0:9000")]
    pub mgmt_listen: SocketAddr,

    /// Seconds a request may take before it is answered 408 (uploads included).
    #[arg(long, env = "HOSTING_REQUEST_TIMEOUT", default_value = "300", value_parser = super::duration::parse)]
    pub request_timeout: Duration,

    /// Seconds between turning not-ready and closing the listener on SIGTERM, so load balancers notice first.
    #[arg(long, env = "HOSTING_SHUTDOWN_DRAIN", default_value = "0", value_parser = super::duration::parse)]
    pub shutdown_drain: Duration,

    /// Seconds a client may take to send a request's headers (counted from connecting, or from the first byte of a later request) before its connection is closed.
    #[arg(long, env = "HOSTING_HEADER_READ_TIMEOUT", default_value = "10", value_parser = super::duration::parse)]
    pub header_read_timeout: Duration,

    /// Seconds a keep-alive connection may wait for its next request, or a client may take no byte of its response, before the connection is closed. Longer than the proxies' upstream keep-alive (Nginx: 60 s), so they close first.
    #[arg(long, env = "HOSTING_IDLE_TIMEOUT", default_value = "75", value_parser = super::duration::parse)]
    pub idle_timeout: Duration,

    /// Open connections per listener (public and management); over it, new connections wait in the kernel's accept queue until one closes.
    #[arg(long, env = "HOSTING_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
}

impl Listeners {
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut problems = Problems::new();
        for (setting, timeout) in [
            ("HOSTING_HEADER_READ_TIMEOUT", self.header_read_timeout),
            ("HOSTING_IDLE_TIMEOUT", self.idle_timeout),
        ] {
            problems.check(timeout.is_zero(), || {
                ConfigError::invalid(
                    Setting(setting),
                    Value::duration(timeout),
                    "must be greater than zero",
                )
            });
        }
        problems.check(self.max_connections == 0, || {
            ConfigError::invalid(
                Setting("HOSTING_MAX_CONNECTIONS"),
                Value::shown(self.max_connections),
                "must be greater than zero",
            )
        });
        problems.finish()
    }
}
