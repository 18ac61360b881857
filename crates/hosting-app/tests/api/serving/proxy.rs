//! Proxy rules (`/api/* http://upstream/:splat 200`) against an upstream the tests
//! start on loopback.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use futures::StreamExt;
use sha2::Digest;
use tokio::sync::{mpsc, Notify};

use super::header;
use crate::helpers::{assert_problem, sha256_hex, TestApp, ADMIN_TOKEN};

/// Size of the large bodies streamed each way.
const LARGE: usize = 24 * 1024 * 1024;

/// The upstream: counts requests, echoes what it received, streams, stalls and holds.
struct Upstream {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    /// `/hold` and `/trickle` report here once they have answered their headers.
    reached: mpsc::UnboundedReceiver<()>,
    release: Arc<Notify>,
}

#[derive(Clone)]
struct Shared {
    hits: Arc<AtomicUsize>,
    reached: mpsc::UnboundedSender<()>,
    release: Arc<Notify>,
}

impl Upstream {
    async fn start() -> Upstream {
        let (reached_tx, reached) = mpsc::unbounded_channel();
        let shared = Shared {
            hits: Arc::new(AtomicUsize::new(0)),
            reached: reached_tx,
            release: Arc::new(Notify::new()),
        };
        let router = Router::new()
            .route("/echo/{*rest}", any(echo))
            .route("/large", get(large))
            .route("/trickle", get(trickle))
            .route("/hold", get(hold))
            .route("/slow", get(slow))
            .route("/moved", get(moved))
            .route("/hop", get(hop))
            .fallback(any(echo))
            .layer(axum::middleware::from_fn_with_state(shared.clone(), count))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Upstream {
            addr,
            hits: shared.hits,
            reached,
            release: shared.release,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// `_redirects` sending `/api/*` to this upstream at `host` (an IP or a name).
    fn rules(&self, host: &str) -> Vec<u8> {
        format!(
            "/api/* http://{host}:{}/:splat 200\n/forced http://{host}:{}/echo/forced 200!\n",
            self.addr.port(),
            self.addr.port()
        )
        .into_bytes()
    }
}

async fn count(
    State(shared): State<Shared>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    next.run(req).await
}

/// The method, URI, headers and body digest the upstream received, as JSON.
async fn echo(req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let (mut size, mut digest) = (0usize, sha2::Sha256::new());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("request body");
        size += chunk.len();
        digest.update(&chunk);
    }
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into()))
        .collect();
    axum::Json(serde_json::json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "headers": headers,
        "size": size,
        "sha256": hex::encode(digest.finalize()),
    }))
    .into_response()
}

fn large_bytes() -> Vec<u8> {
    (0..LARGE).map(|i| (i % 251) as u8).collect()
}

async fn large() -> Response {
    let chunks = large_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
        .collect::<Vec<_>>();
    Body::from_stream(futures::stream::iter(chunks)).into_response()
}

/// One chunk, then nothing until released: only a streaming proxy passes it on early.
async fn trickle(State(shared): State<Shared>) -> Response {
    let stream =
        futures::stream::once(async { Ok::<_, std::io::Error>(bytes::Bytes::from("first;")) })
            .chain(futures::stream::once(async move {
                let _ = shared.reached.send(());
                shared.release.notified().await;
                Ok(bytes::Bytes::from("last"))
            }));
    Body::from_stream(stream).into_response()
}

async fn hold(State(shared): State<Shared>) -> Response {
    let _ = shared.reached.send(());
    shared.release.notified().await;
    "held".into_response()
}

async fn slow() -> Response {
    tokio::time::sleep(Duration::from_secs(10)).await;
    "too late".into_response()
}

async fn moved() -> Response {
    (StatusCode::FOUND, [("location", "/somewhere/else")], "").into_response()
}

async fn hop() -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("x-upstream-hop", "1".parse().expect("value"));
    headers.insert("connection", "x-upstream-hop".parse().expect("value"));
    headers.insert("proxy-authenticate", "Basic".parse().expect("value"));
    headers.insert("x-upstream-kept", "1".parse().expect("value"));
    (headers, "hop").into_response()
}

