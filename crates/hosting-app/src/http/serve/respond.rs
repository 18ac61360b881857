//! One file as an HTTP response: content type, validators (strong ETag from the
//! content hash, Last-Modified), conditional requests (304), a single byte range
//! (206 / 416), precompressed siblings or cached on-the-fly compression, default
//! security headers and the deploy's `_headers` rules.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use headers::{ETag, HeaderMapExt, IfModifiedSince, IfNoneMatch, IfRange, LastModified};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::content::{self, Representation};
use super::error::ServeError;
use crate::blobs::Blob;
use crate::cache::{CachedDeploy, Prebuilt};
use crate::domain::manifest::FileRef;
use crate::state::AppState;

/// What to send: a file of a deploy, with the status it is sent with.
pub struct FileToServe<'a> {
    /// The deploy (its manifest, and the headers prebuilt for its files).
    pub deploy: &'a Arc<CachedDeploy>,
    /// The path whose `_headers` blocks apply: the path of the content served (the
    /// request path, a rewrite's target, `/404.html`), so headers follow the content.
    pub rules_path: &'a str,
    /// The file's path in the deploy (its extension gives the content type).
    pub file_path: &'a str,
    pub file: &'a FileRef,
    pub status: StatusCode,
}

/// Headers every site response carries unless `_headers` overrides them.
const DEFAULT_SECURITY_HEADERS: [(HeaderName, HeaderValue); 3] = [
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    ),
    (
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    ),
];

pub async fn file_response(
    state: &AppState,
    request: &HeaderMap,
    is_head: bool,
    target: FileToServe<'_>,
) -> Response {
    match build(state, request, is_head, target).await {
        Ok(response) => response,
        Err(e) if e.is_unavailable() => super::unavailable(&e),
        Err(e) => {
            tracing::error!(error = %e, "serving a file failed");
            super::super::pages::platform_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Server error",
                "This file could not be read. The error has been logged.",
            )
        }
    }
}

