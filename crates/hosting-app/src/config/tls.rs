//! HTTPS served by the app itself (no HAProxy in front): the TLS listener, the
//! platform's own certificate files, how often certificates are reloaded and HSTS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// The TLS listener's settings; all off by default (plain HTTP behind a proxy).
#[derive(Debug, Clone, Args)]
pub struct Tls {
    /// Address of the HTTPS listener (sites, API, dashboard over TLS; HTTP/2 and HTTP/1.1),
    /// e.g. `0.0.0.0:443`; unset = no TLS in the app. Once a name has a certificate, the
    /// plain listener redirects it here (except ACME and domain-check paths).
    #[arg(long, env = "HOSTING_TLS_LISTEN")]
    pub tls_listen: Option<SocketAddr>,

    /// PEM file with the platform's certificate chain (leaf first), served for the
    /// platform's names and for any name that has no certificate of its own; with
    /// HOSTING_TLS_KEY_FILE. Reloaded when it changes.
    #[arg(long, env = "HOSTING_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM file with the private key of HOSTING_TLS_CERT_FILE.
    #[arg(long, env = "HOSTING_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// Seconds between reloads of the certificates the TLS listener serves (from the
    /// database, and the platform files if they changed); a certificate this replica
    /// issues is loaded at once.
    #[arg(long, env = "HOSTING_TLS_RELOAD_INTERVAL", default_value = "30", value_parser = super::duration::parse)]
    pub tls_reload_interval: Duration,

    /// HSTS max-age in seconds sent with the control host's HTTPS responses; 0 = no
    /// Strict-Transport-Security header (sites can set their own in `_headers`).
    #[arg(long, env = "HOSTING_TLS_HSTS", default_value = "0", value_parser = super::duration::parse)]
    pub tls_hsts: Duration,
}

impl Tls {
    pub fn validate(&self) -> Result<(), String> {
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err("HOSTING_TLS_CERT_FILE and HOSTING_TLS_KEY_FILE go together".into());
        }
        if self.tls_cert_file.is_some() && self.tls_listen.is_none() {
            return Err(
                "HOSTING_TLS_CERT_FILE needs HOSTING_TLS_LISTEN (the listener that serves it)"
                    .into(),
            );
        }
        if self.tls_reload_interval.is_zero() {
            return Err("HOSTING_TLS_RELOAD_INTERVAL must be greater than zero".into());
        }
        Ok(())
    }
}
