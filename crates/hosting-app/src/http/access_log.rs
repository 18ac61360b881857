//! The access log: one line per request, written off the request path.
//!
//! A request formats its line into a per-thread scratch buffer and appends it to one
//! shared byte buffer (a short, uncontended lock; no allocation, no channel message, no
//! wake-up). One thread swaps the buffer out every few milliseconds and writes it with one
//! call. The writer polls rather than being woken: a woken receiver costs a futex call
//! and a context switch per request, as much as serving the request (measured: 44 against
//! 22 us of CPU per hot-file request); a channel of one `String` per line still cost an
//! allocation freed on another thread per request (27.7 against 21.6 us, issue 17). When
//! the writer cannot keep up (a slow disk, a blocked pipe) and the buffer is full, lines
//! are dropped and counted (`hosting_access_log_dropped_lines_total`) rather than
//! slowing serving down.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

pub use crate::config::AccessLogTarget;

/// Bytes of lines waiting for the writer; beyond this the writer is behind by more than
/// a moment (160 ms of 100,000 requests a second) and new lines are dropped.
const PENDING_BYTES: usize = 4 * 1024 * 1024;

/// How often the writer drains the buffer: lines reach the file at most this late.
const DRAIN_EVERY: Duration = Duration::from_millis(20);

/// One request as the access log records it.
pub struct Entry<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub route: &'static str,
    pub duration: Duration,
}

/// The sending side of the access log; cheap to clone. `Off` formats nothing.
#[derive(Clone)]
pub struct AccessLog {
    pending: Option<Arc<Pending>>,
    text: bool,
}

/// The lines the writer has not taken yet. Dropped with the last [`AccessLog`], which
/// tells the writer to write what is left and stop.
struct Pending {
    lines: Arc<Mutex<Vec<u8>>>,
    closed: Arc<AtomicBool>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
    }
}

impl AccessLog {
    /// Starts the writer thread for `target`; `text` picks the human format (as
    /// `HOSTING_LOG_FORMAT` does for the other logs) over JSON lines.
    pub fn start(target: &AccessLogTarget, text: bool) -> io::Result<AccessLog> {
        let sink: Box<dyn Write + Send> = match target {
            AccessLogTarget::Off => return Ok(AccessLog::off()),
            AccessLogTarget::Stdout => Box::new(StdoutLines),
            AccessLogTarget::File(path) => Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("access log {}: {e}", path.display()))
                    })?,
            ),
        };
        AccessLog::start_with(sink, text)
    }

    /// Starts the writer thread for any sink.
    fn start_with(sink: Box<dyn Write + Send>, text: bool) -> io::Result<AccessLog> {
        // Registered now, so the series is exported (at 0) before the first drop.
        dropped();
        let lines = Arc::new(Mutex::new(Vec::with_capacity(64 * 1024)));
        let closed = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            lines: lines.clone(),
            closed: closed.clone(),
            sink,
        };
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer.run())?;
        Ok(AccessLog {
            pending: Some(Arc::new(Pending { lines, closed })),
            text,
        })
    }

    pub fn off() -> AccessLog {
        AccessLog {
            pending: None,
            text: false,
        }
    }

    pub fn enabled(&self) -> bool {
        self.pending.is_some()
    }

    /// Queues the line of one request; never waits for the writer. False when the
    /// line was dropped (counted) or the log is off.
    pub fn record(&self, entry: &Entry<'_>) -> bool {
        let Some(pending) = &self.pending else {
            return false;
        };
        thread_local! {
            static LINE: RefCell<String> = const { RefCell::new(String::new()) };
        }
        LINE.with_borrow_mut(|line| {
            line.clear();
            if self.text {
                text_line(line, entry);
            } else {
                json_line(line, entry);
            }
            let queued = match pending.lines.lock() {
                Ok(mut lines) if lines.len() + line.len() <= PENDING_BYTES => {
                    lines.extend_from_slice(line.as_bytes());
                    true
                }
                _ => false,
            };
            if !queued {
                dropped().increment(1);
            }
            queued
        })
    }
}

fn dropped() -> &'static metrics::Counter {
    static DROPPED: OnceLock<metrics::Counter> = OnceLock::new();
    DROPPED.get_or_init(|| {
        crate::telemetry::metrics_handle();
        metrics::counter!(crate::metrics::ACCESS_LOG_DROPPED_LINES_TOTAL)
    })
}

