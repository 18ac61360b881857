//! What this replica counted since its last flush, in memory, sharded by thread.
//!
//! A request takes one uncontended lock (its thread's shard) and adds to plain numbers;
//! it never waits for the database. Each shard sits on its own cache lines (two threads
//! locking neighbouring shards would otherwise bounce one line between cores on every
//! request), keys are hashed with foldhash (seeded per process, several times cheaper
//! than SipHash on short keys), and the visitor hash's input is assembled in the shard's
//! reused buffer.
//!
//! The flusher swaps each shard's map out under its lock ([`Tally::take`], O(1) for the
//! busy shard), writes the increments, then hands the map back zeroed
//! ([`Tally::recycle`]): the next interval but one counts into it again, so a host seen
//! in every interval keeps its entry, its minute's record and its top lists' keys, and a
//! request allocates nothing (before, every flush dropped them all and the next interval
//! allocated a host entry, three maps and a key per page again: at 10,000 sites nearly
//! every request). What was not counted during an interval is dropped when its map comes
//! back, so the tally holds at most the hosts and keys of two intervals.
//!
//! Top lists are bounded per host and minute: keys beyond [`KEYS_PER_MINUTE`] are not
//! tracked (their requests still count), and a flush keeps only the [`TOP_PER_FLUSH`]
//! largest.

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
/// Hosts first counted since the last take after which the tally asks for an early
/// flush ([`Tally::full`]): a host costs ~1 KiB while counted (its entry, a minute's
/// record, a top list of its pages), and with a map being written while the next fills,
/// this bounds the tally near 2 x 16 MiB however many sites see traffic in an interval.
pub const MAX_HOSTS: usize = 16_384;

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

/// The figures of one host in one minute. A record whose `counts.requests` is zero is a
/// recycled one that counted nothing yet: flushes skip it.
#[derive(Debug, Default)]
pub struct MinuteTally {
    pub minute: i64,
    pub counts: Counts,
    pub visitors: Option<Sketch>,
    pub top: [TopList; 3],
}

/// One top list of a host's minute: key -> requests. Keys of the interval before stay at
/// zero (so counting them again allocates nothing) and do not count towards
/// [`KEYS_PER_MINUTE`].
#[derive(Debug, Default)]
pub struct TopList {
    counts: HashMap<Box<str>, u64>,
    /// Keys above zero.
    live: usize,
}

impl TopList {
    /// Adds `n` to `key`, unless the list is full and the key not counted yet.
    fn bump(&mut self, key: &str, n: u64) {
        let key = cut(key);
        if let Some(count) = self.counts.get_mut(key) {
            if *count == 0 {
                if self.live >= KEYS_PER_MINUTE {
                    return;
                }
                self.live += 1;
            }
            *count += n;
        } else if self.live < KEYS_PER_MINUTE {
            self.counts.insert(key.into(), n);
            self.live += 1;
        }
    }

    /// Keys counted (above zero).
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The counted entries, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (&**k, *n))
    }

    /// Zeroes the counts, keeping the keys counted since the last reset and forgetting
    /// the others.
    fn reset(&mut self) {
        let live = self.live;
        self.counts.retain(|_, n| std::mem::take(n) > 0);
        self.live = 0;
        // A burst of keys (a scan of 404s) leaves a large table behind: give it back.
        if self.counts.capacity() > 64 && self.counts.capacity() > 4 * live {
            self.counts.shrink_to_fit();
        }
    }
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
    /// A map the flusher gave back, zeroed: what `hosts` becomes at the next take.
    spare: Option<Taken>,
    salts: Arc<DaySalts>,
    /// The visitor hash's input, reused so hashing neither allocates nor clears a buffer.
    scratch: Vec<u8>,
}

/// The sharded aggregate.
pub struct Tally {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    /// The shard that held the most hosts at the last take: the one a recycled map goes back to.
    busiest: AtomicUsize,
    /// Hosts first counted (a new entry in a shard) since the last take.
    new_hosts: AtomicUsize,
    max_hosts: usize,
    full: tokio::sync::Notify,
}

