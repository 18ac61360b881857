//! Webhook deliveries with two app instances claiming from one queue: every message
//! arrives, and no message is sent by both (`FOR UPDATE SKIP LOCKED` and the lease).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use hosting_api as api;

use crate::helpers::{TestApp, ADMIN_TOKEN};

/// Counts the requests per `webhook-id` on a loopback receiver.
async fn receiver() -> (Arc<Mutex<HashMap<String, u32>>>, std::net::SocketAddr) {
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let state = seen.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap| {
            let state = state.clone();
            async move {
                let id = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                *state.lock().expect("lock").entry(id).or_default() += 1;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (seen, addr)
}

#[tokio::test]
async fn two_instances_deliver_each_queued_message_once() {
    // Arrange: two instances polling the same queue often.
    let (seen, addr) = receiver().await;
    let quick = |config: &mut hosting_app::Config| {
        config.events.webhook_allow_private = true;
        config.events.webhook_poll_interval = Duration::from_millis(20);
    };
    let first = TestApp::spawn_with(quick).await;
    let second = first.another_instance(quick).await;
    first.create_site(ADMIN_TOKEN, "blog").await;
    let response = first
        .post(ADMIN_TOKEN, "/sites/blog/webhooks")
        .json(&api::CreateWebhook {
            url: format!("http://{addr}/hook"),
            events: vec!["deploy.created".into(), "deploy.published".into()],
        })
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);

    // Act: 15 archive deploys, each queueing two messages.
    for n in 0..15 {
        let body = format!("v{n}");
        first
            .deploy_archive(ADMIN_TOKEN, "blog", &[("index.html", body.as_bytes())])
            .await;
    }

    // Assert
    let started = Instant::now();
    while seen.lock().expect("lock").len() < 30 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not all delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 30);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    drop(second);
}
