//! Which file a request gets: index files, clean URLs, 404 pages, hosts, previews,
//! hostile paths and methods.

use reqwest::Method;

use super::{blog_with, body, header, text};
use crate::helpers::{TestApp, ADMIN_TOKEN};

#[tokio::test]
async fn the_root_and_folders_serve_their_index_html() {
    let (app, _) = blog_with(&[
        ("index.html", b"<h1>home</h1>"),
        ("docs/index.html", b"<h1>docs</h1>"),
    ])
    .await;

    let root = app.site("blog.localhost", "/", &[]).await;
    let docs = app.site("blog.localhost", "/docs/", &[]).await;

    assert_eq!(root.status(), 200);
    assert_eq!(text(root).await, "<h1>home</h1>");
    assert_eq!(docs.status(), 200);
    assert_eq!(text(docs).await, "<h1>docs</h1>");
}

#[tokio::test]
async fn clean_urls_serve_the_html_file_without_its_extension() {
    let (app, _) = blog_with(&[("index.html", b"home"), ("about.html", b"about us")]).await;

    let response = app.site("blog.localhost", "/about", &[]).await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(text(response).await, "about us");
}

#[tokio::test]
async fn a_folder_without_its_slash_redirects_to_it_keeping_the_query() {
    let (app, _) = blog_with(&[("docs/index.html", b"docs")]).await;

    let plain = app.site("blog.localhost", "/docs", &[]).await;
    let with_query = app.site("blog.localhost", "/docs?page=2&x=y", &[]).await;

    assert_eq!(plain.status(), 301);
    assert_eq!(header(&plain, "location").as_deref(), Some("/docs/"));
    assert_eq!(with_query.status(), 301);
    assert_eq!(
        header(&with_query, "location").as_deref(),
        Some("/docs/?page=2&x=y")
    );
}

#[tokio::test]
async fn a_custom_404_html_is_served_with_status_404_for_missing_paths() {
    let (app, _) = blog_with(&[
        ("index.html", b"home"),
        ("404.html", b"<p>custom not found</p>"),
    ])
    .await;

    let response = app.site("blog.localhost", "/no/such/page", &[]).await;

    assert_eq!(response.status(), 404);
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(text(response).await, "<p>custom not found</p>");
}

#[tokio::test]
async fn without_a_404_html_missing_paths_get_the_platform_404_page() {
    let (app, _) = blog_with(&[("index.html", b"home")]).await;

    let response = app.site("blog.localhost", "/missing.html", &[]).await;

    assert_eq!(response.status(), 404);
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    let page = text(response).await;
    assert!(
        page.contains("<html") && page.contains("Not found"),
        "{page}"
    );
    assert!(!page.contains("home"));
}

#[tokio::test]
async fn unknown_hosts_get_the_platform_404_and_never_another_sites_content() {
    let (app, _) = blog_with(&[("index.html", b"BLOG-SECRET-CONTENT")]).await;

    for host in [
        "nosuch.localhost",
        "example.com",
        "a.blog.localhost",
        "blog.localhost.evil.com",
    ] {
        let response = app.site(host, "/", &[]).await;

        assert_eq!(response.status(), 404, "{host}");
        let page = text(response).await;
        assert!(page.contains("Not found"), "{host}: {page}");
        assert!(
            !page.contains("BLOG-SECRET-CONTENT"),
            "{host} served the blog"
        );
    }
}

#[tokio::test]
async fn a_site_with_nothing_published_is_a_404() {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "empty").await;

    let response = app.site("empty.localhost", "/", &[]).await;

    assert_eq!(response.status(), 404);
    assert!(text(response).await.contains("Not found"));
}

#[tokio::test]
async fn a_preview_host_keeps_serving_its_deploy_after_a_newer_one_is_published() {
    let (app, first) = blog_with(&[("index.html", b"version one")]).await;
    let second = app
        .deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"version two")])
        .await;
    assert_ne!(first.id, second.id);

    let preview = app
        .site(&format!("{}--blog.localhost", first.id), "/", &[])
        .await;
    let live = app.site("blog.localhost", "/", &[]).await;

    assert_eq!(preview.status(), 200);
    assert_eq!(text(preview).await, "version one");
    assert_eq!(live.status(), 200);
    assert_eq!(text(live).await, "version two");
}

#[tokio::test]
async fn the_host_is_matched_case_insensitively_without_port_or_trailing_dot() {
    let (app, _) = blog_with(&[("index.html", b"blog home")]).await;

    for host in [
        "BLOG.LOCALHOST.:1234",
        "Blog.LocalHost.",
        "BLOG.localhost:80",
        "blog.LOCALHOST",
    ] {
        let response = app.site(host, "/", &[]).await;

        assert_eq!(response.status(), 200, "{host}");
        assert_eq!(text(response).await, "blog home", "{host}");
    }
}

#[tokio::test]
async fn a_host_with_a_malformed_port_is_a_bad_request() {
    let (app, _) = blog_with(&[("index.html", b"blog home")]).await;

    // The trailing dot belongs to the name (`blog.localhost.:1234`); after the port it
    // makes the port invalid.
    for host in ["BLOG.LOCALHOST:1234.", "blog.localhost:http"] {
        let response = app.site(host, "/", &[]).await;

        assert_eq!(response.status(), 400, "{host}");
        assert!(!text(response).await.contains("blog home"), "{host}");
    }
}

