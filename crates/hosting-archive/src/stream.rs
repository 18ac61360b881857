//! Byte plumbing between the request body, the gzip decoder and the tar parser.
//!
//! The tar crate owns the decompressed reader while it parses, so the limits that must
//! hold *while* it reads (header budget, expansion ratio) are enforced inside that reader
//! and the first failure is parked in a shared [`Meter`] for the caller to report. The
//! reader also keeps a copy of the raw header blocks of the entry being parsed so
//! `headers.rs` can check them against what the tar crate made of them.

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, BufReader, Chain, Cursor, Read};
use std::rc::Rc;

use flate2::bufread::GzDecoder;

use crate::error::ArchiveError;
use crate::limits::Limits;

/// Decompressed bytes allowed before the expansion ratio is enforced, so small archives
/// of highly compressible files (zeros, repeated markup) are fine.
const RATIO_GRACE_BYTES: u64 = 1 << 20;
/// Zero padding accepted after the tar end-of-archive marker (tar pads to 10 KiB records).
const MAX_TRAILING_BYTES: u64 = 1 << 20;
/// Read buffer of the compressed side; also bounds how far the compressed count can run
/// ahead of what the decoder has used.
const INPUT_BUFFER_BYTES: usize = 16 * 1024;

/// State shared between the readers (owned by the tar crate) and the caller.
#[derive(Debug)]
pub(crate) struct Meter {
    limits: Limits,
    /// Bytes read from the caller's input.
    compressed: Cell<u64>,
    /// Bytes produced by the gzip decoder, which is also the tar stream position.
    decompressed: Cell<u64>,
    /// Tar stream position the parser may not read past: the end of the current entry's
    /// data plus the header budget of the next entry.
    read_limit: Cell<u64>,
    /// Tar stream position from which read bytes are header bytes worth keeping.
    capture_from: Cell<u64>,
    captured: RefCell<Vec<u8>>,
    failure: RefCell<Option<ArchiveError>>,
    /// The decoder reported a clean end of the gzip stream.
    eof: Cell<bool>,
    last_entry: RefCell<Option<String>>,
}

impl Meter {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            limits: limits.clone(),
            compressed: Cell::new(0),
            decompressed: Cell::new(0),
            read_limit: Cell::new(header_budget(limits)),
            capture_from: Cell::new(0),
            captured: RefCell::new(Vec::new()),
            failure: RefCell::new(None),
            eof: Cell::new(false),
            last_entry: RefCell::new(None),
        }
    }

    /// Parks `err` as the reason for the failure (the first one wins) and returns an
    /// `io::Error` for the tar crate to propagate.
    pub(crate) fn fail(&self, err: ArchiveError) -> io::Error {
        let message = err.to_string();
        self.failure.borrow_mut().get_or_insert(err);
        io::Error::other(message)
    }

    /// The parked failure, if a reader hit one.
    pub(crate) fn take_failure(&self) -> Option<ArchiveError> {
        self.failure.borrow_mut().take()
    }

    /// Turns an error surfaced by the tar crate into the most precise `ArchiveError`.
    pub(crate) fn classify(&self, err: &io::Error, entry: Option<&str>) -> ArchiveError {
        if let Some(failure) = self.take_failure() {
            return failure;
        }
        let entry = entry.map(str::to_owned);
        if self.eof.get() {
            return ArchiveError::Truncated { entry };
        }
        ArchiveError::Malformed {
            entry,
            reason: err.to_string(),
        }
    }

    /// The raw header blocks read since the end of the previous entry's data.
    pub(crate) fn take_headers(&self) -> Vec<u8> {
        std::mem::take(&mut *self.captured.borrow_mut())
    }

    /// Called once per entry the tar crate yields: its data may now be read, and the
    /// next entry's headers get a fresh budget starting where this data ends.
    pub(crate) fn entry_started(&self, data_end: u64, name: &str) {
        self.read_limit
            .set(data_end.saturating_add(header_budget(&self.limits)));
        self.capture_from.set(data_end);
        self.captured.borrow_mut().clear();
        *self.last_entry.borrow_mut() = Some(name.to_owned());
    }
}

/// The header budget; at least one 512-byte block, or no archive could be read at all.
fn header_budget(limits: &Limits) -> u64 {
    limits.max_header_bytes.max(512)
}

/// Counts the compressed bytes taken from the caller's input.
struct CountingInput<R> {
    inner: R,
    meter: Rc<Meter>,
}

impl<R: Read> Read for CountingInput<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    let meter = &self.meter;
                    meter
                        .compressed
                        .set(meter.compressed.get().saturating_add(n as u64));
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(self.meter.fail(ArchiveError::Input {
                        reason: e.to_string(),
                    }))
                }
            }
        }
    }
}

