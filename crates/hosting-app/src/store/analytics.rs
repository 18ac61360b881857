//! The analytics statements (issue 20), written once for both backends, and the records
//! they read and write. Figures are kept per site in buckets of a minute, an hour and a
//! day; each replica adds its increments to the same rows, so the stored figures are the
//! sum of every replica. Unique visitors are HyperLogLog sketches, merged register-wise
//! under the bucket row's lock (`crate::analytics::hll`).

/// How long one bucket of figures spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Granularity {
    Minute,
    Hour,
    Day,
}

impl Granularity {
    pub const ALL: [Granularity; 3] = [Granularity::Minute, Granularity::Hour, Granularity::Day];

    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Minute => "minute",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        }
    }

    pub fn seconds(self) -> i64 {
        match self {
            Granularity::Minute => 60,
            Granularity::Hour => 3_600,
            Granularity::Day => 86_400,
        }
    }

    /// The start of the bucket holding `unix_seconds` (UTC).
    pub fn bucket_of(self, unix_seconds: i64) -> i64 {
        unix_seconds - unix_seconds.rem_euclid(self.seconds())
    }
}

/// Which top list an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TopKind {
    /// Paths of page views.
    Page,
    /// Hosts of the `Referer` of page views from elsewhere.
    Referrer,
    /// Paths answered 404.
    NotFound,
}

impl TopKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TopKind::Page => "page",
            TopKind::Referrer => "referrer",
            TopKind::NotFound => "not_found",
        }
    }
}

/// The additive figures of one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub page_views: u64,
    pub bytes_sent: u64,
    /// Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub statuses: [u64; 5],
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.page_views += other.page_views;
        self.bytes_sent += other.bytes_sent;
        for (mine, theirs) in self.statuses.iter_mut().zip(other.statuses) {
            *mine += theirs;
        }
    }
}

/// Increments to one bucket of one site.
#[derive(Debug, Clone)]
pub struct BucketIncrement {
    pub site_id: i64,
    pub granularity: Granularity,
    /// Unix seconds, a multiple of the granularity.
    pub start: i64,
    pub counts: Counts,
    /// The visitors seen, as an encoded sketch (merged with the stored one).
    pub visitors: Vec<u8>,
}

/// An increment to one entry of one top list of one bucket.
#[derive(Debug, Clone)]
pub struct TopIncrement {
    pub site_id: i64,
    pub granularity: Granularity,
    pub start: i64,
    pub kind: TopKind,
    pub key: String,
    pub count: u64,
}

/// What one flush writes: the store adds it in a few multi-row statements per
/// transaction, a transaction per [`BUCKETS_PER_TRANSACTION`] buckets.
#[derive(Debug, Clone, Default)]
pub struct AnalyticsBatch {
    pub buckets: Vec<BucketIncrement>,
    pub top: Vec<TopIncrement>,
}

/// Buckets written per transaction of a flush (and per statement: 12 values a row).
pub(super) const BUCKETS_PER_TRANSACTION: usize = 1_000;

/// One stored bucket.
#[derive(Debug, Clone)]
pub struct BucketRecord {
    pub start: i64,
    pub counts: Counts,
    pub visitors: Vec<u8>,
}

/// Rows older than these (unix seconds) are deleted, per granularity.
#[derive(Debug, Clone, Copy)]
pub struct AnalyticsCutoffs {
    pub minute: i64,
    pub hour: i64,
    pub day: i64,
    /// Salts of days before this one are forgotten (unix seconds of the day).
    pub salt_day: i64,
    /// Hour and day buckets that closed in [`trim_from`, `closed_before`) keep only
    /// their `top_keep` largest entries.
    pub closed_before: i64,
    pub trim_from: i64,
    pub top_keep: u32,
}

#[derive(sqlx::FromRow)]
pub(super) struct BucketRow {
    bucket_start: i64,
    requests: i64,
    page_views: i64,
    bytes_sent: i64,
    status_1xx: i64,
    status_2xx: i64,
    status_3xx: i64,
    status_4xx: i64,
    status_5xx: i64,
    visitors: Vec<u8>,
}

impl From<BucketRow> for BucketRecord {
    fn from(row: BucketRow) -> BucketRecord {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        BucketRecord {
            start: row.bucket_start,
            counts: Counts {
                requests: n(row.requests),
                page_views: n(row.page_views),
                bytes_sent: n(row.bytes_sent),
                statuses: [
                    n(row.status_1xx),
                    n(row.status_2xx),
                    n(row.status_3xx),
                    n(row.status_4xx),
                    n(row.status_5xx),
                ],
            },
            visitors: row.visitors,
        }
    }
}

/// Followed by `(site_id, granularity, bucket_start, visitors)` value rows and
/// [`ENSURE_BUCKETS_CONFLICT`]: makes sure each bucket of a flush exists, so the next
/// statement can lock them (a concurrent first insert from another replica waits here).
pub(super) const ENSURE_BUCKETS: &str =
    "INSERT INTO analytics_buckets (site_id, granularity, bucket_start, visitors) ";

pub(super) const ENSURE_BUCKETS_CONFLICT: &str =
    " ON CONFLICT (site_id, granularity, bucket_start) DO NOTHING";

