//! `hostctl analytics --site NAME [--since 7d]`: a site's traffic as a few readable
//! tables (totals, the series, the top lists), or the API's JSON under `--json`.

use chrono::{Duration, Utc};
use hosting_api::{AnalyticsGranularity, SiteAnalytics, TopEntry};

use super::Context;
#[cfg(test)]
use crate::cli::parse_span;
use crate::cli::AnalyticsArgs;
use crate::output::{self, human_size};

/// Runs `hostctl analytics`.
pub async fn run(ctx: &Context, args: AnalyticsArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let granularity = args.granularity.or(Some(granularity_for(args.since)));
    let report = client
        .site_analytics(&args.site, Utc::now() - args.since, granularity)
        .await?;
    if ctx.json {
        return output::print_json(&report);
    }
    output::out(&render(&report))?;
    Ok(())
}

/// Rows of about a dozen to thirty: minutes up to two hours, hours up to two days, else days.
fn granularity_for(since: Duration) -> AnalyticsGranularity {
    if since <= Duration::hours(2) {
        AnalyticsGranularity::Minute
    } else if since <= Duration::days(2) {
        AnalyticsGranularity::Hour
    } else {
        AnalyticsGranularity::Day
    }
}

/// The whole report as text.
pub fn render(report: &SiteAnalytics) -> String {
    let t = &report.totals;
    let mut text = format!(
        "{}: {} to {}, by {}\n\n",
        report.site,
        output::timestamp(&report.from),
        output::timestamp(&report.to),
        granularity_name(report.granularity)
    );
    text.push_str(&output::table(
        &[
            "REQUESTS",
            "PAGE VIEWS",
            "VISITORS",
            "SENT",
            "2XX",
            "3XX",
            "4XX",
            "5XX",
        ],
        &[vec![
            t.requests.to_string(),
            t.page_views.to_string(),
            format!("~{}", t.visitors),
            human_size(t.bytes_sent),
            t.status_2xx.to_string(),
            t.status_3xx.to_string(),
            t.status_4xx.to_string(),
            t.status_5xx.to_string(),
        ]],
    ));
    if report.series.is_empty() {
        text.push_str("\nNo requests in this range.\n");
        return text;
    }
    let rows: Vec<Vec<String>> = report
        .series
        .iter()
        .map(|p| {
            vec![
                output::timestamp(&p.start),
                p.figures.requests.to_string(),
                p.figures.page_views.to_string(),
                p.figures.visitors.to_string(),
                human_size(p.figures.bytes_sent),
            ]
        })
        .collect();
    text.push('\n');
    text.push_str(&output::table(
        &["FROM", "REQUESTS", "PAGE VIEWS", "VISITORS", "SENT"],
        &rows,
    ));
    for (title, column, list) in [
        ("TOP PAGES", "VIEWS", &report.top_pages),
        ("TOP REFERRERS", "VIEWS", &report.top_referrers),
        ("TOP 404 PATHS", "REQUESTS", &report.top_not_found),
    ] {
        if !list.is_empty() {
            text.push('\n');
            text.push_str(&output::table(&[title, column], &top_rows(list)));
        }
    }
    text
}

fn top_rows(list: &[TopEntry]) -> Vec<Vec<String>> {
    list.iter()
        .map(|e| vec![e.key.clone(), e.count.to_string()])
        .collect()
}

fn granularity_name(granularity: AnalyticsGranularity) -> &'static str {
    match granularity {
        AnalyticsGranularity::Minute => "minute",
        AnalyticsGranularity::Hour => "hour",
        AnalyticsGranularity::Day => "day",
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use hosting_api::{AnalyticsFigures, AnalyticsPoint};

    use super::*;

    #[test]
    fn spans_take_a_unit_and_refuse_nonsense() {
        assert_eq!(parse_span("90m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_span("7d"), Ok(Duration::days(7)));
        assert_eq!(parse_span("2w"), Ok(Duration::weeks(2)));
        for bad in ["7", "d", "0d", "-1d", "7y", "99999999999999w"] {
            assert!(parse_span(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_default_rows_stay_few() {
        assert_eq!(
            granularity_for(Duration::minutes(30)),
            AnalyticsGranularity::Minute
        );
        assert_eq!(
            granularity_for(Duration::hours(24)),
            AnalyticsGranularity::Hour
        );
        assert_eq!(
            granularity_for(Duration::days(7)),
            AnalyticsGranularity::Day
        );
    }

    #[test]
    fn the_report_reads_as_totals_series_and_top_lists() {
        let at = |h| {
            Utc.with_ymd_and_hms(2026, 12, 7, h, 0, 0)
                .single()
                .expect("time")
        };
        let figures = AnalyticsFigures {
            requests: 12,
            page_views: 9,
            visitors: 4,
            bytes_sent: 2048,
            status_2xx: 11,
            status_4xx: 1,
            ..AnalyticsFigures::default()
        };
        let report = SiteAnalytics {
            site: "blog".into(),
            from: at(5),
            to: at(7),
            granularity: AnalyticsGranularity::Hour,
            totals: figures,
            series: vec![AnalyticsPoint {
                start: at(6),
                figures,
            }],
            top_pages: vec![TopEntry {
                key: "/".into(),
                count: 9,
            }],
            top_referrers: vec![],
            top_not_found: vec![TopEntry {
                key: "/old".into(),
                count: 1,
            }],
        };

        let text = render(&report);

        assert!(text.starts_with("blog: 2026-12-07 05:00 UTC to 2026-12-07 07:00 UTC, by hour\n"));
        assert!(
            text.contains("12        9           ~4        2.00 KiB  11   0    1    0\n"),
            "{text}"
        );
        assert!(
            text.contains("2026-12-07 06:00 UTC  12        9           4         2.00 KiB\n"),
            "{text}"
        );
        assert!(text.contains("TOP PAGES  VIEWS\n/          9\n"), "{text}");
        assert!(!text.contains("TOP REFERRERS"));
        assert!(
            text.contains("TOP 404 PATHS  REQUESTS\n/old           1\n"),
            "{text}"
        );
    }
}
