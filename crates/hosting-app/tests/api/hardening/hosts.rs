//! The one `Host` rule: exactly one valid header, case, port and one trailing dot
//! ignored, absolute-form targets routed by their authority.

use tokio::io::AsyncWriteExt;

use super::{connect, read_until_closed, status_of};
use crate::helpers::{TestApp, ADMIN_TOKEN};

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
