//! What a hostile or careless client must not be able to do (issue 14): hold connections
//! with slow requests, exceed the connection cap, confuse routing with odd `Host`
//! headers, turn the sign-in redirect into an open redirect or a 5xx, and publish two
//! paths that differ only in Unicode normalization. Shared socket helpers and the deploy
//! name test are here; the rest is in the submodules.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::helpers::{TestApp, ADMIN_TOKEN};

#[path = "hardening/connections.rs"]
mod connections;
#[path = "hardening/hosts.rs"]
mod hosts;
#[path = "hardening/redirects.rs"]
mod redirects;

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

/// Deploys the same files (archive names, without the leading `/`) to `site` once as a
/// digest file list and once as a `.tar.gz`: the digest route's answer, then the archive's.
async fn deploy_by_both_routes(
    app: &TestApp,
    site: &str,
    files: &[(&str, &[u8])],
) -> [reqwest::Response; 2] {
    let list = files
        .iter()
        .map(|(name, bytes)| (format!("/{name}"), crate::helpers::sha256_hex(bytes)))
        .collect();
    let digest = app
        .post(ADMIN_TOKEN, &format!("/sites/{site}/deploys"))
        .json(&hosting_api::CreateDeploy {
            files: list,
            message: None,
        })
        .send()
        .await
        .expect("digest deploy");
    let archive = app
        .post_archive(ADMIN_TOKEN, site, &crate::helpers::targz(files))
        .await;
    [digest, archive]
}

#[tokio::test]
async fn both_deploy_routes_refuse_paths_differing_only_in_unicode_normalization() {
    // Arrange: `/café.html` in NFC and in NFD, two different byte strings.
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let (nfc, nfd) = ("caf\u{e9}.html", "cafe\u{301}.html");

    // Act
    let [digest, archive] =
        deploy_by_both_routes(&app, "blog", &[(nfc, b"composed"), (nfd, b"decomposed")]).await;

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

#[tokio::test]
async fn both_deploy_routes_refuse_a_windows_drive_prefix() {
    // Arrange: `C:` selects a drive on Windows; a path must mean one file everywhere.
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;

    // Act
    let [digest, archive] = deploy_by_both_routes(&app, "blog", &[("C:/x.html", b"x")]).await;

    // Assert: both refuse it, naming the rule.
    for response in [digest, archive] {
        assert!(response.status().is_client_error(), "{}", response.status());
        let problem: hosting_api::Problem = response.json().await.expect("problem");
        let detail = problem.detail.as_deref().unwrap_or_default();
        assert!(detail.contains("drive prefix"), "{detail}");
    }
}
