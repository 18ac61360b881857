//! Custom domains: the API (add, list, remove, verify), validation, one site per
//! domain with no takeover of a verified one, tenant isolation, and serving: only a
//! verified domain serves its site; anything else is the platform's 404.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hosting_api as api;

use crate::helpers::{assert_problem, TestApp, ADMIN_TOKEN};

const SHOP: &str = "shop.example.test";

/// An app whose HTTP-token check connects to its own listener, with a mock DNS.
async fn spawn(dns: &MockDns) -> TestApp {
    let dns_addr = dns.addr;
    TestApp::spawn_with(move |config| {
        config.domains.verify_http_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.domains.dns_resolver = Some(dns_addr);
    })
    .await
}

async fn add_domain(app: &TestApp, token: &str, site: &str, name: &str) -> reqwest::Response {
    app.post(token, &format!("/sites/{site}/domains"))
        .json(&api::AddDomain { name: name.into() })
        .send()
        .await
        .expect("request")
}

async fn added(app: &TestApp, token: &str, site: &str, name: &str) -> api::Domain {
    let response = add_domain(app, token, site, name).await;
    let status = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(status, 201, "adding {name}: {text}");
    serde_json::from_str(&text).expect("domain json")
}

async fn verify(app: &TestApp, token: &str, site: &str, name: &str) -> api::Domain {
    let response = app
        .post(token, &format!("/sites/{site}/domains/{name}/verify"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("domain json")
}

async fn body_on(app: &TestApp, host: &str) -> (u16, String) {
    let response = app.site(host, "/", &[]).await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn domains_are_added_listed_and_removed() {
    // Arrange
    let dns = MockDns::start().await;
    let app = spawn(&dns).await;
    app.create_site(ADMIN_TOKEN, "alpha").await;

    // Act
    let domain = added(&app, ADMIN_TOKEN, "alpha", "Shop.Example.TEST.").await;
    let listed: api::List<api::Domain> = app
        .get(ADMIN_TOKEN, "/sites/alpha/domains")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");

    // Assert
    assert_eq!(domain.name, SHOP);
    assert_eq!(domain.site, "alpha");
    assert_eq!(domain.status, api::DomainStatus::Pending);
    assert_eq!(
        domain.verification.txt_name,
        "_hosting-verify.shop.example.test"
    );
    assert_eq!(
        domain.verification.http_path,
        format!(
            "/.well-known/hosting-verify/{}",
            domain.verification.http_token
        )
    );
    assert_eq!(listed.items, vec![domain]);

    let response = app
        .client
        .delete(app.api(&format!("/sites/alpha/domains/{SHOP}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    let listed: api::List<api::Domain> = app
        .get(ADMIN_TOKEN, "/sites/alpha/domains")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(listed.items.is_empty());
}

#[tokio::test]
async fn invalid_and_platform_domains_are_refused_with_problem_json() {
    let dns = MockDns::start().await;
    let app = spawn(&dns).await;
    app.create_site(ADMIN_TOKEN, "alpha").await;

    for (name, expected) in [
        ("bücher.example", "ASCII"),
        ("example", "two labels"),
        ("localhost", "two labels"),
        ("blog.localhost", "belong to the platform"),
        ("127.0.0.1", "IP address"),
        ("*.example.com", "wildcards"),
        ("a..example.com", "1 to 63"),
    ] {
        let detail = assert_problem(add_domain(&app, ADMIN_TOKEN, "alpha", name).await, 422).await;
        assert!(
            detail.contains(expected),
            "{name}: {detail:?} should mention {expected:?}"
        );
    }
}

#[tokio::test]
async fn a_domain_belongs_to_one_site_and_a_verified_one_is_never_taken_over() {
    // Arrange: the admin claims the domain first
    let dns = MockDns::start().await;
    let app = spawn(&dns).await;
    let member = app.member("mallory").await;
    app.create_site(ADMIN_TOKEN, "alpha").await;
    app.create_site(ADMIN_TOKEN, "beta").await;
    app.create_site(&member, "gamma").await;
    added(&app, ADMIN_TOKEN, "alpha", SHOP).await;

    // A fresh unverified claim holds the name against everyone
    assert_problem(add_domain(&app, ADMIN_TOKEN, "beta", SHOP).await, 409).await;
    assert_problem(add_domain(&app, &member, "gamma", SHOP).await, 409).await;

    // An unverified claim older than the grace period may be replaced by another owner
    app.execute_sql(&format!(
        "UPDATE domains SET created_at = 0 WHERE name = '{SHOP}'"
    ))
    .await;
    let taken = added(&app, &member, "gamma", SHOP).await;
    assert_eq!(taken.site, "gamma");
    let admin_list: api::List<api::Domain> = app
        .get(ADMIN_TOKEN, "/sites/alpha/domains")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(admin_list.items.is_empty());

    // Once verified, the claim can never be taken, however old
    let verified = verify(&app, &member, "gamma", SHOP).await;
    assert_eq!(verified.status, api::DomainStatus::Verified, "{verified:?}");
    app.execute_sql(&format!(
        "UPDATE domains SET created_at = 0 WHERE name = '{SHOP}'"
    ))
    .await;
    let detail = assert_problem(add_domain(&app, ADMIN_TOKEN, "alpha", SHOP).await, 409).await;
    assert!(detail.contains("verified"), "{detail}");
}

#[tokio::test]
async fn another_tenant_gets_404_on_every_domain_route() {
    let dns = MockDns::start().await;
    let app = spawn(&dns).await;
    let member = app.member("mallory").await;
    app.create_site(ADMIN_TOKEN, "alpha").await;
    added(&app, ADMIN_TOKEN, "alpha", SHOP).await;

    let list = app
        .get(&member, "/sites/alpha/domains")
        .send()
        .await
        .expect("request");
    assert_problem(list, 404).await;
    assert_problem(
        add_domain(&app, &member, "alpha", "other.example.test").await,
        404,
    )
    .await;
    let verify = app
        .post(&member, &format!("/sites/alpha/domains/{SHOP}/verify"))
        .send()
        .await
        .expect("request");
    assert_problem(verify, 404).await;
    let delete = app
        .client
        .delete(app.api(&format!("/sites/alpha/domains/{SHOP}")))
        .bearer_auth(&member)
        .send()
        .await
        .expect("request");
    assert_problem(delete, 404).await;

    // The claim is untouched
    let listed: api::List<api::Domain> = app
        .get(ADMIN_TOKEN, "/sites/alpha/domains")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(listed.items.len(), 1);
}

#[tokio::test]
async fn only_a_verified_domain_serves_its_site_until_removed() {
    // Arrange: a live site and a claimed, unverified domain
    let dns = MockDns::start().await;
    let app = spawn(&dns).await;
    app.create_site(ADMIN_TOKEN, "alpha").await;
    app.deploy_archive(ADMIN_TOKEN, "alpha", &[("index.html", b"alpha v1")])
        .await;
    let domain = added(&app, ADMIN_TOKEN, "alpha", SHOP).await;

    // Unverified: the platform's 404, never the site
    let (status, body) = body_on(&app, SHOP).await;
    assert_eq!(status, 404);
    assert!(!body.contains("alpha v1"));

    // The platform answers the HTTP token on the domain, and only the right one
    let token_path = domain.verification.http_path.clone();
    let response = app.site(SHOP, &token_path, &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.expect("body"),
        domain.verification.http_token
    );
    let wrong = app
        .site(SHOP, "/.well-known/hosting-verify/not-the-token", &[])
        .await;
    assert_eq!(wrong.status(), 404);

    // Act: verify (the check fetches the token through the app itself)
    let verified = verify(&app, ADMIN_TOKEN, "alpha", SHOP).await;

    // Assert: verified by HTTP; the domain serves the site, and follows publishes
    assert_eq!(verified.status, api::DomainStatus::Verified, "{verified:?}");
    assert!(verified.verified_at.is_some());
    assert_eq!(body_on(&app, SHOP).await, (200, "alpha v1".to_owned()));
    app.deploy_archive(ADMIN_TOKEN, "alpha", &[("index.html", b"alpha v2")])
        .await;
    assert_eq!(
        body_on(&app, "Shop.Example.Test:80").await,
        (200, "alpha v2".to_owned())
    );

    // Removal stops serving at once
    let response = app
        .client
        .delete(app.api(&format!("/sites/alpha/domains/{SHOP}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);
    assert_eq!(body_on(&app, SHOP).await.0, 404);
}

#[tokio::test]
async fn a_failed_check_keeps_the_domain_pending_with_the_reason() {
    // Arrange: the HTTP check goes to a closed port, DNS has no record
    let dns = MockDns::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_addr = closed.local_addr().expect("addr");
    drop(closed);
    let dns_addr = dns.addr;
    let app = TestApp::spawn_with(move |config| {
        config.domains.verify_http_addr = Some(closed_addr);
        config.domains.dns_resolver = Some(dns_addr);
    })
    .await;
    app.create_site(ADMIN_TOKEN, "alpha").await;
    app.deploy_archive(ADMIN_TOKEN, "alpha", &[("index.html", b"alpha v1")])
        .await;
    added(&app, ADMIN_TOKEN, "alpha", SHOP).await;

    // Act
    let checked = verify(&app, ADMIN_TOKEN, "alpha", SHOP).await;

    // Assert
    assert_eq!(checked.status, api::DomainStatus::Pending);
    let detail = checked.status_detail.expect("a reason");
    assert!(detail.contains("no TXT record"), "{detail}");
    assert!(detail.contains("HTTP"), "{detail}");
    assert!(checked.checked_at.is_some());
    assert_eq!(body_on(&app, SHOP).await.0, 404);
}

#[tokio::test]
async fn a_dns_txt_record_verifies_a_domain() {
    // Arrange: no HTTP route to the platform; the TXT record is published
    let dns = MockDns::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_addr = closed.local_addr().expect("addr");
    drop(closed);
    let dns_addr = dns.addr;
    let app = TestApp::spawn_with(move |config| {
        config.domains.verify_http_addr = Some(closed_addr);
        config.domains.dns_resolver = Some(dns_addr);
    })
    .await;
    app.create_site(ADMIN_TOKEN, "alpha").await;
    app.deploy_archive(ADMIN_TOKEN, "alpha", &[("index.html", b"alpha v1")])
        .await;
    let domain = added(&app, ADMIN_TOKEN, "alpha", SHOP).await;
    dns.set_txt(
        &domain.verification.txt_name,
        &domain.verification.txt_value,
    );

    // Act
    let verified = verify(&app, ADMIN_TOKEN, "alpha", SHOP).await;

    // Assert
    assert_eq!(verified.status, api::DomainStatus::Verified, "{verified:?}");
    assert!(
        verified
            .status_detail
            .as_deref()
            .is_some_and(|d| d.contains("DNS")),
        "{verified:?}"
    );
    assert_eq!(body_on(&app, SHOP).await, (200, "alpha v1".to_owned()));
}

#[tokio::test]
async fn deleting_a_site_stops_its_domains_serving() {
    let dns = MockDns::start().await;
    let app = spawn(&dns).await;
    app.create_site(ADMIN_TOKEN, "alpha").await;
    app.deploy_archive(ADMIN_TOKEN, "alpha", &[("index.html", b"alpha v1")])
        .await;
    added(&app, ADMIN_TOKEN, "alpha", SHOP).await;
    verify(&app, ADMIN_TOKEN, "alpha", SHOP).await;
    assert_eq!(body_on(&app, SHOP).await.0, 200);

    let response = app
        .client
        .delete(app.api("/sites/alpha"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);

    assert_eq!(body_on(&app, SHOP).await.0, 404);
}

/// A tiny authoritative DNS server on loopback UDP answering TXT queries from a map
/// (NXDOMAIN otherwise), so the TXT check runs without touching the system resolver.
pub struct MockDns {
    pub addr: SocketAddr,
    records: Arc<Mutex<HashMap<String, String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockDns {
    pub async fn start() -> MockDns {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind udp");
        let addr = socket.local_addr().expect("addr");
        let records: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let served = records.clone();
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                if let Some(reply) = answer(&buf[..len], &served) {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        MockDns {
            addr,
            records,
            task,
        }
    }

    pub fn set_txt(&self, name: &str, value: &str) {
        self.records
            .lock()
            .expect("lock")
            .insert(name.to_ascii_lowercase(), value.to_owned());
    }
}

fn answer(query: &[u8], records: &Mutex<HashMap<String, String>>) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    // The question: labels up to a zero byte, then type and class.
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(pos)?);
        pos += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(pos..pos + len)?).to_ascii_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*query.get(pos)?, *query.get(pos + 1)?]);
    let question_end = pos + 4;
    let name = labels.join(".");
    let value = records.lock().ok()?.get(&name).cloned();
    let mut reply = Vec::new();
    reply.extend_from_slice(&query[..2]); // id
    let rcode = if value.is_some() { 0 } else { 3 };
    reply.extend_from_slice(&[0x85, 0x80 | rcode]); // QR, AA, RD, RA
    reply.extend_from_slice(&[0, 1]); // one question
    let answers: u16 = u16::from(value.is_some() && qtype == 16);
    reply.extend_from_slice(&answers.to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]); // no authority, no additional
    reply.extend_from_slice(query.get(12..question_end)?);
    if let (Some(value), 1) = (value, answers) {
        let text = value.as_bytes();
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 0]);
        let rdlength = u16::try_from(text.len() + 1).ok()?;
        reply.extend_from_slice(&rdlength.to_be_bytes());
        reply.push(u8::try_from(text.len()).ok()?);
        reply.extend_from_slice(text);
    }
    Some(reply)
}
