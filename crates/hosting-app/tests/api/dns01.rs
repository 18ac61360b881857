//! DNS-01 answers published by RFC 2136 updates signed with TSIG, against a real Knot;
//! the platform certificate's lease in the store; and the platform wildcard ordered by
//! DNS-01 from Pebble, served by every replica and installed into a real HAProxy.

use std::time::{Duration, Instant};

use chrono::Utc;
use hosting_app::certs::dns01::{Dns01Error, DnsUpdater};
use hosting_app::config::Config;
use hosting_app::store::{CertificateFailure, IssuedCertificate};

use crate::haproxy::Haproxy;
use crate::helpers::{cluster_backend, TestApp};
use crate::knot::{Knot, ALGORITHM, KEY_NAME, ZONE};
use crate::pebble::{issue_from, Pebble};
use crate::tls::{client_trusting, peer_certificate, serve_tls, tls_addr};

/// Knot serving the base domain's zone (taking TSIG-signed updates) and Pebble resolving
/// through Knot alone (no mock DNS), so it validates what Knot answers.
pub async fn dns01_ca() -> (Knot, Pebble) {
    let knot = Knot::start().await;
    let mut pebble = Pebble::prepare();
    pebble.dns_port = knot.addr.port();
    pebble.start_pebble().await;
    (knot, pebble)
}

/// The platform certificate of the base domain `ZONE`, ordered by DNS-01 through `knot`.
pub fn order_by_dns01(config: &mut Config, pebble: &Pebble, knot: &Knot) {
    issue_from(config, pebble);
    config.public.base_domain = ZONE.into();
    config.tls.dns_update_server = Some(knot.addr);
    let key = format!(
        "{ALGORITHM}:{KEY_NAME}:{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &knot.secret)
    );
    config.tls.dns_update_key = Some(hosting_app::config::Secret::from(key));
}

#[tokio::test]
async fn signed_updates_publish_and_clear_challenge_records_and_a_wrong_key_is_refused() {
    // Arrange
    let knot = Knot::start().await;
    let updater = DnsUpdater::new(knot.addr, ZONE, KEY_NAME, ALGORITHM, knot.secret.clone())
        .expect("updater");
    let name = DnsUpdater::challenge_name(&format!("*.{ZONE}"));

    // Act: two values at one name (a wildcard and its base domain), then cleared.
    updater
        .add_txt(&name, "value-one")
        .await
        .expect("first update");
    updater
        .add_txt(&name, "value-two")
        .await
        .expect("second update");
    let published = knot.txt("_acme-challenge").await;
    updater.clear_txt(&name).await.expect("clearing");
    let cleared = knot.txt("_acme-challenge").await;
    let forged = DnsUpdater::new(knot.addr, ZONE, KEY_NAME, ALGORITHM, vec![7; 32])
        .expect("updater")
        .add_txt(&name, "forged")
        .await;

    // Assert
    assert_eq!(
        published,
        Some(vec!["value-one".to_owned(), "value-two".to_owned()]),
        "knot log:\n{}",
        knot.log()
    );
    assert_eq!(cleared, Some(Vec::new()));
    assert!(matches!(forged, Err(Dns01Error::Refused(..))), "{forged:?}");
    assert_eq!(knot.txt("_acme-challenge").await, Some(Vec::new()));
}

fn issued(serial: &str, next_attempt_at: chrono::DateTime<Utc>) -> IssuedCertificate {
    let now = Utc::now();
    IssuedCertificate {
        chain_pem: format!("chain {serial}"),
        key_sealed: vec![1, 2, 3],
        serial: serial.into(),
        issuer: "CA".into(),
        not_before: now,
        not_after: now + chrono::Duration::days(90),
        issued_at: now,
        next_attempt_at,
    }
}

