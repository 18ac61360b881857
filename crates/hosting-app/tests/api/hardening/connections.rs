//! Slow, idle and too many connections: the header-read and idle clocks and the
//! connection cap of `http/listener.rs`, over real sockets.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{connect, read_response, read_until_closed, status_of, GUARD, HEALTH_REQUEST};
use crate::helpers::TestApp;
use crate::helpers::ADMIN_TOKEN;

#[tokio::test]
async fn slow_clients_are_closed_after_the_header_timeout_while_others_are_served() {
    // Arrange: a short header timeout and a long idle timeout, so only the first can act.
    let app = TestApp::spawn_with(|c| {
        c.listeners.header_read_timeout = Duration::from_secs(1);
        c.listeners.idle_timeout = Duration::from_secs(600);
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
        c.listeners.header_read_timeout = Duration::from_secs(1);
        c.listeners.idle_timeout = Duration::from_secs(600);
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
        c.listeners.header_read_timeout = Duration::from_secs(600);
        c.listeners.idle_timeout = Duration::from_secs(1);
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
        c.listeners.header_read_timeout = Duration::from_secs(1);
        c.listeners.idle_timeout = Duration::from_secs(600);
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
        c.listeners.header_read_timeout = Duration::from_secs(1);
        c.listeners.idle_timeout = Duration::from_secs(600);
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
        c.listeners.max_connections = 2;
        c.listeners.header_read_timeout = Duration::from_secs(600);
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

#[tokio::test]
async fn a_client_that_stops_reading_a_large_response_is_disconnected() {
    // Arrange: a file far larger than the socket buffers can hold (the server's send
    // buffer grows to 4 MiB on Linux; the client's receive buffer is kept small).
    let app = TestApp::spawn_with(|c| {
        c.listeners.idle_timeout = Duration::from_secs(1);
        c.listeners.header_read_timeout = Duration::from_secs(600);
    })
    .await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let big: Vec<u8> = (0..24 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    app.deploy_digest(ADMIN_TOKEN, "blog", &[("/big.bin", &big)])
        .await;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    let mut stream = socket.connect(app.addr).await.expect("connect");

    // Act: ask for the file, then never read it, only write a byte now and then.
    stream
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: blog.localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let noticed_close = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if stream.write_all(b" ").await.is_err() {
                return;
            }
        }
    };

    // Assert: the server gave up on the stalled connection (its reset fails our writes).
    assert!(
        tokio::time::timeout(GUARD, noticed_close).await.is_ok(),
        "the server kept a connection whose client stopped reading"
    );
}
