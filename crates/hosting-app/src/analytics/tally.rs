//! What this replica counted since its last flush, in memory, sharded by thread.
//!
//! A request takes one uncontended lock (its thread's shard) and adds to plain numbers;
//! it never waits for the database nor allocates, except for a new host or a new key of
//! a top list. Each shard sits on its own cache lines (two threads locking neighbouring
//! shards would otherwise bounce one line between cores on every request), keys are
//! hashed with foldhash (seeded per process, several times cheaper than SipHash on short
//! keys), and the visitor hash's input is assembled in the shard's reused buffer. The flusher swaps each shard's map out under its lock and writes the
//! increments. Top lists are bounded per host and minute: keys beyond
//! [`KEYS_PER_MINUTE`] are not tracked (their requests still count), and a flush keeps
//! only the [`TOP_PER_FLUSH`] largest.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_utils::CachePadded;

use super::hll::Sketch;
use super::salt::DaySalts;
use crate::store::{Counts, TopKind};

/// Distinct keys tracked per top list, host and minute.
pub const KEYS_PER_MINUTE: usize = 1_000;
/// Entries of each top list written per flush.
pub const TOP_PER_FLUSH: usize = 100;
/// Longest key kept (a path or a host); longer ones are cut.
pub const MAX_KEY_BYTES: usize = 256;

/// The maps of the tally: keys are hosts and request paths, which clients choose, so
/// the hasher is seeded per process (foldhash's `RandomState`), not fixed.
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// One request, as analytics sees it.
#[derive(Debug)]
pub struct Hit<'a> {
    pub host: &'a str,
    pub unix_seconds: i64,
    pub status: u16,
    pub bytes_sent: u64,
    /// A `GET` answered 2xx with HTML.
    pub page_view: bool,
    pub path: &'a str,
    /// The host of the `Referer`, for page views coming from another host.
    pub referrer: Option<&'a str>,
    /// What identifies the visitor for the day: address and user agent (hashed here with
    /// the day's salt, never kept).
    pub visitor: (&'a [u8], &'a [u8]),
}

/// The figures of one host in one minute.
#[derive(Debug, Default)]
pub struct MinuteTally {
    pub minute: i64,
    pub counts: Counts,
    pub visitors: Option<Sketch>,
    pub top: [HashMap<Box<str>, u64>; 3],
}

/// The top list a kind is kept in.
pub fn top_index(kind: TopKind) -> usize {
    match kind {
        TopKind::Page => 0,
        TopKind::Referrer => 1,
        TopKind::NotFound => 2,
    }
}

/// Host -> the minutes it saw since the last flush (usually one, two at a boundary).
pub type Taken = HashMap<Box<str>, Vec<MinuteTally>>;

struct Shard {
    hosts: Taken,
    salts: Arc<DaySalts>,
    /// The visitor hash's input, reused so hashing neither allocates nor clears a buffer.
    scratch: Vec<u8>,
}

/// The sharded aggregate.
pub struct Tally {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
}

impl Tally {
    pub fn new() -> Tally {
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        let shards = (0..threads * 2)
            .map(|_| {
                CachePadded::new(Mutex::new(Shard {
                    hosts: Taken::default(),
                    salts: Arc::new(DaySalts::default()),
                    scratch: Vec::new(),
                }))
            })
            .collect();
        Tally { shards }
    }

    /// Counts one request.
    pub fn add(&self, hit: &Hit<'_>) {
        let mut guard = self.shards[shard_of_this_thread(self.shards.len())]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let shard = &mut *guard;
        let visitor = shard
            .salts
            .hash_with(&mut shard.scratch, hit.unix_seconds, hit.visitor);
        let minutes = match shard.hosts.get_mut(hit.host) {
            Some(minutes) => minutes,
            None => shard.hosts.entry(hit.host.into()).or_default(),
        };
        let minute = hit.unix_seconds.div_euclid(60) * 60;
        let tally = match minutes.iter().position(|m| m.minute == minute) {
            Some(i) => &mut minutes[i],
            None => {
                minutes.push(MinuteTally {
                    minute,
                    ..MinuteTally::default()
                });
                let last = minutes.len() - 1;
                &mut minutes[last]
            }
        };
        tally.add(hit, visitor);
    }

    /// Everything counted since the last call.
    pub fn take(&self) -> Taken {
        let mut taken = Taken::default();
        for shard in self.shards.iter() {
            let hosts =
                std::mem::take(&mut shard.lock().unwrap_or_else(PoisonError::into_inner).hosts);
            for (host, minutes) in hosts {
                let into = taken.entry(host).or_default();
                for minute in minutes {
                    match into.iter_mut().find(|m| m.minute == minute.minute) {
                        Some(existing) => existing.merge(minute),
                        None => into.push(minute),
                    }
                }
            }
        }
        taken
    }

    /// The salts requests are hashed with from now on.
    pub fn set_salts(&self, salts: Arc<DaySalts>) {
        for shard in self.shards.iter() {
            shard.lock().unwrap_or_else(PoisonError::into_inner).salts = salts.clone();
        }
    }
}

