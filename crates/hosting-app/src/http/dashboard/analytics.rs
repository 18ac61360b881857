//! A site's analytics page (`/sites/{site}/analytics`): totals, requests and visitors
//! over time, bandwidth, and the top pages, referrers and 404s, as server-side SVG
//! charts (`charts.rs`) a person reads at a glance. Owners see their sites, admins any.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, TimeZone, Utc};
use hosting_api::{AnalyticsGranularity, SiteAnalytics, TopEntry};
use maud::{html, Markup};
use serde::Deserialize;

use super::charts::{self, share_bar, time_chart, Series, Style};
use super::layout::{bytes, page, Nav};
use super::session::SignedIn;
use super::{html, PageError, PageResult};
use crate::analytics::report::{self, RangeQuery, ReportError};
use crate::state::AppState;

/// The ranges the page offers: (query value, label, span, granularity).
const RANGES: [(&str, &str, i64, AnalyticsGranularity); 5] = [
    ("1h", "Last hour", 3_600, AnalyticsGranularity::Minute),
    ("24h", "24 hours", 86_400, AnalyticsGranularity::Hour),
    ("7d", "7 days", 7 * 86_400, AnalyticsGranularity::Hour),
    ("30d", "30 days", 30 * 86_400, AnalyticsGranularity::Day),
    ("365d", "12 months", 365 * 86_400, AnalyticsGranularity::Day),
];
const DEFAULT_RANGE: usize = 2;

#[derive(Deserialize)]
pub struct RangeForm {
    #[serde(default)]
    range: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(name): Path<String>,
    Query(form): Query<RangeForm>,
) -> PageResult {
    let site = report::readable_site(&state, &session.user, &name).await?;
    let chosen = RANGES
        .iter()
        .position(|r| Some(r.0) == form.range.as_deref())
        .unwrap_or(DEFAULT_RANGE);
    let (_, _, span, granularity) = RANGES[chosen];
    let now = Utc::now();
    let query = RangeQuery {
        from: Some(now - Duration::seconds(span)),
        to: Some(now),
        granularity: Some(granularity),
    };
    let figures = async {
        let range = report::range(&state, query, now)?;
        report::report(&state, &site, range).await
    }
    .await
    .map_err(|e| match e {
        ReportError::BadRange(message) => PageError::new(StatusCode::BAD_REQUEST, message),
        ReportError::Store(e) => e.into(),
    })?;
    let flush = state.config.analytics.analytics_flush_interval;
    Ok(html(
        StatusCode::OK,
        page(
            &format!("Analytics: {}", site.name),
            &session,
            Nav::Sites,
            render(&figures, chosen, flush.as_secs().max(1)),
        ),
    ))
}