#[tokio::test]
async fn the_platform_certificate_is_ordered_by_one_lease_holder_at_a_time_and_only_when_due() {
    // Arrange
    let app = TestApp::spawn().await;
    let store = &app.state.store;
    let names = "*.hosting.test hosting.test";
    let now = Utc::now();
    let minutes = |n: i64| chrono::Duration::minutes(n);

    // Act + Assert: the first replica takes the first order; nobody else while it runs.
    assert!(store
        .lease_platform_certificate(names, now, now + minutes(10))
        .await
        .expect("lease"));
    assert!(!store
        .lease_platform_certificate(names, now + minutes(1), now + minutes(11))
        .await
        .expect("lease"));
    // A lease that ran out (its replica died) is taken over.
    assert!(store
        .lease_platform_certificate(names, now + minutes(10), now + minutes(20))
        .await
        .expect("lease"));
    // Issued: nobody orders until the renewal time, then one replica does.
    store
        .record_platform_certificate_issued(names, &issued("0A", now + minutes(60)))
        .await
        .expect("issued");
    assert!(!store
        .lease_platform_certificate(names, now + minutes(30), now + minutes(40))
        .await
        .expect("lease"));
    assert!(store
        .lease_platform_certificate(names, now + minutes(61), now + minutes(71))
        .await
        .expect("lease"));
    // A failed renewal keeps the certificate and backs off.
    store
        .record_platform_certificate_failure(
            names,
            &CertificateFailure {
                error: "the CA said no".into(),
                failures: 1,
                next_attempt_at: now + minutes(70),
            },
        )
        .await
        .expect("failure");
    let stored = store
        .platform_certificate(names)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.serial.as_deref(), Some("0A"));
    assert_eq!(stored.chain_pem.as_deref(), Some("chain 0A"));
    assert_eq!(stored.failures, 1);
    assert_eq!(stored.last_error.as_deref(), Some("the CA said no"));
    assert!(!store
        .lease_platform_certificate(names, now + minutes(65), now + minutes(75))
        .await
        .expect("lease"));
    // Other names (a changed base domain) are another certificate.
    assert!(store
        .platform_certificate("*.other.test other.test")
        .await
        .expect("read")
        .is_none());
}

