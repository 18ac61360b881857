//! Reading a site's figures back: the range and granularity a caller asked for,
//! checked and rounded, then the series, the totals (visitors as the union of the
//! points' sketches) and the top lists. The API and the dashboard both call [`report`].

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use hosting_api::{
    AnalyticsFigures, AnalyticsGranularity, AnalyticsPoint, SiteAnalytics, TopEntry,
};

use super::hll::Sketch;
use crate::actions::sites::owned_site;
use crate::actions::{ActionError, ActionResult};
use crate::state::App;
use crate::store::{BucketRecord, Granularity, SiteRecord, StoreError, TopKind, UserRecord};

/// Most points one report may have.
pub const MAX_POINTS: i64 = 2_000;
/// Entries of each top list in a report.
pub const TOP_ENTRIES: u32 = 10;
/// The range when none is given.
pub const DEFAULT_SPAN: Span = Span::days(7);

/// What a caller asked for; every field optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub granularity: Option<AnalyticsGranularity>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The range or granularity cannot be answered; the message says why.
    #[error("{0}")]
    BadRange(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A checked range: [`from`, `to`) in unix seconds, rounded to `granularity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: i64,
    pub to: i64,
    pub granularity: Granularity,
}

/// Checks `query` against what is kept (as of `now`): `from` before `to`, a granularity
/// still kept for `from`, at most [`MAX_POINTS`] points. Without a granularity, the
/// finest that is kept and fits is chosen.
pub fn range(app: &App, query: RangeQuery, now: DateTime<Utc>) -> Result<Range, ReportError> {
    let to = query.to.unwrap_or(now);
    let from = query.from.unwrap_or(to - DEFAULT_SPAN);
    if from >= to {
        return Err(ReportError::BadRange(format!(
            "`from` ({}) must be before `to` ({})",
            from.to_rfc3339(),
            to.to_rfc3339()
        )));
    }
    let (from, to) = (from.timestamp(), to.timestamp());
    let settings = &app.config.analytics;
    let kept_since = |retention: std::time::Duration| {
        now.timestamp() - i64::try_from(retention.as_secs()).unwrap_or(i64::MAX / 2)
    };
    let kept = |g: Granularity| match g {
        Granularity::Minute => kept_since(settings.analytics_minute_retention),
        Granularity::Hour => kept_since(settings.analytics_hour_retention),
        Granularity::Day => kept_since(settings.analytics_day_retention),
    };
    let points = |g: Granularity| (g.bucket_of(to - 1) - g.bucket_of(from)) / g.seconds() + 1;
    let granularity = match query.granularity {
        Some(asked) => {
            let g = granularity_of(asked);
            if g != Granularity::Day && g.bucket_of(from) < g.bucket_of(kept(g)) {
                return Err(ReportError::BadRange(format!(
                    "{} figures are kept since {}; ask a coarser granularity or a later `from`",
                    g.as_str(),
                    rfc3339(kept(g))
                )));
            }
            g
        }
        None => Granularity::ALL
            .into_iter()
            .find(|g| {
                (*g == Granularity::Day || g.bucket_of(from) >= g.bucket_of(kept(*g)))
                    && points(*g) <= 400
            })
            .unwrap_or(Granularity::Day),
    };
    if points(granularity) > MAX_POINTS {
        return Err(ReportError::BadRange(format!(
            "{} points of a {}: at most {MAX_POINTS} per request; ask a coarser granularity or a shorter range",
            points(granularity),
            granularity.as_str()
        )));
    }
    Ok(Range {
        from: granularity.bucket_of(from),
        to: granularity.bucket_of(to - 1) + granularity.seconds(),
        granularity,
    })
}

/// The site whose figures `user` may read: their own, or any site for an admin.
pub async fn readable_site(app: &App, user: &UserRecord, name: &str) -> ActionResult<SiteRecord> {
    match owned_site(app, user.id, name).await {
        Err(ActionError::NotFound(what)) if user.role == hosting_api::Role::Admin => app
            .store
            .site_of_any_owner(name)
            .await?
            .ok_or(ActionError::NotFound(what)),
        other => other,
    }
}

/// The figures of `site` over `range`.
pub async fn report(
    app: &App,
    site: &SiteRecord,
    range: Range,
) -> Result<SiteAnalytics, ReportError> {
    let buckets = app
        .store
        .analytics_buckets(site.id, range.granularity, range.from, range.to)
        .await?;
    let mut totals = AnalyticsFigures::default();
    let mut everyone = Sketch::default();
    let mut series = Vec::with_capacity(buckets.len());
    for bucket in buckets {
        let sketch =
            Sketch::decode(&bucket.visitors).map_err(|e| StoreError::Other(Box::new(e)))?;
        let figures = figures(&bucket, sketch.estimate());
        everyone.merge(&sketch);
        add(&mut totals, &figures);
        series.push(AnalyticsPoint {
            start: time(bucket.start),
            figures,
        });
    }
    totals.visitors = everyone.estimate();
    // Top lists live in hour and day buckets: hours while they are kept, else days.
    let hours_kept = range.from >= app_hours_kept(app);
    let top_granularity = if range.granularity != Granularity::Day && hours_kept {
        Granularity::Hour
    } else {
        Granularity::Day
    };
    let top_range = (top_granularity.bucket_of(range.from), range.to);
    let mut lists = Vec::with_capacity(3);
    for kind in [TopKind::Page, TopKind::Referrer, TopKind::NotFound] {
        let entries = app
            .store
            .analytics_top(site.id, top_granularity, top_range, kind, TOP_ENTRIES)
            .await?;
        lists.push(
            entries
                .into_iter()
                .map(|(key, count)| TopEntry { key, count })
                .collect::<Vec<_>>(),
        );
    }
    let mut lists = lists.into_iter();
    Ok(SiteAnalytics {
        site: site.name.clone(),
        from: time(range.from),
        to: time(range.to),
        granularity: wire_granularity(range.granularity),
        totals,
        series,
        top_pages: lists.next().unwrap_or_default(),
        top_referrers: lists.next().unwrap_or_default(),
        top_not_found: lists.next().unwrap_or_default(),
    })
}

fn app_hours_kept(app: &App) -> i64 {
    Utc::now().timestamp()
        - i64::try_from(app.config.analytics.analytics_hour_retention.as_secs())
            .unwrap_or(i64::MAX / 2)
}

fn figures(bucket: &BucketRecord, visitors: u64) -> AnalyticsFigures {
    let c = &bucket.counts;
    AnalyticsFigures {
        requests: c.requests,
        page_views: c.page_views,
        visitors,
        bytes_sent: c.bytes_sent,
        status_1xx: c.statuses[0],
        status_2xx: c.statuses[1],
        status_3xx: c.statuses[2],
        status_4xx: c.statuses[3],
        status_5xx: c.statuses[4],
    }
}

/// Adds every additive figure (visitors are not: the caller merges sketches).
fn add(totals: &mut AnalyticsFigures, point: &AnalyticsFigures) {
    totals.requests += point.requests;
    totals.page_views += point.page_views;
    totals.bytes_sent += point.bytes_sent;
    totals.status_1xx += point.status_1xx;
    totals.status_2xx += point.status_2xx;
    totals.status_3xx += point.status_3xx;
    totals.status_4xx += point.status_4xx;
    totals.status_5xx += point.status_5xx;
}

pub fn granularity_of(wire: AnalyticsGranularity) -> Granularity {
    match wire {
        AnalyticsGranularity::Minute => Granularity::Minute,
        AnalyticsGranularity::Hour => Granularity::Hour,
        AnalyticsGranularity::Day => Granularity::Day,
    }
}

fn wire_granularity(granularity: Granularity) -> AnalyticsGranularity {
    match granularity {
        Granularity::Minute => AnalyticsGranularity::Minute,
        Granularity::Hour => AnalyticsGranularity::Hour,
        Granularity::Day => AnalyticsGranularity::Day,
    }
}

fn time(unix_seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(unix_seconds, 0)
        .single()
        .unwrap_or_default()
}

fn rfc3339(unix_seconds: i64) -> String {
    time(unix_seconds).to_rfc3339()
}
