//! The flusher: every `HOSTING_ANALYTICS_FLUSH_INTERVAL` it takes what this replica
//! counted, attributes each host to its site, and adds the increments to the database
//! (minute, hour and day buckets at once); once an hour it deletes what is past its
//! retention. It also keeps the tally's daily salts (today's and tomorrow's) current.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::hll::Sketch;
use super::salt::{day_of, random_salt, DaySalts, DAY_SECONDS};
use super::tally::{HashMap, MinuteTally, Taken, Tally};
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
        // Early when the tally holds its most hosts (`tally::MAX_HOSTS`): memory stays
        // bounded however many sites see traffic, and what is written sooner is not lost.
        let stopping = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            _ = tally.full() => false,
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
///
/// The increments are built on the blocking pool, a transaction's worth at a time, and
/// written from here as they come: the runtime's worker only binds and awaits each
/// chunk. Building them all on the worker held it for tens of milliseconds at 10,000
/// sites, stalling every request queued behind it (the serving benchmark's p99, issue
/// 23), and kept the whole batch in memory at once.
pub async fn flush(state: &AppState, tally: &Arc<Tally>) {
    let (chunks, mut built) = tokio::sync::mpsc::channel::<AnalyticsBatch>(2);
    let hosts = state.cache.hosts.clone();
    let tally = tally.clone();
    let builder = tokio::task::spawn_blocking(move || {
        let taken = tally.take();
        // Every counted host was just served, so the host cache knows its site (its
        // lookups complete at once: the future never waits).
        let site_of = |host: &str| {
            let entry = futures::executor::block_on(hosts.get(host))?;
            entry.deploy.as_ref().map(|deploy| deploy.site_id)
        };
        build(&taken, site_of, |chunk| chunks.blocking_send(chunk).is_ok());
        tally.recycle(taken);
    });
    let mut failed = None;
    while let Some(chunk) = built.recv().await {
        if let Err(e) = state.store.add_analytics(&chunk).await {
            failed = Some(e);
        }
    }
    if let Err(e) = builder.await {
        tracing::error!(error = %e, "building the analytics increments failed");
    }
    if let Some(e) = failed {
        metrics::counter!(crate::metrics::ANALYTICS_FLUSH_FAILURES_TOTAL).increment(1);
        tracing::warn!(error = %e, "writing analytics failed; this interval's figures are lost");
    }
}

/// Buckets and top-list entries handed to the writer at a time (a transaction of
/// buckets, `store::analytics::BUCKETS_PER_TRANSACTION`, and about one top-list statement).
const CHUNK_BUCKETS: usize = 990;
const CHUNK_TOP: usize = 3_000;

/// The increments of one flush: each minute of each host goes to its site's minute,
/// hour and day buckets; top lists to the hour and day buckets only. Sites come in
/// order, each whole in one chunk; `emit` gets a chunk at a time and stops the build by
/// returning false. Records that counted nothing (recycled, see [`Tally::recycle`]) and
/// hosts without a site are skipped.
pub fn build(
    taken: &Taken,
    site_of: impl Fn(&str) -> Option<i64>,
    mut emit: impl FnMut(AnalyticsBatch) -> bool,
) {
    let mut hosts: Vec<(i64, &str, &[MinuteTally])> = taken
        .iter()
        .filter(|(_, minutes)| minutes.iter().any(|m| m.counts.requests > 0))
        .filter_map(|(host, minutes)| Some((site_of(host)?, &**host, &minutes[..])))
        .collect();
    hosts.sort_unstable_by_key(|&(site, host, _)| (site, host));
    let mut chunk = AnalyticsBatch::default();
    // One site's buckets (a few: three granularities, two minutes at a boundary) and top entries.
    let mut buckets: Vec<(Granularity, i64, Counts, Sketch)> = Vec::new();
    let mut top: HashMap<(Granularity, i64, TopKind, &str), u64> = HashMap::default();
    const KINDS: [TopKind; 3] = [TopKind::Page, TopKind::Referrer, TopKind::NotFound];
    for site in hosts.chunk_by(|a, b| a.0 == b.0) {
        let site_id = site[0].0;
        for minute in site
            .iter()
            .flat_map(|&(_, _, minutes)| minutes)
            .filter(|m| m.counts.requests > 0)
        {
            let lists = KINDS.map(|kind| minute.top(kind));
            for granularity in Granularity::ALL {
                let start = granularity.bucket_of(minute.minute);
                let at = match buckets
                    .iter()
                    .position(|b| (b.0, b.1) == (granularity, start))
                {
                    Some(at) => at,
                    None => {
                        buckets.push((granularity, start, Counts::default(), Sketch::default()));
                        buckets.len() - 1
                    }
                };
                let (_, _, counts, sketch) = &mut buckets[at];
                counts.add(&minute.counts);
                if let Some(visitors) = &minute.visitors {
                    sketch.merge(visitors);
                }
                if granularity == Granularity::Minute {
                    continue;
                }
                for (kind, list) in KINDS.iter().zip(&lists) {
                    for &(key, n) in list {
                        *top.entry((granularity, start, *kind, key)).or_default() += n;
                    }
                }
            }
        }
        chunk.buckets.extend(
            buckets
                .drain(..)
                .map(|(granularity, start, counts, sketch)| BucketIncrement {
                    site_id,
                    granularity,
                    start,
                    counts,
                    visitors: sketch.encode(),
                }),
        );
        chunk
            .top
            .extend(
                top.drain()
                    .map(|((granularity, start, kind, key), count)| TopIncrement {
                        site_id,
                        granularity,
                        start,
                        kind,
                        key: key.to_owned(),
                        count,
                    }),
            );
        if (chunk.buckets.len() >= CHUNK_BUCKETS || chunk.top.len() >= CHUNK_TOP)
            && !emit(std::mem::take(&mut chunk))
        {
            return;
        }
    }
    if !chunk.buckets.is_empty() || !chunk.top.is_empty() {
        emit(chunk);
    }
}

