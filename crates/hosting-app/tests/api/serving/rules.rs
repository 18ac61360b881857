//! The deploy's `_redirects` and `_headers` files, as visitors see them.

use super::{blog_with, header, text};

const PAGES: &[(&str, &[u8])] = &[
    ("index.html", b"app shell"),
    ("about.html", b"about page"),
    ("new.html", b"new page"),
    ("gone.html", b"gone page"),
    ("docs/index.html", b"docs index"),
];

/// `PAGES` plus a `_redirects` file.
fn with_redirects(rules: &'static str) -> Vec<(&'static str, &'static [u8])> {
    let mut files = PAGES.to_vec();
    files.push(("_redirects", rules.as_bytes()));
    files
}

#[tokio::test]
async fn redirect_rules_answer_with_their_status_and_location() {
    let (app, _) = blog_with(&with_redirects(
        "/a /new 301\n/b /new 302\n/c /new 307\n/d /new 308\n/e https://example.com/x 301\n/f /new\n",
    ))
    .await;

    for (path, status, location) in [
        ("/a", 301, "/new"),
        ("/b", 302, "/new"),
        ("/c", 307, "/new"),
        ("/d", 308, "/new"),
        ("/e", 301, "https://example.com/x"),
        ("/f", 301, "/new"),
    ] {
        let response = app.site("blog.localhost", path, &[]).await;

        assert_eq!(response.status(), status, "{path}");
        assert_eq!(
            header(&response, "location").as_deref(),
            Some(location),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_rewrite_serves_the_target_content_under_the_requested_url() {
    let (app, _) = blog_with(&with_redirects(
        "/old-about /about.html 200\n/handbook /docs/ 200\n",
    ))
    .await;

    let file = app.site("blog.localhost", "/old-about", &[]).await;
    let folder = app.site("blog.localhost", "/handbook", &[]).await;

    assert_eq!(file.status(), 200);
    assert_eq!(header(&file, "location"), None);
    assert_eq!(
        header(&file, "content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(text(file).await, "about page");
    assert_eq!(folder.status(), 200);
    assert_eq!(text(folder).await, "docs index");
}

#[tokio::test]
async fn an_spa_fallback_lets_existing_files_win() {
    let (app, _) = blog_with(&with_redirects("/* /index.html 200\n")).await;

    let route = app.site("blog.localhost", "/users/42/settings", &[]).await;
    let existing = app.site("blog.localhost", "/about.html", &[]).await;
    let clean = app.site("blog.localhost", "/about", &[]).await;

    assert_eq!(route.status(), 200);
    assert_eq!(text(route).await, "app shell");
    assert_eq!(text(existing).await, "about page");
    assert_eq!(text(clean).await, "about page");
}

#[tokio::test]
async fn a_forced_rule_beats_an_existing_file() {
    let (app, _) = blog_with(&with_redirects(
        "/about.html /new.html 200!\n/new.html /gone.html 301\n",
    ))
    .await;

    let forced = app.site("blog.localhost", "/about.html", &[]).await;
    let shadowed = app.site("blog.localhost", "/new.html", &[]).await;

    assert_eq!(forced.status(), 200);
    assert_eq!(text(forced).await, "new page");
    assert_eq!(
        shadowed.status(),
        200,
        "an unforced rule must not shadow an existing file"
    );
    assert_eq!(text(shadowed).await, "new page");
}

#[tokio::test]
async fn a_404_rule_serves_its_target_with_status_404() {
    let (app, _) = blog_with(&with_redirects("/private/* /gone.html 404\n")).await;

    let response = app.site("blog.localhost", "/private/plans.txt", &[]).await;

    assert_eq!(response.status(), 404);
    assert_eq!(text(response).await, "gone page");
}

#[tokio::test]
async fn splats_and_placeholders_are_substituted_and_the_query_is_kept() {
    let (app, _) = blog_with(&with_redirects(
        "/blog/* /posts/:splat 301\n/news/:year/:slug /articles/:slug/:year 302\n/search /find?q=fixed 301\n",
    ))
    .await;

    let splat = app
        .site("blog.localhost", "/blog/2024/hello-world", &[])
        .await;
    let placeholders = app.site("blog.localhost", "/news/2023/launch", &[]).await;
    let with_query = app.site("blog.localhost", "/blog/a?utm=x&b=2", &[]).await;
    let own_query = app.site("blog.localhost", "/search?q=other", &[]).await;

    assert_eq!(splat.status(), 301);
    assert_eq!(
        header(&splat, "location").as_deref(),
        Some("/posts/2024/hello-world")
    );
    assert_eq!(placeholders.status(), 302);
    assert_eq!(
        header(&placeholders, "location").as_deref(),
        Some("/articles/launch/2023")
    );
    assert_eq!(
        header(&with_query, "location").as_deref(),
        Some("/posts/a?utm=x&b=2")
    );
    assert_eq!(
        header(&own_query, "location").as_deref(),
        Some("/find?q=fixed")
    );
}

#[tokio::test]
async fn a_splat_redirect_cannot_be_turned_into_an_open_redirect() {
    let (app, _) = blog_with(&with_redirects("/go/* /:splat 301\n")).await;

    for raw in [
        &b"/go//evil.com"[..],
        b"/go/%2fevil.com",
        b"/go/%2F%2Fevil.com/x",
        b"/go/%5cevil.com",
    ] {
        let shown = String::from_utf8_lossy(raw).into_owned();

        let (status, response) = app.raw("blog.localhost", raw).await;

        let location = response.lines().find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("location:")
                .map(|l| l.trim().to_owned())
        });
        if let Some(location) = location {
            assert!(!location.starts_with("//"), "{shown} -> {location}");
            assert!(
                !location.starts_with("/\\") && !location.starts_with("/%5c"),
                "{shown} -> {location}"
            );
            assert!(location.starts_with('/'), "{shown} -> {location}");
        } else {
            assert_eq!(status, 400, "{shown}: {response}");
        }
    }
    let (status, response) = app.raw("blog.localhost", b"/go//evil.com").await;
    assert_eq!(status, 301, "{response}");
}

#[tokio::test]
async fn the_rule_files_themselves_are_not_served() {
    let mut files = with_redirects("/a /new 301\n");
    files.push(("_headers", b"/*\n  X-Rules: on\n"));
    let (app, _) = blog_with(&files).await;

    let redirects = app.site("blog.localhost", "/_redirects", &[]).await;
    let headers = app.site("blog.localhost", "/_headers", &[]).await;

    assert_eq!(redirects.status(), 404);
    assert!(!text(redirects).await.contains("/new 301"));
    assert_eq!(headers.status(), 404);
    assert!(!text(headers).await.contains("X-Rules"));
}

#[tokio::test]
async fn header_rules_add_and_override_headers_on_matching_paths() {
    let mut files = PAGES.to_vec();
    files.push(("assets/app.css", b"body{}"));
    files.push((
        "_headers",
        b"/docs/*\n  X-Custom: docs-only\n  X-Frame-Options: DENY\n/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n",
    ));
    let (app, _) = blog_with(&files).await;

    let docs = app.site("blog.localhost", "/docs/", &[]).await;
    let asset = app.site("blog.localhost", "/assets/app.css", &[]).await;
    let other = app.site("blog.localhost", "/about", &[]).await;

    assert_eq!(header(&docs, "x-custom").as_deref(), Some("docs-only"));
    assert_eq!(header(&docs, "x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(
        header(&asset, "cache-control").as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(header(&other, "x-custom"), None);
    assert_eq!(
        header(&other, "x-frame-options").as_deref(),
        Some("SAMEORIGIN")
    );
    assert_ne!(
        header(&other, "cache-control").as_deref(),
        Some("public, max-age=31536000, immutable")
    );
}

#[tokio::test]
async fn a_redirect_to_a_unicode_path_is_percent_encoded_in_the_location() {
    let (app, _) = blog_with(&with_redirects(
        "/cafe /caf\u{e9}/menu 301\n/tea /th\u{e9}?q=caf\u{e9} 302\n",
    ))
    .await;

    let path = app.site("blog.localhost", "/cafe", &[]).await;
    let query = app.site("blog.localhost", "/tea", &[]).await;

    assert_eq!(path.status(), 301);
    assert_eq!(
        header(&path, "location").as_deref(),
        Some("/caf%C3%A9/menu")
    );
    assert_eq!(query.status(), 302);
    assert_eq!(
        header(&query, "location").as_deref(),
        Some("/th%C3%A9?q=caf%C3%A9")
    );
}

/// Netlify's dev-server case "Headers rules matching target of a rewrite to a static
/// file are applied": the headers follow the content served, not the URL asked for.
#[tokio::test]
async fn headers_rules_matching_target_of_a_rewrite_to_a_static_file_are_applied() {
    let (app, _) = blog_with(&[
        ("to.txt", b"hello"),
        ("_redirects", b"/from /to.txt 200\n"),
        (
            "_headers",
            b"/from\n  X-From-Header: true\n/to.txt\n  X-To-Header: true\n",
        ),
    ])
    .await;

    let response = app.site("blog.localhost", "/from", &[]).await;

    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-to-header").as_deref(), Some("true"));
    assert_eq!(header(&response, "x-from-header"), None);
    assert_eq!(text(response).await, "hello");
}

#[tokio::test]
async fn spa_fallbacks_and_404_pages_carry_the_headers_of_the_page_served() {
    let (app, _) = blog_with(&[
        ("index.html", b"app shell"),
        ("404.html", b"custom not found"),
        ("_redirects", b"/app/* /index.html 200\n"),
        (
            "_headers",
            b"/index.html\n  X-Page: shell\n/404.html\n  X-Page: not-found\n/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n",
        ),
    ])
    .await;

    let route = app.site("blog.localhost", "/app/users/42", &[]).await;
    let missing = app.site("blog.localhost", "/assets/gone.js", &[]).await;

    assert_eq!(route.status(), 200);
    assert_eq!(header(&route, "x-page").as_deref(), Some("shell"));
    assert_eq!(missing.status(), 404);
    assert_eq!(header(&missing, "x-page").as_deref(), Some("not-found"));
    assert_ne!(
        header(&missing, "cache-control").as_deref(),
        Some("public, max-age=31536000, immutable"),
        "a 404 must not be cached as an immutable asset"
    );
    assert_eq!(text(missing).await, "custom not found");
}
