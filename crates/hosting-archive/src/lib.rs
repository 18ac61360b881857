//! Streaming validation of `.tar.gz` deploy archives (DESIGN.md section 3).
//!
//! [`read_tar_gz`] reads a gzip-compressed tar once, front to back, checks every entry
//! against the archive rules and [`Limits`] before any of its bytes are used, and hands
//! each regular file's bytes to a caller-supplied sink (the server streams them into the
//! content-addressed blob store). Nothing is ever unpacked onto disk, and the first
//! violation stops the stream.
//!
//! Module map: `stream` (gzip, metering, header budget), `headers` (PAX / GNU extension
//! checks against parser differentials), `path` (name rules), `names` (duplicates and
//! collisions), `limits` (limits and the running tally), `error`.

mod error;
mod headers;
mod limits;
mod names;
mod path;
mod stream;

use std::io::{self, Read};
use std::rc::Rc;

use tar::EntryType;

pub use error::{ArchiveError, ForbiddenKind, PathProblem};
pub use limits::Limits;
pub use names::Names;

/// Checks a site path as the digest route receives it (`/css/site.css`) against the same
/// rules as an archive entry's name, so both deploy routes accept exactly the same paths.
/// The path must already be in normal form: a leading `/`, no empty or `.` segment.
pub fn check_site_path(raw: &str) -> Result<(), PathProblem> {
    let rest = raw.strip_prefix('/').ok_or(PathProblem::Empty)?;
    match path::normalize(rest.as_bytes(), false)? {
        Some(normal) if normal == raw => Ok(()),
        _ => Err(PathProblem::NotNormal),
    }
}

use limits::Tally;
use stream::{Meter, TarStream};

/// One regular file of the archive, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveFile {
    /// Site path: leading '/', e.g. "/index.html", "/css/site.css".
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Whatever the sink returned for the file's bytes.
    pub digest: String,
}

/// The sink: `(path, size, reader) -> digest`.
type Sink<'a> = dyn FnMut(&str, u64, &mut dyn Read) -> io::Result<String> + 'a;

/// Reads a gzip-compressed tar from `input`, validates every entry against the rules and
/// `limits` as it streams, and calls `sink(path, size, reader)` for each regular file; the
/// sink reads the file's bytes (exactly `size` bytes are available) and returns a digest
/// string (e.g. hex sha256) or an io error. Returns the files in archive order. On any
/// error, returns Err immediately (the caller then publishes nothing).
///
/// The sink must read all `size` bytes; returning early is reported as a storage error,
/// since its digest would not cover the file.
pub fn read_tar_gz<R: std::io::Read>(
    input: R,
    limits: &Limits,
    sink: &mut dyn FnMut(&str, u64, &mut dyn std::io::Read) -> std::io::Result<String>,
) -> Result<Vec<ArchiveFile>, ArchiveError> {
    let meter = Rc::new(Meter::new(limits));
    let mut archive = tar::Archive::new(stream::open(input, Rc::clone(&meter))?);
    let files = walk(&mut archive, limits, &meter, sink)?;
    archive.into_inner().finish()?;
    if files.is_empty() {
        return Err(ArchiveError::Empty);
    }
    Ok(files)
}

/// What an accepted entry is.
#[derive(PartialEq)]
enum Kind {
    File,
    Directory,
}