async fn build(
    state: &AppState,
    request: &HeaderMap,
    is_head: bool,
    target: FileToServe<'_>,
) -> Result<Response, ServeError> {
    let manifest = &target.deploy.manifest;
    let range = if target.status == StatusCode::OK {
        request.get(header::RANGE)
    } else {
        None
    };
    let rep = content::choose(
        state,
        request,
        manifest,
        target.file_path,
        target.file,
        range.is_some(),
    );
    let prebuilt = prebuilt(state, &target, &rep).await;
    let mut headers = prebuilt.headers.clone();
    let etag = prebuilt.etag.to_str().unwrap_or("");

    if target.status == StatusCode::OK && not_modified(request, etag, manifest.last_modified) {
        headers.remove(header::CONTENT_TYPE);
        headers.remove(header::CONTENT_LENGTH);
        return Ok(respond(StatusCode::NOT_MODIFIED, headers, Body::empty()));
    }

    // On-the-fly encodings have a length only once compressed (then cached).
    let compressed = if rep.on_the_fly {
        Some(
            content::cached_bytes(state, &rep)
                .await?
                .ok_or_else(|| ServeError::TooLarge(rep.sha256()))?,
        )
    } else {
        None
    };
    let size = compressed.as_ref().map_or(rep.size, |b| b.len() as u64);
    let mut status = target.status;
    let mut span = 0..size;
    if let Some(range) = range.filter(|_| if_range_allows(request, etag, manifest.last_modified)) {
        match content::parse_range(range, size) {
            content::RangeRequest::Satisfiable(start, end) => {
                status = StatusCode::PARTIAL_CONTENT;
                headers.insert(
                    header::CONTENT_RANGE,
                    value(&format!("bytes {start}-{}/{size}", end - 1)),
                );
                span = start..end;
            }
            content::RangeRequest::Unsatisfiable => {
                headers.insert(header::CONTENT_RANGE, value(&format!("bytes */{size}")));
                headers.remove(header::CONTENT_TYPE);
                headers.remove(header::CONTENT_LENGTH);
                return Ok(respond(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    headers,
                    Body::empty(),
                ));
            }
            content::RangeRequest::Ignored => {}
        }
    }
    let length = span.end - span.start;
    // The prebuilt block has the whole stored representation's length.
    if compressed.is_some() || length != size {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    if is_head {
        return Ok(respond(status, headers, Body::empty()));
    }
    served_bytes().increment(length);
    let body = match compressed {
        Some(bytes) => Body::from(bytes),
        None => body_of(state, &rep, span).await?,
    };
    Ok(respond(status, headers, body))
}

/// The fixed headers of `rep` served for `target`, built on the first request and
/// kept with the deploy in the manifest cache, which then weighs the entry again.
async fn prebuilt(
    state: &AppState,
    target: &FileToServe<'_>,
    rep: &Representation,
) -> Arc<Prebuilt> {
    let responses = &target.deploy.responses;
    if let Some(found) = responses.get(target.rules_path, target.file_path, rep.encoding) {
        return found;
    }
    let built = Arc::new(prebuild(state, target, rep));
    if responses.keep(
        target.rules_path,
        target.file_path,
        rep.encoding,
        built.clone(),
    ) {
        let deploy = target.deploy;
        // Boxed, as every path a hit does not take: see `tiers::l1`.
        Box::pin(
            state
                .cache
                .manifests
                .insert(deploy.manifest.deploy_id.clone(), deploy.clone()),
        )
        .await;
    }
    built
}

/// The headers every response of `rep` for `target` carries, in the order they were
/// always inserted: `_headers` values override the defaults, and the length is last so
/// no rule can change it.
fn prebuild(state: &AppState, target: &FileToServe<'_>, rep: &Representation) -> Prebuilt {
    let manifest = &target.deploy.manifest;
    let etag = rep.etag();
    let rules = if manifest.headers.is_empty() {
        Vec::new()
    } else {
        manifest.headers.for_path(target.rules_path)
    };
    let mut headers = HeaderMap::with_capacity(12 + rules.len());
    headers.insert(header::CONTENT_TYPE, manifest.content_type(target.file));
    headers.insert(header::ETAG, etag.clone());
    headers.insert(header::LAST_MODIFIED, manifest.last_modified_header.clone());
    headers.insert(header::CACHE_CONTROL, state.site_cache_control.clone());
    if rep.vary {
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    if let Some(encoding) = rep.encoding.header_value() {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    } else {
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    for (name, val) in DEFAULT_SECURITY_HEADERS {
        headers.insert(name, val);
    }
    for (name, val) in rules {
        if let (Ok(name), Ok(val)) = (HeaderName::try_from(name), HeaderValue::try_from(val)) {
            headers.insert(name, val);
        }
    }
    if !rep.on_the_fly {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(rep.size));
    }
    Prebuilt { headers, etag }
}

/// Registered once: a look-up by name per request costs a registry search (issue 17).
fn served_bytes() -> &'static metrics::Counter {
    static SERVED_BYTES: OnceLock<metrics::Counter> = OnceLock::new();
    SERVED_BYTES.get_or_init(|| {
        crate::telemetry::metrics_handle();
        metrics::counter!(crate::metrics::SERVED_BYTES_TOTAL)
    })
}

fn respond(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub use crate::freshness::site_cache_control;

/// RFC 9110 13.1.2 / 13.1.3: `If-None-Match` (weak comparison) wins over `If-Modified-Since`,
/// even when it cannot be parsed.
fn not_modified(request: &HeaderMap, etag: &str, last_modified: DateTime<Utc>) -> bool {
    if request.contains_key(header::IF_NONE_MATCH) {
        return match (request.typed_get::<IfNoneMatch>(), etag.parse::<ETag>()) {
            (Some(if_none_match), Ok(etag)) => !if_none_match.precondition_passes(&etag),
            _ => false,
        };
    }
    request
        .typed_get::<IfModifiedSince>()
        .is_some_and(|since| !since.is_modified(last_modified.into()))
}

/// RFC 9110 13.1.5: a range applies only if `If-Range` (when sent) still matches: the
/// entity tag strongly, or the date exactly (whole seconds).
fn if_range_allows(request: &HeaderMap, etag: &str, last_modified: DateTime<Utc>) -> bool {
    if !request.contains_key(header::IF_RANGE) {
        return true;
    }
    let (Some(if_range), Ok(etag)) = (request.typed_get::<IfRange>(), etag.parse::<ETag>()) else {
        return false;
    };
    let modified = SystemTime::from(last_modified);
    // `is_modified` takes a date up to `Last-Modified` as a match; RFC 9110 wants the same
    // date: a date variant also has to be before the next second. An entity-tag variant
    // always counts as modified when given no tag, so the second test leaves it alone.
    !if_range.is_modified(Some(&etag), Some(&LastModified::from(modified)))
        && if_range.is_modified(
            None,
            Some(&LastModified::from(modified + Duration::from_secs(1))),
        )
}

async fn body_of(
    state: &AppState,
    rep: &Representation,
    span: std::ops::Range<u64>,
) -> Result<Body, ServeError> {
    if let Some(bytes) = content::cached_bytes(state, rep).await? {
        let (start, end) = (to_usize(span.start), to_usize(span.end));
        return Ok(Body::from(bytes.slice(start..end)));
    }
    // Boxed, as every path a hit does not take: see `tiers::l1`.
    Box::pin(uncached_body(state, rep, span)).await
}

/// The body of a file too large for the cache, read from the blob store.
async fn uncached_body(
    state: &AppState,
    rep: &Representation,
    span: std::ops::Range<u64>,
) -> Result<Body, ServeError> {
    // Too large for the cache: an object store sends just the span.
    if state.blobs.ranged_reads() {
        let bytes = state.blobs.read_range(&rep.sha256(), span.clone()).await?;
        return Ok(Body::from(
            bytes.ok_or_else(|| ServeError::MissingBlob(rep.sha256()))?,
        ));
    }
    // Too large for the cache: stream from the blob store.
    let blob = state
        .blobs
        .get(&rep.sha256())
        .await?
        .ok_or_else(|| ServeError::MissingBlob(rep.sha256()))?;
    match blob {
        Blob::Bytes(bytes) => Ok(Body::from(
            bytes.slice(to_usize(span.start)..to_usize(span.end)),
        )),
        Blob::File { mut file, .. } => {
            file.seek(std::io::SeekFrom::Start(span.start))
                .await
                .map_err(crate::blobs::BlobError::Io)?;
            let reader = file.take(span.end - span.start);
            Ok(Body::from_stream(ReaderStream::with_capacity(
                reader,
                64 * 1024,
            )))
        }
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Identity bytes of a small file, through the cache (for rule files and compression).
pub async fn identity_bytes(state: &AppState, file: &FileRef) -> Result<Bytes, ServeError> {
    let rep = Representation::identity(file);
    content::cached_bytes(state, &rep)
        .await?
        .ok_or_else(|| ServeError::TooLarge(file.sha256()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, val) in pairs {
            map.insert(*name, HeaderValue::from_str(val).expect("header value"));
        }
        map
    }

    #[test]
    fn if_none_match_uses_weak_comparison_and_beats_if_modified_since() {
        let now = Utc::now();
        assert!(not_modified(
            &headers(&[("if-none-match", "W/\"abc\"")]),
            "\"abc\"",
            now
        ));
        assert!(not_modified(
            &headers(&[("if-none-match", "\"x\", \"abc\"")]),
            "\"abc\"",
            now
        ));
        assert!(not_modified(
            &headers(&[("if-none-match", "*")]),
            "\"abc\"",
            now
        ));
        let future = httpdate::fmt_http_date((now + chrono::Duration::hours(1)).into());
        assert!(!not_modified(
            &headers(&[("if-none-match", "\"x\""), ("if-modified-since", &future)]),
            "\"abc\"",
            now
        ));
        assert!(not_modified(
            &headers(&[("if-modified-since", &future)]),
            "\"abc\"",
            now
        ));
        let past = httpdate::fmt_http_date((now - chrono::Duration::hours(1)).into());
        assert!(!not_modified(
            &headers(&[("if-modified-since", &past)]),
            "\"abc\"",
            now
        ));
        // An If-None-Match that cannot be parsed still wins over If-Modified-Since.
        assert!(!not_modified(
            &headers(&[("if-none-match", "abc"), ("if-modified-since", &future)]),
            "\"abc\"",
            now
        ));
    }

    #[test]
    fn if_range_needs_the_exact_strong_validator() {
        let now = Utc::now();
        assert!(if_range_allows(&headers(&[]), "\"abc\"", now));
        assert!(if_range_allows(
            &headers(&[("if-range", "\"abc\"")]),
            "\"abc\"",
            now
        ));
        assert!(!if_range_allows(
            &headers(&[("if-range", "\"old\"")]),
            "\"abc\"",
            now
        ));
        assert!(!if_range_allows(
            &headers(&[("if-range", "W/\"abc\"")]),
            "\"abc\"",
            now
        ));
        let date = |t: DateTime<Utc>| httpdate::fmt_http_date(t.into());
        assert!(if_range_allows(
            &headers(&[("if-range", &date(now))]),
            "\"abc\"",
            now
        ));
        for other in [
            now - chrono::Duration::hours(1),
            now + chrono::Duration::hours(1),
        ] {
            assert!(!if_range_allows(
                &headers(&[("if-range", &date(other))]),
                "\"abc\"",
                now
            ));
        }
        assert!(!if_range_allows(
            &headers(&[("if-range", "not a validator")]),
            "\"abc\"",
            now
        ));
    }
}
