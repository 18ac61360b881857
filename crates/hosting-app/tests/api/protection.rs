//! Protected sites (visitor access): a password in front of a whole site or only its
//! previews and aliases, the sign-in page on the site's host, the signed host-only
//! cookie, the rate limit, and headers that keep shared caches from storing anything.

use hosting_api as api;
use reqwest::header::{CACHE_CONTROL, LOCATION, SET_COOKIE, VARY};

use crate::dashboard::{Browser, PASSWORD as ADMIN_PASSWORD};
use crate::helpers::{assert_problem, targz, TestApp, ADMIN_TOKEN};

const PASSWORD: &str = "correct horse";
const LOGIN: &str = "/.hosting/visitor-login";

async fn protect(app: &TestApp, token: &str, site: &str, scope: &str) -> reqwest::Response {
    app.client
        .put(app.api(&format!("/sites/{site}/protection")))
        .bearer_auth(token)
        .json(&serde_json::json!({"password": PASSWORD, "scope": scope}))
        .send()
        .await
        .expect("request")
}

/// A site `blog` with a live deploy and an alias `staging` on a second deploy.
async fn blog_with_alias(app: &TestApp) {
    app.create_site(ADMIN_TOKEN, "blog").await;
    app.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"live")])
        .await;
    let response = app
        .post(ADMIN_TOKEN, "/sites/blog/deploys?publish=false")
        .header("content-type", "application/gzip")
        .body(targz(&[("index.html", b"staging")]))
        .send()
        .await
        .expect("request");
    let deploy: api::Deploy = response.json().await.expect("deploy");
    let response = app
        .client
        .put(app.api("/sites/blog/aliases/staging"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&api::SetAlias {
            deploy_id: deploy.id,
        })
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
}

async fn sign_in(
    app: &TestApp,
    host: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("http://{}{LOGIN}", app.addr))
        .header("host", host)
        .form(&[("password", password), ("next", "/docs/?a=b")]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request")
}

