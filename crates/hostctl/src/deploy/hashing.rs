//! Hashing a folder's files through the digest cache (`cache.rs`): start the cache (its
//! scan time), take the digests it vouches for, read the rest, save it for the next deploy.

use std::io;

use indicatif::ProgressBar;

use super::cache::DigestCache;
use super::walk::{hash_all_with, FoundFile, Hashed, HashedFile, WalkError};

/// What became of the digest cache.
#[derive(Debug)]
pub enum CacheSaved {
    /// Caching is off (`--no-cache`, no cache directory).
    Off,
    Saved,
    /// The cache folder or file could not be written: the deploy goes on, and the next one
    /// reads every file again.
    Failed(io::Error),
}

/// Hashes `found` (see [`hash_all`](super::walk::hash_all)) with `cache`, then saves the digests for the next
/// deploy of the folder, unless hashing failed.
pub fn hash_folder(
    found: Vec<FoundFile>,
    threads: usize,
    progress: &ProgressBar,
    cache: &DigestCache,
) -> Result<(Hashed, CacheSaved), WalkError> {
    hash_folder_with(found, threads, progress, cache, &|_| {})
}

/// [`hash_folder`], calling `on_read` with each file read as it is hashed (see
/// [`hash_all_with`]).
pub fn hash_folder_with(
    found: Vec<FoundFile>,
    threads: usize,
    progress: &ProgressBar,
    cache: &DigestCache,
    on_read: &(dyn Fn(&HashedFile) + Sync),
) -> Result<(Hashed, CacheSaved), WalkError> {
    if !cache.enabled() {
        let hashed = hash_all_with(found, threads, progress, cache, on_read)?;
        return Ok((hashed, CacheSaved::Off));
    }
    // Begun before any file is looked at: its time is the scan's start.
    let Some(pending) = cache.begin() else {
        let hashed = hash_all_with(found, threads, progress, cache, on_read)?;
        let why = io::Error::other("the cache folder cannot be written");
        return Ok((hashed, CacheSaved::Failed(why)));
    };
    let hashed = match hash_all_with(found, threads, progress, cache, on_read) {
        Ok(hashed) => hashed,
        Err(e) => {
            pending.abandon();
            return Err(e);
        }
    };
    let entries = hashed
        .files
        .iter()
        .zip(&hashed.stamps)
        .filter_map(|(file, stamp)| {
            Some((file.site_path.as_str(), (*stamp)?, file.sha256.as_str()))
        });
    let saved = match pending.save(entries) {
        Ok(()) => CacheSaved::Saved,
        Err(e) => CacheSaved::Failed(e),
    };
    Ok((hashed, saved))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, SystemTime};

    use sha2::{Digest, Sha256};

    use super::*;
    use crate::deploy::cache::Unusable;
    use crate::deploy::walk::{hash_all, walk};

    /// A site folder and a cache folder, both temporary.
    struct Fixture {
        site: tempfile::TempDir,
        store: tempfile::TempDir,
    }

    impl Fixture {
        fn new(files: &[(&str, &str)]) -> Fixture {
            let fixture = Fixture {
                site: tempfile::tempdir().expect("tempdir"),
                store: tempfile::tempdir().expect("tempdir"),
            };
            for (path, contents) in files {
                fixture.write(path, contents);
            }
            fixture
        }

        fn path(&self, relative: &str) -> PathBuf {
            self.site.path().join(relative)
        }

        fn write(&self, relative: &str, contents: &str) {
            let path = self.path(relative);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, contents).expect("write");
        }

        fn cache(&self) -> DigestCache {
            let root = self.site.path().canonicalize().expect("canonical");
            DigestCache::open(self.store.path(), &root)
        }

        /// One deploy's hashing: the digests by site path and how many files were read.
        fn hash(&self) -> (Vec<(String, String)>, usize) {
            let cache = self.cache();
            let found = walk(self.site.path()).expect("walk");
            let (hashed, saved) =
                hash_folder(found, 2, &ProgressBar::hidden(), &cache).expect("hash");
            assert!(matches!(saved, CacheSaved::Saved), "{saved:?}");
            let digests = hashed
                .files
                .into_iter()
                .map(|f| (f.site_path, f.sha256))
                .collect();
            (digests, hashed.read)
        }

        /// Waits until the filesystem clock has moved past every file's ctime, so the next
        /// scan starts after them (the cache trusts only files settled before its scan).
        fn settle(&self) {
            let newest = walk(self.site.path())
                .expect("walk")
                .iter()
                .map(|f| ctime(&f.disk_path))
                .max()
                .expect("files");
            let probe = self.store.path().join("clock-probe");
            while {
                fs::write(&probe, "").expect("probe");
                ctime(&probe) <= newest
            } {
                std::thread::sleep(Duration::from_millis(1));
            }
        }

        /// The cache file (the one file in the cache folder besides the probe).
        fn cache_file(&self) -> PathBuf {
            fs::read_dir(self.store.path())
                .expect("store")
                .map(|e| e.expect("entry").path())
                .find(|p| !p.ends_with("clock-probe"))
                .expect("a cache file")
        }
    }

    fn ctime(path: &Path) -> (i64, i64) {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(path).expect("stat");
        (meta.ctime(), meta.ctime_nsec())
    }

    fn sha_hex(text: &str) -> String {
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    fn digest_of(digests: &[(String, String)], path: &str) -> String {
        digests
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, d)| d.clone())
            .expect("present")
    }

    /// Sets `relative`'s mtime back to `to`, as `touch -d` or `cp -p` would.
    fn set_mtime(fixture: &Fixture, relative: &str, to: SystemTime) {
        let file = fs::File::options()
            .write(true)
            .open(fixture.path(relative))
            .expect("open");
        file.set_modified(to).expect("set mtime");
    }

    fn mtime(fixture: &Fixture, relative: &str) -> SystemTime {
        fs::metadata(fixture.path(relative))
            .and_then(|m| m.modified())
            .expect("mtime")
    }

    #[test]
    fn a_redeploy_reads_only_the_file_that_changed() {
        let f = Fixture::new(&[
            ("index.html", "home"),
            ("a/b.html", "bee"),
            ("c.css", "x{}"),
        ]);
        f.settle();
        let (first, read) = f.hash();
        assert_eq!(read, 3);
        f.settle();
        assert_eq!(
            f.hash(),
            (first.clone(), 0),
            "nothing changed, nothing read"
        );

        f.write("a/b.html", "bee, longer");
        let (second, read) = f.hash();
        assert_eq!(read, 1);
        assert_eq!(digest_of(&second, "/a/b.html"), sha_hex("bee, longer"));
        assert_eq!(digest_of(&second, "/index.html"), sha_hex("home"));
    }

    #[test]
    fn same_size_and_mtime_forced_back_is_still_caught_by_the_ctime() {
        let f = Fixture::new(&[("index.html", "aaaa"), ("other.html", "o")]);
        f.settle();
        let old_mtime = mtime(&f, "index.html");
        f.hash();
        f.settle();

        // Same size, same inode, mtime put back: only the ctime tells.
        fs::write(f.path("index.html"), "bbbb").expect("write");
        set_mtime(&f, "index.html", old_mtime);
        assert_eq!(mtime(&f, "index.html"), old_mtime);

        let (digests, read) = f.hash();
        assert_eq!(read, 1);
        assert_eq!(digest_of(&digests, "/index.html"), sha_hex("bbbb"));
    }

    #[test]
    fn a_file_replaced_by_rename_with_same_size_and_mtime_is_caught() {
        let f = Fixture::new(&[("index.html", "aaaa")]);
        f.settle();
        let old_mtime = mtime(&f, "index.html");
        f.hash();
        f.settle();

        // What editors and build tools do: write a new file, rename it over the old one.
        f.write("index.html.new", "cccc");
        fs::rename(f.path("index.html.new"), f.path("index.html")).expect("rename");
        set_mtime(&f, "index.html", old_mtime);

        let (digests, read) = f.hash();
        assert_eq!(read, 1);
        assert_eq!(digest_of(&digests, "/index.html"), sha_hex("cccc"));
    }

    #[test]
    fn a_file_written_after_the_scan_began_is_read_again_next_time() {
        let f = Fixture::new(&[("index.html", "one")]);
        f.settle();
        f.hash();
        // Not settled: written in the same clock tick as the coming scan may start.
        let cache = f.cache();
        let pending = cache.begin().expect("writable");
        fs::write(f.path("index.html"), "two").expect("write");
        let found = walk(f.site.path()).expect("walk");
        let hashed = hash_all(found, 1, &ProgressBar::hidden(), &cache).expect("hash");
        assert_eq!(hashed.read, 1);
        let entries = hashed
            .files
            .iter()
            .zip(&hashed.stamps)
            .filter_map(|(file, stamp)| {
                Some((file.site_path.as_str(), (*stamp)?, file.sha256.as_str()))
            });
        pending.save(entries).expect("save");

        // Its entry was not kept: whatever happened within that tick, it is read again.
        assert!(f.cache().is_empty());
        let (digests, read) = f.hash();
        assert_eq!(read, 1);
        assert_eq!(digest_of(&digests, "/index.html"), sha_hex("two"));
    }

    #[test]
    fn a_corrupt_cache_is_ignored_and_rebuilt() {
        let f = Fixture::new(&[("index.html", "home"), ("about.html", "about")]);
        f.settle();
        f.hash();
        let file = f.cache_file();
        let mut bytes = fs::read(&file).expect("read");
        // Flip a bit inside the entries: a digest or stamp that is no longer what was written.
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        fs::write(&file, &bytes).expect("write");

        let cache = f.cache();
        assert_eq!(cache.ignored, Some(Unusable::Corrupt("checksum mismatch")));
        assert!(cache.is_empty());
        let (digests, read) = f.hash();
        assert_eq!(read, 2);
        assert_eq!(digest_of(&digests, "/about.html"), sha_hex("about"));

        // Rebuilt: the next deploy trusts it again.
        f.settle();
        assert_eq!(f.hash().1, 0);
    }

    #[test]
    fn a_truncated_or_foreign_cache_is_ignored() {
        let f = Fixture::new(&[("index.html", "home")]);
        f.settle();
        f.hash();
        let file = f.cache_file();
        let bytes = fs::read(&file).expect("read");

        fs::write(&file, &bytes[..bytes.len() - 7]).expect("truncate");
        assert!(matches!(f.cache().ignored, Some(Unusable::Corrupt(_))));

        // Another format version (the four bytes after the magic).
        let mut other = bytes.clone();
        other[16] = 9;
        fs::write(&file, &other).expect("write");
        assert_eq!(f.cache().ignored, Some(Unusable::OtherVersion(9)));

        fs::write(&file, b"garbage").expect("write");
        assert!(matches!(f.cache().ignored, Some(Unusable::Corrupt(_))));
        assert_eq!(f.hash().1, 1);
    }

    #[test]
    fn the_cache_lives_outside_the_folder_and_off_reads_every_file() {
        let f = Fixture::new(&[("index.html", "home")]);
        f.settle();
        f.hash();
        let listed: Vec<_> = fs::read_dir(f.site.path()).expect("site").collect();
        assert_eq!(listed.len(), 1, "only index.html in the deployed folder");
        f.settle();

        for _ in 0..2 {
            let found = walk(f.site.path()).expect("walk");
            let (hashed, saved) =
                hash_folder(found, 1, &ProgressBar::hidden(), &DigestCache::off()).expect("hash");
            assert!(matches!(saved, CacheSaved::Off));
            assert_eq!(hashed.read, 1);
        }
        assert_eq!(f.hash().1, 0, "the cache itself still vouches for the file");
    }
}
