//! The local cache of file digests, so a redeploy reads only the files whose metadata
//! changed.
//!
//! Hashing a 10,000-file folder is 10,000 opens and reads; `stat`-ing it is a small part of
//! that. Like git's index, the cache keeps each file's SHA-256 with the metadata the file
//! had when it was read (size, mtime and ctime with nanoseconds, inode and device) and
//! trusts the digest only while all of them are the same.
//!
//! Where: `<cache dir>/hostctl/digests/<32 hex of the SHA-256 of the canonical folder path>`
//! (`$XDG_CACHE_HOME/hostctl/...` or `~/.cache/hostctl/...` on Linux), never inside the
//! deployed folder: it is never uploaded, and a read-only folder deploys as well.
//!
//! Racy entries: file times come from a clock that ticks coarsely (milliseconds, or whole
//! seconds on some filesystems), so a file written again within the tick its recorded
//! stamp came from, keeping its size, would look unchanged. Each cache therefore records
//! when its scan began, as the filesystem clock saw it (the mtime of its own temporary file,
//! created before the first `stat`), and an entry whose mtime or ctime is not strictly
//! older than that is re-hashed next time. This is git's "racily clean" rule, taken against
//! the scan's start instead of the cache's write time, which also covers a write landing
//! between our `stat` and our read. ctime counts as well as mtime because tools set mtime
//! back (`touch -d`, `cp -p`, unpacking an archive) and nothing sets ctime back. Stamps with
//! no sub-second part (a filesystem with whole-second or two-second times) must be two
//! seconds older. A network filesystem whose server clock lags this machine's is not
//! covered by the rule: deploy from it with `--no-cache`.
//!
//! Safety: a cache that does not parse, is of another format version or another folder,
//! or fails its checksum is ignored and rebuilt. It is written to a temporary file and
//! renamed into place, so a reader sees the old cache or the new one, never half of one.
//! It is not synced: a crash may lose it or leave it torn, which the checksum catches.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// The first bytes of a cache file, then its format version.
const MAGIC: &[u8; 16] = b"hostctl digests\n";
const VERSION: u32 = 1;
/// Caches of folders not deployed for this long are deleted when another cache is saved,
/// so a CI runner deploying a fresh checkout folder each time does not collect them.
const UNUSED_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// How much older than the scan a whole-second stamp must be to be trusted.
const WHOLE_SECOND_MARGIN: i64 = 2;

/// A file's metadata as far as "did it change?" goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    /// Seconds and nanoseconds since the Unix epoch.
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
    pub ino: u64,
    pub dev: u64,
}

impl Stamp {
    /// The stamp of `meta` (of what a link points to, when it came from `fs::metadata`).
    pub fn of(meta: &Metadata) -> Stamp {
        Stamp {
            size: meta.len(),
            mtime: (meta.mtime(), nanos(meta.mtime_nsec())),
            ctime: (meta.ctime(), nanos(meta.ctime_nsec())),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }

    /// Whether both times are older than `scan_start` by more than the clock's tick:
    /// then any later write gives the file another ctime.
    fn settled_before(&self, scan_start: (i64, u32)) -> bool {
        [self.mtime, self.ctime].iter().all(|&(secs, ns)| {
            if ns == 0 {
                secs + WHOLE_SECOND_MARGIN <= scan_start.0
            } else {
                (secs, ns) < scan_start
            }
        })
    }
}

fn nanos(ns: i64) -> u32 {
    u32::try_from(ns).unwrap_or(0)
}

/// One file's cached digest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    stamp: Stamp,
    sha256: [u8; 32],
}

/// The digests recorded by the previous deploy of one folder, and where this deploy's
/// go. An empty, unsaved cache (`--no-cache`, no cache directory) reads and writes
/// nothing.
#[derive(Debug, Default)]
pub struct DigestCache {
    /// The cache file; `None` when caching is off.
    file: Option<PathBuf>,
    /// The canonical folder, stored in the file and checked on loading.
    root: String,
    entries: HashMap<String, Entry>,
    /// Why an existing cache file was not used, if it was not.
    pub ignored: Option<Unusable>,
}

/// Why a cache file was not used (it is then rebuilt; the reason is shown by `--timings`).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    #[error("no cache file")]
    Missing,
    #[error("corrupt: {0}")]
    Corrupt(&'static str),
    #[error("format version {0}")]
    OtherVersion(u32),
    #[error("written for another folder")]
    OtherFolder,
}

