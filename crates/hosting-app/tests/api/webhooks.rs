//! Site webhooks over real HTTP, delivered to a receiver the test runs: signed in the
//! Standard Webhooks format (checked here with an HMAC written out from SHA-256, not the
//! server's crate), retried after the receiver fails, kept in the queue across a
//! restart, refused for private targets, isolated per tenant; and the domain and
//! certificate events (with their audit entries) against Pebble.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hosting_api as api;
use sha2::{Digest, Sha256};

use crate::helpers::{assert_problem, TestApp, ADMIN_TOKEN};
use crate::pebble::{issue_from, shop_domain, wait_for, Pebble, DOMAIN};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }

    fn event(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }
}

/// An HTTP receiver on loopback: records every request and answers the queued statuses
/// first, then 200.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start(answers: &[u16]) -> (Receiver, SocketAddr) {
        let receiver = Receiver::default();
        receiver
            .answers
            .lock()
            .expect("lock")
            .extend(answers.iter().copied());
        let state = receiver.clone();
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    state.got.lock().expect("lock").push(Received {
                        headers,
                        body: body.to_vec(),
                    });
                    let status = state
                        .answers
                        .lock()
                        .expect("lock")
                        .pop_front()
                        .unwrap_or(200);
                    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        (receiver, addr)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    /// Waits (up to 30 s) until `done` holds for what was received.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.got();
            if done(&got) {
                return got;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "waited 30 s for {what}; received {:?}",
                got.iter().map(Received::event).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// HMAC-SHA256 (RFC 2104) from the hash alone.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// Verifies a message as a Standard Webhooks receiver does.
fn assert_signed(received: &Received, secret: &str) {
    let id = received.header("webhook-id");
    let timestamp = received.header("webhook-timestamp");
    assert!(id.starts_with("msg_"), "{id}");
    let sent_at: i64 = timestamp.parse().expect("timestamp in seconds");
    assert!((chrono::Utc::now().timestamp() - sent_at).abs() < 300);
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 key");
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(&received.body);
    let expected = format!("v1,{}", STANDARD.encode(hmac_sha256(&key, &signed)));
    assert_eq!(received.header("webhook-signature"), expected);
    assert_eq!(received.header("content-type"), "application/json");
}

/// Webhook settings of the tests: loopback receivers allowed, quick polls and retries.
fn quick(config: &mut hosting_app::Config) {
    config.events.webhook_allow_private = true;
    config.events.webhook_poll_interval = Duration::from_millis(100);
    config.events.webhook_retry_base = Duration::from_millis(200);
}

async fn add_webhook(
    app: &TestApp,
    token: &str,
    site: &str,
    url: &str,
    events: &[&str],
) -> reqwest::Response {
    app.post(token, &format!("/sites/{site}/webhooks"))
        .json(&api::CreateWebhook {
            url: url.into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
        })
        .send()
        .await
        .expect("request")
}

async fn added(
    app: &TestApp,
    token: &str,
    site: &str,
    url: &str,
    events: &[&str],
) -> api::CreatedWebhook {
    let response = add_webhook(app, token, site, url, events).await;
    let status = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(status, 201, "{text}");
    serde_json::from_str(&text).expect("created webhook")
}

async fn deliveries(app: &TestApp, token: &str, site: &str, id: i64) -> Vec<api::WebhookDelivery> {
    let list: api::List<api::WebhookDelivery> = app
        .get(token, &format!("/sites/{site}/webhooks/{id}/deliveries"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("deliveries");
    list.items
}

#[tokio::test]
async fn deploy_events_are_delivered_signed_and_verifiable() {
    // Arrange
    let (receiver, addr) = Receiver::start(&[]).await;
    let app = TestApp::spawn_with(quick).await;
    let member = app.member("alice").await;
    app.create_site(&member, "blog").await;
    let hook = added(&app, &member, "blog", &format!("http://{addr}/hook"), &[]).await;
    assert!(hook.secret.starts_with("whsec_"));
    assert_eq!(hook.webhook.events.len(), 7);

    // Act
    let first = app
        .deploy_archive(&member, "blog", &[("index.html", b"v1")])
        .await;
    app.deploy_archive(&member, "blog", &[("index.html", b"v2")])
        .await;
    let rollback = app
        .post(&member, "/sites/blog/rollback")
        .send()
        .await
        .expect("rollback");
    assert_eq!(rollback.status(), 200);

    // Assert: every event, each signed with the endpoint's secret
    let got = receiver
        .wait_for("six deploy events", |got| got.len() >= 6)
        .await;
    let mut events: Vec<String> = got.iter().map(Received::event).collect();
    events.sort();
    assert_eq!(
        events,
        [
            "deploy.created",
            "deploy.created",
            "deploy.published",
            "deploy.published",
            "deploy.published",
            "deploy.rolled_back",
        ]
    );
    for message in &got {
        assert_signed(message, &hook.secret);
        assert_eq!(message.json()["data"]["site"], "blog");
    }
    let rolled_back = got
        .iter()
        .find(|m| m.event() == "deploy.rolled_back")
        .expect("rollback event");
    assert_eq!(
        rolled_back.json()["data"]["deploy"]["id"],
        first.id.as_str()
    );
    let ids: std::collections::HashSet<String> =
        got.iter().map(|m| m.header("webhook-id")).collect();
    assert_eq!(ids.len(), got.len(), "each message has its own id");

    // The delivery log shows each as delivered at its first attempt; no secret is listed.
    let log = deliveries(&app, &member, "blog", hook.webhook.id).await;
    assert_eq!(log.len(), 6);
    for delivery in &log {
        assert_eq!(
            (delivery.status.as_str(), delivery.attempts),
            ("delivered", 1)
        );
        assert_eq!(delivery.log.len(), 1);
        assert_eq!(delivery.log[0].status_code, Some(200));
    }
    let listed = app
        .get(&member, "/sites/blog/webhooks")
        .send()
        .await
        .expect("list")
        .text()
        .await
        .expect("body");
    assert!(!listed.contains(&hook.secret) && listed.contains(&addr.to_string()));
}

#[tokio::test]
async fn a_failed_delivery_is_retried_until_the_receiver_accepts() {
    // Arrange: the receiver fails twice.
    let (receiver, addr) = Receiver::start(&[500, 503]).await;
    let app = TestApp::spawn_with(quick).await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let hook = added(
        &app,
        ADMIN_TOKEN,
        "blog",
        &format!("http://{addr}/hook"),
        &["deploy.published"],
    )
    .await;

    // Act
    app.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"v1")])
        .await;

    // Assert: three attempts of one message, the last accepted; backoff between them
    let got = receiver
        .wait_for("three attempts", |got| got.len() >= 3)
        .await;
    let ids: Vec<String> = got.iter().map(|m| m.header("webhook-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert!(got.iter().all(|m| m.event() == "deploy.published"));
    let started = Instant::now();
    let delivery = loop {
        let log = deliveries(&app, ADMIN_TOKEN, "blog", hook.webhook.id).await;
        if log.first().is_some_and(|d| d.status == "delivered") {
            break log[0].clone();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{log:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(delivery.attempts, 3);
    let statuses: Vec<Option<u16>> = delivery.log.iter().map(|a| a.status_code).collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(200)]);
    assert!(delivery.log[0]
        .error
        .as_deref()
        .is_some_and(|e| e.contains("500")));
    assert!(delivery.log[2].error.is_none());
    let waited = delivery.log[2].at - delivery.log[1].at;
    assert!(
        waited >= chrono::Duration::milliseconds(400),
        "backoff doubles: {waited}"
    );
    assert_eq!(
        receiver.got().len(),
        3,
        "nothing is sent after it was accepted"
    );
}

#[tokio::test]
async fn a_queued_delivery_survives_a_restart() {
    // Arrange: this replica does not deliver, so the message stays queued.
    let (receiver, addr) = Receiver::start(&[]).await;
    let app = TestApp::spawn_with(|config| {
        quick(config);
        config.events.webhook_poll_interval = Duration::ZERO;
    })
    .await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let hook = added(
        &app,
        ADMIN_TOKEN,
        "blog",
        &format!("http://{addr}/hook"),
        &["deploy.created"],
    )
    .await;
    app.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"v1")])
        .await;
    let queued = deliveries(&app, ADMIN_TOKEN, "blog", hook.webhook.id).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (queued[0].status.as_str(), queued[0].attempts),
        ("pending", 0)
    );
    assert!(receiver.got().is_empty());

    // Act: restart, now delivering.
    let mut app = app;
    app.config.events.webhook_poll_interval = Duration::from_millis(100);
    let app = app.restart().await;

    // Assert
    let got = receiver
        .wait_for("the queued message", |got| !got.is_empty())
        .await;
    assert_eq!(got[0].header("webhook-id"), queued[0].message_id);
    assert_signed(&got[0], &hook.secret);
    let started = Instant::now();
    while deliveries(&app, ADMIN_TOKEN, "blog", hook.webhook.id).await[0].status != "delivered" {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn private_targets_are_refused_without_the_setting() {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;

    for private in [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://localhost/hook",
    ] {
        let refused = add_webhook(&app, ADMIN_TOKEN, "blog", private, &[]).await;
        let detail = assert_problem(refused, 422).await;
        assert!(detail.contains("public"), "{private}: {detail}");
    }
    for invalid in [
        "ftp://example.com/",
        "http://user:pw@example.com/",
        "not a url",
    ] {
        let refused = add_webhook(&app, ADMIN_TOKEN, "blog", invalid, &[]).await;
        assert_problem(refused, 422).await;
    }
    let unknown = add_webhook(
        &app,
        ADMIN_TOKEN,
        "blog",
        "https://hooks.example.com/x",
        &["deploy.exploded"],
    )
    .await;
    assert_problem(unknown, 422).await;
    let public = added(
        &app,
        ADMIN_TOKEN,
        "blog",
        "https://hooks.example.com/x",
        &["deploy.failed"],
    )
    .await;
    assert_eq!(public.webhook.events, ["deploy.failed"]);
}

#[tokio::test]
async fn another_tenants_webhooks_are_not_found() {
    // Arrange
    let app = TestApp::spawn_with(quick).await;
    let alice = app.member("alice").await;
    let bob = app.member("bob").await;
    app.create_site(&alice, "alpha").await;
    let hook = added(&app, &alice, "alpha", "http://127.0.0.1:9/hook", &[]).await;

    // Act / Assert
    let list = app
        .get(&bob, "/sites/alpha/webhooks")
        .send()
        .await
        .expect("request");
    assert_problem(list, 404).await;
    let path = format!("/sites/alpha/webhooks/{}", hook.webhook.id);
    let remove = app
        .client
        .delete(app.api(&path))
        .bearer_auth(&bob)
        .send()
        .await
        .expect("request");
    assert_problem(remove, 404).await;
    let log = app
        .get(&bob, &format!("{path}/deliveries"))
        .send()
        .await
        .expect("request");
    assert_problem(log, 404).await;

    let removed = app
        .client
        .delete(app.api(&path))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("request");
    assert_eq!(removed.status(), 204);
    let again = app
        .client
        .delete(app.api(&path))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("request");
    assert_problem(again, 404).await;
}

#[tokio::test]
async fn domain_and_certificate_events_are_delivered_and_audited() {
    // Arrange: an app issuing from Pebble, a receiver for the shop site.
    let (receiver, addr) = Receiver::start(&[]).await;
    let mut pebble = Pebble::prepare();
    let app = TestApp::spawn_with(|config| {
        issue_from(config, &pebble);
        quick(config);
    })
    .await;
    pebble.start(app.addr.port()).await;
    app.create_site(ADMIN_TOKEN, "shop").await;
    let hook = added(
        &app,
        ADMIN_TOKEN,
        "shop",
        &format!("http://{addr}/hook"),
        &[
            "domain.verified",
            "certificate.issued",
            "certificate.failed",
        ],
    )
    .await;

    // Act: a deploy, the domain claimed and verified by its TXT record, then issued
    app.deploy_archive(ADMIN_TOKEN, "shop", &[("index.html", b"shop")])
        .await;
    let domain = shop_domain(&app).await;
    let txt = &domain.verification;
    pebble.set_txt(&txt.txt_name, &txt.txt_value).await;
    let verified = app
        .post(ADMIN_TOKEN, &format!("/sites/shop/domains/{DOMAIN}/verify"))
        .send()
        .await
        .expect("verify");
    assert_eq!(verified.status(), 200);
    wait_for(&app, &pebble, "the certificate", |c| {
        c.status == api::CertificateStatus::Issued
    })
    .await;

    // Assert
    let got = receiver
        .wait_for("domain.verified and certificate.issued", |got| {
            got.len() >= 2
        })
        .await;
    let events: Vec<String> = got.iter().map(Received::event).collect();
    assert_eq!(events, ["domain.verified", "certificate.issued"]);
    for message in &got {
        assert_signed(message, &hook.secret);
        assert_eq!(message.json()["data"]["domain"], DOMAIN);
    }
    let page: api::AuditPage = app
        .get(ADMIN_TOKEN, "/audit?site=shop&action=certificate")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("page");
    let entry = &page.items[0];
    assert_eq!(
        (
            entry.action.as_str(),
            entry.actor.as_str(),
            entry.outcome.as_str()
        ),
        ("certificate.issue", "system", "success")
    );
    assert_eq!(entry.target, format!("domain:{DOMAIN}"));

    // An early renewal asked by the owner is audited as theirs.
    let renew = app
        .post(
            ADMIN_TOKEN,
            &format!("/sites/shop/domains/{DOMAIN}/certificate"),
        )
        .send()
        .await
        .expect("renew");
    assert!(renew.status().is_success(), "{}", renew.status());
    let page: api::AuditPage = app
        .get(ADMIN_TOKEN, "/audit?site=shop&action=certificate.request")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("page");
    let entry = &page.items[0];
    assert_eq!(
        (
            entry.actor.as_str(),
            entry.outcome.as_str(),
            entry.target.clone()
        ),
        ("admin", "success", format!("domain:{DOMAIN}"))
    );
}

#[tokio::test]
async fn failed_deploys_send_deploy_failed_with_the_deploy_and_the_reason() {
    // Arrange: deploys expire as soon as garbage collection runs
    let (receiver, addr) = Receiver::start(&[]).await;
    let app = TestApp::spawn_with(|config| {
        quick(config);
        config.limits.deploy_expiry = Duration::from_secs(0);
    })
    .await;
    let member = app.member("frank").await;
    app.create_site(&member, "blog").await;
    let url = format!("http://{addr}/hook");
    let hook = added(&app, &member, "blog", &url, &["deploy.failed"]).await;

    // Act: a refused archive, a publish of a deploy still missing its file, then its expiry
    let refused = app
        .post_archive(&member, "blog", b"not a gzip stream")
        .await;
    assert_problem(refused, 400).await;
    let created =
        crate::deploys::create_digest(&app, &member, "blog", &[("/index.html", b"missing")]).await;
    let id = created.deploy.id.as_str();
    assert_problem(crate::deploys::publish(&app, &member, id).await, 409).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    hosting_app::gc::run_once(&app.state).await.expect("gc");

    // Assert: three signed `deploy.failed`, the last two naming the deploy
    let got = receiver
        .wait_for("three deploy.failed", |got| got.len() >= 3)
        .await;
    let mut errors = Vec::new();
    for message in &got {
        assert_signed(message, &hook.secret);
        let body = message.json();
        assert_eq!(body["type"], "deploy.failed");
        assert_eq!(body["data"]["site"], "blog");
        errors.push(
            body["data"]["error"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    errors.sort();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("gzip") || e.contains("archive")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("waiting for 1 file")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("abandoned")), "{errors:?}");
    let with_deploy: Vec<&Received> = got
        .iter()
        .filter(|m| m.json()["data"]["deploy"]["id"] == id)
        .collect();
    assert_eq!(with_deploy.len(), 2);
    assert!(with_deploy
        .iter()
        .any(|m| m.json()["data"]["deploy"]["state"] == "expired"));
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_clear_ones_are_sealed_at_start() {
    // Arrange: a sealing key file, as cluster replicas share one
    let (receiver, addr) = Receiver::start(&[]).await;
    let keys = tempfile::tempdir().expect("temp dir");
    let key_file = keys.path().join("sealing.key");
    std::fs::write(&key_file, "3f".repeat(32)).expect("key file");
    let app = TestApp::spawn_with(|config| {
        quick(config);
        config.acme.cert_encryption_key_file = Some(key_file.clone());
    })
    .await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let url = format!("http://{addr}/hook");
    let hook = added(&app, ADMIN_TOKEN, "blog", &url, &["deploy.created"]).await;
    let store = app.state.store.clone();
    assert!(
        store
            .clear_webhook_secrets(10)
            .await
            .expect("read")
            .is_empty(),
        "the new secret is stored sealed"
    );
    let sealed_in_place = app
        .execute_sql(&format!(
            "UPDATE webhooks SET url = url WHERE id = {} AND secret LIKE 'sealed:%' \
             AND secret NOT LIKE '%{}%'",
            hook.webhook.id,
            hook.secret.trim_start_matches("whsec_")
        ))
        .await;
    assert_eq!(
        sealed_in_place, 1,
        "stored sealed, without the secret in it"
    );

    // Act: an endpoint written before sealing existed (its secret in clear), then a restart
    let legacy = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let updated = app
        .execute_sql(&format!(
            "UPDATE webhooks SET secret = '{legacy}' WHERE id = {}",
            hook.webhook.id
        ))
        .await;
    assert_eq!(updated, 1);
    assert_eq!(
        store.clear_webhook_secrets(10).await.expect("read").len(),
        1
    );
    let app = app.restart().await;

    // Assert: sealed at start, and deliveries are still signed with that secret
    let store = app.state.store.clone();
    let started = Instant::now();
    while !store
        .clear_webhook_secrets(10)
        .await
        .expect("read")
        .is_empty()
    {
        assert!(started.elapsed() < Duration::from_secs(10), "not sealed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"v1")])
        .await;
    let got = receiver
        .wait_for("deploy.created", |got| !got.is_empty())
        .await;
    assert_signed(&got[0], legacy);
    let metrics = app
        .client
        .get(app.mgmt_url("/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    for series in [
        "hosting_webhook_deliveries_total{result=\"delivered\"}",
        "# HELP hosting_webhook_queue_pending ",
        "# HELP hosting_webhook_queue_oldest_age_seconds ",
    ] {
        assert!(metrics.contains(series), "{series} missing");
    }
}
