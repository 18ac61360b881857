//! `Basic-Auth` lines of `_headers`: path-level password protection.

use base64::Engine;

use super::{blog_with, header, text};

const FILES: &[(&str, &[u8])] = &[
    ("index.html", b"public home"),
    ("admin/index.html", b"admin home"),
    ("admin/report.html", b"secret report"),
    (
        "_headers",
        b"/admin/*\n  Basic-Auth: ann:s3cret-pass bob:other\n  X-Admin: yes\n",
    ),
    ("_redirects", b"/peek /admin/report.html 200\n"),
];

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

#[tokio::test]
async fn a_protected_path_asks_for_credentials_and_never_says_whether_it_exists() {
    let (app, _) = blog_with(FILES).await;

    let mut answers = Vec::new();
    for (path, authorization) in [
        ("/admin/report.html", None),
        ("/admin/no-such-page.html", None),
        ("/admin/report.html", Some(basic("ann", "wrong"))),
        ("/admin/no-such-page.html", Some(basic("ann", "wrong"))),
        ("/admin/report.html", Some(basic("bob", "s3cret-pass"))),
    ] {
        let headers: Vec<(&str, &str)> = authorization
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        let response = app.site("blog.localhost", path, &headers).await;

        assert_eq!(response.status(), 401, "{path}");
        assert_eq!(
            header(&response, "www-authenticate").as_deref(),
            Some("Basic realm=\"Protected site\", charset=\"UTF-8\"")
        );
        assert_eq!(
            header(&response, "cache-control").as_deref(),
            Some("private, no-store")
        );
        assert_eq!(header(&response, "x-admin"), None);
        let all_headers = format!("{:?}", response.headers());
        let body = text(response).await;
        assert!(!body.contains("s3cret") && !all_headers.contains("s3cret"));
        answers.push(body);
    }
    assert!(
        answers.windows(2).all(|pair| pair[0] == pair[1]),
        "every refusal must look the same"
    );
}

#[tokio::test]
async fn the_right_credentials_open_the_path_and_the_answer_stays_private() {
    let (app, _) = blog_with(FILES).await;
    let ann = basic("ann", "s3cret-pass");
    let bob = basic("bob", "other");

    let report = app
        .site(
            "blog.localhost",
            "/admin/report.html",
            &[("authorization", &ann)],
        )
        .await;
    let index = app
        .site("blog.localhost", "/admin/", &[("authorization", &bob)])
        .await;
    let missing = app
        .site(
            "blog.localhost",
            "/admin/none.html",
            &[("authorization", &ann)],
        )
        .await;
    let public = app.site("blog.localhost", "/", &[]).await;

    assert_eq!(report.status(), 200);
    assert_eq!(
        header(&report, "cache-control").as_deref(),
        Some("private, no-store")
    );
    assert_eq!(header(&report, "x-admin").as_deref(), Some("yes"));
    assert_eq!(header(&report, "basic-auth"), None);
    assert_eq!(text(report).await, "secret report");
    assert_eq!(index.status(), 200);
    assert_eq!(text(index).await, "admin home");
    assert_eq!(missing.status(), 404);
    assert_eq!(
        header(&missing, "cache-control").as_deref(),
        Some("private, no-store")
    );
    assert_eq!(public.status(), 200);
    assert_ne!(
        header(&public, "cache-control").as_deref(),
        Some("private, no-store")
    );
}

#[tokio::test]
async fn a_rewrite_from_an_open_path_cannot_reach_a_protected_file() {
    let (app, _) = blog_with(FILES).await;

    let refused = app.site("blog.localhost", "/peek", &[]).await;
    let granted = app
        .site(
            "blog.localhost",
            "/peek",
            &[("authorization", &basic("ann", "s3cret-pass"))],
        )
        .await;

    assert_eq!(refused.status(), 401);
    assert!(!text(refused).await.contains("secret report"));
    assert_eq!(granted.status(), 200);
    assert_eq!(
        header(&granted, "cache-control").as_deref(),
        Some("private, no-store")
    );
    assert_eq!(text(granted).await, "secret report");
}
