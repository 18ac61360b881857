//! Turning a folder into the list of files a deploy publishes: which files count,
//! their site paths, and their SHA-256 digests (hashed in parallel, streamed from disk).
//!
//! Symbolic links are followed while they stay inside the folder (a link is deployed as
//! the file or folder it points to, as Netlify's CLI does) and refused when they leave
//! it, since a link to `~/.ssh` would otherwise publish it.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;

use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use walkdir::{DirEntry, WalkDir};

use super::cache::{DigestCache, Stamp};

/// Why a folder cannot be deployed as it is.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(
        "{} is a symbolic link to {}, outside {}: only links that stay inside the folder are deployed",
        path.display(), target.display(), root.display()
    )]
    LinkOutside {
        root: PathBuf,
        path: PathBuf,
        target: PathBuf,
    },
    #[error("{} is a symbolic link back to a folder above it (a loop)", path.display())]
    LinkLoop { path: PathBuf },
    #[error("{} is not a regular file or directory", path.display())]
    NotRegular { path: PathBuf },
    #[error("{} has a name that is not valid UTF-8", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("{} has no files to deploy", root.display())]
    Empty { root: PathBuf },
    #[error("cannot read {}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// A file found on disk, before hashing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFile {
    /// Path on the site, `/`-separated and starting with `/`, e.g. `/css/site.css`.
    pub site_path: String,
    /// Where to read it from.
    pub disk_path: PathBuf,
}

/// A file with its digest and the number of bytes that digest covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedFile {
    pub site_path: String,
    pub disk_path: PathBuf,
    /// Lower-case hex SHA-256 of the contents.
    pub sha256: String,
    pub size: u64,
}

/// Dot-files and dot-folders are left out (`.git`, `.DS_Store`, editor swap files) because
/// publishing them by accident leaks source history or secrets; `.well-known` is kept
/// because ACME, `security.txt` and app links need it on the web.
fn is_hidden(entry: &DirEntry) -> bool {
    entry
        .file_name()
        .to_str()
        .is_some_and(|name| name.starts_with('.') && name != ".well-known")
}

/// `dir/a/b.html` under `dir` -> `/a/b.html`.
fn site_path(root: &Path, path: &Path) -> Result<String, WalkError> {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let mut site = String::new();
    for component in relative.components() {
        let Component::Normal(name) = component else {
            continue;
        };
        let name = name.to_str().ok_or_else(|| WalkError::NotUtf8 {
            path: path.to_owned(),
        })?;
        site.push('/');
        site.push_str(name);
    }
    Ok(site)
}

/// Lists the files under `root` in a stable order, following links that stay inside it
/// and refusing links that leave it and special files.
pub fn walk(root: &Path) -> Result<Vec<FoundFile>, WalkError> {
    let io_err = |path: &Path, source| WalkError::Io {
        path: path.to_owned(),
        source,
    };
    let inside = root.canonicalize().map_err(|e| io_err(root, e))?;
    let mut files = Vec::new();
    let entries = WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        // Depth 0 is `root` itself, which may be called `.` or `./.out` and is never skipped.
        .filter_entry(|entry| entry.depth() == 0 || !is_hidden(entry));
    for entry in entries {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(root).to_owned();
            if e.loop_ancestor().is_some() {
                return WalkError::LinkLoop { path };
            }
            WalkError::Io {
                path,
                source: e.into(),
            }
        })?;
        // Checked before a linked folder is entered: walkdir yields it before its contents.
        if entry.depth() > 0 && entry.path_is_symlink() {
            let target = entry
                .path()
                .canonicalize()
                .map_err(|e| io_err(entry.path(), e))?;
            if !target.starts_with(&inside) {
                return Err(WalkError::LinkOutside {
                    root: root.to_owned(),
                    path: entry.into_path(),
                    target,
                });
            }
        }
        // With links followed, this is the type of what a link points to.
        let file_type = entry.file_type();
        if file_type.is_dir() {
            continue;
        }
        if !file_type.is_file() {
            return Err(WalkError::NotRegular {
                path: entry.into_path(),
            });
        }
        let site_path = site_path(root, entry.path())?;
        files.push(FoundFile {
            site_path,
            disk_path: entry.into_path(),
        });
    }
    if files.is_empty() {
        return Err(WalkError::Empty {
            root: root.to_owned(),
        });
    }
    Ok(files)
}

/// SHA-256 of a file, read in chunks so a large file never sits in memory whole.
pub fn hash_file(path: &Path) -> Result<(String, u64), WalkError> {
    let io_err = |source| WalkError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    hash_open(&mut file, &mut vec![0u8; HASH_BUFFER]).map_err(io_err)
}

/// Bytes read at a time while hashing.
const HASH_BUFFER: usize = 64 * 1024;

