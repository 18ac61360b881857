//! The bytes and headers of one file: validators and conditional requests, ranges,
//! HEAD, content types, compression and large files.

use std::io::Read;

use reqwest::Method;

use super::{blog_with, body, header};
use crate::helpers::{sha256_hex, TestApp, ADMIN_TOKEN};

const PAGE: &[u8] = b"<!doctype html><p>0123456789</p>";

/// Compressible and long enough to be compressed (>= 256 bytes).
fn script() -> Vec<u8> {
    "function greet(name) { return 'hello ' + name; }\n"
        .repeat(40)
        .into_bytes()
}

#[tokio::test]
async fn the_etag_is_the_sha256_of_the_bytes_and_if_none_match_gives_304() {
    let (app, _) = blog_with(&[("index.html", PAGE)]).await;
    let etag = format!("\"{}\"", sha256_hex(PAGE));

    let fresh = app.site("blog.localhost", "/", &[]).await;
    let revalidated = app
        .site("blog.localhost", "/", &[("if-none-match", &etag)])
        .await;
    let in_a_list = app
        .site(
            "blog.localhost",
            "/",
            &[("if-none-match", &format!("\"nope\", {etag}"))],
        )
        .await;
    let star = app
        .site("blog.localhost", "/", &[("if-none-match", "*")])
        .await;
    let weak = app
        .site(
            "blog.localhost",
            "/",
            &[("if-none-match", &format!("W/{etag}"))],
        )
        .await;
    let stale = app
        .site(
            "blog.localhost",
            "/",
            &[("if-none-match", "\"something-else\"")],
        )
        .await;

    assert_eq!(fresh.status(), 200);
    assert_eq!(header(&fresh, "etag"), Some(etag.clone()));
    for response in [revalidated, in_a_list, star, weak] {
        assert_eq!(response.status(), 304);
        assert_eq!(header(&response, "etag"), Some(etag.clone()));
        assert!(body(response).await.is_empty(), "a 304 has no body");
    }
    assert_eq!(stale.status(), 200);
    assert_eq!(body(stale).await, PAGE);
}

#[tokio::test]
async fn last_modified_is_sent_and_if_modified_since_gives_304() {
    let (app, _) = blog_with(&[("index.html", PAGE)]).await;
    let future = httpdate::fmt_http_date(
        std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
    );
    let past = "Thu, 01 Jan 1998 00:00:00 GMT";

    let fresh = app.site("blog.localhost", "/", &[]).await;
    let not_modified = app
        .site("blog.localhost", "/", &[("if-modified-since", &future)])
        .await;
    let modified = app
        .site("blog.localhost", "/", &[("if-modified-since", past)])
        .await;

    let last_modified = header(&fresh, "last-modified").expect("Last-Modified");
    assert!(
        httpdate::parse_http_date(&last_modified).is_ok(),
        "{last_modified}"
    );
    assert_eq!(not_modified.status(), 304);
    assert!(body(not_modified).await.is_empty());
    assert_eq!(modified.status(), 200);
    assert_eq!(body(modified).await, PAGE);
}

#[tokio::test]
async fn a_single_byte_range_gets_206_with_the_exact_bytes() {
    let (app, _) = blog_with(&[("index.html", PAGE)]).await;
    let size = PAGE.len();

    let first = app
        .site("blog.localhost", "/", &[("range", "bytes=0-4")])
        .await;
    let suffix = app
        .site("blog.localhost", "/", &[("range", "bytes=-3")])
        .await;

    assert_eq!(first.status(), 206);
    assert_eq!(
        header(&first, "content-range"),
        Some(format!("bytes 0-4/{size}"))
    );
    assert_eq!(header(&first, "content-length").as_deref(), Some("5"));
    assert_eq!(body(first).await, &PAGE[..5]);
    assert_eq!(suffix.status(), 206);
    assert_eq!(
        header(&suffix, "content-range"),
        Some(format!("bytes {}-{}/{size}", size - 3, size - 1))
    );
    assert_eq!(body(suffix).await, &PAGE[size - 3..]);
}

