//! Per-user quotas: stored bytes, sites and deploys per hour refused with a 403
//! `quota-exceeded` problem naming the quota, nothing partial left behind, admin
//! overrides, and usage in `whoami`.

use hosting_api as api;

use crate::helpers::{sha256_hex, targz, TestApp, ADMIN_TOKEN};

/// Asserts a 403 quota problem for `quota` and returns it.
async fn assert_quota_problem(
    response: reqwest::Response,
    quota: api::QuotaKind,
) -> api::QuotaProblem {
    assert_eq!(response.status(), 403, "expected a quota refusal");
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let problem: api::QuotaProblem = response.json().await.expect("quota problem json");
    assert_eq!(problem.problem.kind, "/problems/quota-exceeded");
    assert_eq!(problem.problem.status, 403);
    assert_eq!(problem.quota, quota);
    let detail = problem.problem.detail.clone().unwrap_or_default();
    assert!(detail.contains(&problem.used.to_string()), "{detail}");
    problem
}

async fn whoami(app: &TestApp, token: &str) -> api::WhoAmI {
    let response = app.get(token, "/whoami").send().await.expect("request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("whoami json")
}

async fn deploy_count(app: &TestApp, token: &str, site: &str) -> usize {
    let response = app
        .get(token, &format!("/sites/{site}/deploys"))
        .send()
        .await
        .expect("request");
    let list: api::List<api::Deploy> = response.json().await.expect("json");
    list.items.len()
}

async fn page_text(app: &TestApp, site: &str) -> String {
    let response = app.site(&format!("{site}.localhost"), "/", &[]).await;
    assert_eq!(response.status(), 200);
    response.text().await.expect("body")
}

fn page(fill: u8, len: usize) -> Vec<u8> {
    vec![fill; len]
}

#[tokio::test]
async fn a_member_over_the_sites_quota_is_refused_with_the_limit_and_usage() {
    let app = TestApp::spawn_with(|c| c.quotas.quota_sites = 2).await;
    let (_, token) = app.member_with_id("alice").await;
    app.create_site(&token, "one").await;
    app.create_site(&token, "two").await;

    let response = app
        .post(&token, "/sites")
        .json(&api::CreateSite {
            name: "three".into(),
        })
        .send()
        .await
        .expect("request");

    let problem = assert_quota_problem(response, api::QuotaKind::Sites).await;
    assert_eq!((problem.limit, problem.used), (2, 2));
    let response = app
        .get(&token, "/sites/three")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404, "the refused site was not created");
}

#[tokio::test]
async fn concurrent_site_creations_never_pass_the_sites_quota() {
    let app = TestApp::spawn_with(|c| c.quotas.quota_sites = 3).await;
    let (_, token) = app.member_with_id("alice").await;

    let attempts = (0..12).map(|i| {
        app.post(&token, "/sites")
            .json(&api::CreateSite {
                name: format!("site-{i}"),
            })
            .send()
    });
    let responses = futures::future::join_all(attempts).await;

    let statuses: Vec<u16> = responses
        .iter()
        .map(|r| r.as_ref().expect("request").status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 403).count(),
        9,
        "{statuses:?}"
    );
    assert_eq!(whoami(&app, &token).await.quota.sites.used, 3);
}

#[tokio::test]
async fn the_deploys_per_hour_quota_refuses_the_next_deploy_and_keeps_the_live_one() {
    let app = TestApp::spawn_with(|c| c.quotas.quota_deploys_per_hour = 2).await;
    let (_, token) = app.member_with_id("alice").await;
    app.create_site(&token, "blog").await;
    app.deploy_archive(&token, "blog", &[("index.html", b"first")])
        .await;
    app.deploy_archive(&token, "blog", &[("index.html", b"second")])
        .await;

    let archive = app
        .post_archive(&token, "blog", &targz(&[("index.html", b"third")]))
        .await;
    let problem = assert_quota_problem(archive, api::QuotaKind::DeploysPerHour).await;
    assert_eq!((problem.limit, problem.used), (2, 2));
    let digest =
        super::deploys::post_manifest(&app, &token, "blog", &[("/index.html", b"fourth")], None)
            .await;
    assert_quota_problem(digest, api::QuotaKind::DeploysPerHour).await;

    assert_eq!(
        deploy_count(&app, &token, "blog").await,
        2,
        "nothing recorded"
    );
    assert_eq!(
        page_text(&app, "blog").await,
        "second",
        "live site untouched"
    );
}

