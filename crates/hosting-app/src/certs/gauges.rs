//! Certificate figures for `/metrics`: written by the issuer, read by the metrics
//! endpoint, held by the application state. A leaf, so the state needs nothing else of
//! `certs`.

use std::sync::RwLock;

/// Certificate figures for `/metrics`, refreshed by the issuer each round.
#[derive(Default)]
pub struct CertificateGauges {
    text: RwLock<String>,
}

impl CertificateGauges {
    /// The Prometheus text of the gauges (empty until the first refresh).
    pub fn render(&self) -> String {
        self.text.read().map(|t| t.clone()).unwrap_or_default()
    }

    pub(crate) fn set(&self, text: String) {
        if let Ok(mut current) = self.text.write() {
            *current = text;
        }
    }
}
