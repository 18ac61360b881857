//! Read/write routing between the PostgreSQL primary and its streaming replica.
//!
//! Writes go to the primary. Reads that may go to the replica do so only while it is
//! reachable, lags less than the configured bound, and has replayed every write this
//! process made or heard about and everything written before it started (read-your-writes
//! by WAL position: a poller keeps the replica's replay position, and a read is routed by
//! comparing positions, never by waiting). Anything else reads the primary, with a warning
//! and a metric.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{PgPool, Row};

/// How often the replica's position and lag are read.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// `required` while a write's position could not be read: no replica position reaches it.
const UNKNOWN_WRITE: u64 = u64::MAX;

/// How often a fallback to the primary is logged (it is counted every time).
const LOG_INTERVAL: Duration = Duration::from_secs(30);

pub struct Pools {
    pub primary: PgPool,
    replica: Option<PgPool>,
    max_lag: Duration,
    /// Highest WAL position the replica is known to have replayed.
    replica_replayed: AtomicU64,
    /// Reachable and within the lag bound at the last poll.
    replica_healthy: AtomicBool,
    /// The primary's position at the previous poll, and when the replica last had replayed
    /// at least that much: the lag bound is judged on positions, since a replica cut off
    /// from the primary reports no lag at all on its own.
    poll_state: std::sync::Mutex<(u64, Instant)>,
    /// Highest WAL position of a write this process made or was told about.
    required: AtomicU64,
    last_fallback_log: std::sync::Mutex<Option<Instant>>,
}

/// `X/Y` (hex) -> a comparable number.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

impl Pools {
    pub fn new(primary: PgPool, replica: Option<PgPool>, max_lag: Duration) -> Arc<Pools> {
        Arc::new(Pools {
            primary,
            replica,
            max_lag,
            replica_replayed: AtomicU64::new(0),
            replica_healthy: AtomicBool::new(false),
            required: AtomicU64::new(0),
            poll_state: std::sync::Mutex::new((0, Instant::now())),
            last_fallback_log: std::sync::Mutex::new(None),
        })
    }

    pub fn has_replica(&self) -> bool {
        self.replica.is_some()
    }

    /// The pool for a read that must see this process's writes.
    pub fn read(&self) -> &PgPool {
        let Some(replica) = &self.replica else {
            return &self.primary;
        };
        if !self.replica_healthy.load(Ordering::Acquire) {
            self.fell_back("replica unavailable or lagging");
            return &self.primary;
        }
        if self.replica_replayed.load(Ordering::Acquire) < self.required.load(Ordering::Acquire) {
            self.fell_back("replica has not replayed a recent write");
            return &self.primary;
        }
        metrics::counter!(crate::metrics::DB_READS_TOTAL, "role" => "replica").increment(1);
        replica
    }

    /// The replica whatever its state, as a last resort while the primary is unreachable.
    pub fn any_replica(&self) -> Option<&PgPool> {
        self.replica.as_ref()
    }

    /// Whether `pool` is the replica's (a failed read there is retried on the primary).
    pub fn is_replica(&self, pool: &PgPool) -> bool {
        self.replica
            .as_ref()
            .is_some_and(|replica| std::ptr::eq(replica, pool))
    }

    /// The replica, if any, for reads of immutable rows (blobs, manifests): a miss there is
    /// retried on the primary by the caller, so no position check is needed.
    pub fn immutable_read(&self) -> Option<&PgPool> {
        self.replica
            .as_ref()
            .filter(|_| self.replica_healthy.load(Ordering::Acquire))
    }

