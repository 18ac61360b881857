//! The audit log over real HTTP: an entry for each kind of state change (sites, deploys,
//! tokens, users and quotas, sign-ins, custom domains) with actor, client address and
//! outcome; who may read which entries; filters; cursor pagination; no route that
//! changes an entry; retention. (Certificate entries: `webhooks.rs`, with Pebble.)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hosting_api as api;

use crate::dashboard::{Browser, PASSWORD};
use crate::domains::MockDns;
use crate::helpers::{assert_problem, TestApp, ADMIN_TOKEN};

async fn audit(app: &TestApp, token: &str, query: &str) -> api::AuditPage {
    let response = app
        .get(token, &format!("/audit{query}"))
        .send()
        .await
        .expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    assert_eq!(status, 200, "GET /audit{query}: {text}");
    serde_json::from_str(&text).expect("audit page")
}

/// The entries' `action target outcome` lines, oldest first.
fn lines(page: &api::AuditPage) -> Vec<String> {
    page.items
        .iter()
        .rev()
        .map(|e| format!("{} {} {}", e.action, e.target, e.outcome))
        .collect()
}

#[tokio::test]
async fn site_deploy_and_token_changes_are_audited_with_actor_address_and_outcome() {
    // Arrange
    let app = TestApp::spawn().await;
    let member = app.member("alice").await;

    // Act
    app.create_site(&member, "blog").await;
    let first = app
        .deploy_archive(&member, "blog", &[("index.html", b"v1")])
        .await;
    let second = app
        .deploy_archive(&member, "blog", &[("index.html", b"v2")])
        .await;
    let rollback = app
        .post(&member, "/sites/blog/rollback")
        .send()
        .await
        .expect("rollback");
    assert_eq!(rollback.status(), 200);
    let token: api::CreatedToken = app
        .post(&member, "/tokens")
        .json(&api::CreateToken { name: "ci".into() })
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("token");
    let revoked = app
        .client
        .delete(app.api(&format!("/tokens/{}", token.token.id)))
        .bearer_auth(&member)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 204);
    let deleted = app
        .client
        .delete(app.api("/sites/blog"))
        .bearer_auth(&member)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);

    // Assert: her own actions (she may also read `user.create` of her account, by admin)
    let page = audit(&app, &member, "?actor=alice").await;
    let (d1, d2) = (first.id, second.id);
    let t = token.token.id;
    assert_eq!(
        lines(&page),
        [
            "site.create site:blog success".to_owned(),
            format!("deploy.create deploy:{d1} success"),
            format!("deploy.publish deploy:{d1} success"),
            format!("deploy.create deploy:{d2} success"),
            format!("deploy.publish deploy:{d2} success"),
            format!("deploy.publish deploy:{d1} success"),
            format!("deploy.rollback deploy:{d1} success"),
            format!("token.create token:{t} success"),
            format!("token.revoke token:{t} success"),
            "site.delete site:blog success".to_owned(),
        ]
    );
    for entry in &page.items {
        assert_eq!(entry.actor, "alice", "{entry:?}");
        assert!(entry.actor_id.is_some());
        assert_eq!(
            entry.client_address.as_deref(),
            Some("127.0.0.1"),
            "{entry:?}"
        );
    }
    assert_eq!(page.items[0].site.as_deref(), Some("blog"));
    assert!(page.next_cursor.is_none());
}

#[tokio::test]
async fn a_refused_archive_is_audited_as_a_failed_deploy() {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;

    let refused = app
        .post_archive(ADMIN_TOKEN, "blog", b"this is not a gzip stream")
        .await;
    assert_problem(refused, 400).await;

    let page = audit(&app, ADMIN_TOKEN, "?action=deploy").await;
    assert_eq!(lines(&page), ["deploy.create site:blog failure"]);
    let detail = page.items[0].detail.clone().unwrap_or_default();
    assert!(detail.contains("archive"), "{detail}");
}

