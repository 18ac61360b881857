//! The one error type of the crate, with the classification the server maps to HTTP
//! statuses: client errors (400, or 413 for limits) versus storage failures (5xx).

use std::fmt;
use std::io;

/// Why an archive was refused, or why storing one of its files failed.
///
/// Display strings name the entry (`entry "../etc/passwd": path escapes the archive
/// root`) so the server can put them in a problem+json `detail` as they are. Entry names
/// are shown as written in the archive (lossily decoded when they are not UTF-8) until
/// they are normalized; errors found after normalization show the site path (`/a.html`).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The body does not start with the gzip magic bytes.
    #[error("not a gzip stream (expected a .tar.gz body)")]
    NotGzip,
    /// Reading the request body failed.
    #[error("reading the archive failed: {reason}")]
    Input {
        /// The I/O error, as text.
        reason: String,
    },
    /// The gzip stream is truncated, fails its CRC/length check, or is not valid deflate.
    #[error("corrupt gzip stream: {reason}")]
    CorruptGzip {
        /// What the decoder reported.
        reason: String,
    },
    /// Bytes follow the gzip member (a second member or garbage).
    #[error("unexpected data after the end of the gzip stream (only one gzip member is accepted)")]
    TrailingData,
    /// Non-zero bytes, or too much padding, follow the tar end-of-archive marker.
    #[error("unexpected data after the tar end-of-archive marker")]
    DataAfterEnd,
    /// The tar stream itself is invalid (bad checksum, bad number, dangling extension).
    #[error("{}malformed tar stream: {reason}", EntryPrefix(.entry.as_deref()))]
    Malformed {
        /// The entry, when the parser got far enough to name one.
        entry: Option<String>,
        /// What was wrong.
        reason: String,
    },
    /// The tar stream ends in the middle of a header or of an entry's data.
    #[error("{}the archive is truncated", EntryPrefix(.entry.as_deref()))]
    Truncated {
        /// The entry being read when the data ran out, if any.
        entry: Option<String>,
    },
    /// An entry type other than regular file or directory.
    #[error("entry {entry:?}: {kind} are not allowed (only regular files and directories)")]
    ForbiddenType {
        /// The entry.
        entry: String,
        /// What kind of entry it is.
        kind: ForbiddenKind,
    },
    /// A path that breaks the naming rules.
    #[error("entry {entry:?}: {problem}")]
    InvalidPath {
        /// The entry, as written in the archive.
        entry: String,
        /// Which rule it breaks.
        problem: PathProblem,
    },
    /// PAX / GNU extension headers that other tar implementations would read differently.
    #[error("{}unsupported extended header: {reason}", EntryPrefix(.entry.as_deref()))]
    UnsupportedHeader {
        /// The entry the headers describe.
        entry: Option<String>,
        /// What was refused.
        reason: String,
    },
    /// The same path twice.
    #[error("entry {entry:?}: duplicate path")]
    DuplicatePath {
        /// The site path.
        entry: String,
    },
    /// Two paths equal after lower-casing and Unicode NFC normalization.
    #[error("entry {entry:?}: collides with {other:?} (paths may not differ only in case or Unicode normalization)")]
    CollidingPath {
        /// The later site path.
        entry: String,
        /// The earlier site path it collides with.
        other: String,
    },
    /// A path used both as a file and as a directory.
    #[error(
        "entry {entry:?}: conflicts with {other:?} (a path cannot be both a file and a directory)"
    )]
    FileDirectoryConflict {
        /// The later site path.
        entry: String,
        /// The earlier file or directory it conflicts with.
        other: String,
    },
    /// More regular files than `Limits::max_files`.
    #[error("entry {entry:?}: the archive has more than {limit} files")]
    TooManyFiles {
        /// The first file over the limit.
        entry: String,
        /// The limit.
        limit: u64,
    },
    /// More directory entries than `Limits::max_files`.
    #[error("entry {entry:?}: the archive has more than {limit} directory entries")]
    TooManyDirectories {
        /// The first directory over the limit.
        entry: String,
        /// The limit.
        limit: u64,
    },
    /// One file larger than `Limits::max_file_bytes`.
    #[error("entry {entry:?}: file is {size} bytes, over the limit of {limit} bytes per file")]
    FileTooLarge {
        /// The site path.
        entry: String,
        /// The size its header declares.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Files adding up to more than `Limits::max_total_bytes`.
    #[error("entry {entry:?}: files add up to more than the limit of {limit} bytes per archive")]
    TotalTooLarge {
        /// The first file that pushes the sum over the limit.
        entry: String,
        /// The limit.
        limit: u64,
    },
    /// One entry's headers (PAX / GNU long-name extensions included) over the limit.
    #[error("the headers of the entry {} are larger than {limit} bytes", After(.after.as_deref()))]
    HeaderTooLarge {
        /// The entry before the oversized headers (their own name is in what was refused).
        after: Option<String>,
        /// The limit.
        limit: u64,
    },
    /// Decompressed bytes outgrew `Limits::max_expansion_ratio` times the compressed ones.
    #[error("the archive expands more than {limit} times when decompressed (decompression bomb)")]
    ExpansionRatio {
        /// The limit.
        limit: u64,
    },
    /// No regular file at all.
    #[error("archive contains no files")]
    Empty,
    /// The sink (server storage) failed; not the client's fault.
    #[error("entry {entry:?}: storing the file failed: {source}")]
    Storage {
        /// The site path.
        entry: String,
        /// What the sink returned.
        #[source]
        source: io::Error,
    },
}