#[tokio::test]
async fn unsatisfiable_multiple_and_stale_ranges_are_handled_per_rfc() {
    let (app, _) = blog_with(&[("index.html", PAGE)]).await;
    let etag = format!("\"{}\"", sha256_hex(PAGE));

    let beyond = app
        .site("blog.localhost", "/", &[("range", "bytes=100000-")])
        .await;
    let multi = app
        .site("blog.localhost", "/", &[("range", "bytes=0-1,5-6")])
        .await;
    let stale = app
        .site(
            "blog.localhost",
            "/",
            &[("range", "bytes=0-4"), ("if-range", "\"old\"")],
        )
        .await;
    let current = app
        .site(
            "blog.localhost",
            "/",
            &[("range", "bytes=0-4"), ("if-range", &etag)],
        )
        .await;

    assert_eq!(beyond.status(), 416);
    assert_eq!(
        header(&beyond, "content-range"),
        Some(format!("bytes */{}", PAGE.len()))
    );
    assert_eq!(multi.status(), 200);
    assert_eq!(body(multi).await, PAGE);
    assert_eq!(stale.status(), 200);
    assert_eq!(body(stale).await, PAGE);
    assert_eq!(current.status(), 206);
    assert_eq!(body(current).await, &PAGE[..5]);
}

#[tokio::test]
async fn head_sends_the_get_headers_with_an_empty_body() {
    let (app, _) = blog_with(&[("index.html", PAGE)]).await;

    let get = app.site("blog.localhost", "/", &[]).await;
    let head = app
        .site_request(Method::HEAD, "blog.localhost", "/", &[])
        .await;

    assert_eq!(head.status(), 200);
    assert_eq!(
        header(&head, "content-length"),
        Some(PAGE.len().to_string())
    );
    for name in [
        "content-type",
        "etag",
        "last-modified",
        "cache-control",
        "x-content-type-options",
    ] {
        assert!(header(&get, name).is_some(), "GET lacks {name}");
        assert_eq!(header(&head, name), header(&get, name), "{name}");
    }
    assert!(body(head).await.is_empty());
}

