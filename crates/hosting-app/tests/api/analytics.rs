//! Per-site analytics (issue 20) over real HTTP: the figures the API reports equal what
//! the test sent to the site, unique visitors within HyperLogLog error, only the owner
//! (or an admin) reads them, bad ranges are problem+json, and retention prunes.

use std::time::{Duration, Instant};

use chrono::Utc;
use hosting_api as api;
use hosting_app::store::{
    AnalyticsBatch, BucketIncrement, Counts, Granularity, TopIncrement, TopKind,
};

use crate::dashboard::{Browser, PASSWORD};
use crate::helpers::{assert_problem, TestApp, ADMIN_TOKEN};

const PAGE: &[u8] = b"<!doctype html><title>Home</title><p>Hello";
const ABOUT: &[u8] = b"<!doctype html><title>About</title><p>About us";
const STYLE: &[u8] = b"body { color: #222 }";

/// An app that writes its figures every 100 ms, with `blog` deployed (the admin has a
/// dashboard password).
async fn app_with_blog() -> TestApp {
    let app = TestApp::spawn_with(|c| {
        c.analytics.analytics_flush_interval = Duration::from_millis(100);
        c.admin.admin_password = Some(hosting_app::config::Secret::from(PASSWORD));
    })
    .await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    app.deploy_archive(
        ADMIN_TOKEN,
        "blog",
        &[
            ("index.html", PAGE),
            ("about.html", ABOUT),
            ("style.css", STYLE),
        ],
    )
    .await;
    app
}

/// GETs `path` on the blog as visitor `visitor`; the body's length.
async fn visit(app: &TestApp, path: &str, visitor: u32, referer: Option<&str>) -> u64 {
    let address = format!(
        "10.{}.{}.{}",
        visitor >> 16 & 255,
        visitor >> 8 & 255,
        visitor & 255
    );
    let agent = format!("test-browser/{}", visitor % 7);
    let mut headers = vec![
        ("x-real-ip", address.as_str()),
        ("user-agent", agent.as_str()),
    ];
    if let Some(referer) = referer {
        headers.push(("referer", referer));
    }
    let response = app.site("blog.localhost", path, &headers).await;
    response.bytes().await.expect("body").len() as u64
}