impl DigestCache {
    /// Caching off: every file is read, nothing is saved.
    pub fn off() -> DigestCache {
        DigestCache::default()
    }

    /// The cache of folder `dir` under the user's cache directory, or caching off when
    /// there is none (no `$HOME`) or the folder has no canonical path.
    pub fn for_folder(dir: &Path) -> DigestCache {
        let (Some(base), Ok(root)) = (dirs::cache_dir(), dir.canonicalize()) else {
            return DigestCache::off();
        };
        DigestCache::open(&base.join("hostctl").join("digests"), &root)
    }

    /// The cache of canonical folder `root` kept in folder `store` (created on saving).
    pub fn open(store: &Path, root: &Path) -> DigestCache {
        let root = root.to_string_lossy().into_owned();
        let name = hex::encode(&Sha256::digest(root.as_bytes())[..16]);
        let mut cache = DigestCache {
            file: Some(store.join(name)),
            root,
            entries: HashMap::new(),
            ignored: None,
        };
        // Any reason not to use it means starting empty: the files are read again.
        match cache.load() {
            Ok(()) | Err(Unusable::Missing) => {}
            Err(reason) => cache.ignored = Some(reason),
        }
        cache
    }

    /// Whether a cache file is read and written at all.
    pub fn enabled(&self) -> bool {
        self.file.is_some()
    }

    /// How many entries were loaded (trusted or not).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing was loaded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads the cache file into `entries`, or says why it is not usable.
    pub fn load(&mut self) -> Result<(), Unusable> {
        self.entries.clear();
        let Some(file) = &self.file else {
            return Err(Unusable::Missing);
        };
        let bytes = fs::read(file).map_err(|_| Unusable::Missing)?;
        self.entries = parse(&bytes, &self.root)?;
        Ok(())
    }

    /// The cached digest (lower-case hex) of the file at `site_path`, when its stamp is
    /// the one recorded and was settled before the scan that recorded it.
    pub fn digest(&self, site_path: &str, stamp: &Stamp) -> Option<String> {
        self.entries
            .get(site_path)
            .filter(|entry| entry.stamp == *stamp)
            .map(|entry| hex::encode(entry.sha256))
    }

    /// Starts this deploy's cache: creates its temporary file now, so its mtime is the
    /// filesystem clock's reading before any file is looked at. `None` when caching is
    /// off or the cache folder cannot be written (the deploy goes on without a cache).
    pub fn begin(&self) -> Option<PendingCache> {
        let target = self.file.clone()?;
        let dir = target.parent()?;
        fs::create_dir_all(dir).ok()?;
        let temporary = target.with_extension(format!("tmp-{}", std::process::id()));
        let file = File::create(&temporary).ok()?;
        let modified = file.metadata().ok()?.modified().ok()?;
        let scan_start = epoch_parts(modified)?;
        Some(PendingCache {
            target,
            temporary,
            file,
            root: self.root.clone(),
            scan_start,
        })
    }
}

/// A cache being written: the scan's start time and the temporary file.
#[derive(Debug)]
pub struct PendingCache {
    target: PathBuf,
    temporary: PathBuf,
    file: File,
    root: String,
    scan_start: (i64, u32),
}