/// The writer thread's side: the shared buffer and where its bytes go.
struct Writer {
    lines: Arc<Mutex<Vec<u8>>>,
    closed: Arc<AtomicBool>,
    sink: Box<dyn Write + Send>,
}

impl Writer {
    /// Every [`DRAIN_EVERY`], takes what is buffered and writes it; ends once every
    /// [`AccessLog`] is gone and what they left is written.
    fn run(mut self) {
        let mut taken: Vec<u8> = Vec::with_capacity(64 * 1024);
        let mut failed = false;
        loop {
            std::thread::sleep(DRAIN_EVERY);
            // Read before taking the lines: a log closed after this still had its
            // last lines in the buffer taken below.
            let closed = self.closed.load(Ordering::Acquire);
            match self.lines.lock() {
                Ok(mut lines) => std::mem::swap(&mut *lines, &mut taken),
                Err(_) => return,
            }
            if !taken.is_empty() {
                let result = self.sink.write_all(&taken).and_then(|()| self.sink.flush());
                // Said once, not per write: a full disk would otherwise flood the other log.
                match result {
                    Err(e) if !failed => {
                        failed = true;
                        tracing::error!(error = %e, "writing the access log failed");
                    }
                    Ok(()) => failed = false,
                    Err(_) => {}
                }
                taken.clear();
                // A burst's buffer is not kept for good.
                taken.shrink_to(1024 * 1024);
            }
            if closed {
                return;
            }
        }
    }
}

/// Stdout, locked per write: lines of the access log and of the other logs never mix
/// within a line.
struct StdoutLines;

impl Write for StdoutLines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stdout().lock().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        io::stdout().lock().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stdout().lock().flush()
    }
}

/// The same fields and shape as the tracing subscriber's JSON lines (Alloy and the
/// Grafana log panels read `duration_ms`, `host`, `status`, ...), appended to `line`.
fn json_line(line: &mut String, entry: &Entry<'_>) {
    line.push_str("{\"timestamp\":\"");
    timestamp(line);
    line.push_str("\",\"level\":\"INFO\",\"message\":\"request\",\"request_id\":\"");
    escape_json(line, entry.request_id);
    line.push_str("\",\"method\":\"");
    escape_json(line, entry.method);
    line.push_str("\",\"host\":\"");
    escape_json(line, entry.host);
    line.push_str("\",\"path\":\"");
    escape_json(line, entry.path);
    line.push_str("\",\"status\":");
    digits(line, u64::from(entry.status), 1);
    line.push_str(",\"route\":\"");
    line.push_str(entry.route);
    line.push_str("\",\"duration_ms\":");
    milliseconds(line, entry.duration);
    line.push_str("}\n");
}

fn text_line(line: &mut String, entry: &Entry<'_>) {
    timestamp(line);
    let _ = write!(
        line,
        "  INFO request request_id={} method={} host={} path={:?} status={} route={} duration_ms=",
        entry.request_id, entry.method, entry.host, entry.path, entry.status, entry.route,
    );
    milliseconds(line, entry.duration);
    line.push('\n');
}

/// Milliseconds with microsecond precision (`1.500`): integers only, as formatting an
/// `f64` costs more than the rest of the line.
fn milliseconds(line: &mut String, duration: Duration) {
    let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
    digits(line, micros / 1000, 1);
    line.push('.');
    digits(line, micros % 1000, 3);
}

/// `n` in decimal, zero-padded to at least `width` digits: the few numbers of a line
/// without the formatting machinery (`write!` parses no pattern, but it goes through
/// dynamic dispatch and padding logic per argument, on every request).
fn digits(line: &mut String, mut n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut at = buf.len();
    while n > 0 || buf.len() - at < width.max(1) {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    // Only ASCII digits were written.
    line.push_str(std::str::from_utf8(&buf[at..]).unwrap_or_default());
}

/// RFC 3339 UTC with microseconds, as the other log lines have it. The part up to the
/// second is formatted once a second per thread (chrono's formatter parses its pattern
/// on every call).
fn timestamp(line: &mut String) {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != now.as_secs() {
            *second = now.as_secs();
            text.clear();
            let at = chrono::DateTime::<chrono::Utc>::from(
                SystemTime::UNIX_EPOCH + Duration::from_secs(now.as_secs()),
            );
            let _ = write!(text, "{}", at.format("%Y-%m-%dT%H:%M:%S"));
        }
        line.push_str(text);
    });
    line.push('.');
    digits(line, u64::from(now.subsec_micros()), 6);
    line.push('Z');
}

