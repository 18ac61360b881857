//! The flusher: every `HOSTING_ANALYTICS_FLUSH_INTERVAL` it takes what this replica
//! counted, attributes each host to its site, and adds the increments to the database
//! (minute, hour and day buckets at once); once an hour it deletes what is past its
//! retention. It also keeps the tally's daily salts (today's and tomorrow's) current.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::hll::Sketch;
use super::salt::{day_of, random_salt, DaySalts, DAY_SECONDS};
use super::tally::{Taken, Tally};
use crate::state::{App, AppState};
use crate::store::{
    AnalyticsBatch, AnalyticsCutoffs, BucketIncrement, Counts, Granularity, StoreResult,
    TopIncrement, TopKind,
};

/// How often figures past their retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Entries kept per top list of a closed bucket.
pub const TOP_KEEP: u32 = 100;

/// Runs until `stop` fires or its sender is dropped, then writes one last time.
pub async fn run(state: AppState, tally: Arc<Tally>, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let interval = state.config.analytics.analytics_flush_interval;
    let mut salted_days = None;
    let mut last_prune: Option<Instant> = None;
    loop {
        let now = super::now_seconds();
        let days = (day_of(now), day_of(now) + DAY_SECONDS);
        if salted_days != Some(days) {
            match load_salts(&state, days).await {
                Ok(salts) => {
                    tally.set_salts(Arc::new(salts));
                    salted_days = Some(days);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "loading the analytics salts failed; visitors are not counted until it works")
                }
            }
        }
        if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(Instant::now());
            match prune(&state, now).await {
                Ok(deleted) => tracing::debug!(rows = deleted, "analytics pruned"),
                Err(e) => tracing::warn!(error = %e, "pruning analytics failed"),
            }
        }
        let stopping = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            _ = &mut stop => true,
        };
        flush(&state, &tally).await;
        if stopping {
            return;
        }
    }
}

/// Writes what was counted since the last flush. A failed write is logged and dropped:
/// counting must never hold memory without bound while the database is away.
pub async fn flush(app: &App, tally: &Tally) {
    let taken = tally.take();
    if taken.is_empty() {
        return;
    }
    let mut sites = HashMap::new();
    for host in taken.keys() {
        // Every counted host was just served, so the host cache knows its site.
        if let Some(entry) = app.cache.hosts.get(&**host).await {
            if let Some(deploy) = entry.deploy {
                sites.insert(host.clone(), deploy.site_id);
            }
        }
    }
    let batch = batch(taken, |host| sites.get(host).copied());
    if let Err(e) = app.store.add_analytics(&batch).await {
        metrics::counter!(crate::metrics::ANALYTICS_FLUSH_FAILURES_TOTAL).increment(1);
        tracing::warn!(error = %e, "writing analytics failed; this interval's figures are lost");
    }
}

/// The increments of one flush: each minute of each host goes to its site's minute,
/// hour and day buckets; top lists to the hour and day buckets only.
pub fn batch(taken: Taken, site_of: impl Fn(&str) -> Option<i64>) -> AnalyticsBatch {
    let mut buckets: HashMap<(i64, Granularity, i64), (Counts, Sketch)> = HashMap::new();
    let mut top: HashMap<(i64, Granularity, i64, TopKind, String), u64> = HashMap::new();
    for (host, minutes) in taken {
        let Some(site_id) = site_of(&host) else {
            continue;
        };
        for minute in minutes {
            for granularity in Granularity::ALL {
                let start = granularity.bucket_of(minute.minute);
                let (counts, sketch) = buckets.entry((site_id, granularity, start)).or_default();
                counts.add(&minute.counts);
                if let Some(visitors) = &minute.visitors {
                    sketch.merge(visitors);
                }
                if granularity == Granularity::Minute {
                    continue;
                }
                for kind in [TopKind::Page, TopKind::Referrer, TopKind::NotFound] {
                    for (key, n) in minute.top(kind) {
                        *top.entry((site_id, granularity, start, kind, key.to_owned()))
                            .or_default() += n;
                    }
                }
            }
        }
    }
    AnalyticsBatch {
        buckets: buckets
            .into_iter()
            .map(
                |((site_id, granularity, start), (counts, sketch))| BucketIncrement {
                    site_id,
                    granularity,
                    start,
                    counts,
                    visitors: sketch.encode(),
                },
            )
            .collect(),
        top: top
            .into_iter()
            .map(
                |((site_id, granularity, start, kind, key), count)| TopIncrement {
                    site_id,
                    granularity,
                    start,
                    kind,
                    key,
                    count,
                },
            )
            .collect(),
    }
}

/// The salts of `days`, created by whichever replica asks first.
async fn load_salts(app: &App, days: (i64, i64)) -> StoreResult<DaySalts> {
    let mut salts = Vec::new();
    for day in [days.0, days.1] {
        salts.push((day, app.store.analytics_salt(day, &random_salt()).await?));
    }
    Ok(DaySalts::new(salts))
}

/// Deletes figures past their retention (as of `now`, unix seconds), salts of past
/// days, and the smallest entries of closed buckets' top lists.
pub async fn prune(app: &App, now: i64) -> StoreResult<u64> {
    let settings = &app.config.analytics;
    let before = |retention: Duration| {
        now.saturating_sub(i64::try_from(retention.as_secs()).unwrap_or(i64::MAX))
    };
    let today = day_of(now);
    app.store
        .prune_analytics(&AnalyticsCutoffs {
            minute: before(settings.analytics_minute_retention),
            hour: before(settings.analytics_hour_retention),
            day: before(settings.analytics_day_retention),
            salt_day: today,
            closed_before: today,
            trim_from: today - 2 * DAY_SECONDS,
            top_keep: TOP_KEEP,
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::tally::Hit;

    #[test]
    fn hosts_of_one_site_add_up_in_every_granularity_and_unknown_hosts_are_dropped() {
        let tally = Tally::new();
        let salts = DaySalts::new(vec![(0, random_salt())]);
        tally.set_salts(Arc::new(salts));
        for (host, agent) in [
            ("a.example", "one"),
            ("www.a.example", "two"),
            ("gone.example", "x"),
        ] {
            tally.add(&Hit {
                host,
                unix_seconds: 3_700,
                status: 200,
                bytes_sent: 5,
                page_view: true,
                path: "/",
                referrer: Some("search.example"),
                visitor: (&[192, 0, 2, 1], agent.as_bytes()),
            });
        }

        let batch = batch(tally.take(), |host| (host != "gone.example").then_some(7));

        assert_eq!(batch.buckets.len(), 3);
        for bucket in &batch.buckets {
            assert_eq!(bucket.site_id, 7);
            assert_eq!(bucket.counts.requests, 2);
            assert_eq!(bucket.counts.bytes_sent, 10);
            assert_eq!(
                Sketch::decode(&bucket.visitors).expect("sketch").estimate(),
                2
            );
            let expected_start = match bucket.granularity {
                Granularity::Minute => 3_660,
                Granularity::Hour => 3_600,
                Granularity::Day => 0,
            };
            assert_eq!(bucket.start, expected_start);
        }
        let referrers: Vec<_> = batch
            .top
            .iter()
            .filter(|t| t.kind == TopKind::Referrer)
            .collect();
        assert_eq!(referrers.len(), 2, "hour and day");
        assert!(referrers
            .iter()
            .all(|t| t.key == "search.example" && t.count == 2));
    }
}