#[tokio::test]
async fn an_archive_over_the_storage_quota_is_refused_and_the_live_site_is_untouched() {
    let app = TestApp::spawn_with(|c| c.quotas.quota_storage_bytes = api::ByteSize(1000)).await;
    let (_, token) = app.member_with_id("alice").await;
    app.create_site(&token, "blog").await;
    let first = page(b'a', 600);
    app.deploy_archive(&token, "blog", &[("index.html", &first)])
        .await;

    let second = page(b'b', 600);
    let response = app
        .post_archive(&token, "blog", &targz(&[("index.html", &second)]))
        .await;

    let problem = assert_quota_problem(response, api::QuotaKind::StorageBytes).await;
    assert_eq!((problem.limit, problem.used), (1000, 600));
    assert_eq!(
        deploy_count(&app, &token, "blog").await,
        1,
        "nothing recorded"
    );
    assert_eq!(page_text(&app, "blog").await.as_bytes(), first.as_slice());
    assert!(
        !app.blob_stored(&sha256_hex(&second)).await,
        "the refused file never reached the blob store"
    );
    assert_eq!(whoami(&app, &token).await.quota.storage_bytes.used, 600);

    // A redeploy of what the account stores already adds nothing, so it is admitted.
    app.deploy_archive(
        &token,
        "blog",
        &[("index.html", &first), ("copy.html", &first)],
    )
    .await;
    assert_eq!(whoami(&app, &token).await.quota.storage_bytes.used, 600);
}

#[tokio::test]
async fn a_digest_upload_over_the_storage_quota_is_refused_before_it_is_stored() {
    let app = TestApp::spawn_with(|c| c.quotas.quota_storage_bytes = api::ByteSize(1000)).await;
    let (_, token) = app.member_with_id("alice").await;
    app.create_site(&token, "blog").await;
    let (a, b) = (page(b'a', 700), page(b'b', 700));
    let files: [(&str, &[u8]); 2] = [("/a.html", &a), ("/b.html", &b)];
    let created = super::deploys::create_digest(&app, &token, "blog", &files).await;
    let id = created.deploy.id.clone();

    let first = super::deploys::upload(&app, &token, &id, &sha256_hex(&a), &a).await;
    assert_eq!(first.status(), 204);
    let second = super::deploys::upload(&app, &token, &id, &sha256_hex(&b), &b).await;

    let problem = assert_quota_problem(second, api::QuotaKind::StorageBytes).await;
    assert_eq!((problem.limit, problem.used), (1000, 700));
    assert!(
        !app.blob_stored(&sha256_hex(&b)).await,
        "refused bytes are not stored"
    );
    let publish = super::deploys::publish(&app, &token, &id).await;
    assert_eq!(
        publish.status(),
        409,
        "the incomplete deploy cannot go live"
    );
    let response = app.site("blog.localhost", "/a.html", &[]).await;
    assert_eq!(response.status(), 404, "nothing was published");
    assert_eq!(whoami(&app, &token).await.quota.storage_bytes.used, 700);
}