/// A site whose `_redirects` proxies `/api/*` to `upstream`, on an app allowed to reach
/// 127.0.0.1 (plus whatever `adjust` sets).
async fn proxied_site(
    upstream: &Upstream,
    adjust: impl FnOnce(&mut hosting_app::Config),
) -> TestApp {
    let app = TestApp::spawn_with(|config| {
        config.routing.proxy_allowed_private_hosts = vec!["127.0.0.1".into()];
        adjust(config);
    })
    .await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let rules = upstream.rules("127.0.0.1");
    let files: &[(&str, &[u8])] = &[
        ("index.html", b"home"),
        ("forced", b"a file the forced rule hides"),
        ("_redirects", &rules),
    ];
    app.deploy_archive(ADMIN_TOKEN, "blog", files).await;
    app
}

async fn json(response: reqwest::Response) -> serde_json::Value {
    response.json().await.expect("json body")
}

#[tokio::test]
async fn a_proxy_rule_forwards_method_path_query_body_and_forwarding_headers() {
    let upstream = Upstream::start().await;
    let app = proxied_site(&upstream, |_| {}).await;

    let response = app
        .client
        .post(format!("http://{}/api/echo/users?page=2", app.addr))
        .header("host", "blog.localhost")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-host", "evil.example")
        .header("connection", "x-client-hop")
        .header("x-client-hop", "1")
        .header("x-kept", "yes")
        .body("hello upstream")
        .send()
        .await
        .expect("request");
    let forced = app.site("blog.localhost", "/forced", &[]).await;

    assert_eq!(response.status(), 200);
    let seen = json(response).await;
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["uri"], "/echo/users?page=2");
    assert_eq!(seen["size"], 14);
    assert_eq!(seen["sha256"], sha256_hex(b"hello upstream"));
    let headers = &seen["headers"];
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-host"], "blog.localhost");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-kept"], "yes");
    assert_eq!(
        headers["host"],
        format!("127.0.0.1:{}", upstream.addr.port())
    );
    assert!(headers.get("x-client-hop").is_none(), "{headers}");
    assert_eq!(forced.status(), 200);
    assert_eq!(json(forced).await["uri"], "/echo/forced");
}

#[tokio::test]
async fn hop_by_hop_headers_of_the_upstream_are_dropped_and_redirects_passed_through() {
    let upstream = Upstream::start().await;
    let app = proxied_site(&upstream, |_| {}).await;

    let hop = app.site("blog.localhost", "/api/hop", &[]).await;
    let moved = app.site("blog.localhost", "/api/moved", &[]).await;

    assert_eq!(hop.status(), 200);
    assert_eq!(header(&hop, "x-upstream-kept").as_deref(), Some("1"));
    assert_eq!(header(&hop, "x-upstream-hop"), None);
    assert_eq!(header(&hop, "proxy-authenticate"), None);
    assert_eq!(
        moved.status(),
        302,
        "the upstream's redirect is not followed"
    );
    assert_eq!(
        header(&moved, "location").as_deref(),
        Some("/somewhere/else")
    );
    assert_eq!(upstream.hits(), 2);
}

#[tokio::test]
async fn large_bodies_stream_through_both_ways() {
    let mut upstream = Upstream::start().await;
    let app = proxied_site(&upstream, |_| {}).await;
    let expected = sha256_hex(&large_bytes());

    let download = app.site("blog.localhost", "/api/large", &[]).await;
    assert_eq!(download.status(), 200);
    let bytes = download.bytes().await.expect("body");
    let chunks = large_bytes()
        .chunks(256 * 1024)
        .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
        .collect::<Vec<_>>();
    let upload = app
        .client
        .put(format!("http://{}/api/echo/upload", app.addr))
        .header("host", "blog.localhost")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("upload");

    assert_eq!(bytes.len(), LARGE);
    assert_eq!(sha256_hex(&bytes), expected);
    assert_eq!(upload.status(), 200);
    let seen = json(upload).await;
    assert_eq!(seen["size"], LARGE);
    assert_eq!(seen["sha256"], expected);

    // The first chunk arrives while the upstream still holds the rest back: the proxy
    // does not wait for the whole body.
    let mut trickle = app.site("blog.localhost", "/api/trickle", &[]).await;
    let first = tokio::time::timeout(Duration::from_secs(10), trickle.chunk())
        .await
        .expect("first chunk before the upstream finished")
        .expect("chunk");
    assert_eq!(first.as_deref(), Some(&b"first;"[..]));
    upstream.reached.recv().await.expect("upstream waiting");
    upstream.release.notify_one();
    assert_eq!(
        trickle.chunk().await.expect("chunk").as_deref(),
        Some(&b"last"[..])
    );
}