#[tokio::test]
async fn head_of_a_compressed_response_announces_the_compressed_length() {
    let source = script();
    let (app, _) = blog_with(&[("app.js", &source)]).await;
    let accept = [("accept-encoding", "gzip")];

    let head = app
        .site_request(Method::HEAD, "blog.localhost", "/app.js", &accept)
        .await;
    let get = app.site("blog.localhost", "/app.js", &accept).await;

    assert_eq!(header(&head, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(header(&head, "etag"), header(&get, "etag"));
    let length = header(&head, "content-length").expect("Content-Length");
    assert_eq!(length, body(get).await.len().to_string());
    assert!(body(head).await.is_empty());
}

#[tokio::test]
async fn content_types_follow_the_extension_with_a_charset_for_text() {
    let png: &[u8] = b"\x89PNG\r\n\x1a\n0000";
    let (app, _) = blog_with(&[
        ("index.html", PAGE),
        ("site.css", b"body{}"),
        ("app.js", b"let a = 1;"),
        ("logo.png", png),
    ])
    .await;

    let html = app.site("blog.localhost", "/index.html", &[]).await;
    let css = app.site("blog.localhost", "/site.css", &[]).await;
    let js = app.site("blog.localhost", "/app.js", &[]).await;
    let image = app.site("blog.localhost", "/logo.png", &[]).await;

    assert_eq!(
        header(&html, "content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        header(&css, "content-type").as_deref(),
        Some("text/css; charset=utf-8")
    );
    let js_type = header(&js, "content-type").expect("content type");
    assert!(js_type.ends_with("javascript; charset=utf-8"), "{js_type}");
    assert_eq!(header(&image, "content-type").as_deref(), Some("image/png"));
    for response in [&html, &css, &js, &image] {
        assert_eq!(
            header(response, "x-content-type-options").as_deref(),
            Some("nosniff")
        );
    }
    assert_eq!(body(image).await, png);
}

#[tokio::test]
async fn compressible_files_are_compressed_for_clients_that_accept_it() {
    let source = script();
    let (app, _) = blog_with(&[("app.js", &source)]).await;
    let identity_etag = format!("\"{}\"", sha256_hex(&source));

    let br = app
        .site("blog.localhost", "/app.js", &[("accept-encoding", "br")])
        .await;
    let gzip = app
        .site("blog.localhost", "/app.js", &[("accept-encoding", "gzip")])
        .await;
    let plain = app.site("blog.localhost", "/app.js", &[]).await;

    assert_eq!(header(&br, "content-encoding").as_deref(), Some("br"));
    assert_eq!(header(&br, "vary").as_deref(), Some("Accept-Encoding"));
    let br_etag = header(&br, "etag").expect("etag");
    let mut decoded = Vec::new();
    brotli::Decompressor::new(&body(br).await[..], 4096)
        .read_to_end(&mut decoded)
        .expect("brotli");
    assert_eq!(decoded, source);

    assert_eq!(header(&gzip, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(header(&gzip, "vary").as_deref(), Some("Accept-Encoding"));
    let gzip_etag = header(&gzip, "etag").expect("etag");
    let compressed = body(gzip).await;
    assert!(compressed.len() < source.len());
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_end(&mut decoded)
        .expect("gunzip");
    assert_eq!(decoded, source);

    assert_eq!(header(&plain, "content-encoding"), None);
    assert_eq!(header(&plain, "vary").as_deref(), Some("Accept-Encoding"));
    assert_eq!(header(&plain, "etag"), Some(identity_etag.clone()));
    assert_eq!(body(plain).await, source);
    assert_ne!(br_etag, identity_etag);
    assert_ne!(gzip_etag, identity_etag);
    assert_ne!(br_etag, gzip_etag);
}

#[tokio::test]
async fn precompressed_siblings_are_served_as_they_are() {
    let source = script();
    let fake_br: &[u8] = b"precompressed brotli bytes";
    let fake_gz: &[u8] = b"precompressed gzip bytes";
    let (app, _) = blog_with(&[
        ("app.js", &source),
        ("app.js.br", fake_br),
        ("app.js.gz", fake_gz),
    ])
    .await;

    let br = app
        .site(
            "blog.localhost",
            "/app.js",
            &[("accept-encoding", "gzip, br")],
        )
        .await;
    let gzip = app
        .site("blog.localhost", "/app.js", &[("accept-encoding", "gzip")])
        .await;

    assert_eq!(header(&br, "content-encoding").as_deref(), Some("br"));
    assert_eq!(
        header(&br, "etag"),
        Some(format!("\"{}\"", sha256_hex(fake_br)))
    );
    assert!(header(&br, "content-type")
        .expect("type")
        .contains("javascript"));
    assert_eq!(body(br).await, fake_br);
    assert_eq!(header(&gzip, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(header(&gzip, "vary").as_deref(), Some("Accept-Encoding"));
    assert_eq!(body(gzip).await, fake_gz);
}

#[tokio::test]
async fn a_range_request_gets_identity_bytes_even_when_compression_is_accepted() {
    let source = script();
    let (app, _) = blog_with(&[("app.js", &source)]).await;

    let response = app
        .site(
            "blog.localhost",
            "/app.js",
            &[("accept-encoding", "br, gzip"), ("range", "bytes=10-19")],
        )
        .await;

    assert_eq!(response.status(), 206);
    assert_eq!(header(&response, "content-encoding"), None);
    assert_eq!(
        header(&response, "content-range"),
        Some(format!("bytes 10-19/{}", source.len()))
    );
    assert_eq!(body(response).await, &source[10..20]);
}

#[tokio::test]
async fn a_file_larger_than_the_cache_limit_streams_byte_exact_and_serves_ranges() {
    let app = TestApp::spawn_with(|c| c.cache.cache_max_file_bytes = 1024).await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let large: Vec<u8> = (0..200 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    app.deploy_archive(
        ADMIN_TOKEN,
        "blog",
        &[("data.bin", &large), ("big.txt", &large)],
    )
    .await;

    let whole = app.site("blog.localhost", "/data.bin", &[]).await;
    let middle = app
        .site(
            "blog.localhost",
            "/data.bin",
            &[("range", "bytes=100000-100099")],
        )
        .await;
    let text = app
        .site(
            "blog.localhost",
            "/big.txt",
            &[("accept-encoding", "br, gzip")],
        )
        .await;

    assert_eq!(whole.status(), 200);
    assert_eq!(
        header(&whole, "content-length"),
        Some(large.len().to_string())
    );
    assert_eq!(
        header(&whole, "etag"),
        Some(format!("\"{}\"", sha256_hex(&large)))
    );
    assert!(
        body(whole).await == large,
        "the streamed body differs from the file"
    );
    assert_eq!(middle.status(), 206);
    assert_eq!(
        header(&middle, "content-range"),
        Some(format!("bytes 100000-100099/{}", large.len()))
    );
    assert_eq!(body(middle).await, &large[100_000..100_100]);
    assert_eq!(text.status(), 200);
    assert_eq!(
        header(&text, "content-encoding"),
        None,
        "a large file is not compressed in memory"
    );
    assert!(body(text).await == large);
}