    /// Counts (and now and then logs) a read served by the primary instead of the replica.
    pub fn fell_back(&self, reason: &'static str) {
        metrics::counter!(crate::metrics::DB_READS_TOTAL, "role" => "primary").increment(1);
        if self.replica.is_none() {
            return;
        }
        metrics::counter!(crate::metrics::DB_REPLICA_FALLBACKS_TOTAL, "reason" => reason)
            .increment(1);
        let mut last = self
            .last_fallback_log
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| at.elapsed() > LOG_INTERVAL) {
            *last = Some(Instant::now());
            tracing::warn!(reason, "reading from the primary instead of the replica");
        }
    }

    /// Records the primary's WAL position after a write, so later reads see it.
    pub async fn note_write(&self) {
        if self.replica.is_none() {
            return;
        }
        match sqlx::query_scalar::<_, String>("SELECT pg_current_wal_lsn()::text")
            .fetch_one(&self.primary)
            .await
        {
            Ok(text) => {
                if let Some(lsn) = parse_lsn(&text) {
                    self.required.fetch_max(lsn, Ordering::AcqRel);
                }
            }
            // Without the position, stay on the primary until the poller has read one from
            // it (any later position is past this write).
            Err(_) => self.required.store(UNKNOWN_WRITE, Ordering::Release),
        }
    }

    /// The position of the latest write this process knows of (sent with invalidations).
    pub fn write_position(&self) -> u64 {
        self.required.load(Ordering::Acquire)
    }

    /// Another app replica wrote up to `lsn`.
    pub fn observe_write(&self, lsn: u64) {
        self.required.fetch_max(lsn, Ordering::AcqRel);
    }

    /// Polls the replica's replay position and lag until the process exits.
    pub async fn poll_replica(self: Arc<Pools>) {
        let Some(replica) = self.replica.clone() else {
            return;
        };
        let mut ticker = tokio::time::interval(POLL_INTERVAL);
        let mut knows_earlier_writes = false;
        loop {
            ticker.tick().await;
            self.report_pool_use();
            // Read before the position is: a write that could not learn its position came
            // before the position read below, so that position is past it.
            let write_position_unknown = self.required.load(Ordering::Acquire) == UNKNOWN_WRITE;
            let primary_position =
                sqlx::query_scalar::<_, String>("SELECT pg_current_wal_lsn()::text")
                    .fetch_one(&self.primary)
                    .await
                    .ok()
                    .and_then(|text| parse_lsn(&text));
            // Writes acknowledged before this process started (by an earlier run of it, or by
            // a replica whose invalidations it never heard) must stay visible: the replica
            // serves reads only once it has replayed what the primary had at the first poll.
            if let Some(position) = primary_position {
                if !knows_earlier_writes {
                    self.required.fetch_max(position, Ordering::AcqRel);
                    knows_earlier_writes = true;
                }
                if write_position_unknown {
                    let _ = self.required.compare_exchange(
                        UNKNOWN_WRITE,
                        position,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                }
            }
            let polled = sqlx::query(
                "SELECT pg_last_wal_replay_lsn()::text AS replayed, \
                 CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
                 ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8 AS lag",
            )
            .fetch_one(&replica)
            .await;
            let healthy = match polled {
                Ok(row) => {
                    let replayed: Option<u64> = row
                        .try_get::<Option<String>, _>("replayed")
                        .ok()
                        .flatten()
                        .as_deref()
                        .and_then(parse_lsn);
                    // The replica's own view of its lag, for the dashboards.
                    let lag: f64 = row.try_get("lag").unwrap_or(f64::MAX);
                    metrics::gauge!(crate::metrics::DB_REPLICA_LAG_SECONDS).set(lag);
                    // A primary (no recovery) answers NULL for the replay position.
                    replayed.is_some_and(|replayed| {
                        self.replica_replayed.fetch_max(replayed, Ordering::AcqRel);
                        self.within_lag_bound(replayed, primary_position)
                    })
                }
                Err(_) => false,
            };
            metrics::gauge!(crate::metrics::DB_REPLICA_UP).set(if healthy { 1.0 } else { 0.0 });
            self.replica_healthy.store(healthy, Ordering::Release);
        }
    }

    /// True while the replica has, within the lag bound, replayed what the primary had
    /// written at the previous poll.
    fn within_lag_bound(&self, replayed: u64, primary_now: Option<u64>) -> bool {
        let mut state = self.poll_state.lock().unwrap_or_else(|e| e.into_inner());
        let (primary_before, caught_up_at) = &mut *state;
        if replayed >= *primary_before {
            *caught_up_at = Instant::now();
        }
        if let Some(position) = primary_now {
            *primary_before = position;
        }
        caught_up_at.elapsed() <= self.max_lag
    }

    fn report_pool_use(&self) {
        for (role, pool) in [
            ("primary", Some(&self.primary)),
            ("replica", self.replica.as_ref()),
        ] {
            if let Some(pool) = pool {
                let size = pool.size();
                let idle = u32::try_from(pool.num_idle()).unwrap_or(size);
                metrics::gauge!(crate::metrics::DB_POOL_CONNECTIONS, "role" => role, "state" => "busy")
                    .set(f64::from(size.saturating_sub(idle)));
                metrics::gauge!(crate::metrics::DB_POOL_CONNECTIONS, "role" => role, "state" => "idle")
                    .set(f64::from(idle));
                metrics::gauge!(crate::metrics::DB_POOL_MAX_CONNECTIONS, "role" => role)
                    .set(f64::from(pool.options().get_max_connections()));
            }
        }
    }

    /// Replica status for `/readyz`.
    pub fn replica_status(&self) -> &'static str {
        match (&self.replica, self.replica_healthy.load(Ordering::Acquire)) {
            (None, _) => "none",
            (Some(_), true) => "ok",
            (Some(_), false) => "unavailable or lagging (reads use the primary)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_positions_compare_as_numbers() {
        assert_eq!(parse_lsn("0/16B3748"), Some(0x16B3748));
        assert_eq!(parse_lsn("1/0"), Some(1 << 32));
        assert!(parse_lsn("1/0") > parse_lsn("0/FFFFFFFF"));
        assert_eq!(parse_lsn("garbage"), None);
    }
}
