//! What a hostile or careless client must not be able to do (issue 14): hold connections
//! with slow requests, exceed the connection cap, confuse routing with odd `Host`
//! headers, turn the sign-in redirect into an open redirect or a 5xx, and publish two
//! paths that differ only in Unicode normalization.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, ADMIN_TOKEN};

/// Longest the tests wait for the server to close a socket: a guard against hanging,
/// far above the 1 s timeouts configured, never the thing asserted.
const GUARD: Duration = Duration::from_secs(30);

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr).await.expect("connect")
}

/// Reads until the server closes the socket; `None` if it was still open after [`GUARD`].
async fn read_until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(GUARD, read_all).await.ok()?;
    Some(received)
}

/// Reads one response of a keep-alive connection: up to the end of its body
/// (`Content-Length`), so the connection stays usable.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())
                        .flatten()
                })
                .unwrap_or(0);
            if received.len() >= head_end + 4 + length {
                return text;
            }
        }
        let n = tokio::time::timeout(GUARD, stream.read(&mut chunk))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(n > 0, "connection closed mid-response: {text}");
        received.extend_from_slice(&chunk[..n]);
    }
}

fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

const HEALTH_REQUEST: &[u8] = b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: localhost\r\n\r\n";

#[tokio::test]
async fn slow_clients_are_closed_after_the_header_timeout_while_others_are_served() {
    // Arrange: a short header timeout and a long idle timeout, so only the first can act.
    let app = TestApp::spawn_with(|c| {
        c.header_read_timeout = 1;
        c.idle_timeout = 600;
    })
    .await;
    let mut slow = Vec::new();
    for i in 0..60 {
        let mut stream = connect(&app).await;
        let partial: &[u8] = match i % 3 {
            0 => b"GET / HT",
            1 => b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Half: ",
            _ => b"",
        };
        stream.write_all(partial).await.expect("write");
        slow.push(stream);
    }

    // Act + Assert: while they are held, a normal client is served.
    let response = app
        .client
        .get(app.api("/openapi.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);

    // Each slow socket is closed by the server without a response.
    for (i, stream) in slow.iter_mut().enumerate() {
        let received = read_until_closed(stream)
            .await
            .unwrap_or_else(|| panic!("slow socket {i} was still open after {GUARD:?}"));
        assert!(
            !String::from_utf8_lossy(&received).contains(" 200 "),
            "a slow request was served"
        );
    }
}

#[tokio::test]
async fn a_byte_at_a_time_does_not_extend_the_header_timeout() {
    let app = TestApp::spawn_with(|c| {
        c.header_read_timeout = 1;
        c.idle_timeout = 600;
    })
    .await;
    let mut stream = connect(&app).await;
    let dribble = async {
        for byte in b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if stream.write_all(&[*byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    };
    let cut_off = tokio::time::timeout(GUARD, dribble).await.unwrap_or(false);
    assert!(
        cut_off,
        "the server kept reading a header sent a byte every 200 ms"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = TestApp::spawn_with(|c| {
        c.header_read_timeout = 600;
        c.idle_timeout = 1;
    })
    .await;
    let mut stream = connect(&app).await;
    stream.write_all(HEALTH_REQUEST).await.expect("write");
    assert_eq!(status_of(&read_response(&mut stream).await), 200);

    let after = read_until_closed(&mut stream).await;

    assert_eq!(
        after,
        Some(Vec::new()),
        "the idle connection was not closed (or got unexpected bytes)"
    );
}

#[tokio::test]
async fn a_keep_alive_connection_outlives_the_header_timeout_while_idle() {
    // The proxies keep upstream connections idle for a minute: the header clock must
    // not run between requests, only the idle clock.
    let app = TestApp::spawn_with(|c| {
        c.header_read_timeout = 1;
        c.idle_timeout = 600;
    })
    .await;
    let mut stream = connect(&app).await;
    stream.write_all(HEALTH_REQUEST).await.expect("write");
    assert_eq!(status_of(&read_response(&mut stream).await), 200);

    tokio::time::sleep(Duration::from_millis(2500)).await;
    stream.write_all(HEALTH_REQUEST).await.expect("write");

    assert_eq!(status_of(&read_response(&mut stream).await), 200);
}

#[tokio::test]
async fn a_request_in_flight_is_not_cut_by_the_header_timeout() {
    // Arrange: an upload whose body arrives in two parts, 2 s apart (over the 1 s clock).
    let app = TestApp::spawn_with(|c| {
        c.header_read_timeout = 1;
        c.idle_timeout = 600;
    })
    .await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let archive = crate::helpers::targz(&[("index.html", b"<h1>slow upload</h1>")]);
    let mut stream = connect(&app).await;
    let head = format!(
        "POST /api/v1/sites/blog/deploys HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/gzip\r\n\
         Content-Length: {}\r\n\r\n",
        archive.len()
    );
    let (first, second) = archive.split_at(archive.len() / 2);

    // Act
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(first).await.expect("first half");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stream.write_all(second).await.expect("second half");

    // Assert
    let response = read_response(&mut stream).await;
    assert_eq!(status_of(&response), 201, "{response}");
}

#[tokio::test]
async fn over_the_connection_cap_a_client_waits_until_a_connection_closes() {
    // Arrange: two connections at most; both held by clients that never finish.
    let app = TestApp::spawn_with(|c| {
        c.max_connections = 2;
        c.header_read_timeout = 600;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(&app).await;
        stream.write_all(b"GET / HT").await.expect("write");
        held.push(stream);
    }
    // The kernel completes the handshake, but the server does not take the socket.
    let mut waiting = connect(&app).await;
    waiting.write_all(HEALTH_REQUEST).await.expect("write");
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut byte)).await;
    assert!(early.is_err(), "a connection over the cap was served");

    // The management listener has a cap of its own: health checks still get through.
    let health = app
        .client
        .get(app.mgmt_url("/healthz"))
        .send()
        .await
        .expect("health check");
    assert_eq!(health.status(), 200);

    // Act: one held connection goes away.
    drop(held.pop());

    // Assert: the waiting client is served.
    assert_eq!(status_of(&read_response(&mut waiting).await), 200);
}

/// Sends `request` as it is on a fresh connection and returns everything the server
/// answers before closing it.
async fn exchange(app: &TestApp, request: &[u8]) -> String {
    let mut stream = connect(app).await;
    stream.write_all(request).await.expect("write");
    let received = read_until_closed(&mut stream)
        .await
        .expect("the server answers and closes");
    String::from_utf8_lossy(&received).into_owned()
}

fn assert_bad_request_problem(response: &str, what: &str) {
    assert_eq!(status_of(response), 400, "{what}: {response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{what}: {response}"
    );
}

#[tokio::test]
async fn two_host_headers_are_a_bad_request_not_the_first_one() {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    app.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"blog")])
        .await;

    let response = exchange(
        &app,
        b"GET / HTTP/1.1\r\nHost: blog.localhost\r\nHost: other.localhost\r\nConnection: close\r\n\r\n",
    )
    .await;

    assert_bad_request_problem(&response, "two Host headers");
    assert!(response.contains("2 Host headers"), "{response}");
}

#[tokio::test]
async fn a_malformed_or_missing_host_is_a_bad_request_problem() {
    let app = TestApp::spawn().await;
    for host in [
        "a.example:80:80",
        "blog.localhost:80:80",
        "blog.localhost:http",
        "blog.localhost:",
        "",
        "blog..localhost",
        "blog.localhost/x",
        "blog_localhost\\x",
    ] {
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let response = exchange(&app, request.as_bytes()).await;
        assert_bad_request_problem(&response, &format!("Host {host:?}"));
    }
    // HTTP/1.0 may omit Host, but the site is chosen by Host alone.
    let response = exchange(&app, b"GET / HTTP/1.0\r\n\r\n").await;
    assert_bad_request_problem(&response, "HTTP/1.0 without Host");
    let response = exchange(&app, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert_bad_request_problem(&response, "HTTP/1.1 without Host");
}

#[tokio::test]
async fn case_port_and_one_trailing_dot_do_not_change_the_site() {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    app.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"the blog")])
        .await;

    for host in [
        "blog.localhost",
        "BLOG.LocalHost:8080",
        "blog.localhost.",
        "Blog.localhost.:80",
    ] {
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let response = exchange(&app, request.as_bytes()).await;
        assert_eq!(status_of(&response), 200, "Host {host:?}: {response}");
        assert!(response.ends_with("the blog"), "Host {host:?}: {response}");
    }
    // Two trailing dots are not one name with a dot: refused.
    let response = exchange(
        &app,
        b"GET / HTTP/1.1\r\nHost: blog.localhost..\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_bad_request_problem(&response, "two trailing dots");
}

