//! Automatic certificates for custom domains, against a real ACME server (Pebble): a
//! verified domain gets a certificate through HTTP-01 answered by the app, an owner can
//! renew it early, and a CA outage fails visibly while the current certificate stays.
//! (HAProxy installing them is tested in `tests/haproxy_certs.rs` and end to end by
//! `deploy/local/acme-test`.)

use hosting_api::CertificateStatus;

use crate::helpers::{assert_problem, TestApp, ADMIN_TOKEN};
use crate::pebble::{domain, issue_from, shop_domain, verified_site, wait_for, Pebble, DOMAIN};

/// An app issuing from `pebble`, and Pebble validating on the app's own port.
async fn spawn_with_pebble() -> (TestApp, Pebble) {
    let mut pebble = Pebble::prepare();
    let app = TestApp::spawn_with(|config| issue_from(config, &pebble)).await;
    pebble.start(app.addr.port()).await;
    (app, pebble)
}

/// An external account binding as a CA hands it out (key id, base64url HMAC key).
const EAB_KID: &str = "kid-platform";
const EAB_KEY: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

/// An app with a verified domain, issuing from a Pebble that requires EAB; `binding` is
/// what the operator configured.
async fn spawn_with_eab_pebble(binding: Option<(&str, &str)>) -> (TestApp, Pebble) {
    let mut pebble = Pebble::prepare();
    pebble.require_external_account(EAB_KID, EAB_KEY);
    let app = TestApp::spawn_with(|config| {
        issue_from(config, &pebble);
        if let Some((kid, key)) = binding {
            config.acme.acme_eab_kid = Some(kid.to_owned());
            config.acme.acme_eab_hmac_key = Some(hosting_app::config::Secret::from(key.to_owned()));
        }
    })
    .await;
    pebble.start(app.addr.port()).await;
    verified_site(&app, &pebble).await;
    (app, pebble)
}

/// The chain of the one certificate the store has to serve.
async fn issued_chain(app: &TestApp) -> String {
    let stored = app.state.store.served_certificates().await.expect("served");
    assert_eq!(stored.len(), 1);
    stored[0].chain_pem.clone().expect("chain")
}

async fn request_renewal(app: &TestApp) -> reqwest::Response {
    app.post(
        ADMIN_TOKEN,
        &format!("/sites/shop/domains/{DOMAIN}/certificate"),
    )
    .send()
    .await
    .expect("request")
}