async fn analytics(app: &TestApp, token: &str, query: &str) -> api::SiteAnalytics {
    let response = app
        .get(token, &format!("/sites/blog/analytics{query}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("analytics json")
}

/// Polls until the report counts `requests` (each replica flushes on its own clock).
pub async fn wait_for_requests(app: &TestApp, requests: u64) -> api::SiteAnalytics {
    let started = Instant::now();
    loop {
        let report = analytics(app, ADMIN_TOKEN, "").await;
        if report.totals.requests >= requests || started.elapsed() > Duration::from_secs(10) {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn entries(list: &[api::TopEntry]) -> Vec<(&str, u64)> {
    list.iter().map(|e| (e.key.as_str(), e.count)).collect()
}

#[tokio::test]
async fn the_report_counts_exactly_the_requests_page_views_bytes_referrers_and_404s_sent() {
    let app = app_with_blog().await;
    let mut bytes = 0;

    for i in 0..10 {
        bytes += visit(&app, "/", i, Some("https://news.example.com/item?id=3")).await;
    }
    for i in 0..5 {
        bytes += visit(&app, "/about", i, Some("https://search.example/?q=blog")).await;
    }
    for i in 0..4 {
        bytes += visit(&app, "/style.css", i, None).await;
    }
    for i in 0..3 {
        bytes += visit(&app, "/missing", i, None).await;
    }
    // A referrer from the site itself is not a source; HEAD sends no body.
    bytes += visit(&app, "/", 0, Some("http://blog.localhost/about")).await;
    let head = app
        .site_request(reqwest::Method::HEAD, "blog.localhost", "/", &[])
        .await;
    assert_eq!(head.status(), 200);
    // Neither the API nor another site counts towards this one.
    app.create_site(ADMIN_TOKEN, "other").await;
    app.deploy_archive(ADMIN_TOKEN, "other", &[("index.html", PAGE)])
        .await;
    app.site("other.localhost", "/", &[]).await;

    let report = wait_for_requests(&app, 24).await;

    let totals = report.totals;
    assert_eq!(totals.requests, 24);
    assert_eq!(totals.page_views, 16);
    assert_eq!(totals.bytes_sent, bytes);
    assert_eq!((totals.status_2xx, totals.status_4xx), (21, 3));
    assert_eq!(totals.status_1xx + totals.status_3xx + totals.status_5xx, 0);
    assert_eq!(entries(&report.top_pages), vec![("/", 11), ("/about", 5)]);
    assert_eq!(
        entries(&report.top_referrers),
        vec![("news.example.com", 10), ("search.example", 5)]
    );
    assert_eq!(entries(&report.top_not_found), vec![("/missing", 3)]);
    // Ten distinct visitors (0..9) plus the HEAD request's own (no address header:
    // loopback); two of eleven may share a register (1% of runs), which reads as ten.
    assert!(
        (10..=11).contains(&totals.visitors),
        "{} visitors",
        totals.visitors
    );
    let series_requests: u64 = report.series.iter().map(|p| p.figures.requests).sum();
    assert_eq!(series_requests, 24);
    assert_eq!(report.granularity, api::AnalyticsGranularity::Hour);
}

#[tokio::test]
async fn unique_visitors_are_counted_within_the_sketch_s_error() {
    let app = app_with_blog().await;
    const VISITORS: u32 = 600;

    for visitor in 0..VISITORS {
        visit(&app, "/", visitor, None).await;
        // Coming back the same day changes nothing.
        visit(&app, "/about", visitor, None).await;
    }

    let report = wait_for_requests(&app, u64::from(VISITORS) * 2).await;
    assert_eq!(report.totals.requests, u64::from(VISITORS) * 2);
    let error = (report.totals.visitors as f64 - f64::from(VISITORS)).abs() / f64::from(VISITORS);
    // Three standard errors of a 4,096-register sketch.
    assert!(
        error <= 0.05,
        "{} visitors estimated for {VISITORS}",
        report.totals.visitors
    );
}

#[tokio::test]
async fn a_member_reads_only_their_own_site_s_figures_and_an_admin_reads_every_site_s() {
    let app = app_with_blog().await;
    let member = app.member("mia").await;
    visit(&app, "/", 1, None).await;

    let refused = app
        .get(&member, "/sites/blog/analytics")
        .send()
        .await
        .expect("request");
    assert_problem(refused, 404).await;

    app.create_site(&member, "mine").await;
    let own = app
        .get(&member, "/sites/mine/analytics")
        .send()
        .await
        .expect("request");
    assert_eq!(own.status(), 200);
    let admin_reads_member_site = app
        .get(ADMIN_TOKEN, "/sites/mine/analytics")
        .send()
        .await
        .expect("request");
    assert_eq!(admin_reads_member_site.status(), 200);
    let report: api::SiteAnalytics = admin_reads_member_site.json().await.expect("json");
    assert_eq!(report.site, "mine");
    assert_eq!(report.totals.requests, 0);
}

#[tokio::test]
async fn ranges_that_cannot_be_answered_are_problems() {
    let app = app_with_blog().await;
    let now = Utc::now();
    let month_ago = (now - chrono::Duration::days(30)).to_rfc3339();
    let cases = [
        format!(
            "?from={}&to={}",
            urlencode(&now.to_rfc3339()),
            urlencode(&month_ago)
        ),
        format!("?from={}&granularity=minute", urlencode(&month_ago)),
        "?from=yesterday".to_owned(),
        "?granularity=week".to_owned(),
        format!(
            "?from={}&granularity=hour",
            urlencode(&(now - chrono::Duration::days(89)).to_rfc3339())
        ),
    ];
    for (i, query) in cases.iter().enumerate() {
        let response = app
            .get(ADMIN_TOKEN, &format!("/sites/blog/analytics{query}"))
            .send()
            .await
            .expect("request");
        // 89 days of hours is 2,136 points: over the limit of one request.
        let detail = assert_problem(response, 400).await;
        assert!(!detail.is_empty(), "case {i}: {query}");
    }
    let fine = app
        .get(
            ADMIN_TOKEN,
            &format!(
                "/sites/blog/analytics?from={}&granularity=day",
                urlencode(&month_ago)
            ),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(fine.status(), 200);
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

fn increment(site_id: i64, granularity: Granularity, start: i64, requests: u64) -> BucketIncrement {
    BucketIncrement {
        site_id,
        granularity,
        start,
        counts: Counts {
            requests,
            ..Counts::default()
        },
        visitors: Vec::new(),
    }
}

#[tokio::test]
async fn figures_past_their_retention_are_deleted_and_recent_ones_kept() {
    let app = app_with_blog().await;
    let store = &app.state.store;
    let site = store
        .site_of_any_owner("blog")
        .await
        .expect("store")
        .expect("site");
    let now = Utc::now().timestamp();
    let day = 86_400;
    let old = |g: Granularity, age: i64| g.bucket_of(now - age);
    let batch = AnalyticsBatch {
        buckets: vec![
            increment(
                site.id,
                Granularity::Minute,
                old(Granularity::Minute, 2 * day),
                1,
            ),
            increment(
                site.id,
                Granularity::Minute,
                old(Granularity::Minute, 600),
                2,
            ),
            increment(
                site.id,
                Granularity::Hour,
                old(Granularity::Hour, 91 * day),
                3,
            ),
            increment(
                site.id,
                Granularity::Hour,
                old(Granularity::Hour, 89 * day),
                4,
            ),
            increment(
                site.id,
                Granularity::Day,
                old(Granularity::Day, 731 * day),
                5,
            ),
            increment(
                site.id,
                Granularity::Day,
                old(Granularity::Day, 700 * day),
                6,
            ),
        ],
        top: vec![TopIncrement {
            site_id: site.id,
            granularity: Granularity::Hour,
            start: old(Granularity::Hour, 91 * day),
            kind: TopKind::Page,
            key: "/old".into(),
            count: 3,
        }],
    };
    store.add_analytics(&batch).await.expect("added");

    let deleted = hosting_app::analytics::flush::prune(&app.state, now)
        .await
        .expect("pruned");

    assert!(deleted >= 4, "deleted {deleted} rows");
    for (granularity, kept) in [
        (Granularity::Minute, 2),
        (Granularity::Hour, 4),
        (Granularity::Day, 6),
    ] {
        let rows = store
            .analytics_buckets(site.id, granularity, 0, now + day)
            .await
            .expect("read");
        let requests: Vec<u64> = rows.iter().map(|r| r.counts.requests).collect();
        assert_eq!(requests, vec![kept], "{granularity:?}");
    }
    let top = store
        .analytics_top(site.id, Granularity::Hour, (0, now), TopKind::Page, 10)
        .await
        .expect("read");
    assert!(top.is_empty(), "{top:?}");
}

#[tokio::test]
async fn the_dashboard_page_shows_the_totals_charts_and_top_lists_without_a_script() {
    let app = app_with_blog().await;
    for i in 0..6 {
        visit(&app, "/", i, Some("https://news.example.com/")).await;
    }
    visit(&app, "/missing", 1, None).await;
    wait_for_requests(&app, 7).await;
    let mut browser = Browser::new(&app);
    assert_eq!(browser.sign_in("admin", PASSWORD).await.status(), 303);

    let response = browser.get("/sites/blog/analytics?range=24h").await;

    assert_eq!(response.status(), 200);
    let page = response.text().await.expect("page");
    assert!(page.contains(r#"<dd id="total-requests">7</dd>"#), "{page}");
    assert!(page.contains(r#"<dd id="total-page-views">6</dd>"#));
    assert_eq!(page.matches("<svg viewBox=").count(), 2, "two charts");
    assert!(page.contains("<code>news.example.com</code>"));
    assert!(page.contains("<code>/missing</code>"));
    assert!(!page.contains("<script"), "the page needs no script");
    // The site page links to it; another tenant's site is a 404 page.
    let site_page = browser.get("/sites/blog").await.text().await.expect("page");
    assert!(site_page.contains(r#"href="/sites/blog/analytics""#));
    let member = app.member("mia").await;
    app.create_site(&member, "theirs").await;
    let admin_sees = browser.get("/sites/theirs/analytics").await;
    assert_eq!(admin_sees.status(), 200, "admins read every site's figures");
}