impl PendingCache {
    /// Writes `files` (site path, stamp, hex digest; stamps of files read while they
    /// changed are left out by the caller) and renames the file into place, then deletes
    /// caches of folders not deployed for a month.
    pub fn save<'a>(
        mut self,
        files: impl IntoIterator<Item = (&'a str, Stamp, &'a str)>,
    ) -> io::Result<()> {
        let mut body = Vec::new();
        body.extend_from_slice(MAGIC);
        body.extend_from_slice(&VERSION.to_le_bytes());
        put_bytes(&mut body, self.root.as_bytes());
        body.extend_from_slice(&self.scan_start.0.to_le_bytes());
        body.extend_from_slice(&self.scan_start.1.to_le_bytes());
        let mut count = 0u64;
        let mut rows = Vec::new();
        for (path, stamp, sha256) in files {
            let mut digest = [0u8; 32];
            if hex::decode_to_slice(sha256, &mut digest).is_err() {
                continue;
            }
            // Only an entry settled before this scan can be trusted by the next one;
            // the others are read again then anyway.
            if !stamp.settled_before(self.scan_start) {
                continue;
            }
            put_bytes(&mut rows, path.as_bytes());
            for n in [stamp.size, stamp.mtime.0 as u64, stamp.ctime.0 as u64] {
                rows.extend_from_slice(&n.to_le_bytes());
            }
            rows.extend_from_slice(&stamp.mtime.1.to_le_bytes());
            rows.extend_from_slice(&stamp.ctime.1.to_le_bytes());
            rows.extend_from_slice(&stamp.ino.to_le_bytes());
            rows.extend_from_slice(&stamp.dev.to_le_bytes());
            rows.extend_from_slice(&digest);
            count += 1;
        }
        body.extend_from_slice(&count.to_le_bytes());
        body.extend_from_slice(&rows);
        let checksum = Sha256::digest(&body);
        body.extend_from_slice(&checksum);
        let written = self
            .file
            .write_all(&body)
            .and_then(|()| fs::rename(&self.temporary, &self.target));
        if written.is_err() {
            let _ = fs::remove_file(&self.temporary);
        }
        written?;
        if let Some(dir) = self.target.parent() {
            prune(dir, &self.target);
        }
        Ok(())
    }

    /// Gives up: the temporary file is removed and the old cache stays.
    pub fn abandon(self) {
        let _ = fs::remove_file(&self.temporary);
    }
}

/// Deletes the caches in `dir` not written for [`UNUSED_FOR`], and temporary files of
/// runs that died; `keep` is the one just written. Best effort.
fn prune(dir: &Path, keep: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let path = entry.path();
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|modified| {
                now.duration_since(modified)
                    .is_ok_and(|age| age > UNUSED_FOR)
            });
        if stale && path != keep {
            let _ = fs::remove_file(path);
        }
    }
}

fn epoch_parts(time: SystemTime) -> Option<(i64, u32)> {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    Some((i64::try_from(since.as_secs()).ok()?, since.subsec_nanos()))
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Reads the little-endian fields of a cache file, failing on any short read.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Unusable> {
        if self.bytes.len() < n {
            return Err(Unusable::Corrupt("truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Unusable> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, Unusable> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Unusable> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn text(&mut self) -> Result<&'a str, Unusable> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| Unusable::Corrupt("not UTF-8"))
    }
}

/// The entries of a cache file of folder `root`.
fn parse(bytes: &[u8], root: &str) -> Result<HashMap<String, Entry>, Unusable> {
    let body_len = bytes
        .len()
        .checked_sub(32)
        .ok_or(Unusable::Corrupt("truncated"))?;
    let (body, checksum) = bytes.split_at(body_len);
    let mut reader = Reader { bytes: body };
    if reader.take(MAGIC.len())? != MAGIC {
        return Err(Unusable::Corrupt("not a digest cache"));
    }
    let version = reader.u32()?;
    if version != VERSION {
        return Err(Unusable::OtherVersion(version));
    }
    if Sha256::digest(body).as_slice() != checksum {
        return Err(Unusable::Corrupt("checksum mismatch"));
    }
    if reader.text()? != root {
        return Err(Unusable::OtherFolder);
    }
    let scan_start = (reader.u64()? as i64, reader.u32()?);
    let count = reader.u64()?;
    let mut entries = HashMap::with_capacity(usize::try_from(count).unwrap_or(0).min(1 << 20));
    for _ in 0..count {
        let path = reader.text()?.to_owned();
        let size = reader.u64()?;
        let mtime_secs = reader.u64()? as i64;
        let ctime_secs = reader.u64()? as i64;
        let stamp = Stamp {
            size,
            mtime: (mtime_secs, reader.u32()?),
            ctime: (ctime_secs, reader.u32()?),
            ino: reader.u64()?,
            dev: reader.u64()?,
        };
        let sha256 = reader.array()?;
        // Written only when settled, so this holds unless the file was edited by hand.
        if stamp.settled_before(scan_start) {
            entries.insert(path, Entry { stamp, sha256 });
        }
    }
    if !reader.bytes.is_empty() {
        return Err(Unusable::Corrupt("trailing bytes"));
    }
    Ok(entries)
}
