//! Analytics across replicas (issue 20): two app instances on one PostgreSQL each count
//! what they serve and flush on their own clock; the report is the sum of both, and a
//! visitor served by both counts once (the day's salt is shared through the database).

use std::time::{Duration, Instant};

use hosting_api as api;

use crate::helpers::{TestApp, ADMIN_TOKEN};

async fn visit(app: &TestApp, path: &str, visitor: u32) {
    let address = format!("10.1.{}.{}", visitor >> 8 & 255, visitor & 255);
    let response = app
        .site(
            "blog.localhost",
            path,
            &[
                ("x-real-ip", address.as_str()),
                ("user-agent", "cluster-test"),
            ],
        )
        .await;
    assert!(response.status().is_success() || response.status() == 404);
}

async fn report(app: &TestApp) -> api::SiteAnalytics {
    app.get(ADMIN_TOKEN, "/sites/blog/analytics")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_figures_add_up_and_a_visitor_of_both_counts_once() {
    let fast_flush = |c: &mut hosting_app::Config| {
        c.analytics.analytics_flush_interval = Duration::from_millis(200);
    };
    let a = TestApp::spawn_with(fast_flush).await;
    let b = a.another_instance(fast_flush).await;
    a.create_site(ADMIN_TOKEN, "blog").await;
    a.deploy_archive(
        ADMIN_TOKEN,
        "blog",
        &[("index.html", b"<!doctype html><p>hi")],
    )
    .await;

    // Visitors 0..100 on A, 50..150 on B: 150 distinct, 200 page views, 10 404s each.
    for visitor in 0..100 {
        visit(&a, "/", visitor).await;
    }
    for visitor in 50..150 {
        visit(&b, "/", visitor).await;
    }
    for visitor in 0..10 {
        visit(&a, "/nope", visitor).await;
        visit(&b, "/nope", visitor).await;
    }

    let started = Instant::now();
    let mut seen = report(&a).await;
    while seen.totals.requests < 220 && started.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = report(&a).await;
    }
    assert_eq!(seen.totals.requests, 220);
    assert_eq!(seen.totals.page_views, 200);
    assert_eq!(seen.totals.status_4xx, 20);
    assert_eq!(
        seen.top_not_found,
        vec![api::TopEntry {
            key: "/nope".into(),
            count: 20
        }]
    );
    let visitors = seen.totals.visitors as f64;
    assert!(
        (visitors - 150.0).abs() <= 150.0 * 0.05,
        "{visitors} visitors, 150 sent"
    );
    // Either instance answers the same figures: they live in the shared database.
    assert_eq!(report(&b).await.totals, seen.totals);
}
