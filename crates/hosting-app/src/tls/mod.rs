//! HTTPS served by the app itself (`HOSTING_TLS_LISTEN`), for a single server with no
//! HAProxy in front: rustls (ring provider, TLS 1.2 and 1.3, its safe defaults), HTTP/2
//! and HTTP/1.1 by ALPN, the certificate chosen per SNI from the same database the ACME
//! issuer fills ([`resolver`]), reloaded without a restart ([`reload`]).
//!
//! The connections themselves are served by `http/listener.rs` like the plain ones;
//! the plain listener sends a name to HTTPS once a certificate for it is served
//! (`http/mod.rs`).

pub mod certified;
pub mod handshake;
pub mod hsts;
pub mod platform_files;
pub mod reload;
pub mod resolver;
pub mod wildcard;

use std::sync::Arc;

use rustls::ServerConfig;

use crate::certs::seal::Sealer;
use crate::state::App;

pub use self::certified::{CertError, Served};
pub use self::platform_files::{PlatformError, PlatformFiles};
pub use self::resolver::Certificates;

/// What the TLS listener serves, made once at start.
#[derive(Clone)]
pub struct Https {
    pub certificates: Arc<Certificates>,
    /// The operator's files, when configured (already loaded: a bad one stops the start).
    pub platform_files: Option<PlatformFiles>,
    pub server_config: Arc<ServerConfig>,
    /// The platform certificate is ordered by DNS-01 and kept in the store.
    pub dns01: bool,
    /// The sites' HSTS headers, reloaded with the certificates.
    pub hsts: Arc<hsts::HstsTable>,
}

/// Why HTTPS cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error("the TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("{0}")]
    Dns(String),
}

impl Https {
    /// Loads the platform files (if any) and builds the TLS configuration. With DNS-01 in
    /// embedded mode, the cached copy of the platform certificate is served at once if it
    /// still loads (the reloader then serves the stored one).
    pub fn open(config: &crate::config::Config) -> Result<Https, TlsSetupError> {
        let certificates = Arc::new(Certificates::default());
        let dns01 = wildcard::updater(config)
            .map_err(TlsSetupError::Dns)?
            .is_some();
        if dns01 && !config.is_cluster() {
            match wildcard::files(&config.storage.data_dir).load() {
                Ok(served) => certificates.set_platform(Some(served)),
                Err(e) => {
                    tracing::info!(reason = %e, "no platform certificate yet: ordering one by DNS-01")
                }
            }
        }
        let config = &config.tls;
        let platform_files = match (&config.tls_cert_file, &config.tls_key_file) {
            (Some(cert), Some(key)) => {
                let files = PlatformFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                };
                certificates.set_platform(Some(files.load()?));
                Some(files)
            }
            _ => None,
        };
        Ok(Https {
            server_config: server_config(certificates.clone())?,
            certificates,
            platform_files,
            dns01,
            hsts: Arc::default(),
        })
    }
}

impl Https {
    /// Starts what keeps the served certificates current: the reloader (the platform
    /// certificate's issuer, with DNS-01, is started with the custom domains' one).
    pub fn keep_current(&self, app: &Arc<App>, sealer: Option<&Arc<Sealer>>) {
        tokio::spawn(reload::run(
            app.clone(),
            sealer.cloned(),
            self.certificates.clone(),
            self.platform_files.clone(),
            self.dns01,
            self.hsts.clone(),
        ));
    }
}

/// rustls with the ring provider and its default protocol versions and suites (TLS 1.3
/// and 1.2 with forward-secret AEAD suites only), certificates by SNI, h2 preferred.
fn server_config(certificates: Arc<Certificates>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver::Resolver(certificates)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