#[tokio::test]
async fn deleting_a_site_gives_its_storage_back() {
    let app = TestApp::spawn_with(|c| c.quotas.quota_storage_bytes = api::ByteSize(1000)).await;
    let (_, token) = app.member_with_id("alice").await;
    app.create_site(&token, "blog").await;
    app.deploy_archive(&token, "blog", &[("index.html", &page(b'a', 600))])
        .await;

    let response = app
        .client
        .delete(app.api("/sites/blog"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 204);

    assert_eq!(whoami(&app, &token).await.quota.storage_bytes.used, 0);
    app.create_site(&token, "docs").await;
    app.deploy_archive(&token, "docs", &[("index.html", &page(b'b', 900))])
        .await;
}

#[tokio::test]
async fn an_admin_override_raises_a_limit_and_null_restores_the_default() {
    let app = TestApp::spawn_with(|c| c.quotas.quota_sites = 1).await;
    let (id, token) = app.member_with_id("alice").await;
    app.create_site(&token, "one").await;
    let refused = app
        .post(&token, "/sites")
        .json(&api::CreateSite { name: "two".into() })
        .send()
        .await
        .expect("request");
    assert_quota_problem(refused, api::QuotaKind::Sites).await;

    let response = app
        .client
        .put(app.api(&format!("/users/{id}/quota")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&api::SetQuota {
            sites: Some(3),
            ..api::SetQuota::default()
        })
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let quota: api::Quota = response.json().await.expect("json");
    assert_eq!(
        quota.sites,
        api::QuotaItem {
            used: 1,
            limit: Some(3),
            overridden: true
        }
    );

    app.create_site(&token, "two").await;
    let response = app
        .client
        .put(app.api(&format!("/users/{id}/quota")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&api::SetQuota::default())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let quota = whoami(&app, &token).await.quota;
    assert_eq!(
        (quota.sites.limit, quota.sites.overridden),
        (Some(1), false)
    );
}

#[tokio::test]
async fn a_member_cannot_read_or_change_their_own_quota() {
    let app = TestApp::spawn_with(|c| c.quotas.quota_sites = 1).await;
    let (id, token) = app.member_with_id("alice").await;

    let put = app
        .client
        .put(app.api(&format!("/users/{id}/quota")))
        .bearer_auth(&token)
        .json(&api::SetQuota {
            sites: Some(0),
            ..api::SetQuota::default()
        })
        .send()
        .await
        .expect("request");
    let get = app
        .get(&token, &format!("/users/{id}/quota"))
        .send()
        .await
        .expect("request");

    crate::helpers::assert_problem(put, 403).await;
    crate::helpers::assert_problem(get, 403).await;
    assert_eq!(whoami(&app, &token).await.quota.sites.limit, Some(1));
}

#[tokio::test]
async fn whoami_shows_usage_and_the_limits_that_apply() {
    let app = TestApp::spawn_with(|c| {
        c.quotas.quota_storage_bytes = api::ByteSize(1 << 20);
        c.quotas.quota_sites = 5;
        c.quotas.quota_deploys_per_hour = 0;
    })
    .await;
    let (_, token) = app.member_with_id("alice").await;
    app.create_site(&token, "blog").await;
    let (a, b) = (page(b'a', 300), page(b'b', 200));
    app.deploy_archive(
        &token,
        "blog",
        &[("a.html", &a), ("b.html", &b), ("c.html", &a)],
    )
    .await;

    let me = whoami(&app, &token).await;

    assert_eq!(me.user.username, "alice");
    let item = |used, limit| api::QuotaItem {
        used,
        limit,
        overridden: false,
    };
    assert_eq!(
        me.quota.storage_bytes,
        item(500, Some(1 << 20)),
        "distinct files count once"
    );
    assert_eq!(me.quota.sites, item(1, Some(5)));
    assert_eq!(me.quota.deploys_per_hour, item(1, None), "0 is unlimited");
    let admin = whoami(&app, ADMIN_TOKEN).await;
    assert_eq!(
        admin.quota.sites.limit, None,
        "platform defaults spare admins"
    );
}

#[tokio::test]
async fn an_admin_sets_a_quota_on_the_users_page_and_the_member_sees_usage_on_the_sites_page() {
    use super::dashboard::{Browser, PASSWORD};
    let app = TestApp::spawn_with(|c| {
        c.admin.admin_password = Some(hosting_app::config::Secret::from(PASSWORD));
        c.quotas.quota_sites = 5;
    })
    .await;
    let response = app
        .post(ADMIN_TOKEN, "/users")
        .json(&api::CreateUser {
            username: "alice".into(),
            role: None,
            password: Some(PASSWORD.into()),
        })
        .send()
        .await
        .expect("request");
    let created: api::CreatedUser = response.json().await.expect("json");
    let (id, token) = (created.user.id, created.token.secret);
    let mut admin = Browser::new(&app);
    assert_eq!(admin.sign_in("admin", PASSWORD).await.status(), 303);
    let action = format!("/admin/users/{id}/quota");

    let csrf = admin.csrf("/admin/users").await;
    let bad = admin
        .post(&action, &[("csrf", &csrf), ("sites", "lots")])
        .await;
    assert_eq!(bad.status(), 422);
    let csrf = admin.csrf("/admin/users").await;
    let set = admin
        .post(
            &action,
            &[
                ("csrf", &csrf),
                ("storage", "1GiB"),
                ("sites", "3"),
                ("deploys_per_hour", ""),
            ],
        )
        .await;

    assert_eq!(set.status(), 303);
    let quota = whoami(&app, &token).await.quota;
    assert_eq!(
        (quota.storage_bytes.limit, quota.storage_bytes.overridden),
        (Some(1 << 30), true)
    );
    assert_eq!((quota.sites.limit, quota.sites.overridden), (Some(3), true));
    assert_eq!(
        (
            quota.deploys_per_hour.limit,
            quota.deploys_per_hour.overridden
        ),
        (Some(100), false)
    );
    let users_page = admin.get("/admin/users").await.text().await.expect("page");
    assert!(
        users_page.contains("0 / 3 *"),
        "the users page shows the override"
    );
    app.create_site(&token, "blog").await;
    let mut member = Browser::new(&app);
    assert_eq!(member.sign_in("alice", PASSWORD).await.status(), 303);
    let sites_page = member.get("/sites").await.text().await.expect("page");
    assert!(sites_page.contains("data-quota=\"Sites\""), "{sites_page}");
    assert!(
        sites_page.contains("1 of 3"),
        "the sites page shows the usage"
    );
}
