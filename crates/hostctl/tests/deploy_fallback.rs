//! Which upload routes hostctl uses, seen by a proxy in front of a real server. A server
//! from before the bulk routes (`POST /blobs/missing`, `POST /blobs` and
//! `POST /deploys/{id}/files` answer 404): hostctl falls back to one `PUT` per file and
//! the deploy is complete. A current server, with `--early-upload`: the files go up before
//! the deploy is created (`POST /blobs`), and nothing is uploaded to the deploy afterwards;
//! with `--batch-files N`, requests of at most N files.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hosting_app::config::Secret;
use hosting_app::{Application, Config};

const ADMIN_TOKEN: &str = "hst_fallback-test-admin-token-012345";

/// What the proxy saw.
#[derive(Default)]
struct Seen {
    bulk_refused: AtomicUsize,
    early: AtomicUsize,
    deploy_batches: AtomicUsize,
    puts: AtomicUsize,
}

struct Proxy {
    upstream: u16,
    client: reqwest::Client,
    seen: Seen,
    /// Answer the bulk routes with 404, as a server from before them.
    old: bool,
}

/// The old server's answer to the bulk routes; everything else goes to `upstream`.
async fn old_server(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let deploy_batch = parts.method == Method::POST
        && path.starts_with("/api/v1/deploys/")
        && path.ends_with("/files");
    let early = parts.method == Method::POST && path.starts_with("/api/v1/blobs");
    if deploy_batch {
        proxy.seen.deploy_batches.fetch_add(1, Ordering::Relaxed);
    }
    if early {
        proxy.seen.early.fetch_add(1, Ordering::Relaxed);
    }
    if proxy.old && (deploy_batch || early) {
        proxy.seen.bulk_refused.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/problem+json")],
            r#"{"type":"about:blank","title":"Not Found","status":404}"#,
        )
            .into_response();
    }
    if parts.method == Method::PUT && path.contains("/files/") {
        proxy.seen.puts.fetch_add(1, Ordering::Relaxed);
    }
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("request body");
    let target = format!(
        "http://127.0.0.1:{}{}",
        proxy.upstream,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut forwarded = proxy.client.request(parts.method, target).body(bytes);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            forwarded = forwarded.header(name, value);
        }
    }
    let answer = forwarded.send().await.expect("upstream answers");
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            response = response.header(name, value);
        }
    }
    let body = answer.bytes().await.expect("upstream body");
    response.body(Body::from(body)).expect("response")
}

/// A real server behind the proxy; the proxy's port and state.
async fn serve(
    old: bool,
) -> (
    u16,
    Arc<Proxy>,
    tokio::sync::oneshot::Sender<()>,
    tempfile::TempDir,
) {
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_tests(data.path());
    config.admin.admin_token = Some(Secret::from(ADMIN_TOKEN));
    let app = Application::build(config).await.expect("server builds");
    let upstream = app.api_addr().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));

    let proxy = Arc::new(Proxy {
        upstream,
        client: reqwest::Client::new(),
        seen: Seen::default(),
        old,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let router = axum::Router::new()
        .fallback(old_server)
        .with_state(Arc::clone(&proxy));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (port, proxy, stop, data)
}

/// Deploys a folder of `pages` pages and an index through the proxy at `port`, with the
/// early upload (`--early-upload`).
async fn deploy(port: u16, pages: usize) -> std::process::Output {
    deploy_with(port, pages, &["--early-upload"]).await
}

/// Deploys a folder of `pages` pages and an index through the proxy at `port` with
/// `flags`.
async fn deploy_with(port: u16, pages: usize, flags: &[&str]) -> std::process::Output {
    let site = tempfile::tempdir().expect("temp dir");
    for i in 0..pages {
        std::fs::write(
            site.path().join(format!("page-{i}.html")),
            format!("<p>{i}</p>"),
        )
        .expect("write");
    }
    std::fs::write(site.path().join("index.html"), "<h1>home</h1>").expect("write");
    let dir = site.path().to_str().expect("utf-8 path").to_owned();
    let server = format!("http://localhost:{port}");
    let cache = tempfile::tempdir().expect("temp dir");
    let cache_home = cache.path().to_owned();
    let flags: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hostctl"))
            .args(["deploy", &dir, "--site", "old"])
            .args(&flags)
            .env("HOSTCTL_SERVER", server)
            .env("HOSTCTL_TOKEN", ADMIN_TOKEN)
            .env("XDG_CACHE_HOME", cache_home)
            .output()
            .expect("hostctl runs")
    })
    .await
    .expect("join")
}

/// hostctl succeeded and uploaded every file of a first deploy of `pages` pages (and the
/// index).
fn assert_uploaded_all(output: &std::process::Output, pages: usize) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "deploy failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("({} uploaded, 0 unchanged)", pages + 1)),
        "{stdout}"
    );
}

/// The real server behind the proxy serves every page of site "old".
async fn assert_pages_served(upstream: u16, pages: usize) {
    let client = reqwest::Client::new();
    for i in 0..pages {
        let response = client
            .get(format!("http://127.0.0.1:{upstream}/page-{i}.html"))
            .header("host", "old.localhost")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.expect("body"), format!("<p>{i}</p>"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_current_server_gets_the_files_before_the_deploy_and_nothing_after() {
    let (port, proxy, _stop, _data) = serve(false).await;
    let pages = 12;

    let output = deploy(port, pages).await;

    assert_uploaded_all(&output, pages);
    // One "missing" call and one batch: the folder is one chunk.
    assert_eq!(proxy.seen.early.load(Ordering::Relaxed), 2);
    assert_eq!(proxy.seen.deploy_batches.load(Ordering::Relaxed), 0);
    assert_eq!(proxy.seen.puts.load(Ordering::Relaxed), 0);
    assert_pages_served(proxy.upstream, pages).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_bulk_routes_gets_one_put_per_file() {
    let (port, proxy, _stop, _data) = serve(true).await;
    let pages = 12;

    let output = deploy(port, pages).await;
    assert_uploaded_all(&output, pages);
    // The early upload's first "missing" call was refused, then the deploy's batch.
    assert_eq!(proxy.seen.early.load(Ordering::Relaxed), 1);
    assert!(proxy.seen.bulk_refused.load(Ordering::Relaxed) >= 2);
    assert_eq!(proxy.seen.puts.load(Ordering::Relaxed), pages + 1);

    // Served from the real server: every file arrived through its PUT.
    assert_pages_served(proxy.upstream, pages).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_files_cuts_the_upload_into_requests_of_that_many_files() {
    let (port, proxy, _stop, _data) = serve(false).await;
    let pages = 12;

    let output = deploy_with(
        port,
        pages,
        &["--batch-files", "5", "--batches-in-flight", "2"],
    )
    .await;

    assert_uploaded_all(&output, pages);
    // 13 files in requests of at most 5: 5, 5 and 3.
    assert_eq!(proxy.seen.deploy_batches.load(Ordering::Relaxed), 3);
    assert_eq!(proxy.seen.early.load(Ordering::Relaxed), 0);
    assert_eq!(proxy.seen.puts.load(Ordering::Relaxed), 0);
    assert_pages_served(proxy.upstream, pages).await;
}