#[tokio::test]
async fn forwarded_host_headers_are_ignored_when_choosing_the_site() {
    let (app, _) = blog_with(&[("index.html", b"blog home")]).await;
    app.create_site(ADMIN_TOKEN, "other").await;
    app.deploy_archive(ADMIN_TOKEN, "other", &[("index.html", b"other home")])
        .await;

    let via_x_forwarded = app
        .site(
            "blog.localhost",
            "/",
            &[("x-forwarded-host", "other.localhost")],
        )
        .await;
    let via_forwarded = app
        .site(
            "blog.localhost",
            "/",
            &[("forwarded", "host=other.localhost")],
        )
        .await;
    let unknown_with_forwarded = app
        .site(
            "nosuch.localhost",
            "/",
            &[("x-forwarded-host", "other.localhost")],
        )
        .await;

    assert_eq!(text(via_x_forwarded).await, "blog home");
    assert_eq!(text(via_forwarded).await, "blog home");
    assert_eq!(unknown_with_forwarded.status(), 404);
    assert!(!text(unknown_with_forwarded).await.contains("other home"));
}

#[tokio::test]
async fn traversal_and_malformed_paths_are_refused_without_leaking_files() {
    let (app, _) = blog_with(&[("index.html", b"home"), ("a/b.html", b"inside")]).await;

    for raw in [
        &b"/..%2f..%2fetc/passwd"[..],
        b"/%2e%2e/%2e%2e/etc/passwd",
        b"/%2E%2E/%2E%2E/etc/passwd",
        b"/a/../../etc/passwd",
        b"/a/./b.html",
        b"/%00",
        b"/index.html%00.png",
        b"/%ff%fe",
        b"/a%5c..%5cb.html",
        b"/a%0d%0aSet-Cookie:%20x=1",
    ] {
        let shown = String::from_utf8_lossy(raw).into_owned();

        let (status, response) = app.raw("blog.localhost", raw).await;

        assert_eq!(status, 400, "{shown}: {response}");
        assert!(!response.contains("root:"), "{shown} leaked /etc/passwd");
        assert!(!response.contains("inside"), "{shown} was interpreted");
        assert!(
            !response.to_ascii_lowercase().contains("set-cookie"),
            "{shown} injected a header"
        );
    }
}

#[tokio::test]
async fn a_path_starting_with_two_slashes_never_yields_a_protocol_relative_location() {
    let (app, _) = blog_with(&[
        ("evil.com/docs/index.html", b"docs"),
        ("index.html", b"home"),
    ])
    .await;

    for raw in [
        &b"//evil.com/docs"[..],
        b"///evil.com/docs",
        b"/%2fevil.com/docs",
        b"/%2F%2Fevil.com/docs",
    ] {
        let shown = String::from_utf8_lossy(raw).into_owned();

        let (status, response) = app.raw("blog.localhost", raw).await;

        let location = response.lines().find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("location:")
                .map(|l| l.trim().to_owned())
        });
        assert_eq!(status, 301, "{shown}: {response}");
        let location = location.expect("a Location header");
        assert_eq!(location, "/evil.com/docs/", "{shown}");
    }
}

#[tokio::test]
async fn methods_other_than_get_and_head_are_refused_with_allow() {
    let (app, _) = blog_with(&[("index.html", b"home")]).await;

    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let response = app
            .site_request(method.clone(), "blog.localhost", "/index.html", &[])
            .await;

        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(header(&response, "allow").as_deref(), Some("GET, HEAD"));
        assert!(!body(response).await.starts_with(b"home"));
    }
}

#[tokio::test]
async fn a_preview_host_only_serves_deploys_of_its_own_site() {
    let (app, blog_deploy) = blog_with(&[("index.html", b"blog home")]).await;
    app.create_site(ADMIN_TOKEN, "other").await;
    app.deploy_archive(ADMIN_TOKEN, "other", &[("index.html", b"other home")])
        .await;

    let crossed = app
        .site(&format!("{}--other.localhost", blog_deploy.id), "/", &[])
        .await;
    let unknown = app.site("0123456789abcdef--blog.localhost", "/", &[]).await;

    assert_eq!(crossed.status(), 404);
    assert!(!text(crossed).await.contains("home"));
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn encoded_paths_name_files_with_spaces_and_unicode() {
    let (app, _) = blog_with(&[
        ("a b.html", b"spaced"),
        ("caf\u{e9}.html", b"coffee"),
        ("men\u{fc}/index.html", b"menu"),
    ])
    .await;

    let spaced = app.site("blog.localhost", "/a%20b.html", &[]).await;
    let unicode = app.site("blog.localhost", "/caf%C3%A9", &[]).await;
    let folder = app.site("blog.localhost", "/men%C3%BC", &[]).await;

    assert_eq!(text(spaced).await, "spaced");
    assert_eq!(text(unicode).await, "coffee");
    assert_eq!(folder.status(), 301);
    assert_eq!(header(&folder, "location").as_deref(), Some("/men%C3%BC/"));
}