fn escape_json(line: &mut String, text: &str) {
    // Hosts, methods, request ids and most paths need no escaping: one copy.
    if !text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        line.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(line, "\\u{:04x}", c as u32);
            }
            c => line.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> Entry<'_> {
        Entry {
            request_id: "abc",
            method: "GET",
            host: "blog.example.com",
            path,
            status: 200,
            route: "site",
            duration: Duration::from_micros(1500),
        }
    }

    #[test]
    fn json_lines_parse_and_carry_the_fields_the_log_pipeline_reads() {
        let mut line = String::new();
        json_line(&mut line, &entry("/a \"quoted\"\\path\n"));
        assert!(line.ends_with('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(value["message"], "request");
        assert_eq!(value["level"], "INFO");
        assert_eq!(value["path"], "/a \"quoted\"\\path\n");
        assert_eq!(value["host"], "blog.example.com");
        assert_eq!(value["status"], 200);
        assert_eq!(value["route"], "site");
        assert_eq!(value["duration_ms"], 1.5);
        let stamp = value["timestamp"].as_str().expect("timestamp");
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{stamp}"
        );
    }

    #[test]
    fn numbers_are_written_as_the_formatter_writes_them() {
        for (n, width) in [
            (0, 1),
            (7, 1),
            (10, 1),
            (1234, 1),
            (0, 3),
            (5, 3),
            (999, 3),
            (42, 6),
        ] {
            let mut line = String::new();
            digits(&mut line, n, width);
            assert_eq!(line, format!("{n:0width$}"));
        }
        let mut line = String::new();
        digits(&mut line, u64::MAX, 1);
        assert_eq!(line, u64::MAX.to_string());
        for micros in [0, 1, 999, 1000, 1500, 123_456_789] {
            let mut line = String::new();
            milliseconds(&mut line, Duration::from_micros(micros));
            assert_eq!(line, format!("{}.{:03}", micros / 1000, micros % 1000));
        }
    }

    #[test]
    fn targets_parse_from_the_setting() {
        assert_eq!("off".parse(), Ok(AccessLogTarget::Off));
        assert_eq!("stdout".parse(), Ok(AccessLogTarget::Stdout));
        assert_eq!(
            "/var/log/hosting/access.log".parse(),
            Ok(AccessLogTarget::File("/var/log/hosting/access.log".into()))
        );
    }

    /// A sink whose writes wait until the test lets them through.
    struct Stuck(Arc<Mutex<()>>);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            drop(self.0.lock());
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_writer_that_cannot_keep_up_costs_dropped_lines_not_waiting() {
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().expect("gate");
        let log = AccessLog::start_with(Box::new(Stuck(gate.clone())), false).expect("starts");
        let path = "/".repeat(1000);
        let (mut queued, mut dropped) = (0, 0);
        // Far more than the buffer holds while the writer is stuck in its first write: a
        // record that waited for the writer would never return while the gate is held.
        for _ in 0..(3 * PENDING_BYTES / 1000) {
            if log.record(&entry(&path)) {
                queued += 1;
            } else {
                dropped += 1;
            }
        }
        assert!(
            queued > 0 && dropped > 0,
            "queued {queued}, dropped {dropped}"
        );
        assert!(queued * 1000 <= 2 * PENDING_BYTES, "queued {queued} lines");
        drop(held);
    }

    #[test]
    fn the_last_lines_are_written_when_the_log_is_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("access.log");
        let log = AccessLog::start(&AccessLogTarget::File(path.clone()), true).expect("starts");
        assert!(log.record(&entry("/last")));
        drop(log);
        let mut text = String::new();
        for _ in 0..200 {
            text = std::fs::read_to_string(&path).expect("read");
            if !text.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(text.contains("path=\"/last\""), "{text}");
        assert!(text.ends_with("duration_ms=1.500\n"), "{text}");
    }

    #[test]
    fn a_file_target_receives_every_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("access.log");
        let log = AccessLog::start(&AccessLogTarget::File(path.clone()), false).expect("starts");
        for _ in 0..3 {
            log.record(&entry("/"));
        }
        // The writer flushes when its queue runs dry; give it a moment.
        let mut lines = 0;
        for _ in 0..200 {
            lines = std::fs::read_to_string(&path)
                .expect("read")
                .lines()
                .count();
            if lines == 3 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(lines, 3);
    }
}