type Decoder<R> = GzDecoder<BufReader<Chain<Cursor<[u8; 2]>, CountingInput<R>>>>;

/// The decompressed tar stream, metered.
pub(crate) struct TarStream<R: Read> {
    decoder: Decoder<R>,
    meter: Rc<Meter>,
}

/// Checks the gzip magic and wraps `input` in the metered decoder.
pub(crate) fn open<R: Read>(input: R, meter: Rc<Meter>) -> Result<TarStream<R>, ArchiveError> {
    let mut counted = CountingInput {
        inner: input,
        meter: Rc::clone(&meter),
    };
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < magic.len() {
        match counted.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(meter.classify(&e, None)),
        }
    }
    // SECURITY: say "not gzip" up front instead of a decoder error deep in the stream; a
    // plain tar or a zip must not be half-processed.
    if magic != [0x1f, 0x8b] {
        return Err(ArchiveError::NotGzip);
    }
    let joined = Cursor::new(magic).chain(counted);
    // `bufread::GzDecoder` (single member, like `read::GzDecoder`) over our own
    // `BufReader`, so the bytes it buffered past the member can be inspected afterwards.
    let decoder = GzDecoder::new(BufReader::with_capacity(INPUT_BUFFER_BYTES, joined));
    Ok(TarStream { decoder, meter })
}

impl<R: Read> TarStream<R> {
    /// Reads decompressed bytes, never past `limit`, checking the expansion ratio.
    fn pull(&mut self, buf: &mut [u8], limit: u64) -> Result<usize, ArchiveError> {
        let meter = Rc::clone(&self.meter);
        let pos = meter.decompressed.get();
        if buf.is_empty() {
            return Ok(0);
        }
        // SECURITY: the tar crate buffers PAX and GNU long-name data whole before
        // yielding the entry (Go CVE-2022-2879: a 100 MiB PAX header); cut it off here,
        // where it is read, instead of after.
        if pos >= limit {
            let after = meter.last_entry.borrow().clone();
            return Err(ArchiveError::HeaderTooLarge {
                after,
                limit: header_budget(&meter.limits),
            });
        }
        let want = usize::try_from(limit - pos).map_or(buf.len(), |room| room.min(buf.len()));
        let n = match self.decoder.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) => {
                return Err(meter
                    .take_failure()
                    .unwrap_or_else(|| ArchiveError::CorruptGzip {
                        reason: if e.kind() == io::ErrorKind::UnexpectedEof {
                            "the stream is truncated".to_owned()
                        } else {
                            e.to_string()
                        },
                    }));
            }
        };
        if n == 0 {
            meter.eof.set(true);
            return Ok(0);
        }
        let end = pos + n as u64;
        let from = meter.capture_from.get();
        if end > from {
            let skip = usize::try_from(from.saturating_sub(pos)).unwrap_or(n);
            meter.captured.borrow_mut().extend_from_slice(&buf[skip..n]);
        }
        meter.decompressed.set(end);
        // SECURITY: gzip's ISIZE and tar's size fields are attacker-written; count what
        // actually comes out, so a bomb stops after a few MiB, not after inflating all.
        let ratio = meter.limits.max_expansion_ratio;
        if end > RATIO_GRACE_BYTES && end > meter.compressed.get().saturating_mul(ratio) {
            return Err(ArchiveError::ExpansionRatio { limit: ratio });
        }
        Ok(n)
    }

    /// After the tar end-of-archive marker: checks the rest of the tar stream is zero
    /// padding, the gzip member ends with a valid CRC and length, and nothing follows it.
    pub(crate) fn finish(mut self) -> Result<(), ArchiveError> {
        self.meter.capture_from.set(u64::MAX);
        let mut buf = [0u8; 8192];
        let mut trailing = 0u64;
        loop {
            let n = self.pull(&mut buf, u64::MAX)?;
            if n == 0 {
                break;
            }
            trailing += n as u64;
            // SECURITY: GNU tar may read entries hidden after a lone zero block that the
            // tar crate treats as the end; anything but padding there is a differential.
            if buf[..n].iter().any(|b| *b != 0) || trailing > MAX_TRAILING_BYTES {
                return Err(ArchiveError::DataAfterEnd);
            }
        }
        // SECURITY: a second gzip member or appended garbage would be invisible to us but
        // read by `gzip -dc` / multi-member decoders; refuse anything after the member.
        let rest = self
            .decoder
            .get_mut()
            .fill_buf()
            .map_err(|e| self.meter.classify(&e, None))?;
        if !rest.is_empty() {
            return Err(ArchiveError::TrailingData);
        }
        Ok(())
    }
}

impl<R: Read> Read for TarStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let limit = self.meter.read_limit.get();
        self.pull(buf, limit).map_err(|e| self.meter.fail(e))
    }
}
