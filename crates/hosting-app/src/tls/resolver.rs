//! Which certificate a TLS handshake gets, by SNI: a custom domain's own (exact name
//! only), else the platform certificate, else none (the handshake fails).
//!
//! SECURITY: a name is answered with its own certificate or the platform's, never with
//! another tenant's: a client that asks for an unknown name must not learn which custom
//! domains share this server, nor be handed a certificate that names them.
//!
//! The maps are swapped whole ([`ArcSwap`]): a handshake reads them without a lock, and
//! one that already picked a certificate finishes with it while a renewal replaces it.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certified::Served;

/// The certificates the TLS listener serves; filled by the reloader.
#[derive(Default)]
pub struct Certificates {
    /// Custom domains' certificates by exact (lower-case) name.
    domains: ArcSwap<HashMap<String, Arc<Served>>>,
    /// The operator's (or DNS-01) certificate for the platform's names.
    platform: ArcSwapOption<Served>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("domains", &self.domains.load().len())
            .field("platform", &self.platform.load().is_some())
            .finish()
    }
}

impl Certificates {
    /// The certificate the handshake for `sni` gets (no SNI: the platform's).
    pub fn for_name(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = sni.map(normalize) {
            if let Some(served) = self.domains.load().get(&name) {
                return Some(served.key.clone());
            }
        }
        self.platform
            .load()
            .as_ref()
            .map(|served| served.key.clone())
    }

    /// Whether a handshake for `host` gets a certificate that names it, i.e. whether the
    /// plain listener may send `host` to HTTPS without the browser refusing it.
    pub fn covers(&self, host: &str) -> bool {
        self.domains.load().contains_key(host)
            || self
                .platform
                .load()
                .as_ref()
                .is_some_and(|served| served.covers(host))
    }

    /// The custom domains' certificates now served (the reloader compares serials).
    pub fn domains(&self) -> Arc<HashMap<String, Arc<Served>>> {
        self.domains.load_full()
    }

    pub fn set_domains(&self, domains: HashMap<String, Arc<Served>>) {
        self.domains.store(Arc::new(domains));
    }

    pub fn platform(&self) -> Option<Arc<Served>> {
        self.platform.load_full()
    }

    pub fn set_platform(&self, served: Option<Served>) {
        self.platform.store(served.map(Arc::new));
    }
}

/// SNI is ASCII (RFC 6066: A-labels); rustls already refuses a trailing dot, but a
/// lower-case copy is what the map is keyed by.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// rustls asks this on each handshake.
#[derive(Debug, Clone)]
pub struct Resolver(pub Arc<Certificates>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.for_name(client_hello.server_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(names: &[&str]) -> Served {
        let key = rcgen::KeyPair::generate().expect("key");
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        let cert = params.self_signed(&key).expect("cert");
        super::super::certified::load(
            cert.pem().as_bytes(),
            key.serialize_pem().as_bytes(),
            chrono::Utc::now(),
        )
        .expect("loads")
    }

    fn is(key: Option<Arc<CertifiedKey>>, served: &Served) -> bool {
        key.is_some_and(|key| Arc::ptr_eq(&key, &served.key))
    }

    #[test]
    fn a_domain_gets_its_own_certificate_and_an_unknown_name_the_platform_one() {
        let certificates = Certificates::default();
        let shop = served(&["shop.example"]);
        certificates.set_domains(HashMap::from([(
            "shop.example".to_owned(),
            Arc::new(shop.clone()),
        )]));
        assert!(
            certificates.for_name(Some("other.example")).is_none(),
            "no platform certificate: no handshake"
        );
        assert!(is(certificates.for_name(Some("SHOP.example")), &shop));

        let platform = served(&["*.hosting.test", "hosting.test"]);
        certificates.set_platform(Some(platform.clone()));
        assert!(is(certificates.for_name(Some("other.example")), &platform));
        assert!(is(certificates.for_name(None), &platform));
        assert!(is(certificates.for_name(Some("shop.example")), &shop));
    }

    #[test]
    fn only_names_a_served_certificate_covers_are_sent_to_https() {
        let certificates = Certificates::default();
        certificates.set_domains(HashMap::from([(
            "shop.example".to_owned(),
            Arc::new(served(&["shop.example"])),
        )]));
        certificates.set_platform(Some(served(&["*.hosting.test", "hosting.test"])));
        assert!(certificates.covers("shop.example"));
        assert!(certificates.covers("blog.hosting.test"));
        assert!(certificates.covers("hosting.test"));
        assert!(!certificates.covers("other.example"));
        assert!(!certificates.covers("a.b.hosting.test"));
    }
}
