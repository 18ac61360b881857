//! The app's own HTTPS listener (`HOSTING_TLS_LISTEN`): certificates the issuer got from a
//! real ACME server (Pebble, HTTP-01 answered on the app's plain listener) served per SNI
//! over HTTP/2 and HTTP/1.1, the plain listener's redirect, the platform certificate for
//! other names (or no handshake), bad platform files refused at start, a renewal
//! swapped in while clients keep connecting, and the platform wildcard ordered by DNS-01
//! through a real DNS server (Knot) taking TSIG-signed updates.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hosting_api::CertificateStatus;
use hosting_app::config::Config;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

use crate::helpers::{TestApp, ADMIN_TOKEN};
use crate::knot::ZONE;
use crate::pebble::{issue_from, verified_site, wait_for, Pebble, DOMAIN};

/// The HTTPS listener on a free loopback port, certificates reloaded every second.
pub(crate) fn serve_tls(config: &mut Config) {
    config.tls.tls_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.tls.tls_reload_interval = Duration::from_secs(1);
}

pub(crate) fn tls_addr(app: &TestApp) -> SocketAddr {
    app.state
        .config
        .tls
        .tls_listen
        .expect("the TLS listener is bound")
}

/// A client that sends `host` to the app's TLS listener and trusts `root_pem` only.
pub(crate) fn client_trusting(
    root_pem: &str,
    host: &str,
    addr: SocketAddr,
) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root_pem.as_bytes()).expect("root"))
        .resolve(host, addr)
        .redirect(reqwest::redirect::Policy::none())
        .tls_info(true)
}

/// A client that takes any certificate, to look at which one the server chose.
fn client_inspecting(host: &str, addr: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .resolve(host, addr)
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// The DER of the leaf the server presented.
pub(crate) fn peer_certificate(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("a TLS response carries the peer certificate")
        .to_vec()
}

pub(crate) fn der_of(pem: &str) -> Vec<u8> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .next()
        .expect("a certificate")
        .expect("PEM")
        .contents
}

/// A test CA and a certificate it signed for `names`, valid from `from` to `to` days
/// from now: (CA PEM, chain PEM, key PEM).
pub(crate) fn ca_signed(names: &[&str], from: i64, to: i64) -> (String, String, String) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).expect("ca").pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    let day = |offset: i64| {
        use chrono::Datelike;
        let date = chrono::Utc::now() + chrono::Duration::days(offset);
        rcgen::date_time_ymd(date.year(), date.month() as u8, date.day() as u8)
    };
    params.not_before = day(from);
    params.not_after = day(to);
    let cert = params.signed_by(&key, &issuer).expect("cert");
    (ca_pem, cert.pem(), key.serialize_pem())
}

/// Writes the platform files into `dir`; returns (cert path, key path).
fn write_platform(dir: &Path, chain: &str, key: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert_path, key_path) = (dir.join("platform.pem"), dir.join("platform.key"));
    std::fs::write(&cert_path, chain).expect("write");
    std::fs::write(&key_path, key).expect("write");
    (cert_path, key_path)
}

