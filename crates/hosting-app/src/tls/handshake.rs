//! Why a TLS handshake failed, counted by reason (`hosting_tls_handshake_failures_total`),
//! so an operator sees names nobody has a certificate for, or clients that cannot speak
//! to us, without logging every probe.

use std::io;

/// What rustls answers when the resolver has no certificate for the name (and there is
/// no platform certificate); pinned by a test, since rustls gives it no variant of its own.
const NO_CERTIFICATE: &str = "no server certificate chain resolved";

/// The `reason` label of a failed `TlsAcceptor::accept`.
pub fn reason(error: &io::Error) -> &'static str {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::General(message)) if message == NO_CERTIFICATE => "no_certificate",
        Some(_) => "protocol",
        None => "other",
    }
}

/// Counts one failed handshake.
pub fn failed(error: &io::Error) {
    metrics::counter!(crate::metrics::TLS_HANDSHAKE_FAILURES_TOTAL, "reason" => reason(error))
        .increment(1);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::server::{ClientHello, ResolvesServerCert};
    use rustls::sign::CertifiedKey;
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[derive(Debug)]
    struct Nothing;

    impl ResolvesServerCert for Nothing {
        fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            None
        }
    }

    /// The acceptor's error for `client` bytes, the way the listener sees it.
    async fn accept_error(
        client: impl FnOnce(tokio::io::DuplexStream) -> tokio::task::JoinHandle<()>,
    ) -> io::Error {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Nothing));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let (server, peer) = tokio::io::duplex(1 << 16);
        let client = client(peer);
        let error = acceptor.accept(server).await.expect_err("no handshake");
        let _ = client.await;
        error
    }

    #[tokio::test]
    async fn a_name_without_a_certificate_garbage_and_a_closed_connection_are_told_apart() {
        let no_certificate = accept_error(|peer| {
            tokio::spawn(async move {
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let mut roots = rustls::RootCertStore::empty();
                let key = rcgen::KeyPair::generate().expect("key");
                let ca = rcgen::CertificateParams::new(vec!["ca.test".to_owned()])
                    .expect("params")
                    .self_signed(&key)
                    .expect("ca");
                roots.add(ca.der().clone()).expect("root");
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .expect("versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
                let name = rustls::pki_types::ServerName::try_from("unknown.test").expect("name");
                let _ = connector.connect(name, peer).await;
            })
        })
        .await;
        let garbage = accept_error(|mut peer| {
            tokio::spawn(async move {
                let _ = peer
                    .write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
                    .await;
                let _ = peer.shutdown().await;
            })
        })
        .await;
        let closed = accept_error(|peer| tokio::spawn(async move { drop(peer) })).await;

        assert_eq!(
            reason(&no_certificate),
            "no_certificate",
            "{no_certificate:?}"
        );
        assert_eq!(reason(&garbage), "protocol", "{garbage:?}");
        assert_eq!(reason(&closed), "other", "{closed:?}");
    }
}
