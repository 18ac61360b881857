//! The web dashboard over real HTTP: sign-in and sign-out, session rotation, CSRF
//! refusals, the sign-in rate limit, the pages, and the API accepting a browser session
//! only with its CSRF header. (Redis down failing closed is a cluster-only test.)

use std::collections::BTreeMap;

use hosting_api as api;

use crate::helpers::{sha256_hex, TestApp, ADMIN_TOKEN};

pub(crate) const PASSWORD: &str = "correct horse battery";

/// A minimal browser: keeps cookies by name, sends them back, never follows redirects.
pub(crate) struct Browser<'a> {
    app: &'a TestApp,
    cookies: BTreeMap<String, String>,
}

impl<'a> Browser<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Browser<'a> {
        Browser {
            app,
            cookies: BTreeMap::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.app.addr.port())
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().expect("ascii cookie");
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if value.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> reqwest::Response {
        let response = self
            .app
            .client
            .get(self.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("request");
        self.keep_cookies(&response);
        response
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let response = self
            .app
            .client
            .post(self.url(path))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("request");
        self.keep_cookies(&response);
        response
    }

    /// GETs `path` and returns the CSRF token of its first form.
    pub(crate) async fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path).await.text().await.expect("page");
        csrf_in(&page)
    }

    pub(crate) async fn sign_in(&mut self, username: &str, password: &str) -> reqwest::Response {
        let csrf = self.csrf("/login").await;
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }
}

fn csrf_in(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a csrf field") + marker.len();
    let end = start + page[start..].find('"').expect("end of value");
    page[start..end].to_owned()
}

fn location(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// An app whose admin has a dashboard password.
async fn app_with_password() -> TestApp {
    TestApp::spawn_with(|config| {
        config.admin.admin_password = Some(hosting_app::config::Secret::from(PASSWORD));
    })
    .await
}

#[tokio::test]
async fn the_admin_signs_in_with_the_configured_password_and_signs_out() {
    let app = app_with_password().await;
    let mut browser = Browser::new(&app);
    let response = browser.get("/sites").await;
    assert_eq!(response.status(), 303);
    assert!(location(&response).starts_with("/login"));

    let response = browser.sign_in("admin", PASSWORD).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/sites");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .find(|c| c.starts_with("hosting_session="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    let response = browser.get("/sites").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store, private")
    );
    let page = response.text().await.expect("page");
    assert!(page.contains("Sign out") && page.contains("admin"));

    let csrf = csrf_in(&page);
    let stolen = browser.cookies.clone();
    let response = browser.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/login?signed_out=1");
    // The session is gone server-side: replaying the old cookie is signed out.
    browser.cookies = stolen;
    assert_eq!(browser.get("/sites").await.status(), 303);
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_is_refused_alike() {
    let app = app_with_password().await;
    let mut browser = Browser::new(&app);
    let wrong = browser.sign_in("admin", "not the password").await;
    assert_eq!(wrong.status(), 401);
    let wrong_text = wrong.text().await.expect("page");
    assert!(wrong_text.contains("Wrong user name or password"));
    let unknown = browser.sign_in("nobody", PASSWORD).await;
    assert_eq!(unknown.status(), 401);
    assert!(!browser.cookies.contains_key("hosting_session"));
    // A user without a password cannot sign in with an empty one.
    app.member("carol").await;
    assert_eq!(browser.sign_in("carol", "").await.status(), 401);
}

