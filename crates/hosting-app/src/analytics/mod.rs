//! Per-site analytics, counted on the server from the requests it answers (no script on
//! the pages, no cookie): requests, page views, unique visitors, bytes, status classes,
//! top pages, referrer hosts and 404 paths, per minute, hour and day (issue 20).
//!
//! The serving path calls [`Analytics::visit`] before a request and
//! [`Analytics::record`] after it: the request is added to an in-memory tally
//! ([`tally`]) and never waits for, nor fails because of, the database. A flusher task
//! ([`flush`]) writes the tally every `HOSTING_ANALYTICS_FLUSH_INTERVAL`, adding to what
//! the other replicas wrote; a replica that dies loses at most one interval.
//! [`report`] reads the figures back for the API and the dashboard.

pub mod flush;
pub mod hll;
pub mod report;
pub mod salt;
pub mod tally;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, HttpBody};
use axum::http::{header, HeaderValue, Method, Request, Response};

use self::tally::{Hit, Tally};
use crate::state::AppState;

/// The serving path's handle: `None` inside when analytics is off, so that costs nothing.
#[derive(Clone, Default)]
pub struct Analytics(Option<Recorder>);

#[derive(Clone)]
struct Recorder {
    tally: Arc<Tally>,
    /// Dropped with the last handle: the flusher then writes once more and stops.
    _flusher: Arc<tokio::sync::oneshot::Sender<()>>,
}

/// What is kept of a request until its response is known.
pub struct Visit {
    method: Method,
    path: KeptPath,
    referer: Option<HeaderValue>,
    agent: Option<HeaderValue>,
    address: Option<IpAddr>,
}

impl Analytics {
    /// Starts the flusher when `HOSTING_ANALYTICS=on` (inside the runtime).
    pub fn start(state: &AppState) -> Analytics {
        if !state.config.analytics.enabled() {
            return Analytics(None);
        }
        let tally = Arc::new(Tally::new());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(flush::run(state.clone(), tally.clone(), stopped));
        Analytics(Some(Recorder {
            tally,
            _flusher: Arc::new(stop),
        }))
    }

    /// Keeps what the response's record needs (`address`: the client, as rate limits
    /// see it; asked only when analytics is on).
    pub fn visit(
        &self,
        req: &Request<Body>,
        address: impl FnOnce() -> Option<IpAddr>,
    ) -> Option<Visit> {
        self.0.as_ref()?;
        let headers = req.headers();
        Some(Visit {
            method: req.method().clone(),
            path: KeptPath::new(req.uri().path()),
            referer: headers.get(header::REFERER).cloned(),
            agent: headers.get(header::USER_AGENT).cloned(),
            address: address(),
        })
    }

    /// Counts an answered site request (`route` "site"); anything else is ignored.
    pub fn record(&self, visit: Option<Visit>, route: &str, host: &str, response: &Response<Body>) {
        let (Some(recorder), Some(visit)) = (&self.0, visit) else {
            return;
        };
        if route != "site" || host.is_empty() {
            return;
        }
        let status = response.status();
        let page_view = visit.method == Method::GET
            && status.is_success()
            && response
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
        let referrer = page_view
            .then(|| {
                visit
                    .referer
                    .as_ref()
                    .and_then(|r| referrer_host(r.as_bytes()))
            })
            .flatten()
            .filter(|r| *r != host);
        let mut address = [0u8; 16];
        let address = match visit.address {
            Some(IpAddr::V4(v4)) => {
                address[..4].copy_from_slice(&v4.octets());
                &address[..4]
            }
            Some(IpAddr::V6(v6)) => {
                address.copy_from_slice(&v6.octets());
                &address[..]
            }
            None => &address[..0],
        };
        recorder.tally.add(&Hit {
            host,
            unix_seconds: now_seconds(),
            status: status.as_u16(),
            bytes_sent: body_bytes(&visit.method, response),
            page_view,
            path: visit.path.as_str(),
            referrer,
            visitor: (
                address,
                visit.agent.as_ref().map_or(&[][..], HeaderValue::as_bytes),
            ),
        });
    }
}

/// A request path as far as a top list keeps it ([`tally::MAX_KEY_BYTES`]), copied
/// inline: cloning the request's `Uri` instead cost an allocation per request (hyper's
/// buffer is promoted to a shared one on its first clone), a visible share of the
/// analytics cost in the serving benchmark's profile.
struct KeptPath {
    len: usize,
    bytes: [u8; tally::MAX_KEY_BYTES],
}

impl KeptPath {
    fn new(path: &str) -> KeptPath {
        let kept = tally::cut(path).as_bytes();
        let mut bytes = [0u8; tally::MAX_KEY_BYTES];
        bytes[..kept.len()].copy_from_slice(kept);
        KeptPath {
            len: kept.len(),
            bytes,
        }
    }

    fn as_str(&self) -> &str {
        // Cut at a character boundary, so this is the valid UTF-8 it was copied from.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// Bytes of the response body: its exact size, else `Content-Length` (a streamed file);
/// nothing for `HEAD`.
fn body_bytes(method: &Method, response: &Response<Body>) -> u64 {
    if method == Method::HEAD {
        return 0;
    }
    response.body().size_hint().exact().unwrap_or_else(|| {
        response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    })
}

/// The host of a `Referer` (`https://Host:port/path` -> `host`), lower case expected
/// (browsers send it so); `None` for anything that is not an absolute http(s) URL.
fn referrer_host(referer: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(referer).ok()?;
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host.split(':').next()?,
    };
    (!host.is_empty()).then_some(host)
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::{referrer_host, tally, KeptPath};

    #[test]
    fn a_kept_path_is_the_path_cut_as_top_lists_cut_it() {
        assert_eq!(KeptPath::new("/blog/post").as_str(), "/blog/post");
        let long = format!("/{}", "\u{e9}".repeat(300));
        assert_eq!(KeptPath::new(&long).as_str(), tally::cut(&long));
        assert!(KeptPath::new(&long).as_str().len() <= tally::MAX_KEY_BYTES);
    }

    #[test]
    fn a_referrer_is_reduced_to_its_host() {
        assert_eq!(
            referrer_host(b"https://news.example.com/item?id=1"),
            Some("news.example.com")
        );
        assert_eq!(referrer_host(b"http://a.example:8080"), Some("a.example"));
        assert_eq!(
            referrer_host(b"https://user@b.example/x"),
            Some("b.example")
        );
        assert_eq!(
            referrer_host(b"https://[2001:db8::1]:443/"),
            Some("2001:db8::1")
        );
        assert_eq!(referrer_host(b"android-app://com.example"), None);
        assert_eq!(referrer_host(b"https:///nohost"), None);
    }
}