fn render(figures: &SiteAnalytics, chosen: usize, flush_seconds: u64) -> Markup {
    let t = &figures.totals;
    let site = &figures.site;
    let (slots, points) = slots(figures);
    let requests: Vec<u64> = points.iter().map(|p| p.map_or(0, |f| f.requests)).collect();
    let visitors: Vec<u64> = points.iter().map(|p| p.map_or(0, |f| f.visitors)).collect();
    let sent: Vec<u64> = points
        .iter()
        .map(|p| p.map_or(0, |f| f.bytes_sent))
        .collect();
    html! {
        nav.crumbs aria-label="Breadcrumb" {
            a href="/sites" { "Sites" } " / " a href={ "/sites/" (site) } { (site) } " / " span { "Analytics" }
        }
        div.heading { h1 { "Analytics: " (site) } }
        nav.ranges #ranges aria-label="Time range" {
            @for (i, (value, label, _, _)) in RANGES.iter().enumerate() {
                @if i == chosen {
                    a.button.small.primary href={ "?range=" (value) } aria-current="page" { (label) }
                } @else {
                    a.button.small href={ "?range=" (value) } { (label) }
                }
                " "
            }
        }
        section.card #totals aria-labelledby="totals-title" {
            h2 #totals-title { "Totals" }
            dl.facts {
                div { dt { "Requests" } dd #total-requests { (t.requests) } }
                div { dt { "Page views" } dd #total-page-views { (t.page_views) } }
                div { dt { "Unique visitors" } dd #total-visitors { "≈ " (t.visitors) } }
                div { dt { "Data sent" } dd #total-bytes { (bytes(t.bytes_sent)) } }
                div { dt { "Client errors (4xx)" } dd { (t.status_4xx) } }
                div { dt { "Server errors (5xx)" } dd { (t.status_5xx) } }
            }
        }
        section.card aria-labelledby="traffic-title" {
            h2 #traffic-title { "Requests and visitors" }
            (time_chart(
                "traffic-chart",
                "Requests and unique visitors over time",
                &format!("{} requests and about {} unique visitors from {} to {}", t.requests, t.visitors, stamp(figures.from), stamp(figures.to)),
                &slots,
                &[
                    Series { label: "requests", values: &requests, colour: charts::BAR_COLOUR, style: Style::Bars },
                    Series { label: "unique visitors", values: &visitors, colour: charts::LINE_COLOUR, style: Style::Line },
                ],
                |v| v.to_string(),
            ))
        }
        section.card aria-labelledby="bandwidth-title" {
            h2 #bandwidth-title { "Bandwidth" }
            (time_chart(
                "bandwidth-chart",
                "Bytes sent over time",
                &format!("{} sent from {} to {}", bytes(t.bytes_sent), stamp(figures.from), stamp(figures.to)),
                &slots,
                &[Series { label: "bytes sent", values: &sent, colour: charts::BAR_COLOUR, style: Style::Bars }],
                short_bytes,
            ))
        }
        div.top-lists {
            (top_list("top-pages", "Top pages", "Page views", &figures.top_pages))
            (top_list("top-referrers", "Top referrers", "Page views", &figures.top_referrers))
            (top_list("top-not-found", "Top 404s", "Requests", &figures.top_not_found))
        }
        p.muted {
            "Counted on the server from the requests the site answers: no script, no cookie. "
            "Unique visitors are estimated (about ±2%) from a hash of address and browser with a salt "
            "that changes every day, kept only as a HyperLogLog sketch. Figures lag by up to "
            (flush_seconds) " s."
        }
    }
}

fn top_list(id: &str, title: &str, column: &str, entries: &[TopEntry]) -> Markup {
    let largest = entries.first().map_or(0, |e| e.count);
    let title_id = format!("{id}-title");
    html! {
        section.card #(id) aria-labelledby=(title_id) {
            h2 #(title_id) { (title) }
            @if entries.is_empty() {
                p.muted { "Nothing in this range." }
            } @else {
                div.table-wrap {
                    table {
                        thead { tr { th scope="col" { "" } th scope="col" { (column) } th scope="col" { span.sr-only { "Share" } } } }
                        tbody {
                            @for e in entries {
                                tr { td { code { (e.key) } } td { (e.count) } td { (share_bar(e.count, largest)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Every slot of the range (missing ones are zero) with its x label.
fn slots(figures: &SiteAnalytics) -> (Vec<String>, Vec<Option<hosting_api::AnalyticsFigures>>) {
    let step = match figures.granularity {
        AnalyticsGranularity::Minute => 60,
        AnalyticsGranularity::Hour => 3_600,
        AnalyticsGranularity::Day => 86_400,
    };
    let (from, to) = (figures.from.timestamp(), figures.to.timestamp());
    let long = to - from > 86_400;
    let mut labels = Vec::new();
    let mut points = Vec::new();
    let mut series = figures.series.iter().peekable();
    let mut at = from;
    while at < to && labels.len() < report::MAX_POINTS as usize {
        let time = Utc.timestamp_opt(at, 0).single().unwrap_or_default();
        labels.push(match (figures.granularity, long) {
            (AnalyticsGranularity::Day, _) => time.format("%b %d").to_string(),
            (_, true) => time.format("%b %d %H:%M").to_string(),
            (_, false) => time.format("%H:%M").to_string(),
        });
        let point = series
            .next_if(|p| p.start.timestamp() == at)
            .map(|p| p.figures);
        points.push(point);
        at += step;
    }
    (labels, points)
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Axis labels: `1.5M` rather than `1.50 MiB`, to fit the margin.
fn short_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 10.0 {
        format!("{value:.0}{}", UNITS[unit])
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hosting_api::{AnalyticsFigures, AnalyticsPoint};

    #[test]
    fn missing_slots_are_zero_and_every_slot_has_a_label() {
        let at = |h: u32| {
            Utc.with_ymd_and_hms(2026, 12, 7, h, 0, 0)
                .single()
                .expect("time")
        };
        let figures = SiteAnalytics {
            site: "blog".into(),
            from: at(1),
            to: at(5),
            granularity: AnalyticsGranularity::Hour,
            totals: AnalyticsFigures::default(),
            series: vec![AnalyticsPoint {
                start: at(3),
                figures: AnalyticsFigures {
                    requests: 9,
                    ..AnalyticsFigures::default()
                },
            }],
            top_pages: vec![],
            top_referrers: vec![],
            top_not_found: vec![],
        };
        let (labels, points) = slots(&figures);
        assert_eq!(labels, vec!["01:00", "02:00", "03:00", "04:00"]);
        let requests: Vec<u64> = points.iter().map(|p| p.map_or(0, |f| f.requests)).collect();
        assert_eq!(requests, vec![0, 0, 9, 0]);
    }

    #[test]
    fn axis_bytes_are_short() {
        assert_eq!(short_bytes(512), "512B");
        assert_eq!(short_bytes(1536), "1.5K");
        assert_eq!(short_bytes(50 * 1024 * 1024), "50M");
    }
}