/// Polls `request` until it succeeds (the reloader picks a new certificate up within a
/// second of its issue), for up to 20 s.
async fn eventually(
    what: &str,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> reqwest::Response {
    let started = Instant::now();
    loop {
        match request().send().await {
            Ok(response) => return response,
            Err(e) if started.elapsed() > Duration::from_secs(20) => {
                panic!("{what}: still failing after 20 s: {e:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// An app with HTTPS and `platform` files, issuing from Pebble; `shop` verified, its
/// certificate issued and served.
async fn issued_over_https(platform: Option<(&Path, &Path)>) -> (TestApp, Pebble) {
    let mut pebble = Pebble::prepare();
    let app = TestApp::spawn_with(|config| {
        issue_from(config, &pebble);
        serve_tls(config);
        if let Some((cert, key)) = platform {
            config.tls.tls_cert_file = Some(cert.to_owned());
            config.tls.tls_key_file = Some(key.to_owned());
        }
    })
    .await;
    pebble.start(app.addr.port()).await;
    verified_site(&app, &pebble).await;
    wait_for(&app, &pebble, "the first certificate", |c| {
        c.status == CertificateStatus::Issued
    })
    .await;
    (app, pebble)
}

#[tokio::test]
async fn an_issued_certificate_is_served_over_http2_and_http1_and_plain_http_redirects() {
    // Arrange
    let (app, pebble) = issued_over_https(None).await;
    let root = pebble.root_pem().await;
    let addr = tls_addr(&app);
    let url = format!("https://{DOMAIN}:{}/", addr.port());
    let h2 = client_trusting(&root, DOMAIN, addr)
        .build()
        .expect("client");
    let h1 = client_trusting(&root, DOMAIN, addr)
        .http1_only()
        .build()
        .expect("client");

    // Act: the chain must verify to Pebble's root for the requests to succeed at all.
    let over_h2 = eventually("HTTPS for the issued domain", || h2.get(&url)).await;
    let over_h1 = h1.get(&url).send().await.expect("HTTP/1.1 over TLS");
    let plain = app
        .client
        .get(format!("http://127.0.0.1:{}/about?x=1", app.addr.port()))
        .header("host", DOMAIN)
        .send()
        .await
        .expect("plain");
    let challenge = app
        .client
        .get(format!(
            "http://127.0.0.1:{}/.well-known/acme-challenge/unknown-token",
            app.addr.port()
        ))
        .header("host", DOMAIN)
        .send()
        .await
        .expect("plain challenge");
    let other_plain = app
        .client
        .get(format!("http://127.0.0.1:{}/", app.addr.port()))
        .header("host", "shop.localhost")
        .send()
        .await
        .expect("plain site");

    // Assert: the site over both protocols (HTTP/2 sends :authority, no Host header).
    assert_eq!(over_h2.version(), reqwest::Version::HTTP_2);
    assert_eq!(over_h1.version(), reqwest::Version::HTTP_11);
    let served = app.state.store.served_certificates().await.expect("served");
    let chain = served[0].chain_pem.clone().expect("chain");
    assert_eq!(peer_certificate(&over_h2), der_of(&chain));
    assert_eq!(over_h2.status(), 200);
    assert_eq!(over_h2.text().await.expect("body"), "<h1>shop</h1>");
    assert_eq!(over_h1.text().await.expect("body"), "<h1>shop</h1>");
    // Plain HTTP goes to HTTPS with path and query, except the CA's challenge path.
    assert_eq!(plain.status(), 301);
    assert_eq!(
        plain.headers()["location"],
        format!("https://{DOMAIN}:{}/about?x=1", addr.port()).as_str()
    );
    assert_eq!(
        challenge.status(),
        404,
        "challenges are answered over plain HTTP"
    );
    // A name no served certificate covers stays on plain HTTP.
    assert_eq!(other_plain.status(), 200);
}

#[tokio::test]
async fn an_unknown_name_gets_the_platform_certificate_never_a_tenants() {
    // Arrange: a platform certificate for the base domain's names.
    let files = tempfile::tempdir().expect("temp dir");
    // Not the control host itself: the test talks to the API over plain HTTP, which a
    // certificate for it would redirect.
    let (_, chain, key) = ca_signed(&["*.localhost"], -1, 30);
    let (cert_path, key_path) = write_platform(files.path(), &chain, &key);
    let (app, _pebble) = issued_over_https(Some((&cert_path, &key_path))).await;
    let addr = tls_addr(&app);
    let shop_chain = app.state.store.served_certificates().await.expect("served")[0]
        .chain_pem
        .clone()
        .expect("chain");

    // Act: the listener picks the issued certificate up on its next reload (at once on
    // the replica that issued it, within the reload interval on the others); until then
    // the domain, like any name without its own, gets the platform certificate.
    let started = Instant::now();
    let shop = loop {
        let shop = eventually("HTTPS for the issued domain", || {
            client_inspecting(DOMAIN, addr).get(format!("https://{DOMAIN}:{}/", addr.port()))
        })
        .await;
        if peer_certificate(&shop) == der_of(&shop_chain)
            || started.elapsed() > Duration::from_secs(20)
        {
            break shop;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let unknown = client_inspecting("unknown.example", addr)
        .get(format!("https://unknown.example:{}/", addr.port()))
        .send()
        .await
        .expect("a handshake with the platform certificate");
    let site = client_inspecting("shop.localhost", addr)
        .get(format!("https://shop.localhost:{}/", addr.port()))
        .send()
        .await
        .expect("the site over the platform certificate");

    // Assert
    assert_eq!(peer_certificate(&shop), der_of(&shop_chain));
    assert_eq!(peer_certificate(&unknown), der_of(&chain));
    assert_ne!(peer_certificate(&unknown), der_of(&shop_chain));
    assert_eq!(peer_certificate(&site), der_of(&chain));
    assert_eq!(site.status(), 200);
    assert_eq!(
        unknown.status(),
        404,
        "the platform's page for an unknown host"
    );
}

#[tokio::test]
async fn without_a_platform_certificate_an_unknown_name_fails_the_handshake() {
    // Arrange
    let app = TestApp::spawn_with(serve_tls).await;
    let addr = tls_addr(&app);

    // Act
    let outcome = client_inspecting("unknown.example", addr)
        .get(format!("https://unknown.example:{}/", addr.port()))
        .send()
        .await;

    // Assert
    let error = outcome.expect_err("no certificate: no handshake");
    assert!(error.is_connect(), "{error:?}");
}

#[tokio::test]
async fn the_platform_files_are_reloaded_when_they_change_and_the_control_host_gets_hsts() {
    // Arrange
    let files = tempfile::tempdir().expect("temp dir");
    let (ca, chain, key) = ca_signed(&["*.localhost", "localhost"], -1, 30);
    let (cert_path, key_path) = write_platform(files.path(), &chain, &key);
    let app = TestApp::spawn_with(|config| {
        serve_tls(config);
        config.tls.tls_cert_file = Some(cert_path.clone());
        config.tls.tls_key_file = Some(key_path.clone());
        config.tls.tls_hsts = Duration::from_secs(31_536_000);
    })
    .await;
    let addr = tls_addr(&app);
    let api = client_trusting(&ca, "localhost", addr)
        .build()
        .expect("client");
    let first = api
        .get(format!("https://localhost:{}/api/v1/sites", addr.port()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("the control host over the platform certificate");
    assert_eq!(first.status(), 200);
    assert_eq!(peer_certificate(&first), der_of(&chain));
    assert_eq!(
        first.headers()["strict-transport-security"],
        "max-age=31536000",
        "HSTS on the control host over HTTPS"
    );

    // Act: a renewed file (a later modification time than the first).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, renewed, renewed_key) = ca_signed(&["*.localhost", "localhost"], -1, 60);
    write_platform(files.path(), &renewed, &renewed_key);

    // Assert
    let started = Instant::now();
    loop {
        let response = client_inspecting("localhost", addr)
            .get(format!("https://localhost:{}/", addr.port()))
            .send()
            .await
            .expect("handshake");
        if peer_certificate(&response) == der_of(&renewed) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the renewed file is never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn expired_mismatched_or_unreadable_platform_files_stop_the_start() {
    let files = tempfile::tempdir().expect("temp dir");
    let (_, expired, expired_key) = ca_signed(&["localhost"], -30, -1);
    let (_, good, _) = ca_signed(&["localhost"], -1, 30);
    let (_, _, other_key) = ca_signed(&["localhost"], -1, 30);
    let cases = [
        ("expired", expired.as_str(), expired_key.as_str(), "expired"),
        (
            "mismatched",
            good.as_str(),
            other_key.as_str(),
            "does not belong",
        ),
        ("not PEM", "hello", other_key.as_str(), "no PEM certificate"),
    ];
    for (what, chain, key, expected) in cases {
        // Arrange
        let (cert_path, key_path) = write_platform(files.path(), chain, key);
        let data = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_tests(data.path());
        serve_tls(&mut config);
        config.tls.tls_cert_file = Some(cert_path.clone());
        config.tls.tls_key_file = Some(key_path);

        // Act
        let outcome = hosting_app::Application::build(config).await;

        // Assert: refused, naming the file and the reason.
        let Err(error) = outcome else {
            panic!("{what}: the start must be refused");
        };
        let message = format!("{error:#}");
        assert!(message.contains(expected), "{what}: {message}");
        assert!(
            message.contains(&cert_path.display().to_string()),
            "{what}: {message}"
        );
    }
}

#[tokio::test]
async fn a_renewal_is_swapped_in_while_clients_connect_without_a_failed_handshake() {
    // Arrange: a loop of fresh connections (a handshake each) to the issued domain.
    let (app, pebble) = issued_over_https(None).await;
    let root = pebble.root_pem().await;
    let addr = tls_addr(&app);
    let url = format!("https://{DOMAIN}:{}/", addr.port());
    // A new client per request: a full handshake each time (a kept connection, or a
    // resumed TLS session, would not ask the server for its certificate again).
    let fresh_client = {
        let root = root.clone();
        move || {
            client_trusting(&root, DOMAIN, addr)
                .build()
                .expect("client")
        }
    };
    let first = eventually("HTTPS for the issued domain", || fresh_client().get(&url)).await;
    let first_leaf = peer_certificate(&first);
    let (ok, failed, stop) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let renewed = Arc::new(std::sync::Mutex::new(None::<Vec<u8>>));
    let load = tokio::spawn({
        let (ok, failed, stop, renewed) =
            (ok.clone(), failed.clone(), stop.clone(), renewed.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                match fresh_client().get(&url).send().await {
                    Ok(response) if response.status() == 200 => {
                        let leaf = peer_certificate(&response);
                        if leaf != first_leaf {
                            *renewed.lock().expect("lock") = Some(leaf);
                        }
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) | Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    });

    // Act: the owner renews early; the issuer orders, the reloader swaps.
    let response = app
        .post(
            ADMIN_TOKEN,
            &format!("/sites/shop/domains/{DOMAIN}/certificate"),
        )
        .send()
        .await
        .expect("request");
    assert!(response.status().is_success(), "{}", response.status());
    let started = Instant::now();
    while renewed.lock().expect("lock").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the renewed certificate is never served ({} ok, {} failed); now {:?}; log:\n{}",
            ok.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
            crate::pebble::domain(&app).await.certificate,
            pebble.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Some more handshakes on the new certificate.
    let at_swap = ok.load(Ordering::Relaxed);
    while ok.load(Ordering::Relaxed) < at_swap + 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    load.await.expect("load loop");

    // Assert
    eprintln!(
        "{} requests, each on a new TLS session, {} failed, across the swap",
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    let served = app.state.store.served_certificates().await.expect("served");
    let chain = served[0].chain_pem.clone().expect("chain");
    assert_eq!(renewed.lock().expect("lock").clone(), Some(der_of(&chain)));
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed requests during the swap"
    );
    assert!(
        ok.load(Ordering::Relaxed) > 20,
        "{} handshakes",
        ok.load(Ordering::Relaxed)
    );
}

#[tokio::test]
async fn the_platform_wildcard_is_ordered_by_dns01_through_a_real_dns_server_and_served() {
    // Arrange: Knot takes the TSIG-signed updates, Pebble resolves through it.
    let (knot, pebble) = crate::dns01::dns01_ca().await;

    // Act
    let app = TestApp::spawn_with(|config| {
        crate::dns01::order_by_dns01(config, &pebble, &knot);
        serve_tls(config);
    })
    .await;

    // Assert: a site name and the control host, verified to Pebble's root.
    let root = pebble.root_pem().await;
    let addr = tls_addr(&app);
    let site = format!("blog.{ZONE}");
    let client = client_trusting(&root, &site, addr)
        .resolve(ZONE, addr)
        .build()
        .expect("client");
    let over_wildcard = eventually("the wildcard over HTTPS", || {
        client.get(format!("https://{site}:{}/", addr.port()))
    })
    .await;
    let control = client
        .get(format!("https://{ZONE}:{}/api/v1/sites", addr.port()))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("the control host over the same certificate");
    assert_eq!(control.status(), 200);
    let leaf = peer_certificate(&over_wildcard);
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).expect("leaf");
    assert!(
        parsed.issuer().to_string().contains("Pebble"),
        "{}",
        parsed.issuer()
    );
    let names: Vec<String> = parsed
        .subject_alternative_name()
        .expect("SAN")
        .expect("SAN present")
        .value
        .general_names
        .iter()
        .map(|name| name.to_string())
        .collect();
    assert!(
        names.iter().any(|n| n.contains(&format!("*.{ZONE}"))),
        "{names:?}"
    );
    // Embedded mode also caches it in the data folder, the key readable by the server's
    // user only (cluster replicas share no data folder: the store alone keeps it).
    let kept = app.data.path().join("tls/platform.key");
    if crate::helpers::cluster_backend() {
        assert!(!kept.exists());
    } else {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&kept).expect("key file").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
    // The answers are removed from the zone once the order is done.
    assert_eq!(
        knot.txt("_acme-challenge").await,
        Some(Vec::new()),
        "knot log:\n{}",
        knot.log()
    );
    // A site name now has a certificate: plain HTTP sends it to HTTPS.
    let plain = app
        .client
        .get(format!("http://127.0.0.1:{}/", app.addr.port()))
        .header("host", &site)
        .send()
        .await
        .expect("plain");
    assert_eq!(plain.status(), 301);
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_handshake_is_closed_after_the_header_read_timeout() {
    // Arrange
    let app = TestApp::spawn_with(|config| {
        serve_tls(config);
        config.listeners.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let mut silent = tokio::net::TcpStream::connect(tls_addr(&app))
        .await
        .expect("connect");

    // Act: no ClientHello, ever.
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read(&mut silent, &mut byte),
    )
    .await
    .expect("the server closes the connection");

    // Assert: closed (EOF or reset) once the header clock ran out, not before.
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

/// The `Strict-Transport-Security` of `host` over the app's HTTPS listener, once the
/// listener's table has it as `expected` (it follows a change at once on this replica,
/// through the reloader).
async fn hsts_over_https(client: &reqwest::Client, url: &str, expected: Option<&str>) {
    let started = Instant::now();
    loop {
        let response = client.get(url).send().await.expect("over HTTPS");
        assert_eq!(response.status(), 200);
        let sent = response
            .headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().expect("ascii").to_owned());
        if sent.as_deref() == expected {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{url}: HSTS {sent:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_sites_hsts_setting_is_sent_over_https_only_to_that_site_until_turned_off() {
    // Arrange: a platform certificate for the sites (not the control host, so the API
    // stays on plain HTTP here), two sites.
    let files = tempfile::tempdir().expect("temp dir");
    let (ca, chain, key) = ca_signed(&["*.hosting.test"], -1, 30);
    let (cert_path, key_path) = write_platform(files.path(), &chain, &key);
    let app = TestApp::spawn_with(|config| {
        serve_tls(config);
        config.tls.tls_cert_file = Some(cert_path.clone());
        config.tls.tls_key_file = Some(key_path.clone());
        config.public.base_domain = "hosting.test".into();
        config.public.control_host = Some("localhost".into());
    })
    .await;
    for site in ["blog", "docs"] {
        app.create_site(ADMIN_TOKEN, site).await;
        app.deploy_archive(ADMIN_TOKEN, site, &[("index.html", b"<h1>hi</h1>")])
            .await;
    }
    let addr = tls_addr(&app);
    let https = client_trusting(&ca, "blog.hosting.test", addr)
        .resolve("docs.hosting.test", addr)
        .build()
        .expect("client");
    let blog = format!("https://blog.hosting.test:{}/", addr.port());
    let docs = format!("https://docs.hosting.test:{}/", addr.port());
    let hsts = "/sites/blog/hsts";
    let off: hosting_api::Hsts = app
        .get(ADMIN_TOKEN, hsts)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(off, hosting_api::Hsts::default());
    hsts_over_https(&https, &blog, None).await;

    // Act
    let wanted = hosting_api::Hsts {
        max_age: 300,
        include_subdomains: true,
    };
    let set = app
        .client
        .put(app.api(hsts))
        .bearer_auth(ADMIN_TOKEN)
        .json(&wanted)
        .send()
        .await
        .expect("put");

    // Assert: over HTTPS on that site only; never over plain HTTP.
    assert_eq!(set.status(), 200);
    assert_eq!(set.json::<hosting_api::Hsts>().await.expect("json"), wanted);
    hsts_over_https(&https, &blog, Some("max-age=300; includeSubDomains")).await;
    hsts_over_https(&https, &docs, None).await;
    let plain = app.site("blog.hosting.test", "/", &[]).await;
    assert!(
        plain.headers().get("strict-transport-security").is_none(),
        "{:?}",
        plain.headers()
    );
    let read: hosting_api::Hsts = app
        .get(ADMIN_TOKEN, hsts)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(read, wanted);
    // Another owner neither sees nor changes it; too long a max-age is refused.
    let eve = app.member("eve").await;
    crate::helpers::assert_problem(app.get(&eve, hsts).send().await.expect("get"), 404).await;
    let refused = app
        .client
        .put(app.api(hsts))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "max_age": 63_072_001 }))
        .send()
        .await
        .expect("put");
    crate::helpers::assert_problem(refused, 422).await;
    // Turned off: the header stops.
    let cleared = app
        .client
        .put(app.api(hsts))
        .bearer_auth(ADMIN_TOKEN)
        .json(&hosting_api::Hsts::default())
        .send()
        .await
        .expect("put");
    assert_eq!(cleared.status(), 200);
    hsts_over_https(&https, &blog, None).await;
}

/// `hosting_tls_handshake_failures_total{reason}` as `/metrics` shows it (0 when absent),
/// and whether its HELP text is there.
async fn handshake_failures(app: &TestApp, reason: &str) -> (f64, bool) {
    let text = app
        .client
        .get(app.mgmt_url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let series = format!("hosting_tls_handshake_failures_total{{reason=\"{reason}\"}} ");
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0.0, |v| v.trim().parse().expect("a number"));
    (
        value,
        text.contains("# HELP hosting_tls_handshake_failures_total "),
    )
}

#[tokio::test]
async fn failed_handshakes_are_counted_by_reason_on_the_metrics_page() {
    // Arrange: HTTPS without a platform certificate.
    use tokio::io::AsyncWriteExt;
    let app = TestApp::spawn_with(serve_tls).await;
    let addr = tls_addr(&app);
    let mut before = Vec::new();
    for reason in ["no_certificate", "protocol", "other"] {
        before.push(handshake_failures(&app, reason).await.0);
    }

    // Act: an unknown name, plain HTTP on the TLS port, a connection closed at once.
    let unknown = client_inspecting("unknown.example", addr)
        .get(format!("https://unknown.example:{}/", addr.port()))
        .send()
        .await;
    assert!(unknown.is_err(), "no certificate: no handshake");
    let mut plain = tokio::net::TcpStream::connect(addr).await.expect("connect");
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut plain, &mut answer).await;
    drop(tokio::net::TcpStream::connect(addr).await.expect("connect"));

    // Assert: each reason counted (other tests of this process may add to them too).
    for (reason, before) in ["no_certificate", "protocol", "other"].iter().zip(before) {
        let started = Instant::now();
        loop {
            let (now, described) = handshake_failures(&app, reason).await;
            if now > before {
                assert!(described, "the HELP text is exported");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{reason}: still {now} (was {before})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Unknown-SNI behaviour is unchanged: still no handshake, never a tenant's certificate.
    let again = client_inspecting("unknown.example", addr)
        .get(format!("https://unknown.example:{}/", addr.port()))
        .send()
        .await;
    assert!(again.is_err());
}

#[tokio::test]
async fn the_site_page_shows_and_changes_the_hsts_setting() {
    use crate::dashboard::{Browser, PASSWORD};
    let app = TestApp::spawn_with(|config| {
        config.admin.admin_password = Some(hosting_app::config::Secret::from(PASSWORD));
    })
    .await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let mut browser = Browser::new(&app);
    browser.sign_in("admin", PASSWORD).await;
    let csrf = browser.csrf("/sites/blog").await;

    let before = browser.get("/sites/blog").await.text().await.expect("page");
    let saved = browser
        .post(
            "/sites/blog/hsts",
            &[
                ("csrf", &csrf),
                ("max_age", "600"),
                ("include_subdomains", "on"),
            ],
        )
        .await;
    let after = browser.get("/sites/blog").await.text().await.expect("page");
    let stored: hosting_api::Hsts = app
        .get(ADMIN_TOKEN, "/sites/blog/hsts")
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");

    assert!(
        before.contains("No Strict-Transport-Security header"),
        "{before}"
    );
    assert_eq!(saved.status(), 303);
    assert!(
        after.contains("Browsers keep to HTTPS for 600 seconds, subdomains included"),
        "{after}"
    );
    assert_eq!(
        stored,
        hosting_api::Hsts {
            max_age: 600,
            include_subdomains: true
        }
    );
}