/// The `name=value` part of the response's visitor cookie.
fn visitor_cookie(response: &reqwest::Response) -> String {
    let set = response
        .headers()
        .get(SET_COOKIE)
        .expect("a cookie is set")
        .to_str()
        .expect("ascii");
    set.split(';').next().expect("name=value").to_owned()
}

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    response
        .headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().expect("ascii"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn assert_private(response: &reqwest::Response) {
    assert_eq!(header(response, CACHE_CONTROL), "private, no-store");
    assert!(
        header(response, VARY).contains("Cookie"),
        "{:?}",
        response.headers()
    );
}

#[tokio::test]
async fn a_protected_site_asks_every_path_the_same_and_serves_after_sign_in() {
    let app = TestApp::spawn().await;
    blog_with_alias(&app).await;
    // Cached as public before the protection: the change must reach the host cache.
    assert_eq!(app.site("blog.localhost", "/", &[]).await.status(), 200);

    let response = protect(&app, ADMIN_TOKEN, "blog", "all").await;
    assert_eq!(response.status(), 200);
    let view: api::Protection = response.json().await.expect("protection");
    assert!(view.protected);
    assert_eq!(view.scope, api::ProtectionScope::All);

    let existing = app.site("blog.localhost", "/", &[]).await;
    let missing = app.site("blog.localhost", "/no/such/page", &[]).await;
    assert_eq!(existing.status(), 401);
    assert_eq!(missing.status(), 401);
    assert_private(&existing);
    assert_private(&missing);
    let existing = existing.text().await.expect("body");
    let missing = missing.text().await.expect("body");
    // The same page but for where it returns to after signing in.
    assert_eq!(
        existing.replace("value=\"/\"", "value=\"/no/such/page\""),
        missing
    );
    assert!(!existing.contains("live"));

    let wrong = sign_in(&app, "blog.localhost", "not the password", &[]).await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    assert!(wrong.text().await.expect("body").contains("Wrong password"));

    let right = sign_in(&app, "blog.localhost", PASSWORD, &[]).await;
    assert_eq!(right.status(), 303);
    assert_eq!(header(&right, LOCATION), "/docs/?a=b");
    let set_cookie = header(&right, SET_COOKIE);
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    assert!(
        !set_cookie.to_ascii_lowercase().contains("domain="),
        "{set_cookie}"
    );
    let cookie = visitor_cookie(&right);

    let served = app
        .site("blog.localhost", "/", &[("cookie", &cookie)])
        .await;
    assert_eq!(served.status(), 200);
    assert_private(&served);
    assert_eq!(served.text().await.expect("body"), "live");
    let absent = app
        .site("blog.localhost", "/no/such/page", &[("cookie", &cookie)])
        .await;
    assert_eq!(absent.status(), 404);
    // The cookie of one host is refused on every other host of the site.
    let alias = app
        .site("staging--blog.localhost", "/", &[("cookie", &cookie)])
        .await;
    assert_eq!(alias.status(), 401);
    // A tampered cookie is as good as none.
    let tampered = format!("{}0", cookie.trim_end_matches(char::is_alphanumeric));
    let forged = app
        .site("blog.localhost", "/", &[("cookie", &tampered)])
        .await;
    assert_eq!(forged.status(), 401);
}

#[tokio::test]
async fn previews_scope_protects_aliases_and_previews_but_not_the_live_site() {
    let app = TestApp::spawn().await;
    blog_with_alias(&app).await;

    assert_eq!(
        protect(&app, ADMIN_TOKEN, "blog", "previews")
            .await
            .status(),
        200
    );

    let live = app.site("blog.localhost", "/", &[]).await;
    assert_eq!(live.status(), 200);
    assert_ne!(header(&live, CACHE_CONTROL), "private, no-store");
    assert_eq!(live.text().await.expect("body"), "live");
    let alias = app.site("staging--blog.localhost", "/", &[]).await;
    assert_eq!(alias.status(), 401);
    assert_private(&alias);
    let signed_in = sign_in(&app, "staging--blog.localhost", PASSWORD, &[]).await;
    let cookie = visitor_cookie(&signed_in);
    let alias = app
        .site("staging--blog.localhost", "/", &[("cookie", &cookie)])
        .await;
    assert_eq!(alias.status(), 200);
    assert_eq!(alias.text().await.expect("body"), "staging");
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_client() {
    let app = TestApp::spawn().await;
    blog_with_alias(&app).await;
    protect(&app, ADMIN_TOKEN, "blog", "all").await;

    // 10 attempts a minute in fixed windows: within 21 attempts one window overflows,
    // even when the attempts straddle a window boundary.
    let mut limited = false;
    for _ in 0..21 {
        let status = sign_in(&app, "blog.localhost", "guess", &[]).await.status();
        if status == 429 {
            limited = true;
            break;
        }
        assert_eq!(status, 401);
    }
    assert!(limited, "sign-in attempts were never limited");
    let limited = sign_in(&app, "blog.localhost", PASSWORD, &[]).await;

    assert_eq!(limited.status(), 429);
    assert!(limited.headers().get("retry-after").is_some());
    assert!(limited.headers().get(SET_COOKIE).is_none());
    assert_private(&limited);
}

#[tokio::test]
async fn the_cookie_is_secure_when_a_proxy_says_the_request_came_over_tls() {
    let app = TestApp::spawn().await;
    blog_with_alias(&app).await;
    protect(&app, ADMIN_TOKEN, "blog", "all").await;

    let response = sign_in(
        &app,
        "blog.localhost",
        PASSWORD,
        &[("x-forwarded-proto", "https")],
    )
    .await;

    assert_eq!(response.status(), 303);
    assert!(header(&response, SET_COOKIE).contains("Secure"));
}

#[tokio::test]
async fn a_new_password_signs_visitors_out_and_removal_makes_the_site_public() {
    let app = TestApp::spawn().await;
    blog_with_alias(&app).await;
    protect(&app, ADMIN_TOKEN, "blog", "all").await;
    let cookie = visitor_cookie(&sign_in(&app, "blog.localhost", PASSWORD, &[]).await);

    protect(&app, ADMIN_TOKEN, "blog", "all").await;
    let after_change = app
        .site("blog.localhost", "/", &[("cookie", &cookie)])
        .await;
    let removed = app
        .client
        .delete(app.api("/sites/blog/protection"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    let public = app.site("blog.localhost", "/", &[]).await;
    let view: api::Protection = app
        .get(ADMIN_TOKEN, "/sites/blog/protection")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("protection");

    assert_eq!(after_change.status(), 401);
    assert_eq!(removed.status(), 204);
    assert_eq!(public.status(), 200);
    assert!(!view.protected);
}

#[tokio::test]
async fn protection_needs_a_long_enough_password_and_the_sites_owner() {
    let app = TestApp::spawn().await;
    blog_with_alias(&app).await;
    let member = app.member("mallory").await;

    let short = app
        .client
        .put(app.api("/sites/blog/protection"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"password": "short"}))
        .send()
        .await
        .expect("request");
    let foreign = protect(&app, &member, "blog", "all").await;
    let foreign_removal = app
        .client
        .delete(app.api("/sites/blog/protection"))
        .bearer_auth(&member)
        .send()
        .await
        .expect("request");

    assert_problem(short, 422).await;
    assert_problem(foreign, 404).await;
    assert_problem(foreign_removal, 404).await;
    assert_eq!(app.site("blog.localhost", "/", &[]).await.status(), 200);
}

#[tokio::test]
async fn the_site_page_lists_aliases_with_links_and_sets_and_removes_protection() {
    let app = TestApp::spawn_with(|config| {
        config.admin.admin_password = Some(hosting_app::config::Secret::from(ADMIN_PASSWORD));
    })
    .await;
    blog_with_alias(&app).await;
    let mut browser = Browser::new(&app);
    browser.sign_in("admin", ADMIN_PASSWORD).await;
    let csrf = browser.csrf("/sites/blog").await;

    let page = browser.get("/sites/blog").await.text().await.expect("page");
    let protected = browser
        .post(
            "/sites/blog/protection",
            &[
                ("csrf", &csrf),
                ("password", PASSWORD),
                ("scope", "previews"),
            ],
        )
        .await;
    let asks = app.site("staging--blog.localhost", "/", &[]).await.status();
    let after = browser.get("/sites/blog").await.text().await.expect("page");
    let removed_protection = browser
        .post("/sites/blog/protection/remove", &[("csrf", &csrf)])
        .await;
    let removed_alias = browser
        .post("/sites/blog/aliases/staging/remove", &[("csrf", &csrf)])
        .await;

    assert!(
        page.contains("href=\"http://staging--blog.localhost"),
        "{page}"
    );
    assert_eq!(protected.status(), 303);
    assert_eq!(asks, 401);
    assert!(
        after.contains("previews and aliases need the password"),
        "{after}"
    );
    assert_eq!(removed_protection.status(), 303);
    assert_eq!(removed_alias.status(), 303);
    assert_eq!(app.site("blog.localhost", "/", &[]).await.status(), 200);
    assert_eq!(
        app.site("staging--blog.localhost", "/", &[]).await.status(),
        404
    );
}