async fn metrics(app: &TestApp) -> String {
    reqwest::get(app.mgmt_url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// `/metrics` once `series` has a sample: the issuer refreshes its gauges after it stores a
/// certificate, so a scrape right after the API shows the certificate may precede them.
async fn metrics_once_set(app: &TestApp, series: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let text = metrics(app).await;
        if sample(&text, series).is_some() || std::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The value of the first sample of `series` (name with labels, as printed).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// The chain's signatures lead from the leaf (which names `domain`) to `root_pem`.
fn assert_chain_verifies(chain_pem: &str, root_pem: &str, domain: &str) {
    use x509_parser::pem::Pem;
    let pems: Vec<Pem> = Pem::iter_from_buffer(format!("{chain_pem}\n{root_pem}").as_bytes())
        .collect::<Result<_, _>>()
        .expect("PEM");
    assert!(pems.len() >= 3, "leaf, intermediate(s) and root");
    let certs: Vec<_> = pems
        .iter()
        .map(|p| p.parse_x509().expect("certificate"))
        .collect();
    let names = certs[0]
        .subject_alternative_name()
        .expect("SAN")
        .expect("SAN present");
    assert!(
        names.value.general_names.iter().any(|n| matches!(
            n,
            x509_parser::extensions::GeneralName::DNSName(name) if *name == domain
        )),
        "the leaf names {domain}"
    );
    for pair in certs.windows(2) {
        assert_eq!(pair[0].issuer(), pair[1].subject());
        pair[0]
            .verify_signature(Some(pair[1].public_key()))
            .expect("signed by the next certificate of the chain");
    }
    let root = certs.last().expect("root");
    root.verify_signature(None)
        .expect("the root is self-signed");
}

#[tokio::test]
async fn a_verified_domain_gets_a_certificate_and_an_owner_can_renew_it() {
    // Arrange
    let (app, pebble) = spawn_with_pebble().await;

    // Act
    verified_site(&app, &pebble).await;
    let issued = wait_for(&app, &pebble, "the first certificate", |c| {
        c.status == CertificateStatus::Issued
    })
    .await;

    // Assert: a certificate of Pebble's for the domain, renewal two thirds into its life.
    let serial = issued.serial.clone().expect("serial");
    assert!(
        issued
            .issuer
            .as_deref()
            .unwrap_or_default()
            .contains("Pebble"),
        "{issued:?}"
    );
    let (not_before, not_after) = (
        issued.not_before.expect("not_before"),
        issued.not_after.expect("not_after"),
    );
    let renew_at = issued.next_attempt_at.expect("next attempt");
    let third = (not_after - not_before).num_seconds() / 3;
    assert_eq!(renew_at, not_after - chrono::Duration::seconds(third));
    assert_eq!(issued.failures, 0);
    assert_chain_verifies(&issued_chain(&app).await, &pebble.root_pem().await, DOMAIN);
    let stored = app.state.store.served_certificates().await.expect("served");
    let sealed = stored[0].key_sealed.as_deref().expect("sealed key");
    assert!(
        !sealed.windows(11).any(|w| w == b"PRIVATE KEY"),
        "the private key is stored sealed, not as PEM"
    );
    let expiry_series =
        format!("hosting_certificate_expiry_timestamp_seconds{{domain=\"{DOMAIN}\"}}");
    let metrics_text = metrics_once_set(&app, &expiry_series).await;
    let expiry = sample(&metrics_text, &expiry_series);
    assert_eq!(expiry, Some(not_after.timestamp() as f64), "{metrics_text}");
    assert_eq!(
        sample(&metrics_text, "hosting_certificates{status=\"issued\"}"),
        Some(1.0)
    );

    // Act: the owner asks for an early renewal.
    let response = request_renewal(&app).await;
    assert_eq!(response.status(), 202);
    let renewed = wait_for(&app, &pebble, "the renewed certificate", |c| {
        c.status == CertificateStatus::Issued && c.serial.as_deref() != Some(serial.as_str())
    })
    .await;

    // Assert
    assert!(renewed.issued_at > issued.issued_at);
    assert_eq!(renewed.failures, 0);
}

#[tokio::test]
async fn the_ca_going_away_fails_visibly_and_keeps_the_current_certificate() {
    // Arrange
    let (app, mut pebble) = spawn_with_pebble().await;
    verified_site(&app, &pebble).await;
    let issued = wait_for(&app, &pebble, "the first certificate", |c| {
        c.status == CertificateStatus::Issued
    })
    .await;

    // Act: the CA is down when a renewal is due.
    pebble.stop_pebble().await;
    assert_eq!(request_renewal(&app).await.status(), 202);
    let failed = wait_for(&app, &pebble, "the failed renewal", |c| {
        c.status == CertificateStatus::Failed
    })
    .await;

    // Assert: visible in the API and the metrics, the old certificate is kept, the site
    // still serves, and retries back off.
    assert!(failed.failures >= 1, "{failed:?}");
    assert!(
        !failed.last_error.as_deref().unwrap_or_default().is_empty(),
        "{failed:?}"
    );
    assert_eq!(failed.serial, issued.serial);
    assert_eq!(failed.not_after, issued.not_after);
    assert!(failed.next_attempt_at > Some(chrono::Utc::now() - chrono::Duration::seconds(1)));
    let metrics_text = metrics(&app).await;
    let failures: f64 = metrics_text
        .lines()
        .filter(|l| l.starts_with("hosting_acme_failures_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(failures >= 1.0, "{metrics_text}");
    let page = app.site(DOMAIN, "/", &[]).await;
    assert_eq!(page.status(), 200);

    // Act: the CA comes back (with a new root); the retry succeeds.
    pebble.start_pebble().await;
    let recovered = wait_for(&app, &pebble, "the recovered certificate", |c| {
        c.status == CertificateStatus::Issued && c.serial != issued.serial
    })
    .await;

    // Assert
    assert_eq!(recovered.failures, 0);
    assert_eq!(recovered.last_error, None);
}

#[tokio::test]
async fn a_ca_requiring_an_external_account_binding_issues_with_the_operators_binding() {
    // Arrange + Act
    let (app, pebble) = spawn_with_eab_pebble(Some((EAB_KID, EAB_KEY))).await;

    // Assert
    let issued = wait_for(
        &app,
        &pebble,
        "a certificate through the bound account",
        |c| c.status == CertificateStatus::Issued,
    )
    .await;
    assert_eq!((issued.failures, issued.last_error), (0, None));
    assert_chain_verifies(&issued_chain(&app).await, &pebble.root_pem().await, DOMAIN);
}

#[tokio::test]
async fn without_the_binding_such_a_ca_fails_the_order_and_says_what_to_set() {
    for (binding, hint) in [
        (
            None,
            "set HOSTING_ACME_EAB_KID and HOSTING_ACME_EAB_HMAC_KEY",
        ),
        (
            Some((EAB_KID, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")),
            "check HOSTING_ACME_EAB_KID and HOSTING_ACME_EAB_HMAC_KEY",
        ),
    ] {
        // Arrange + Act
        let (app, pebble) = spawn_with_eab_pebble(binding).await;

        // Assert
        let failed = wait_for(&app, &pebble, "the refused account", |c| {
            c.status == CertificateStatus::Failed
        })
        .await;
        let error = failed.last_error.unwrap_or_default();
        assert!(
            error.contains(hint) && error.starts_with("account:"),
            "{binding:?}: {error}\npebble log:\n{}",
            pebble.log()
        );
        assert_eq!(failed.serial, None);
    }
}

/// Names of the domains whose order is due now (none while a replica holds the lease).
async fn due_now(app: &TestApp) -> Vec<String> {
    let due = app.state.store.certificates_due(chrono::Utc::now(), 10);
    due.await
        .expect("due")
        .into_iter()
        .map(|d| d.domain)
        .collect()
}

#[tokio::test]
async fn a_replica_stopped_mid_order_gives_its_lease_back() {
    // Arrange: the CA takes requests and never answers, so the order hangs holding its lease.
    let (mut app, pebble) = spawn_with_pebble().await;
    pebble.freeze(true);
    verified_site(&app, &pebble).await;
    let leased = std::time::Instant::now();
    loop {
        let rows = app.state.store.certificate_counts().await.expect("counts");
        if !rows.is_empty() && due_now(&app).await.is_empty() {
            break;
        }
        assert!(
            leased.elapsed() < std::time::Duration::from_secs(20),
            "the issuer never took the lease"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Act: the replica stops (SIGTERM), mid-order.
    app.shut_down().await;

    // Assert: the order is due again at once (not when the 10-minute lease runs out).
    assert_eq!(due_now(&app).await, vec![DOMAIN]);
    pebble.freeze(false);
}

#[tokio::test]
async fn a_certificate_is_ordered_only_for_a_verified_domain_on_a_platform_with_acme() {
    // Arrange: ACME on, the domain not verified.
    let (app, _pebble) = spawn_with_pebble().await;
    app.create_site(ADMIN_TOKEN, "shop").await;
    shop_domain(&app).await;

    // Act / Assert
    let detail = assert_problem(request_renewal(&app).await, 409).await;
    assert!(detail.contains("not verified"), "{detail}");
    assert_eq!(domain(&app).await.certificate, None);

    // Arrange: a platform without ACME.
    let plain = TestApp::spawn().await;
    plain.create_site(ADMIN_TOKEN, "shop").await;
    shop_domain(&plain).await;

    // Act / Assert
    let response = plain
        .post(
            ADMIN_TOKEN,
            &format!("/sites/shop/domains/{DOMAIN}/certificate"),
        )
        .send()
        .await
        .expect("request");
    let detail = assert_problem(response, 409).await;
    assert!(detail.contains("HOSTING_ACME_DIRECTORY"), "{detail}");
}

#[tokio::test]
async fn challenge_answers_are_given_only_for_orders_in_progress() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act
    let unknown = app
        .site(DOMAIN, "/.well-known/acme-challenge/abcdefghijklmnop", &[])
        .await;

    // Assert: nothing to answer, and the platform's 404 (not a site's).
    assert_eq!(unknown.status(), 404);
}