/// Iterates the entries, validating each before its data is touched.
fn walk<R: Read>(
    archive: &mut tar::Archive<TarStream<R>>,
    limits: &Limits,
    meter: &Meter,
    sink: &mut Sink<'_>,
) -> Result<Vec<ArchiveFile>, ArchiveError> {
    let mut files = Vec::new();
    let mut names = Names::default();
    let mut tally = Tally::default();
    // The tar crate applies PAX and GNU long-name headers itself (never raw mode), so the
    // entry list is the one GNU tar sees; `headers::check` refuses where they could differ.
    let entries = archive.entries().map_err(|e| meter.classify(&e, None))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| meter.classify(&e, None))?;
        let entry_type = entry.header().entry_type();
        if entry_type.is_pax_global_extensions() {
            // Its blocks stay captured and are checked with the next entry's headers.
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let size = entry.size();
        let blocks = meter.take_headers();
        let data_end = entry
            .raw_file_position()
            .checked_add(size.div_ceil(512).saturating_mul(512))
            .ok_or_else(|| ArchiveError::Malformed {
                entry: Some(shown.clone()),
                reason: "size overflow".into(),
            })?;
        meter.entry_started(data_end, &shown);

        let kind = classify(entry_type).map_err(|kind| ArchiveError::ForbiddenType {
            entry: shown.clone(),
            kind,
        })?;
        headers::check(&blocks, &raw, size).map_err(|reason| ArchiveError::UnsupportedHeader {
            entry: Some(shown.clone()),
            reason,
        })?;
        let site_path = path::normalize(&raw, kind == Kind::Directory).map_err(|problem| {
            ArchiveError::InvalidPath {
                entry: shown.clone(),
                problem,
            }
        })?;
        let Some(site_path) = site_path else {
            continue; // the root directory entry, `./`
        };
        match kind {
            Kind::Directory => {
                // SECURITY: a directory's data would be skipped unread and unbounded by the
                // file limits; GNU tar would list it. Nothing legitimate writes it.
                if size != 0 {
                    let reason = format!("directory entry carries {size} bytes of data");
                    return Err(ArchiveError::Malformed {
                        entry: Some(site_path),
                        reason,
                    });
                }
                tally.add_directory(limits, &site_path)?;
                names.add_directory(&site_path)?;
            }
            Kind::File => {
                names.add_file(&site_path)?;
                tally.add_file(limits, &site_path, size)?;
                let digest = feed(&mut entry, &site_path, size, meter, sink)?;
                files.push(ArchiveFile {
                    path: site_path,
                    size,
                    digest,
                });
            }
        }
    }
    Ok(files)
}

/// Accepts regular files and directories, names everything else.
fn classify(entry_type: EntryType) -> Result<Kind, ForbiddenKind> {
    // SECURITY: links are the tar-slip vehicle (RUSTSEC-2018-0002, CVE-2021-38511,
    // CVE-2026-33056) and devices/FIFOs are never site content (PEP 706 `data` filter).
    match entry_type {
        EntryType::Regular => Ok(Kind::File),
        EntryType::Directory => Ok(Kind::Directory),
        EntryType::Symlink => Err(ForbiddenKind::SymbolicLink),
        EntryType::Link => Err(ForbiddenKind::HardLink),
        EntryType::Char => Err(ForbiddenKind::CharacterDevice),
        EntryType::Block => Err(ForbiddenKind::BlockDevice),
        EntryType::Fifo => Err(ForbiddenKind::Fifo),
        EntryType::GNUSparse => Err(ForbiddenKind::Sparse),
        EntryType::Continuous => Err(ForbiddenKind::Contiguous),
        other => Err(ForbiddenKind::Other(other.as_byte())),
    }
}

/// Gives the sink exactly `size` bytes of the entry and returns its digest.
fn feed(
    entry: &mut dyn Read,
    path: &str,
    size: u64,
    meter: &Meter,
    sink: &mut Sink<'_>,
) -> Result<String, ArchiveError> {
    let mut exact = Exact {
        inner: entry,
        remaining: size,
        meter,
        path,
    };
    let result = sink(path, size, &mut exact);
    let remaining = exact.remaining;
    // SECURITY: an archive failure met while the sink read (limit, corrupt gzip,
    // truncation) wins over whatever the sink made of it: the client's fault is not a
    // storage failure, and a sink that swallowed the error must not yield a digest.
    if let Some(failure) = meter.take_failure() {
        return Err(failure);
    }
    let digest = result.map_err(|source| ArchiveError::Storage {
        entry: path.to_owned(),
        source,
    })?;
    if remaining != 0 {
        let read = size - remaining;
        let source = io::Error::other(format!(
            "the sink returned after reading {read} of {size} bytes"
        ));
        return Err(ArchiveError::Storage {
            entry: path.to_owned(),
            source,
        });
    }
    Ok(digest)
}

/// The sink's view of one file: exactly `size` bytes, or an error.
struct Exact<'a> {
    inner: &'a mut dyn Read,
    remaining: u64,
    meter: &'a Meter,
    path: &'a str,
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()));
        let n = self.inner.read(&mut buf[..want])?;
        // SECURITY: the tar crate reports a short entry as a normal end of file; without
        // this the sink would store a truncated file under a digest of its own.
        if n == 0 {
            return Err(self.meter.fail(ArchiveError::Truncated {
                entry: Some(self.path.to_owned()),
            }));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}