/// [`build`]'s chunks as one batch.
pub fn batch(taken: Taken, site_of: impl Fn(&str) -> Option<i64>) -> AnalyticsBatch {
    let mut all = AnalyticsBatch::default();
    build(&taken, site_of, |chunk| {
        all.buckets.extend(chunk.buckets);
        all.top.extend(chunk.top);
        true
    });
    all
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

    #[test]
    fn a_large_flush_comes_in_chunks_of_whole_sites_in_site_order() {
        let tally = Tally::new();
        let hosts: Vec<String> = (0..1_000).map(|i| format!("s{i}.example")).collect();
        for (i, host) in hosts.iter().enumerate() {
            for second in [3_700, 3_701] {
                tally.add(&Hit {
                    host,
                    unix_seconds: second,
                    status: 200,
                    bytes_sent: 1,
                    page_view: true,
                    path: if i % 2 == 0 { "/" } else { "/about" },
                    referrer: None,
                    visitor: (&[192, 0, 2, 1], b"agent"),
                });
            }
        }
        // Two hosts a site: site n has hosts 2n and 2n + 1.
        let site_of = |host: &str| {
            let n: i64 = host[1..host.find('.')?].parse().ok()?;
            Some(n / 2)
        };
        let taken = tally.take();
        let mut chunks = Vec::new();
        build(&taken, site_of, |chunk| {
            chunks.push(chunk);
            true
        });

        assert!(chunks.len() > 1, "{} chunk(s)", chunks.len());
        let sites_of = |chunk: &AnalyticsBatch| {
            let mut sites: Vec<i64> = chunk.buckets.iter().map(|b| b.site_id).collect();
            sites.dedup();
            sites
        };
        let mut last = -1;
        for chunk in &chunks {
            assert!(chunk.buckets.len() <= CHUNK_BUCKETS + 6);
            let sites = sites_of(chunk);
            assert!(sites.windows(2).all(|w| w[0] < w[1]), "sites in order");
            assert!(sites[0] > last, "each site in one chunk, chunks in order");
            last = *sites.last().expect("a site");
            assert!(chunk.top.iter().all(|t| sites.contains(&t.site_id)));
        }
        let buckets: Vec<&BucketIncrement> = chunks.iter().flat_map(|c| &c.buckets).collect();
        assert_eq!(buckets.len(), 500 * 3);
        assert!(buckets.iter().all(|b| b.counts.requests == 4));
        let top: Vec<&TopIncrement> = chunks.iter().flat_map(|c| &c.top).collect();
        // Per site, hour and day: "/" twice and "/about" twice.
        assert_eq!(top.len(), 500 * 2 * 2);
        assert!(top.iter().all(|t| t.kind == TopKind::Page && t.count == 2));
    }

    #[test]
    fn a_build_stops_when_the_writer_is_gone() {
        let tally = Tally::new();
        let hosts: Vec<String> = (0..2_000).map(|i| format!("s{i}.example")).collect();
        for host in &hosts {
            tally.add(&Hit {
                host,
                unix_seconds: 60,
                status: 200,
                bytes_sent: 1,
                page_view: false,
                path: "/",
                referrer: None,
                visitor: (&[], b""),
            });
        }
        let taken = tally.take();
        let mut calls = 0;
        build(
            &taken,
            |host| host[1..host.find('.')?].parse().ok(),
            |_| {
                calls += 1;
                false
            },
        );
        assert_eq!(calls, 1);
    }
}