#[tokio::test]
async fn signing_in_rotates_the_session() {
    let app = app_with_password().await;
    let mut browser = Browser::new(&app);
    assert_eq!(browser.sign_in("admin", PASSWORD).await.status(), 303);
    let first = browser.cookies["hosting_session"].clone();
    // Signing in again while signed in (the sign-in form's double-submit token is any
    // value the cookie and the field agree on).
    browser
        .cookies
        .insert("hosting_login".into(), "again".into());
    let response = browser
        .post(
            "/login",
            &[
                ("csrf", "again"),
                ("username", "admin"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let second = browser.cookies["hosting_session"].clone();
    assert_ne!(first, second);
    let mut old = Browser::new(&app);
    old.cookies.insert("hosting_session".into(), first);
    assert_eq!(
        old.get("/sites").await.status(),
        303,
        "the old session ended"
    );
    assert_eq!(browser.get("/sites").await.status(), 200);
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_are_refused() {
    let app = app_with_password().await;
    let mut browser = Browser::new(&app);
    browser.sign_in("admin", PASSWORD).await;
    let missing = browser.post("/sites", &[("name", "blog")]).await;
    assert_eq!(missing.status(), 403);
    let wrong = browser
        .post("/sites", &[("name", "blog"), ("csrf", "forged")])
        .await;
    assert_eq!(wrong.status(), 403);
    // A cross-site Origin is refused even with the token.
    let csrf = browser.csrf("/sites").await;
    let cross = app
        .client
        .post(browser.url("/sites"))
        .header("cookie", browser.cookie_header())
        .header("origin", "http://evil.example")
        .form(&[("name", "blog"), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("request");
    assert_eq!(cross.status(), 403);
    let sites = app.get(ADMIN_TOKEN, "/sites").send().await.expect("list");
    let sites: api::List<api::Site> = sites.json().await.expect("json");
    assert!(sites.items.is_empty(), "no site was created");
    // The sign-in form needs its double-submit token too.
    let mut fresh = Browser::new(&app);
    let response = fresh
        .post("/login", &[("username", "admin"), ("password", PASSWORD)])
        .await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_user() {
    let app = app_with_password().await;
    let mut browser = Browser::new(&app);
    // 10 attempts a minute in fixed windows: within 21 attempts one window overflows,
    // even when the attempts straddle a window boundary.
    let mut limited = false;
    for _ in 0..21 {
        let status = browser.sign_in("admin", "wrong password!").await.status();
        if status == 429 {
            limited = true;
            break;
        }
        assert_eq!(status, 401);
    }
    assert!(limited, "sign-in attempts were never limited");
    // Now even the right password is refused, and no session is started.
    let refused = browser.sign_in("admin", PASSWORD).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(!browser.cookies.contains_key("hosting_session"));
}

#[tokio::test]
async fn sites_are_created_deployed_rolled_back_and_deleted_from_the_pages() {
    let app = app_with_password().await;
    let mut browser = Browser::new(&app);
    browser.sign_in("admin", PASSWORD).await;
    let csrf = browser.csrf("/sites").await;
    let response = browser
        .post("/sites", &[("csrf", &csrf), ("name", "blog")])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/sites/blog?done=created");
    let bad = browser
        .post("/sites", &[("csrf", &csrf), ("name", "Not Valid!")])
        .await;
    assert_eq!(bad.status(), 422);

    let first = app
        .deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"one")])
        .await;
    let second = app
        .deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"two")])
        .await;
    let page = browser.get("/sites/blog").await.text().await.expect("page");
    assert!(page.contains(&first.id) && page.contains(&second.id));
    assert!(page.contains("Roll back to this"));

    let response = browser
        .post(
            "/sites/blog/rollback",
            &[("csrf", &csrf), ("deploy_id", &first.id)],
        )
        .await;
    assert_eq!(response.status(), 303);
    let live = app.site("blog.localhost", "/", &[]).await;
    assert_eq!(live.text().await.expect("body"), "one");

    let wrong = browser
        .post(
            "/sites/blog/delete",
            &[("csrf", &csrf), ("confirm", "nope")],
        )
        .await;
    assert_eq!(wrong.status(), 422);
    let response = browser
        .post(
            "/sites/blog/delete",
            &[("csrf", &csrf), ("confirm", "blog")],
        )
        .await;
    assert_eq!(location(&response), "/sites?done=deleted");
    assert_eq!(app.site("blog.localhost", "/", &[]).await.status(), 404);
}

#[tokio::test]
async fn custom_domains_are_added_checked_and_removed_from_the_site_page() {
    // Arrange
    let app = app_with_password().await;
    let mut browser = Browser::new(&app);
    browser.sign_in("admin", PASSWORD).await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let csrf = browser.csrf("/sites/blog").await;

    // Act: add one, and a name that is not a domain.
    let added = browser
        .post(
            "/sites/blog/domains",
            &[("csrf", &csrf), ("name", "www.blog.example")],
        )
        .await;
    let bad = browser
        .post(
            "/sites/blog/domains",
            &[("csrf", &csrf), ("name", "not a domain")],
        )
        .await;

    // Assert: listed as pending with its TXT record; the bad name is a 422 page.
    assert_eq!(added.status(), 303);
    assert_eq!(location(&added), "/sites/blog?done=domain-added#domains");
    assert_eq!(bad.status(), 422);
    let page = browser.get("/sites/blog").await.text().await.expect("page");
    assert!(page.contains("www.blog.example"), "{page}");
    assert!(page.contains("_hosting-verify.www.blog.example"));
    assert!(page.contains("Pending"));
    let domains: api::List<api::Domain> = app
        .get(ADMIN_TOKEN, "/sites/blog/domains")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("list");
    assert!(page.contains(&domains.items[0].verification.txt_value));

    // Act: a certificate cannot be ordered (no ACME here, not verified); remove it.
    let refused = browser
        .post(
            "/sites/blog/domains/www.blog.example/certificate",
            &[("csrf", &csrf)],
        )
        .await;
    let removed = browser
        .post(
            "/sites/blog/domains/www.blog.example/remove",
            &[("csrf", &csrf)],
        )
        .await;

    // Assert
    assert_eq!(refused.status(), 409);
    assert_eq!(
        location(&removed),
        "/sites/blog?done=domain-removed#domains"
    );
    let page = browser.get("/sites/blog").await.text().await.expect("page");
    assert!(!page.contains("www.blog.example"));
    assert!(page.contains("No custom domains yet."));
}

#[tokio::test]
async fn another_tenants_site_is_a_404_page() {
    let app = app_with_password().await;
    let other = app.member("bob").await;
    app.create_site(&other, "bobsite").await;
    let mut browser = Browser::new(&app);
    browser.sign_in("admin", PASSWORD).await;
    assert_eq!(browser.get("/sites/bobsite").await.status(), 404);
    let csrf = browser.csrf("/sites").await;
    let response = browser
        .post(
            "/sites/bobsite/delete",
            &[("csrf", &csrf), ("confirm", "bobsite")],
        )
        .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn tokens_are_shown_once_and_revoked() {
    let app = app_with_password().await;
    let mut browser = Browser::new(&app);
    browser.sign_in("admin", PASSWORD).await;
    let csrf = browser.csrf("/tokens").await;
    let response = browser
        .post("/tokens", &[("csrf", &csrf), ("name", "ci")])
        .await;
    assert_eq!(response.status(), 201);
    let page = response.text().await.expect("page");
    let start = page.find("hst_").expect("the secret is shown");
    let secret: String = page[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    assert_eq!(
        app.get(&secret, "/whoami")
            .send()
            .await
            .expect("r")
            .status(),
        200
    );
    let listing = browser.get("/tokens").await.text().await.expect("page");
    assert!(!listing.contains(&secret), "the secret is shown only once");
    let tokens: api::List<api::Token> = app
        .get(&secret, "/tokens")
        .send()
        .await
        .expect("r")
        .json()
        .await
        .expect("json");
    let id = tokens.items.iter().find(|t| t.name == "ci").expect("ci").id;
    let response = browser
        .post(&format!("/tokens/{id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        app.get(&secret, "/whoami")
            .send()
            .await
            .expect("r")
            .status(),
        401
    );
}

#[tokio::test]
async fn the_api_takes_a_browser_session_only_with_its_csrf_header() {
    let app = app_with_password().await;
    let mut browser = Browser::new(&app);
    browser.sign_in("admin", PASSWORD).await;
    let csrf = browser.csrf("/sites").await;
    app.create_site(ADMIN_TOKEN, "docs").await;
    let files = BTreeMap::from([("/index.html".to_owned(), sha256_hex(b"hi"))]);
    let create = |csrf: Option<&str>| {
        let mut request = app
            .client
            .post(app.api("/sites/docs/deploys"))
            .header("cookie", browser.cookie_header())
            .json(&api::CreateDeploy {
                files: files.clone(),
                message: None,
            });
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send()
    };
    assert_eq!(create(None).await.expect("r").status(), 403);
    assert_eq!(create(Some("forged")).await.expect("r").status(), 403);
    let response = create(Some(&csrf)).await.expect("r");
    assert_eq!(response.status(), 201);
    // GETs need no CSRF header; no cookie and no token is still 401.
    let whoami = app
        .client
        .get(app.api("/whoami"))
        .header("cookie", browser.cookie_header())
        .send()
        .await
        .expect("r");
    assert_eq!(whoami.status(), 200);
    let anonymous = app.client.get(app.api("/whoami")).send().await.expect("r");
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn passwords_are_changed_on_the_account_page_and_admins_create_users() {
    let app = app_with_password().await;
    let mut admin = Browser::new(&app);
    admin.sign_in("admin", PASSWORD).await;
    let csrf = admin.csrf("/admin/users").await;
    let response = admin
        .post(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("username", "dana"),
                ("role", "member"),
                ("password", "dana's first password"),
            ],
        )
        .await;
    assert_eq!(response.status(), 201);

    let mut dana = Browser::new(&app);
    assert_eq!(
        dana.sign_in("dana", "dana's first password").await.status(),
        303
    );
    assert_eq!(
        dana.get("/admin/users").await.status(),
        403,
        "members are not admins"
    );
    let csrf = dana.csrf("/account").await;
    let mismatch = dana
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", "dana's first password"),
                ("new", "a new password 1"),
                ("confirm", "another one 22"),
            ],
        )
        .await;
    assert_eq!(mismatch.status(), 422);
    let response = dana
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", "dana's first password"),
                ("new", "a new password 1"),
                ("confirm", "a new password 1"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(dana.get("/account").await.status(), 200, "still signed in");
    let mut again = Browser::new(&app);
    assert_eq!(
        again
            .sign_in("dana", "dana's first password")
            .await
            .status(),
        401
    );
    assert_eq!(
        again.sign_in("dana", "a new password 1").await.status(),
        303
    );

    let health = admin.get("/admin/health").await;
    assert_eq!(health.status(), 200);
    assert!(health.text().await.expect("page").contains("Database"));
}

#[tokio::test]
async fn assets_are_served_with_long_caching_and_unknown_pages_are_html_404s() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    let css = browser.get("/assets/dashboard.css").await;
    assert_eq!(css.status(), 200);
    assert!(css
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("immutable")));
    let missing = browser.get("/no-such-page").await;
    assert_eq!(missing.status(), 404);
    assert!(missing
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html")));
}

#[tokio::test]
async fn with_redis_unreachable_browser_sessions_fail_closed_and_tokens_keep_working() {
    // Redis configured but down (nothing listens on port 1): sessions live in Redis.
    let app = TestApp::spawn_with(|config| {
        config.admin.admin_password = Some(hosting_app::config::Secret::from(PASSWORD));
        config.redis.redis_url = Some(hosting_app::config::SecretUrl::from(
            "redis://127.0.0.1:1/0",
        ));
    })
    .await;
    let mut browser = Browser::new(&app);
    let response = browser.sign_in("admin", PASSWORD).await;
    assert_eq!(response.status(), 503);
    assert!(response
        .text()
        .await
        .expect("page")
        .contains("session store cannot be reached"));
    assert!(!browser.cookies.contains_key("hosting_session"));
    // A session cookie (forged or from before the outage) counts as signed out.
    browser
        .cookies
        .insert("hosting_session".into(), "whatever".into());
    assert_eq!(browser.get("/sites").await.status(), 503);
    let whoami = app
        .get(ADMIN_TOKEN, "/whoami")
        .send()
        .await
        .expect("request");
    assert_eq!(whoami.status(), 200, "bearer tokens keep working");
}

#[tokio::test]
async fn the_deploy_history_shows_each_deploys_message_escaped() {
    let app = app_with_password().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let response = app
        .post(
            ADMIN_TOKEN,
            "/sites/blog/deploys?message=Fix%20%3Cnav%3E%20links",
        )
        .header("content-type", "application/gzip")
        .body(crate::helpers::targz(&[("index.html", b"home")]))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    let mut browser = Browser::new(&app);
    browser.sign_in("admin", PASSWORD).await;

    let page = browser.get("/sites/blog").await.text().await.expect("page");

    assert!(page.contains("Fix &lt;nav&gt; links"), "{page}");
}
