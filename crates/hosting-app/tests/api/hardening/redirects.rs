//! Request values copied into `Location`: the sign-in `next` and `_redirects`
//! placeholders can neither leave the origin nor make a 5xx.

use crate::helpers::{TestApp, ADMIN_TOKEN};

const PASSWORD: &str = "correct horse battery";

/// The `name=value` pairs a response sets, as one `Cookie` header.
fn cookies_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .filter(|pair| !pair.ends_with('='))
        .collect::<Vec<_>>()
        .join("; ")
}

fn location_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Posts the sign-in form with `next` and returns the response.
async fn sign_in_with_next(app: &TestApp, next: &str) -> reqwest::Response {
    let form = app
        .client
        .get(format!("http://localhost:{}/login", app.addr.port()))
        .send()
        .await
        .expect("sign-in form");
    let cookies = cookies_of(&form);
    let page = form.text().await.expect("page");
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a csrf field") + marker.len();
    let csrf = &page[start..start + page[start..].find('"').expect("end of value")];
    app.client
        .post(format!("http://localhost:{}/login", app.addr.port()))
        .header("cookie", cookies)
        .form(&[
            ("csrf", csrf),
            ("username", "admin"),
            ("password", PASSWORD),
            ("next", next),
        ])
        .send()
        .await
        .expect("sign in")
}

#[tokio::test]
async fn the_sign_in_next_parameter_only_leads_to_paths_of_this_dashboard() {
    let app = TestApp::spawn_with(|c| {
        c.admin.admin_password = Some(hosting_app::config::Secret::from(PASSWORD));
    })
    .await;

    // Signing in with a newline in `next`: the sites page, not a 500.
    let signed_in = sign_in_with_next(&app, "/sites\r\nSet-Cookie: x=1").await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(location_of(&signed_in), "/sites");
    let session = cookies_of(&signed_in);

    // Signed in, `/login?next=...` redirects at once: only to a path of this origin.
    for (query, expected) in [
        (
            "next=/sites/blog%3Fdone%3Dcreated",
            "/sites/blog?done=created",
        ),
        ("next=/%09/evil.example", "/sites"),
        ("next=/%2509/evil.example", "/sites"),
        ("next=%2F%2Fevil.example", "/sites"),
        ("next=/%5Cevil.example", "/sites"),
        ("next=/%255Cevil.example", "/sites"),
        ("next=https://evil.example/", "/sites"),
        ("next=/a%0Ab", "/sites"),
        ("next=/a%0Db", "/sites"),
        ("next=/caf%C3%A9", "/sites"),
    ] {
        let response = app
            .client
            .get(format!(
                "http://localhost:{}/login?{query}",
                app.addr.port()
            ))
            .header("cookie", &session)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 303, "{query}");
        assert_eq!(location_of(&response), expected, "{query}");
    }

    // Signed out, the form carries only a safe `next` too, and never answers 5xx.
    let form = app
        .client
        .get(format!(
            "http://localhost:{}/login?next=/a%0D%0Ab",
            app.addr.port()
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(form.status(), 200);
    let page = form.text().await.expect("page");
    assert!(page.contains("name=\"next\" value=\"/sites\""), "{page}");
}

#[tokio::test]
async fn a_redirect_rule_placeholder_with_a_newline_never_gives_a_5xx() {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    app.deploy_archive(
        ADMIN_TOKEN,
        "blog",
        &[
            ("index.html", b"home"),
            (
                "_redirects",
                b"/search q=:term /find/:term 302\n/go/* /to/:splat 302\n",
            ),
        ],
    )
    .await;

    for path in [
        "/search?q=a%0D%0ASet-Cookie:%20x=1",
        "/search?q=caf%C3%A9%09",
        "/go/caf%C3%A9",
    ] {
        let response = app.site("blog.localhost", path, &[]).await;
        assert!(
            response.status().is_redirection() || response.status().is_client_error(),
            "{path}: {}",
            response.status()
        );
        assert!(response.headers().get("set-cookie").is_none(), "{path}");
        let location = location_of(&response);
        assert!(
            !location.contains(['\r', '\n', '\t']),
            "{path}: {location:?}"
        );
    }
}