#[tokio::test]
async fn an_upstream_slower_than_the_response_timeout_gets_a_504() {
    let upstream = Upstream::start().await;
    let app = proxied_site(&upstream, |config| {
        config.routing.proxy_response_timeout = Duration::from_millis(500);
    })
    .await;

    let response = app.site("blog.localhost", "/api/slow", &[]).await;

    assert_problem(response, 504).await;
}

#[tokio::test]
async fn private_targets_are_refused_unless_the_operator_allows_them() {
    let upstream = Upstream::start().await;
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let mut rules = upstream.rules("127.0.0.1");
    rules.extend_from_slice(
        format!(
            "/named/* http://localhost:{}/:splat 200\n",
            upstream.addr.port()
        )
        .as_bytes(),
    );
    let files: &[(&str, &[u8])] = &[("index.html", b"home"), ("_redirects", &rules)];
    app.deploy_archive(ADMIN_TOKEN, "blog", files).await;

    let literal = app.site("blog.localhost", "/api/echo/x", &[]).await;
    let named = app.site("blog.localhost", "/named/echo/x", &[]).await;

    let detail = assert_problem(literal, 502).await;
    assert!(detail.contains("no public address"), "{detail}");
    let detail = assert_problem(named, 502).await;
    assert!(detail.contains("no public address"), "{detail}");
    assert_eq!(upstream.hits(), 0, "nothing may reach a private address");
}

#[tokio::test]
async fn a_site_over_its_proxy_concurrency_limit_gets_a_503() {
    let mut upstream = Upstream::start().await;
    let app = proxied_site(&upstream, |config| config.routing.proxy_max_concurrent = 1).await;

    let first = {
        let (client, url) = (app.client.clone(), format!("http://{}/api/hold", app.addr));
        tokio::spawn(async move {
            client
                .get(url)
                .header("host", "blog.localhost")
                .send()
                .await
                .expect("request")
        })
    };
    upstream
        .reached
        .recv()
        .await
        .expect("first request upstream");
    let second = app.site("blog.localhost", "/api/echo/x", &[]).await;
    assert_eq!(header(&second, "retry-after").as_deref(), Some("1"));
    assert_problem(second, 503).await;
    upstream.release.notify_one();
    let first = first.await.expect("join");
    assert_eq!(first.status(), 200);
    assert_eq!(first.text().await.expect("body"), "held");

    let third = app.site("blog.localhost", "/api/echo/x", &[]).await;
    assert_eq!(
        third.status(),
        200,
        "the slot is free once the body is done"
    );
}

#[tokio::test]
async fn other_methods_are_refused_where_no_proxy_rule_applies() {
    let upstream = Upstream::start().await;
    let app = proxied_site(&upstream, |_| {}).await;

    let response = app
        .site_request(reqwest::Method::POST, "blog.localhost", "/index.html", &[])
        .await;

    assert_eq!(response.status(), 405);
    assert_eq!(header(&response, "allow").as_deref(), Some("GET, HEAD"));
}

#[tokio::test]
async fn a_protected_proxy_path_keeps_the_site_password_from_the_upstream() {
    use base64::Engine;
    let upstream = Upstream::start().await;
    let app = TestApp::spawn_with(|config| {
        config.routing.proxy_allowed_private_hosts = vec!["127.0.0.1".into()];
    })
    .await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let rules = upstream.rules("127.0.0.1");
    let files: &[(&str, &[u8])] = &[
        ("_redirects", &rules),
        ("_headers", b"/api/*\n  Basic-Auth: ann:pw-for-the-site\n"),
    ];
    app.deploy_archive(ADMIN_TOKEN, "blog", files).await;
    let authorization = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("ann:pw-for-the-site")
    );

    let refused = app.site("blog.localhost", "/api/echo/x", &[]).await;
    let granted = app
        .site(
            "blog.localhost",
            "/api/echo/x",
            &[("authorization", &authorization)],
        )
        .await;

    assert_eq!(refused.status(), 401);
    assert_eq!(granted.status(), 200);
    assert_eq!(
        header(&granted, "cache-control").as_deref(),
        Some("private, no-store")
    );
    let seen = json(granted).await;
    assert!(seen["headers"].get("authorization").is_none(), "{seen}");
    assert_eq!(
        upstream.hits(),
        1,
        "the refused request never left the platform"
    );
}
