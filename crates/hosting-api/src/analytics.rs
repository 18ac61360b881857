//! `GET /api/v1/sites/{site}/analytics`: a site's traffic figures over a time range.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How long each point of the series spans.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AnalyticsGranularity {
    /// Kept for the last day (`HOSTING_ANALYTICS_MINUTE_RETENTION`).
    Minute,
    /// Kept 90 days by default (`HOSTING_ANALYTICS_HOUR_RETENTION`).
    Hour,
    /// Kept two years by default (`HOSTING_ANALYTICS_DAY_RETENTION`).
    Day,
}

/// The figures of a time span (one point of the series, or the whole range).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AnalyticsFigures {
    /// Every response of the site, whatever its status.
    pub requests: u64,
    /// `GET` requests answered 2xx with an HTML page.
    pub page_views: u64,
    /// Distinct visitors (address and user agent, hashed with a salt that changes every
    /// day and kept only in a HyperLogLog sketch): an estimate within about 2%. A visitor
    /// seen on two days counts on each.
    pub visitors: u64,
    /// Bytes of response bodies sent.
    pub bytes_sent: u64,
    pub status_1xx: u64,
    pub status_2xx: u64,
    pub status_3xx: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
}

/// One point of the series.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AnalyticsPoint {
    /// Start of the span (UTC).
    pub start: DateTime<Utc>,
    #[serde(flatten)]
    pub figures: AnalyticsFigures,
}

/// An entry of a top list.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopEntry {
    /// A path, or a referrer's host.
    pub key: String,
    pub count: u64,
}

/// A site's traffic over [`from`, `to`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SiteAnalytics {
    pub site: String,
    /// Start of the range, rounded down to the granularity.
    pub from: DateTime<Utc>,
    /// End of the range (exclusive), rounded up to the granularity.
    pub to: DateTime<Utc>,
    pub granularity: AnalyticsGranularity,
    /// The whole range; `visitors` is the union of the points' sketches.
    pub totals: AnalyticsFigures,
    /// One point per span that saw a request, oldest first.
    pub series: Vec<AnalyticsPoint>,
    /// Paths with the most page views.
    pub top_pages: Vec<TopEntry>,
    /// Hosts of the `Referer` of page views that came from another host.
    pub top_referrers: Vec<TopEntry>,
    /// Paths answered 404 most often.
    pub top_not_found: Vec<TopEntry>,
}