#[tokio::test]
async fn user_and_quota_changes_are_audited_as_the_admins() {
    // Arrange
    let app = TestApp::spawn().await;
    let (id, bob) = app.member_with_id("bob").await;

    // Act
    for disabled in [true, false] {
        let response = app
            .client
            .patch(app.api(&format!("/users/{id}")))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({ "disabled": disabled }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
    }
    let quota = app
        .client
        .put(app.api(&format!("/users/{id}/quota")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "sites": 3 }))
        .send()
        .await
        .expect("request");
    assert_eq!(quota.status(), 200);

    // Assert
    let page = audit(&app, ADMIN_TOKEN, "?actor=admin").await;
    assert_eq!(
        lines(&page),
        [
            "user.create user:bob success",
            "user.disable user:bob success",
            "user.enable user:bob success",
            "quota.set user:bob success",
        ]
    );
    assert!(page.items[0]
        .detail
        .as_deref()
        .is_some_and(|d| d.contains("sites Some(3)")));
    // Bob reads what was done to his account too.
    let bob_sees = audit(&app, &bob, "").await;
    let actions: Vec<&str> = bob_sees.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["quota.set", "user.enable", "user.disable", "user.create"]
    );
}

#[tokio::test]
async fn sign_ins_and_refused_sign_ins_are_audited() {
    let app = TestApp::spawn_with(|config| {
        config.admin.admin_password = Some(hosting_app::config::Secret::from(PASSWORD));
    })
    .await;
    let mut browser = Browser::new(&app);

    let refused = browser.sign_in("admin", "not the password").await;
    assert_eq!(refused.status(), 401);
    let unknown = browser.sign_in("mallory", "whatever it is").await;
    assert_eq!(unknown.status(), 401);
    let signed_in = browser.sign_in("admin", PASSWORD).await;
    assert_eq!(signed_in.status(), 303);

    let page = audit(&app, ADMIN_TOKEN, "?action=session").await;
    assert_eq!(
        lines(&page),
        [
            "session.sign_in user:admin failure",
            "session.sign_in user:mallory failure",
            "session.sign_in user:admin success",
        ]
    );
    let mallory = &page.items[1];
    assert_eq!(
        (mallory.actor.as_str(), mallory.actor_id),
        ("mallory", None)
    );
    assert_eq!(mallory.client_address.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn custom_domain_changes_are_audited() {
    // Arrange: the HTTP-token check fetches the token through the app itself.
    let dns = MockDns::start().await;
    let dns_addr = dns.addr;
    let app = TestApp::spawn_with(move |config| {
        config.domains.verify_http_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.domains.dns_resolver = Some(dns_addr);
    })
    .await;
    app.deploy_archive(ADMIN_TOKEN, "alpha", &[("index.html", b"alpha")])
        .await;

    // Act
    let added = app
        .post(ADMIN_TOKEN, "/sites/alpha/domains")
        .json(&api::AddDomain {
            name: "shop.example.test".into(),
        })
        .send()
        .await
        .expect("add");
    assert_eq!(added.status(), 201);
    let verified = app
        .post(ADMIN_TOKEN, "/sites/alpha/domains/shop.example.test/verify")
        .send()
        .await
        .expect("verify");
    assert_eq!(verified.status(), 200);
    let removed = app
        .client
        .delete(app.api("/sites/alpha/domains/shop.example.test"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("remove");
    assert_eq!(removed.status(), 204);

    // Assert
    let page = audit(&app, ADMIN_TOKEN, "?action=domain").await;
    assert_eq!(
        lines(&page),
        [
            "domain.add domain:shop.example.test success",
            "domain.verify domain:shop.example.test success",
            "domain.remove domain:shop.example.test success",
        ]
    );
}

#[tokio::test]
async fn members_read_only_entries_on_what_they_own_and_admins_read_all() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.member("alice").await;
    let bob = app.member("bob").await;
    app.create_site(&alice, "alpha").await;
    app.create_site(&bob, "bravo").await;
    app.deploy_archive(&bob, "bravo", &[("index.html", b"b")])
        .await;

    // Act
    let alice_sees = audit(&app, &alice, "").await;
    let bob_sees = audit(&app, &bob, "").await;
    let admin_sees = audit(&app, ADMIN_TOKEN, "?action=site").await;
    let alice_asks_for_bob = audit(&app, &alice, "?site=bravo").await;

    // Assert
    let actions = |page: &api::AuditPage| -> Vec<String> {
        page.items.iter().rev().map(|e| e.action.clone()).collect()
    };
    assert_eq!(
        lines(&alice_sees),
        [
            "user.create user:alice success",
            "site.create site:alpha success"
        ]
    );
    assert_eq!(
        actions(&bob_sees),
        [
            "user.create",
            "site.create",
            "deploy.create",
            "deploy.publish"
        ]
    );
    assert_eq!(
        lines(&admin_sees),
        [
            "site.create site:alpha success",
            "site.create site:bravo success"
        ]
    );
    assert!(alice_asks_for_bob.items.is_empty());
    let by_bob = audit(&app, ADMIN_TOKEN, "?actor=bob&action=deploy.publish").await;
    assert_eq!(by_bob.items.len(), 1);
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let since = audit(&app, ADMIN_TOKEN, &format!("?since={later}")).await;
    assert!(since.items.is_empty());
    let until = audit(&app, ADMIN_TOKEN, &format!("?until={later}")).await;
    // The six above, and the first start's `user.create` and `token.create` of admin.
    assert_eq!(until.items.len(), 8, "{:?}", lines(&until));
}

#[tokio::test]
async fn pages_follow_the_cursor_without_gaps_or_repeats() {
    // Arrange
    let app = TestApp::spawn().await;
    for n in 0..7 {
        app.create_site(ADMIN_TOKEN, &format!("site-{n}")).await;
    }
    let everything = audit(&app, ADMIN_TOKEN, "?limit=200").await;

    // Act
    let mut paged = Vec::new();
    let mut query = "?limit=3".to_owned();
    loop {
        let page = audit(&app, ADMIN_TOKEN, &query).await;
        assert!(page.items.len() <= 3);
        paged.extend(page.items);
        match page.next_cursor {
            Some(cursor) => query = format!("?limit=3&cursor={cursor}"),
            None => break,
        }
    }

    // Assert: seven sites, after the first start's two entries (admin and its token)
    assert_eq!(everything.items.len(), 9);
    assert_eq!(paged, everything.items);
    let bad = app
        .get(ADMIN_TOKEN, "/audit?limit=0")
        .send()
        .await
        .expect("request");
    assert_problem(bad, 400).await;
    let bad = app
        .get(ADMIN_TOKEN, "/audit?cursor=x")
        .send()
        .await
        .expect("request");
    assert_problem(bad, 400).await;
}

#[tokio::test]
async fn no_route_edits_or_deletes_an_entry() {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;

    for method in [
        reqwest::Method::DELETE,
        reqwest::Method::PUT,
        reqwest::Method::POST,
        reqwest::Method::PATCH,
    ] {
        let response = app
            .client
            .request(method.clone(), app.api("/audit"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("request");
        assert_problem(response, 405).await;
    }
    let unauthenticated = app
        .client
        .get(app.api("/audit"))
        .send()
        .await
        .expect("request");
    assert_problem(unauthenticated, 401).await;
    assert_eq!(
        audit(&app, ADMIN_TOKEN, "?action=site").await.items.len(),
        1
    );
}

#[tokio::test]
async fn entries_past_the_retention_are_pruned() {
    let app = TestApp::spawn_with(|config| {
        config.events.audit_retention = Duration::from_secs(1);
        config.events.audit_prune_interval = Duration::from_millis(200);
    })
    .await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    assert_eq!(
        audit(&app, ADMIN_TOKEN, "?action=site").await.items.len(),
        1
    );

    let started = Instant::now();
    while !audit(&app, ADMIN_TOKEN, "").await.items.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(20), "never pruned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_dashboard_shows_the_audit_log_and_manages_a_sites_webhooks() {
    // Arrange
    let app = TestApp::spawn_with(|config| {
        config.admin.admin_password = Some(hosting_app::config::Secret::from(PASSWORD));
    })
    .await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let mut browser = Browser::new(&app);
    assert_eq!(browser.sign_in("admin", PASSWORD).await.status(), 303);

    // Act: add a webhook from the site's webhook page
    let csrf = browser.csrf("/sites/blog/webhooks").await;
    let added = browser
        .post(
            "/sites/blog/webhooks",
            &[("csrf", &csrf), ("url", "https://hooks.example.com/blog")],
        )
        .await;

    // Assert: the secret is shown once, the log page lists the changes, escaped
    assert_eq!(added.status(), 201);
    let page = added.text().await.expect("page");
    assert!(page.contains("whsec_"), "{page}");
    let listed = browser
        .get("/sites/blog/webhooks")
        .await
        .text()
        .await
        .expect("page");
    assert!(listed.contains("https://hooks.example.com/blog") && !listed.contains("whsec_"));
    let log = browser.get("/audit?action=webhook").await;
    assert_eq!(log.status(), 200);
    let log = log.text().await.expect("page");
    assert!(
        log.contains("webhook.add") && !log.contains("site.create"),
        "{log}"
    );
    let all = browser.get("/audit").await.text().await.expect("page");
    assert!(all.contains("session.sign_in") && all.contains("site.create"));
}

/// The entries' `actor action target outcome` lines, oldest first.
fn by_actor(page: &api::AuditPage) -> Vec<String> {
    page.items
        .iter()
        .rev()
        .map(|e| format!("{} {} {} {}", e.actor, e.action, e.target, e.outcome))
        .collect()
}

#[tokio::test]
async fn the_first_admin_and_the_operators_commands_are_audited() {
    // Arrange: the first start created `admin` and its bootstrap token
    let app = TestApp::spawn().await;

    // Act: the operator issues a token and sets a password at the command line
    hosting_app::admin::issue_token(&app.config, "admin", "recovery")
        .await
        .expect("a token");
    hosting_app::admin::set_password(&app.config, "admin", "correct horse battery")
        .await
        .expect("the password is set");

    // Assert
    let page = audit(&app, ADMIN_TOKEN, "").await;
    let lines = by_actor(&page);
    let tokens: Vec<i64> = page
        .items
        .iter()
        .rev()
        .filter(|e| e.action == "token.create")
        .filter_map(|e| e.target.strip_prefix("token:")?.parse().ok())
        .collect();
    assert_eq!(tokens.len(), 2, "{lines:?}");
    assert_eq!(
        lines,
        [
            "system user.create user:admin success".to_owned(),
            format!("system token.create token:{} success", tokens[0]),
            format!("operator token.create token:{} success", tokens[1]),
            "operator user.password user:admin success".to_owned(),
        ]
    );
    for entry in &page.items {
        assert_eq!(
            (entry.actor_id, entry.client_address.as_deref()),
            (None, None)
        );
    }
    assert_eq!(
        page.items[1].detail.as_deref(),
        Some("name \"recovery\""),
        "the token's name"
    );
}

#[tokio::test]
async fn password_changes_and_sign_outs_are_audited() {
    // Arrange: an admin and a member, both signed in to the dashboard
    let app = TestApp::spawn_with(|config| {
        config.admin.admin_password = Some(hosting_app::config::Secret::from(PASSWORD));
    })
    .await;
    let (id, _) = app.member_with_id("dana").await;
    let mut admin = Browser::new(&app);
    assert_eq!(admin.sign_in("admin", PASSWORD).await.status(), 303);

    // Act: the admin sets dana's password; dana changes it (once with a wrong current
    // one) and signs out
    let csrf = admin.csrf("/admin/users").await;
    let set = admin
        .post(
            &format!("/admin/users/{id}/password"),
            &[("csrf", &csrf), ("password", "dana's first password")],
        )
        .await;
    assert_eq!(set.status(), 303);
    let mut dana = Browser::new(&app);
    assert_eq!(
        dana.sign_in("dana", "dana's first password").await.status(),
        303
    );
    let csrf = dana.csrf("/account").await;
    let change = |current: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("current", current.to_owned()),
            ("new", "a new password 1".to_owned()),
            ("confirm", "a new password 1".to_owned()),
        ]
    };
    let form = change("not my password");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(dana.post("/account/password", &form).await.status(), 401);
    let form = change("dana's first password");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(dana.post("/account/password", &form).await.status(), 303);
    let csrf = dana.csrf("/account").await;
    assert_eq!(dana.post("/logout", &[("csrf", &csrf)]).await.status(), 303);

    // Assert
    let page = audit(&app, ADMIN_TOKEN, "?actor=dana").await;
    assert_eq!(
        by_actor(&page),
        [
            "dana session.sign_in user:dana success",
            "dana user.password user:dana failure",
            "dana user.password user:dana success",
            "dana session.sign_out user:dana success",
        ]
    );
    assert_eq!(
        page.items[2].detail.as_deref(),
        Some("wrong current password")
    );
    let page = audit(&app, ADMIN_TOKEN, "?actor=admin&action=user.password").await;
    assert_eq!(by_actor(&page), ["admin user.password user:dana success"]);
    assert_eq!(page.items[0].client_address.as_deref(), Some("127.0.0.1"));
}

/// An uncompressed tar of `(entry name, bytes)`: a bulk upload's body.
fn batch(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, *bytes)
            .expect("tar entry");
    }
    builder.into_inner().expect("tar")
}

#[tokio::test]
async fn every_way_a_deploy_fails_is_audited_as_a_failure() {
    // Arrange: deploys expire at once when garbage collection runs
    let app =
        TestApp::spawn_with(|c| c.limits.deploy_expiry = std::time::Duration::from_secs(0)).await;
    let member = app.member("erin").await;
    app.create_site(&member, "blog").await;
    let missing: &[u8] = b"never uploaded";

    // Act: a refused file list, a publish before the files, a refused upload batch, and
    // the deploy abandoned until it expires
    let refused = app
        .post(&member, "/sites/blog/deploys")
        .json(&serde_json::json!({ "files": { "/index.html": "not a digest" } }))
        .send()
        .await
        .expect("request");
    assert_problem(refused, 422).await;
    let created =
        crate::deploys::create_digest(&app, &member, "blog", &[("/index.html", missing)]).await;
    let id = created.deploy.id.as_str();
    assert_problem(crate::deploys::publish(&app, &member, id).await, 409).await;
    let digest = crate::helpers::sha256_hex(missing);
    let bad = app
        .post(&member, &format!("/deploys/{id}/files"))
        .header("content-type", "application/x-tar")
        .body(batch(&[(digest.as_str(), b"other bytes")]))
        .send()
        .await
        .expect("bulk upload");
    assert_problem(bad, 422).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = hosting_app::gc::run_once(&app.state).await.expect("gc");
    assert_eq!(report.expired_deploys, 1);

    // Assert
    let page = audit(&app, &member, "?action=deploy").await;
    assert_eq!(
        by_actor(&page),
        [
            "erin deploy.create site:blog failure".to_owned(),
            format!("erin deploy.create deploy:{id} success"),
            format!("erin deploy.publish deploy:{id} failure"),
            format!("erin deploy.upload deploy:{id} failure"),
            format!("system deploy.expire deploy:{id} failure"),
        ]
    );
    let details: Vec<String> = page
        .items
        .iter()
        .rev()
        .map(|e| e.detail.clone().unwrap_or_default())
        .collect();
    assert!(details[0].contains("/index.html"), "{details:?}");
    assert!(details[2].contains("waiting for 1 file"), "{details:?}");
    assert!(details[3].contains(&digest), "{details:?}");
    assert!(details[4].contains("abandoned"), "{details:?}");
    for entry in &page.items {
        assert_eq!(entry.site.as_deref(), Some("blog"), "{entry:?}");
    }
}