#[tokio::test]
async fn an_absolute_form_target_routes_by_its_authority_as_nginx_does() {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    app.deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", b"the blog")])
        .await;

    let response = exchange(
        &app,
        b"GET http://blog.localhost/ HTTP/1.1\r\nHost: other.localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&response), 200, "{response}");
    assert!(response.ends_with("the blog"), "{response}");

    // Userinfo hides the real host in phishing URLs; a malformed authority is no host.
    for target in [
        "http://user@blog.localhost/",
        "http://blog.localhost:80:80/",
    ] {
        let request =
            format!("GET {target} HTTP/1.1\r\nHost: blog.localhost\r\nConnection: close\r\n\r\n");
        let response = exchange(&app, request.as_bytes()).await;
        assert_eq!(status_of(&response), 400, "{target}: {response}");
    }
}

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
        c.admin_password = Some(secrecy::SecretString::from(PASSWORD));
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

#[tokio::test]
async fn both_deploy_routes_refuse_paths_differing_only_in_unicode_normalization() {
    // Arrange: `/café.html` in NFC and in NFD, two different byte strings.
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let (nfc, nfd) = ("caf\u{e9}.html", "cafe\u{301}.html");
    let files: std::collections::BTreeMap<String, String> = [
        (format!("/{nfc}"), crate::helpers::sha256_hex(b"composed")),
        (format!("/{nfd}"), crate::helpers::sha256_hex(b"decomposed")),
    ]
    .into();

    // Act
    let digest = app
        .post(ADMIN_TOKEN, "/sites/blog/deploys")
        .json(&hosting_api::CreateDeploy { files })
        .send()
        .await
        .expect("digest deploy");
    let archive = app
        .post_archive(
            ADMIN_TOKEN,
            "blog",
            &crate::helpers::targz(&[(nfc, b"composed"), (nfd, b"decomposed")]),
        )
        .await;

    // Assert: the same problem from both routes, and no deploy was created.
    let mut problems = Vec::new();
    for response in [digest, archive] {
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
        let problem: hosting_api::Problem = response.json().await.expect("problem");
        problems.push(problem);
    }
    for problem in &problems {
        let detail = problem.detail.as_deref().unwrap_or_default();
        assert!(
            detail.contains("collides with") && detail.contains("Unicode normalization"),
            "{detail}"
        );
    }
    assert_eq!(problems[0].status, 400);
    assert_eq!(
        (problems[0].status, &problems[0].kind),
        (problems[1].status, &problems[1].kind)
    );
    let deploys: hosting_api::List<hosting_api::Deploy> = app
        .get(ADMIN_TOKEN, "/sites/blog/deploys")
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert!(deploys.items.is_empty(), "a deploy was created");
}
