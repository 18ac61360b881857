//! The access log: one line per request, written off the request path.
//!
//! A request only formats its line and hands it to a bounded queue; one thread drains
//! the queue every few milliseconds into a buffered writer and flushes. The writer polls
//! rather than waits on the queue: a waiting receiver is woken by every line, a futex
//! call and a context switch per request, which cost as much as serving the request
//! (measured: 44 against 22 us of CPU per hot-file request). When the writer
//! cannot keep up (a slow disk, a blocked pipe), lines are dropped and counted
//! (`hosting_access_log_dropped_lines_total`) rather than slowing serving down: the
//! per-request line through the tracing subscriber, written under stdout's lock on
//! the request's thread, halved the hot-file rate (issue 17).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// Where the access log goes (`HOSTING_ACCESS_LOG`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    Off,
    Stdout,
    /// Appended to; created when missing.
    File(PathBuf),
}

impl FromStr for AccessLogTarget {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "off" | "" => AccessLogTarget::Off,
            "stdout" | "-" => AccessLogTarget::Stdout,
            path => AccessLogTarget::File(PathBuf::from(path)),
        })
    }
}

impl std::fmt::Display for AccessLogTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccessLogTarget::Off => f.write_str("off"),
            AccessLogTarget::Stdout => f.write_str("stdout"),
            AccessLogTarget::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Lines waiting for the writer thread; beyond this the writer is behind by more than a
/// moment and new lines are dropped.
const QUEUE_LINES: usize = 64 * 1024;

/// How often the writer drains the queue: lines reach the file at most this late.
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
    queue: Option<SyncSender<String>>,
    text: bool,
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
        // Registered now, so the series is exported (at 0) before the first drop.
        dropped();
        let (queue, lines) = sync_channel(QUEUE_LINES);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || drain(lines, sink))?;
        Ok(AccessLog {
            queue: Some(queue),
            text,
        })
    }

    pub fn off() -> AccessLog {
        AccessLog {
            queue: None,
            text: false,
        }
    }

    pub fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Queues the line of one request; never waits.
    pub fn record(&self, entry: &Entry<'_>) {
        let Some(queue) = &self.queue else {
            return;
        };
        let line = if self.text {
            text_line(entry)
        } else {
            json_line(entry)
        };
        match queue.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                dropped().increment(1)
            }
        }
    }
}

fn dropped() -> &'static metrics::Counter {
    static DROPPED: OnceLock<metrics::Counter> = OnceLock::new();
    DROPPED.get_or_init(|| {
        crate::telemetry::metrics_handle();
        metrics::counter!(crate::metrics::ACCESS_LOG_DROPPED_LINES_TOTAL)
    })
}

/// The writer thread: every [`DRAIN_EVERY`], writes what is queued and flushes; ends
/// once every sender is gone and the queue is empty.
fn drain(lines: Receiver<String>, sink: Box<dyn Write + Send>) {
    let mut out = BufWriter::with_capacity(64 * 1024, sink);
    let mut failed = false;
    loop {
        std::thread::sleep(DRAIN_EVERY);
        let mut result = Ok(());
        let mut senders_gone = false;
        loop {
            match lines.try_recv() {
                Ok(line) => result = result.and_then(|()| out.write_all(line.as_bytes())),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    senders_gone = true;
                    break;
                }
            }
        }
        result = result.and_then(|()| out.flush());
        // Said once, not per line: a full disk would otherwise flood the other log.
        match result {
            Err(e) if !failed => {
                failed = true;
                tracing::error!(error = %e, "writing the access log failed");
            }
            Ok(()) => failed = false,
            Err(_) => {}
        }
        if senders_gone {
            return;
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
/// Grafana log panels read `duration_ms`, `host`, `status`, ...).
fn json_line(entry: &Entry<'_>) -> String {
    let mut line = String::with_capacity(224 + entry.path.len());
    line.push_str("{\"timestamp\":\"");
    timestamp(&mut line);
    line.push_str("\",\"level\":\"INFO\",\"message\":\"request\",\"request_id\":\"");
    escape_json(&mut line, entry.request_id);
    line.push_str("\",\"method\":\"");
    escape_json(&mut line, entry.method);
    line.push_str("\",\"host\":\"");
    escape_json(&mut line, entry.host);
    line.push_str("\",\"path\":\"");
    escape_json(&mut line, entry.path);
    let _ = write!(
        line,
        "\",\"status\":{},\"route\":\"{}\",\"duration_ms\":{}}}",
        entry.status,
        entry.route,
        entry.duration.as_secs_f64() * 1000.0
    );
    line.push('\n');
    line
}

fn text_line(entry: &Entry<'_>) -> String {
    let mut line = String::with_capacity(160 + entry.path.len());
    timestamp(&mut line);
    let _ = writeln!(
        line,
        "  INFO request request_id={} method={} host={} path={:?} status={} route={} duration_ms={}",
        entry.request_id,
        entry.method,
        entry.host,
        entry.path,
        entry.status,
        entry.route,
        entry.duration.as_secs_f64() * 1000.0
    );
    line
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
    let _ = write!(line, ".{:06}Z", now.subsec_micros());
}

fn escape_json(line: &mut String, text: &str) {
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
        let line = json_line(&entry("/a \"quoted\"\\path\n"));
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
    fn targets_parse_from_the_setting() {
        assert_eq!("off".parse(), Ok(AccessLogTarget::Off));
        assert_eq!("stdout".parse(), Ok(AccessLogTarget::Stdout));
        assert_eq!(
            "/var/log/hosting/access.log".parse(),
            Ok(AccessLogTarget::File("/var/log/hosting/access.log".into()))
        );
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