/// Followed by `(site_id, granularity, bucket_start)` value rows and
/// [`BUCKET_SKETCHES_JOIN`] (then `FOR UPDATE OF b` where rows lock): the stored sketches
/// of a flush's buckets. A join rather than a row-value `IN`, which SQLite answers with a
/// scan of the table.
pub(super) const BUCKET_SKETCHES: &str =
    "SELECT b.site_id, b.granularity, b.bucket_start, b.visitors FROM (";

pub(super) const BUCKET_SKETCHES_JOIN: &str = ") AS v JOIN analytics_buckets b \
     ON b.site_id = v.column1 AND b.granularity = v.column2 AND b.bucket_start = v.column3";

/// Followed by `(site_id, granularity, bucket_start, requests, page_views, bytes_sent,
/// status_1xx .. status_5xx, visitors)` value rows and [`ADD_TO_BUCKETS_CONFLICT`]: adds
/// the counts to each bucket and replaces its sketch by the merged one.
pub(super) const ADD_TO_BUCKETS: &str = "INSERT INTO analytics_buckets \
     (site_id, granularity, bucket_start, requests, page_views, bytes_sent, \
     status_1xx, status_2xx, status_3xx, status_4xx, status_5xx, visitors) ";

pub(super) const ADD_TO_BUCKETS_CONFLICT: &str =
    " ON CONFLICT (site_id, granularity, bucket_start) DO UPDATE SET \
     requests = analytics_buckets.requests + excluded.requests, \
     page_views = analytics_buckets.page_views + excluded.page_views, \
     bytes_sent = analytics_buckets.bytes_sent + excluded.bytes_sent, \
     status_1xx = analytics_buckets.status_1xx + excluded.status_1xx, \
     status_2xx = analytics_buckets.status_2xx + excluded.status_2xx, \
     status_3xx = analytics_buckets.status_3xx + excluded.status_3xx, \
     status_4xx = analytics_buckets.status_4xx + excluded.status_4xx, \
     status_5xx = analytics_buckets.status_5xx + excluded.status_5xx, \
     visitors = excluded.visitors";

/// Followed by `(site_id, granularity, bucket_start, kind, key, count)` value rows and
/// [`ADD_TOP_CONFLICT`].
pub(super) const ADD_TOP: &str =
    "INSERT INTO analytics_top (site_id, granularity, bucket_start, kind, key, count) ";

pub(super) const ADD_TOP_CONFLICT: &str =
    " ON CONFLICT (site_id, granularity, bucket_start, kind, key) \
     DO UPDATE SET count = analytics_top.count + excluded.count";

/// Site `$1`'s buckets of granularity `$2` starting in [`$3`, `$4`), oldest first.
pub(super) const BUCKETS: &str = "SELECT bucket_start, requests, page_views, bytes_sent, \
     status_1xx, status_2xx, status_3xx, status_4xx, status_5xx, visitors \
     FROM analytics_buckets WHERE site_id = $1 AND granularity = $2 \
     AND bucket_start >= $3 AND bucket_start < $4 ORDER BY bucket_start";

/// Site `$1`'s `$6` largest entries of top list `$5` over granularity `$2`'s buckets in
/// [`$3`, `$4`).
pub(super) const TOP: &str = "SELECT key, CAST(SUM(count) AS BIGINT) AS total FROM analytics_top \
     WHERE site_id = $1 AND granularity = $2 AND bucket_start >= $3 AND bucket_start < $4 \
     AND kind = $5 GROUP BY key ORDER BY total DESC, key LIMIT $6";

/// Deletes granularity `$1`'s buckets older than `$2`.
pub(super) const PRUNE_BUCKETS: &str =
    "DELETE FROM analytics_buckets WHERE granularity = $1 AND bucket_start < $2";

/// Deletes granularity `$1`'s top entries older than `$2`.
pub(super) const PRUNE_TOP: &str =
    "DELETE FROM analytics_top WHERE granularity = $1 AND bucket_start < $2";

/// Keeps only the `$2` largest entries per list of the buckets that closed in
/// [`$3`, `$1`): each flush adds at most a hundred keys per list, but they may differ
/// every flush. Only recent buckets are ranked; older ones were trimmed before.
pub(super) const TRIM_TOP: &str = "DELETE FROM analytics_top \
     WHERE (site_id, granularity, bucket_start, kind, key) IN (\
       SELECT site_id, granularity, bucket_start, kind, key FROM (\
         SELECT site_id, granularity, bucket_start, kind, key, ROW_NUMBER() OVER (\
           PARTITION BY site_id, granularity, bucket_start, kind ORDER BY count DESC, key) AS place \
         FROM analytics_top WHERE bucket_start < $1 AND bucket_start >= $3) ranked \
       WHERE place > $2)";

/// Stores `$2` as day `$1`'s salt unless one is there already.
pub(super) const ADD_SALT: &str =
    "INSERT INTO analytics_salts (day, salt) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING";

/// Day `$1`'s salt.
pub(super) const SALT: &str = "SELECT salt FROM analytics_salts WHERE day = $1";

/// Forgets the salts of days before `$1`: their visitors can no longer be recomputed.
pub(super) const PRUNE_SALTS: &str = "DELETE FROM analytics_salts WHERE day < $1";

/// The site named `$1`, whoever owns it (an admin reading another owner's figures).
pub(super) const SITE_ANY_OWNER: &str = "SELECT * FROM sites WHERE name = $1";