/// The SHA-256 and length of what is left to read of `file`, read through `buffer`, so a
/// thread hashing many files allocates (and zeroes) one buffer, not one per file.
fn hash_open(file: &mut File, buffer: &mut [u8]) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let read = match file.read(buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// A folder's files with their digests, and what the digest cache needs to be saved.
#[derive(Debug)]
pub struct Hashed {
    /// In the order the files were given.
    pub files: Vec<HashedFile>,
    /// Each file's stamp, when its digest may be cached: `None` with caching off, or when
    /// the file changed while it was read.
    pub stamps: Vec<Option<Stamp>>,
    /// How many files were opened and read (the others' digests came from the cache).
    pub read: usize,
}

/// One file's digest: from `cache` when its stamp is the one cached, else read.
fn hash_one(
    file: &FoundFile,
    cache: &DigestCache,
    buffer: &mut [u8],
) -> Result<(HashedFile, Option<Stamp>, bool), WalkError> {
    let io_err = |source| WalkError::Io {
        path: file.disk_path.clone(),
        source,
    };
    let hashed = |sha256, size| HashedFile {
        site_path: file.site_path.clone(),
        disk_path: file.disk_path.clone(),
        sha256,
        size,
    };
    if cache.enabled() {
        // Follows links, like the walk: the stamp is of the file a link points to.
        let stamp = Stamp::of(&fs::metadata(&file.disk_path).map_err(io_err)?);
        if let Some(sha256) = cache.digest(&file.site_path, &stamp) {
            return Ok((hashed(sha256, stamp.size), Some(stamp), false));
        }
    }
    let mut open = File::open(&file.disk_path).map_err(io_err)?;
    let before = match cache.enabled() {
        true => Some(Stamp::of(&open.metadata().map_err(io_err)?)),
        false => None,
    };
    let (sha256, size) = hash_open(&mut open, buffer).map_err(io_err)?;
    // A file written while it was read keeps no cache entry: its stamp may not match
    // the bytes hashed.
    let stamp = before.filter(|before| {
        before.size == size
            && open
                .metadata()
                .is_ok_and(|after| Stamp::of(&after) == *before)
    });
    Ok((hashed(sha256, size), stamp, true))
}

/// Hashes `files` on up to `threads` OS threads, taking the digests `cache` still vouches
/// for and reading the rest, counting each into `progress`; the result keeps the input
/// order.
pub fn hash_all(
    files: Vec<FoundFile>,
    threads: usize,
    progress: &ProgressBar,
    cache: &DigestCache,
) -> Result<Hashed, WalkError> {
    hash_all_with(files, threads, progress, cache, &|_| {})
}

/// [`hash_all`], calling `on_read` with each file read (not taken from the cache) as
/// soon as it is hashed, from the hashing thread: the early upload starts on those while
/// the rest of the folder is hashed.
pub fn hash_all_with(
    files: Vec<FoundFile>,
    threads: usize,
    progress: &ProgressBar,
    cache: &DigestCache,
    on_read: &(dyn Fn(&HashedFile) + Sync),
) -> Result<Hashed, WalkError> {
    let threads = threads.clamp(1, files.len().max(1));
    let next = AtomicUsize::new(0);
    type Slot = Mutex<Option<Result<(HashedFile, Option<Stamp>, bool), WalkError>>>;
    let results: Vec<Slot> = files.iter().map(|_| Mutex::new(None)).collect();
    thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut buffer = vec![0u8; HASH_BUFFER];
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(index) else {
                        break;
                    };
                    let hashed = hash_one(file, cache, &mut buffer);
                    if let Ok((file, _, true)) = &hashed {
                        on_read(file);
                    }
                    if let Ok(mut slot) = results[index].lock() {
                        *slot = Some(hashed);
                    }
                    progress.inc(1);
                }
            });
        }
    });
    let mut out = Hashed {
        files: Vec::with_capacity(files.len()),
        stamps: Vec::with_capacity(files.len()),
        read: 0,
    };
    for (slot, file) in results.into_iter().zip(&files) {
        // A slot is only empty if its worker panicked, which poisons the mutex.
        let (hashed, stamp, read) = slot.into_inner().ok().flatten().unwrap_or_else(|| {
            Err(WalkError::Io {
                path: file.disk_path.clone(),
                source: io::Error::other("hashing thread failed"),
            })
        })?;
        out.files.push(hashed);
        out.stamps.push(stamp);
        out.read += usize::from(read);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn write(root: &Path, relative: &str, contents: &str) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, contents).expect("write");
    }

    fn site_paths(root: &Path) -> Vec<String> {
        walk(root)
            .expect("walk")
            .into_iter()
            .map(|f| f.site_path)
            .collect()
    }

    #[test]
    fn nested_files_get_slash_separated_site_paths_in_stable_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "index.html", "home");
        write(dir.path(), "css/site.css", "body{}");
        write(dir.path(), "blog/2024/post.html", "post");
        assert_eq!(
            site_paths(dir.path()),
            ["/blog/2024/post.html", "/css/site.css", "/index.html"]
        );
    }

    #[test]
    fn hidden_files_and_folders_are_skipped_but_well_known_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "index.html", "home");
        write(dir.path(), ".env", "SECRET=1");
        write(dir.path(), ".git/config", "[core]");
        write(dir.path(), "img/.DS_Store", "junk");
        write(dir.path(), ".well-known/security.txt", "Contact: x");
        write(dir.path(), ".well-known/.hidden", "no");
        assert_eq!(
            site_paths(dir.path()),
            ["/.well-known/security.txt", "/index.html"]
        );
    }

    #[test]
    fn a_root_given_with_a_dot_name_is_still_walked() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), ".out/index.html", "home");
        assert_eq!(site_paths(&dir.path().join(".out")), ["/index.html"]);
    }

    #[test]
    fn a_link_leaving_the_folder_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        write(outside.path(), "secret.txt", "secret");
        write(dir.path(), "index.html", "home");
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.path().join("s"))
            .expect("symlink");
        let err = walk(dir.path()).expect_err("refused");
        assert!(matches!(err, WalkError::LinkOutside { .. }));
        assert!(err.to_string().contains("secret.txt"), "{err}");
    }

    #[test]
    fn a_linked_folder_outside_is_refused_before_it_is_entered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        write(outside.path(), "a.txt", "a");
        write(dir.path(), "index.html", "home");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("ext")).expect("symlink");
        assert!(matches!(
            walk(dir.path()),
            Err(WalkError::LinkOutside { .. })
        ));
    }

    #[test]
    fn links_inside_the_folder_are_deployed_as_what_they_point_to() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "real/page.html", "page");
        std::os::unix::fs::symlink("real/page.html", dir.path().join("index.html"))
            .expect("symlink");
        std::os::unix::fs::symlink("real", dir.path().join("alias")).expect("symlink");
        assert_eq!(
            site_paths(dir.path()),
            ["/alias/page.html", "/index.html", "/real/page.html"]
        );
    }

    #[test]
    fn a_link_loop_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "index.html", "home");
        std::fs::create_dir(dir.path().join("d")).expect("mkdir");
        std::os::unix::fs::symlink("..", dir.path().join("d/up")).expect("symlink");
        assert!(matches!(walk(dir.path()), Err(WalkError::LinkLoop { .. })));
    }

    #[test]
    fn an_empty_folder_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), ".gitignore", "x");
        assert!(matches!(walk(dir.path()), Err(WalkError::Empty { .. })));
    }

    #[test]
    fn a_non_utf8_name_is_refused() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let name = std::ffi::OsStr::from_bytes(b"bad\xff.html");
        // Some filesystems refuse such names outright; then there is nothing to test.
        if fs::write(dir.path().join(name), "x").is_ok() {
            assert!(matches!(walk(dir.path()), Err(WalkError::NotUtf8 { .. })));
        }
    }

    #[test]
    fn files_hash_to_their_sha256_and_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "abc.txt", "abc");
        write(dir.path(), "empty.txt", "");
        let big = "x".repeat(200 * 1024 + 7);
        write(dir.path(), "big.txt", &big);

        let hashed = hash_all(
            walk(dir.path()).expect("walk"),
            3,
            &ProgressBar::hidden(),
            &DigestCache::off(),
        )
        .expect("hash")
        .files;

        let by_path = |p: &str| {
            hashed
                .iter()
                .find(|f| f.site_path == p)
                .expect("present")
                .clone()
        };
        assert_eq!(
            by_path("/abc.txt").sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(by_path("/abc.txt").size, 3);
        assert_eq!(
            by_path("/empty.txt").sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            by_path("/big.txt").sha256,
            hex::encode(Sha256::digest(big.as_bytes()))
        );
        assert_eq!(by_path("/big.txt").size, big.len() as u64);
        assert_eq!(
            hashed
                .iter()
                .map(|f| f.site_path.as_str())
                .collect::<Vec<_>>(),
            ["/abc.txt", "/big.txt", "/empty.txt"]
        );
    }

    #[test]
    fn a_missing_file_is_a_hashing_error_naming_it() {
        let missing = FoundFile {
            site_path: "/gone".into(),
            disk_path: PathBuf::from("/nonexistent/gone"),
        };
        let err = hash_all(
            vec![missing],
            4,
            &ProgressBar::hidden(),
            &DigestCache::off(),
        )
        .expect_err("fails");
        assert!(err.to_string().contains("/nonexistent/gone"));
    }
}