impl Tally {
    pub fn new() -> Tally {
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get());
        let shards = (0..threads * 2)
            .map(|_| {
                CachePadded::new(Mutex::new(Shard {
                    hosts: Taken::default(),
                    spare: None,
                    salts: Arc::new(DaySalts::default()),
                    scratch: Vec::new(),
                }))
            })
            .collect();
        Tally {
            shards,
            busiest: AtomicUsize::new(0),
            new_hosts: AtomicUsize::new(0),
            max_hosts: MAX_HOSTS,
            full: tokio::sync::Notify::new(),
        }
    }

    /// A tally that asks for an early flush after `max_hosts` new hosts instead of [`MAX_HOSTS`].
    pub fn with_max_hosts(max_hosts: usize) -> Tally {
        Tally {
            max_hosts,
            ..Tally::new()
        }
    }

    /// Completes once [`MAX_HOSTS`] hosts were first counted since the last take (at
    /// once if that happened while nobody waited): the flusher then writes early.
    pub async fn full(&self) {
        self.full.notified().await;
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
            None => {
                if self.new_hosts.fetch_add(1, Ordering::Relaxed) + 1 == self.max_hosts {
                    self.full.notify_one();
                }
                shard.hosts.entry(hit.host.into()).or_default()
            }
        };
        let minute = hit.unix_seconds.div_euclid(60) * 60;
        let at = minutes
            .iter()
            .position(|m| m.minute == minute)
            .or_else(|| {
                // A recycled record that counted nothing yet serves any minute.
                let unused = minutes.iter().position(|m| m.counts.requests == 0)?;
                minutes[unused].minute = minute;
                Some(unused)
            })
            .unwrap_or_else(|| {
                // One record more, not four (a `Vec`'s first growth): a record is ~250
                // bytes, a host has one (two across a minute's end), and 10,000 hosts
                // held 7 MiB of unused ones.
                minutes.reserve_exact(1);
                minutes.push(MinuteTally {
                    minute,
                    ..MinuteTally::default()
                });
                minutes.len() - 1
            });
        minutes[at].add(hit, visitor);
    }

    /// Everything counted since the last call (records of hosts and minutes that counted
    /// nothing may be in it, zeroed: see [`MinuteTally`]). Give it back with
    /// [`Tally::recycle`] once written.
    pub fn take(&self) -> Taken {
        self.new_hosts.store(0, Ordering::Relaxed);
        let mut maps: Vec<(usize, Taken)> = Vec::new();
        for (i, shard) in self.shards.iter().enumerate() {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let next = shard.spare.take().unwrap_or_default();
            let hosts = std::mem::replace(&mut shard.hosts, next);
            drop(shard);
            if !hosts.is_empty() {
                maps.push((i, hosts));
            }
        }
        // The largest map is kept as it is and the others merged into it: with one busy
        // thread (the usual case) nothing is copied.
        let Some(largest) = (0..maps.len()).max_by_key(|&k| maps[k].1.len()) else {
            return Taken::default();
        };
        let (busiest, mut taken) = maps.swap_remove(largest);
        self.busiest.store(busiest, Ordering::Relaxed);
        for (_, hosts) in maps {
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

    /// Takes back a map [`Tally::take`] gave, once written: hosts and minutes that counted
    /// nothing are dropped, the rest zeroed, and the map is what the busiest shard counts
    /// into after the next take.
    pub fn recycle(&self, mut taken: Taken) {
        taken.retain(|_, minutes| {
            minutes.retain(|m| m.counts.requests > 0);
            minutes.iter_mut().for_each(MinuteTally::reset);
            !minutes.is_empty()
        });
        let busiest = self.busiest.load(Ordering::Relaxed) % self.shards.len();
        let mut shard = self.shards[busiest]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.spare.is_none() {
            shard.spare = Some(taken);
        }
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
            self.top[top_index(TopKind::Page)].bump(hit.path, 1);
            if let Some(referrer) = hit.referrer {
                self.top[top_index(TopKind::Referrer)].bump(referrer, 1);
            }
        }
        if hit.status == 404 {
            self.top[top_index(TopKind::NotFound)].bump(hit.path, 1);
        }
    }

    /// Zeroes the record for reuse (see [`TopList::reset`]); a sketch that turned dense
    /// gives its registers back.
    fn reset(&mut self) {
        self.counts = Counts::default();
        if let Some(visitors) = &mut self.visitors {
            visitors.clear();
        }
        for list in &mut self.top {
            list.reset();
        }
    }

    fn merge(&mut self, other: MinuteTally) {
        self.counts.add(&other.counts);
        match (&mut self.visitors, other.visitors) {
            (Some(mine), Some(theirs)) => mine.merge(&theirs),
            (mine @ None, theirs) => *mine = theirs,
            (Some(_), None) => {}
        }
        for (mine, theirs) in self.top.iter_mut().zip(&other.top) {
            for (key, n) in theirs.iter() {
                mine.bump(key, n);
            }
        }
    }

    /// A top list's [`TOP_PER_FLUSH`] largest entries.
    pub fn top(&self, kind: TopKind) -> Vec<(&str, u64)> {
        let mut entries: Vec<(&str, u64)> = self.top[top_index(kind)].iter().collect();
        entries.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        entries.truncate(TOP_PER_FLUSH);
        entries
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

    #[test]
    fn a_tally_asks_for_an_early_flush_once_it_holds_its_most_hosts() {
        use futures::FutureExt;
        let tally = Tally::with_max_hosts(3);
        for host in ["a.example", "b.example", "a.example"] {
            tally.add(&hit(host, 0, 200, "/"));
        }
        assert!(tally.full().now_or_never().is_none(), "two hosts: not full");
        tally.add(&hit("c.example", 0, 200, "/"));
        assert!(tally.full().now_or_never().is_some(), "three hosts: full");
        // A take starts the count again.
        tally.recycle(tally.take());
        for host in ["d.example", "e.example"] {
            tally.add(&hit(host, 0, 200, "/"));
        }
        assert!(tally.full().now_or_never().is_none());
    }

    /// One host's minute: host, minute, counts, and the three top lists.
    type Figures = (String, i64, Counts, [Vec<(String, u64)>; 3]);

    /// The minutes of `taken` that counted something, as comparable figures.
    fn figures(taken: &Taken) -> Vec<Figures> {
        let mut out: Vec<_> = taken
            .iter()
            .flat_map(|(host, minutes)| minutes.iter().map(move |m| (host, m)))
            .filter(|(_, m)| m.counts.requests > 0)
            .map(|(host, m)| {
                let list = |kind| {
                    m.top(kind)
                        .into_iter()
                        .map(|(k, n)| (k.to_owned(), n))
                        .collect::<Vec<_>>()
                };
                (
                    host.to_string(),
                    m.minute,
                    m.counts,
                    [
                        list(TopKind::Page),
                        list(TopKind::Referrer),
                        list(TopKind::NotFound),
                    ],
                )
            })
            .collect();
        out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        out
    }

    #[test]
    fn a_recycled_map_counts_exactly_as_a_fresh_one_and_forgets_what_it_did_not_count() {
        let tally = Tally::new();
        // Interval 1 fills the map that comes back, zeroed, in interval 3.
        tally.add(&hit("a.example", 60, 200, "/"));
        tally.add(&hit("a.example", 61, 404, "/gone"));
        tally.add(&hit("b.example", 62, 200, "/old"));
        let first = tally.take();
        tally.recycle(first);
        // Interval 2 counts into a new map.
        tally.add(&hit("c.example", 65, 200, "/"));
        let second = tally.take();
        assert_eq!(figures(&second).len(), 1);
        tally.recycle(second);
        // Interval 3: the recycled map of interval 1, another minute, other paths.
        let third: Vec<Hit<'_>> = vec![
            hit("a.example", 130, 200, "/"),
            hit("a.example", 131, 200, "/new"),
            hit("a.example", 185, 404, "/gone"),
            hit("d.example", 140, 500, "/"),
        ];
        for h in &third {
            tally.add(h);
        }
        let recycled = tally.take();
        let fresh = Tally::new();
        for h in &third {
            fresh.add(h);
        }
        assert_eq!(figures(&recycled), figures(&fresh.take()));
        // b.example, counted in interval 1 only, is kept at zero (not written), and
        // dropped when its map comes back again.
        assert!(recycled["b.example"].iter().all(|m| m.counts.requests == 0));
        tally.recycle(recycled);
        let shard = tally.busiest.load(Ordering::Relaxed);
        let spare = tally.shards[shard].lock().expect("shard").spare.take();
        let spare = spare.expect("the recycled map waits for the next take");
        assert!(spare.contains_key("a.example"));
        assert!(!spare.contains_key("b.example"));
    }

    #[test]
    fn keys_kept_from_an_earlier_interval_do_not_fill_a_top_list() {
        let tally = Tally::new();
        let old: Vec<String> = (0..KEYS_PER_MINUTE).map(|i| format!("/old{i}")).collect();
        let new: Vec<String> = (0..KEYS_PER_MINUTE).map(|i| format!("/new{i}")).collect();
        for path in &old {
            tally.add(&hit("a.example", 0, 404, path));
        }
        tally.recycle(tally.take());
        tally.recycle(tally.take());
        for path in &new {
            tally.add(&hit("a.example", 0, 404, path));
        }
        let taken = tally.take();
        let minute = &taken["a.example"][0];
        assert_eq!(minute.counts.requests, KEYS_PER_MINUTE as u64);
        assert_eq!(
            minute.top[top_index(TopKind::NotFound)].len(),
            KEYS_PER_MINUTE
        );
        assert!(minute.top[top_index(TopKind::NotFound)]
            .iter()
            .all(|(key, n)| key.starts_with("/new") && n == 1));
    }
}