impl Default for Tally {
    fn default() -> Tally {
        Tally::new()
    }
}

impl MinuteTally {
    fn add(&mut self, hit: &Hit<'_>, visitor: Option<u64>) {
        let counts = &mut self.counts;
        counts.requests += 1;
        counts.bytes_sent += hit.bytes_sent;
        if let Some(class) = (hit.status / 100).checked_sub(1).map(usize::from) {
            if let Some(n) = counts.statuses.get_mut(class) {
                *n += 1;
            }
        }
        if let Some(hash) = visitor {
            self.visitors
                .get_or_insert_with(Sketch::default)
                .insert(hash);
        }
        if hit.page_view {
            counts.page_views += 1;
            bump(&mut self.top[top_index(TopKind::Page)], hit.path, 1);
            if let Some(referrer) = hit.referrer {
                bump(&mut self.top[top_index(TopKind::Referrer)], referrer, 1);
            }
        }
        if hit.status == 404 {
            bump(&mut self.top[top_index(TopKind::NotFound)], hit.path, 1);
        }
    }

    fn merge(&mut self, other: MinuteTally) {
        self.counts.add(&other.counts);
        match (&mut self.visitors, other.visitors) {
            (Some(mine), Some(theirs)) => mine.merge(&theirs),
            (mine @ None, theirs) => *mine = theirs,
            (Some(_), None) => {}
        }
        for (mine, theirs) in self.top.iter_mut().zip(other.top) {
            for (key, n) in theirs {
                bump(mine, &key, n);
            }
        }
    }

    /// A top list's [`TOP_PER_FLUSH`] largest entries.
    pub fn top(&self, kind: TopKind) -> Vec<(&str, u64)> {
        let mut entries: Vec<(&str, u64)> = self.top[top_index(kind)]
            .iter()
            .map(|(k, n)| (&**k, *n))
            .collect();
        entries.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        entries.truncate(TOP_PER_FLUSH);
        entries
    }
}

/// Adds `n` to `key`, unless the list is full and the key new.
fn bump(list: &mut HashMap<Box<str>, u64>, key: &str, n: u64) {
    let key = cut(key);
    if let Some(count) = list.get_mut(key) {
        *count += n;
    } else if list.len() < KEYS_PER_MINUTE {
        list.insert(key.into(), n);
    }
}

/// At most [`MAX_KEY_BYTES`], cut at a character boundary.
pub fn cut(key: &str) -> &str {
    if key.len() <= MAX_KEY_BYTES {
        return key;
    }
    let mut end = MAX_KEY_BYTES;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

/// Each thread keeps to one shard (assigned in turn), so the tokio workers rarely meet
/// on a lock.
fn shard_of_this_thread(shards: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<Option<usize>> = const { Cell::new(None) };
    }
    SHARD.with(|shard| {
        let index = shard
            .get()
            .unwrap_or_else(|| NEXT.fetch_add(1, Ordering::Relaxed));
        shard.set(Some(index));
        index % shards
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit<'a>(host: &'a str, second: i64, status: u16, path: &'a str) -> Hit<'a> {
        Hit {
            host,
            unix_seconds: second,
            status,
            bytes_sent: 10,
            page_view: status == 200,
            path,
            referrer: None,
            visitor: (b"192.0.2.1", b"test"),
        }
    }

    #[test]
    fn requests_add_up_per_host_and_minute_and_take_empties_the_tally() {
        let tally = Tally::new();
        tally.add(&hit("a.example", 60, 200, "/"));
        tally.add(&hit("a.example", 119, 404, "/gone"));
        tally.add(&hit("a.example", 120, 200, "/"));
        tally.add(&hit("b.example", 61, 500, "/"));

        let taken = tally.take();

        let a = &taken["a.example"];
        assert_eq!(a.len(), 2);
        let first = a.iter().find(|m| m.minute == 60).expect("minute 60");
        assert_eq!(first.counts.requests, 2);
        assert_eq!(first.counts.page_views, 1);
        assert_eq!(first.counts.bytes_sent, 20);
        assert_eq!(first.counts.statuses, [0, 1, 0, 1, 0]);
        assert_eq!(first.top(TopKind::NotFound), vec![("/gone", 1)]);
        assert_eq!(taken["b.example"][0].counts.statuses, [0, 0, 0, 0, 1]);
        assert!(tally.take().is_empty());
    }

    #[test]
    fn a_top_list_tracks_a_bounded_number_of_keys_but_counts_every_request() {
        let tally = Tally::new();
        let paths: Vec<String> = (0..KEYS_PER_MINUTE + 50)
            .map(|i| format!("/p{i}"))
            .collect();
        for path in &paths {
            tally.add(&hit("a.example", 0, 404, path));
        }
        let taken = tally.take();
        let minute = &taken["a.example"][0];
        assert_eq!(minute.counts.requests, paths.len() as u64);
        assert_eq!(
            minute.top[top_index(TopKind::NotFound)].len(),
            KEYS_PER_MINUTE
        );
        assert_eq!(minute.top(TopKind::NotFound).len(), TOP_PER_FLUSH);
    }
}