#[tokio::test]
async fn the_platform_wildcard_is_ordered_once_served_by_every_replica_and_installed_into_haproxy()
{
    // Arrange: Knot + Pebble, a real HAProxy whose certificates the first replica installs.
    let (knot, pebble) = dns01_ca().await;
    let haproxy = Haproxy::start().await;
    let first = TestApp::spawn_with(|config| {
        order_by_dns01(config, &pebble, &knot);
        serve_tls(config);
        config.installer.cert_dir = Some(haproxy.cert_dir());
        config.installer.haproxy_runtime_api = Some(haproxy.runtime_api());
        config.installer.cert_sync_interval = Duration::from_secs(1);
    })
    .await;
    // Cluster mode: a second replica on the same database orders nothing itself.
    let second = match cluster_backend() {
        true => Some(
            first
                .another_instance(|config| {
                    config.installer.cert_dir = None;
                    config.installer.haproxy_runtime_api = None;
                })
                .await,
        ),
        false => None,
    };
    let root = pebble.root_pem().await;

    // Act: HAProxy answers for any site name with the wildcard once it is installed.
    let site = format!("anything.{ZONE}");
    let through_haproxy = client_trusting(&root, &site, haproxy.addr)
        .resolve(ZONE, haproxy.addr)
        .build()
        .expect("client");
    let started = Instant::now();
    let response = loop {
        match through_haproxy
            .get(format!("https://{site}:{}/", haproxy.addr.port()))
            .send()
            .await
        {
            Ok(response) => break response,
            Err(e) => assert!(
                started.elapsed() < Duration::from_secs(90),
                "HAProxy never served the wildcard: {e:?}\nhaproxy log:\n{}\npebble log:\n{}",
                haproxy.log(),
                pebble.log()
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Assert: verified to Pebble's root for the site name and for the base domain.
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "haproxy");
    let base = through_haproxy
        .get(format!("https://{ZONE}:{}/", haproxy.addr.port()))
        .send()
        .await
        .expect("the base domain through HAProxy");
    let installed = peer_certificate(&base);
    // Every replica's own TLS listener serves the same certificate.
    for app in std::iter::once(&first).chain(second.as_ref()) {
        let addr = tls_addr(app);
        let client = client_trusting(&root, &site, addr).build().expect("client");
        let started = Instant::now();
        loop {
            let served = client
                .get(format!("https://{site}:{}/", addr.port()))
                .send()
                .await
                .map(|response| peer_certificate(&response));
            if served.as_ref().is_ok_and(|der| der == &installed) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "a replica does not serve the installed certificate: {served:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Ordered once, whatever the number of replicas.
    let issued = pebble.log().matches("Issued certificate serial").count();
    assert_eq!(issued, 1, "pebble log:\n{}", pebble.log());
    // Kept sealed in the shared store; in cluster mode no replica keeps files.
    let key = hosting_app::tls::wildcard::names_key(&first.state.config);
    let stored = first
        .state
        .store
        .platform_certificate(&key)
        .await
        .expect("read")
        .expect("stored");
    let sealed = stored.key_sealed.expect("a sealed key");
    assert!(!String::from_utf8_lossy(&sealed).contains("PRIVATE KEY"));
    if let Some(second) = &second {
        for app in [&first, second] {
            assert!(!app.data.path().join("tls/platform.key").exists());
        }
    }
}

#[tokio::test]
async fn an_embedded_servers_cached_wildcard_is_imported_into_the_store_instead_of_ordered_again() {
    if cluster_backend() {
        // Only embedded servers kept the certificate as files.
        return;
    }
    // Arrange: the files a server from before the store left in its data folder, valid
    // for 90 days (not due); the CA and the DNS server are unreachable, so nothing could
    // be ordered.
    let (ca, chain, key) = crate::tls::ca_signed(&[&format!("*.{ZONE}"), ZONE], -1, 90);
    let app = TestApp::spawn_with(|config| {
        let dir = config.storage.data_dir.join("tls");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("platform.pem"), &chain).expect("write");
        std::fs::write(dir.join("platform.key"), &key).expect("write");
        config.acme.acme_directory = Some("https://127.0.0.1:9/dir".into());
        config.public.base_domain = ZONE.into();
        config.tls.dns_update_server = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9)));
        config.tls.dns_update_key = Some(hosting_app::config::Secret::from(format!(
            "{ALGORITHM}:{KEY_NAME}:{}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32])
        )));
        serve_tls(config);
    })
    .await;
    let key_of_names = hosting_app::tls::wildcard::names_key(&app.state.config);

    // Act: the issuer's first round imports it.
    let started = Instant::now();
    let stored = loop {
        let stored = app
            .state
            .store
            .platform_certificate(&key_of_names)
            .await
            .expect("read");
        if let Some(stored) = stored.filter(|s| s.chain_pem.is_some()) {
            break stored;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never imported"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Assert: stored as it was, not due before its renewal time, and served.
    assert_eq!(stored.chain_pem.as_deref(), Some(chain.as_str()));
    assert_eq!(stored.failures, 0);
    assert!(stored.next_attempt_at > Utc::now() + chrono::Duration::days(30));
    let addr = tls_addr(&app);
    let site = format!("blog.{ZONE}");
    let served = client_trusting(&ca, &site, addr)
        .build()
        .expect("client")
        .get(format!("https://{site}:{}/", addr.port()))
        .send()
        .await
        .expect("the imported certificate over HTTPS");
    assert_eq!(peer_certificate(&served), crate::tls::der_of(&chain));
}

#[tokio::test]
async fn a_replica_stopped_mid_order_gives_the_platform_certificates_lease_back() {
    // Arrange: the CA takes requests and never answers, so the order hangs holding its lease.
    let (knot, pebble) = dns01_ca().await;
    pebble.freeze(true);
    let mut app = TestApp::spawn_with(|config| {
        order_by_dns01(config, &pebble, &knot);
        serve_tls(config);
    })
    .await;
    let names = hosting_app::tls::wildcard::names_key(&app.state.config);
    let started = Instant::now();
    while app
        .state
        .store
        .platform_certificate(&names)
        .await
        .expect("read")
        .is_none()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the issuer never took the platform certificate's lease"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Act: the replica stops (SIGTERM), mid-order.
    app.shut_down().await;

    // Assert: another replica may order at once (not when the 10-minute lease runs out).
    let now = Utc::now();
    let taken = app
        .state
        .store
        .lease_platform_certificate(&names, now, now + chrono::Duration::minutes(10))
        .await
        .expect("lease");
    pebble.freeze(false);
    assert!(
        taken,
        "the stopped replica kept the platform certificate's lease"
    );
}