impl ArchiveError {
    /// The archive entry the error is about, when there is one (for the problem+json detail).
    pub fn entry(&self) -> Option<&str> {
        match self {
            Self::Malformed { entry, .. }
            | Self::Truncated { entry }
            | Self::UnsupportedHeader { entry, .. } => entry.as_deref(),
            Self::ForbiddenType { entry, .. }
            | Self::InvalidPath { entry, .. }
            | Self::DuplicatePath { entry }
            | Self::CollidingPath { entry, .. }
            | Self::FileDirectoryConflict { entry, .. }
            | Self::TooManyFiles { entry, .. }
            | Self::TooManyDirectories { entry, .. }
            | Self::FileTooLarge { entry, .. }
            | Self::TotalTooLarge { entry, .. }
            | Self::Storage { entry, .. } => Some(entry),
            Self::NotGzip
            | Self::Input { .. }
            | Self::CorruptGzip { .. }
            | Self::TrailingData
            | Self::DataAfterEnd
            | Self::HeaderTooLarge { .. }
            | Self::ExpansionRatio { .. }
            | Self::Empty => None,
        }
    }

    /// true when the client sent a bad archive (-> HTTP 4xx: 400 or 413), false when the
    /// sink (server storage) failed (-> 5xx).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Self::Storage { .. })
    }

    /// true when a limit was exceeded (-> HTTP 413).
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            Self::TooManyFiles { .. }
                | Self::TooManyDirectories { .. }
                | Self::FileTooLarge { .. }
                | Self::TotalTooLarge { .. }
                | Self::HeaderTooLarge { .. }
                | Self::ExpansionRatio { .. }
        )
    }
}

/// Entry types the archive may not contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForbiddenKind {
    /// Type `2`.
    SymbolicLink,
    /// Type `1`.
    HardLink,
    /// Type `3`.
    CharacterDevice,
    /// Type `4`.
    BlockDevice,
    /// Type `6`.
    Fifo,
    /// GNU type `S`.
    Sparse,
    /// Type `7`.
    Contiguous,
    /// Any other type byte (including extension headers the tar crate did not consume).
    Other(u8),
}

impl fmt::Display for ForbiddenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SymbolicLink => f.write_str("symbolic links"),
            Self::HardLink => f.write_str("hard links"),
            Self::CharacterDevice => f.write_str("character devices"),
            Self::BlockDevice => f.write_str("block devices"),
            Self::Fifo => f.write_str("FIFOs"),
            Self::Sparse => f.write_str("GNU sparse files"),
            Self::Contiguous => f.write_str("contiguous files"),
            Self::Other(byte) => write!(f, "entries of type {:?}", char::from(*byte)),
        }
    }
}

/// The path rule an entry name breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathProblem {
    /// Nothing left of the name.
    #[error("empty path")]
    Empty,
    /// The raw name bytes are not UTF-8.
    #[error("path is not valid UTF-8")]
    NotUtf8,
    /// NUL or another control character.
    #[error("path contains a NUL or control character")]
    ControlCharacter,
    /// `\` anywhere.
    #[error("path contains a backslash")]
    Backslash,
    /// Leading `/`.
    #[error("absolute paths are not allowed")]
    Absolute,
    /// Leading `C:`.
    #[error("Windows drive prefixes are not allowed")]
    DrivePrefix,
    /// A `..` component.
    #[error("path escapes the archive root ('..' components are not allowed)")]
    ParentComponent,
    /// A component over 255 bytes.
    #[error("a path component is longer than 255 bytes")]
    ComponentTooLong,
    /// A path over 1024 bytes.
    #[error("path is longer than 1024 bytes")]
    PathTooLong,
    /// A regular file whose name ends in `/`.
    #[error("a regular file's name may not end with '/'")]
    TrailingSlash,
    /// A digest deploy's path with an empty or `.` segment (an archive's name is
    /// normalized instead; a file list must name each file one way only).
    #[error("path has an empty or '.' segment")]
    NotNormal,
}

/// Formats `entry "name": ` when there is an entry, nothing otherwise.
struct EntryPrefix<'a>(Option<&'a str>);

impl fmt::Display for EntryPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(entry) => write!(f, "entry {entry:?}: "),
            None => Ok(()),
        }
    }
}

/// Formats which entry oversized headers belong to.
struct After<'a>(Option<&'a str>);

impl fmt::Display for After<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(entry) => write!(f, "following {entry:?}"),
            None => f.write_str("at the start of the archive"),
        }
    }
}
