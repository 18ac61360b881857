//! Which bytes represent a file for a request: content type, encoding negotiation
//! (precompressed `.br` / `.gz` siblings first, then cached on-the-fly compression of
//! compressible types), byte ranges, and the byte cache in front of the blob store.

use axum::http::{header, HeaderMap, HeaderValue};
use bytes::Bytes;

use super::error::ServeError;
use super::tiers;
use crate::cache::Encoding;
use crate::domain::manifest::{self, Digest, FileRef, SiteManifest};
use crate::domain::names::Sha256;
use crate::state::AppState;

/// Blobs never change: the shared cache keeps them a day (Redis evicts under pressure).
const SHARED_BLOB_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The bytes chosen for a response.
#[derive(Debug, Clone)]
pub struct Representation {
    /// The blob holding the bytes (identity or precompressed sibling) ...
    pub digest: Digest,
    /// ... and its size; for on-the-fly compression, the identity blob and its size
    /// until compressed (see `cached_bytes`).
    pub size: u64,
    pub encoding: Encoding,
    /// True when the bytes are compressed here rather than stored compressed.
    pub on_the_fly: bool,
    /// The response depends on `Accept-Encoding`.
    pub vary: bool,
}

impl Representation {
    pub fn identity(file: &FileRef) -> Representation {
        Representation {
            digest: *file.digest(),
            size: file.size,
            encoding: Encoding::Identity,
            on_the_fly: false,
            vary: false,
        }
    }

    /// The blob's name in the store (made when the store is asked, not per request).
    pub fn sha256(&self) -> Sha256 {
        Sha256::from_digest(&self.digest)
    }

    /// The strong validator: the stored blob's hash (identity or precompressed sibling),
    /// or the identity's hash and the encoding for bytes compressed here. Made when a
    /// file's headers are prebuilt, not per request.
    pub fn etag(&self) -> HeaderValue {
        let suffix = if self.on_the_fly {
            self.encoding.header_value()
        } else {
            None
        };
        manifest::etag(&self.digest, suffix)
    }
}

/// Encodings the client accepts, best first (q-values honoured, `q=0` refuses; an
/// encoding named explicitly is not also taken from `*`). Without allocating: we serve
/// two encodings, so each gets its best weight and the two are put in order.
fn accepted(request: &HeaderMap) -> impl Iterator<Item = Encoding> {
    let value = request
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // (named explicitly, best weight) of brotli and gzip.
    let mut br = (false, 0u32);
    let mut gzip = (false, 0u32);
    let mut wildcard = None;
    for item in value.split(',').filter(|item| !item.trim().is_empty()) {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .filter_map(|q| q.trim().parse::<f32>().ok())
            .next()
            .unwrap_or(1.0);
        let weight = (q.clamp(0.0, 1.0) * 1000.0) as u32;
        let seen = if name.eq_ignore_ascii_case("br") {
            &mut br
        } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            &mut gzip
        } else {
            if name == "*" {
                wildcard = Some(weight);
            }
            continue;
        };
        *seen = (true, seen.1.max(weight));
    }
    let weight = |(named, best): (bool, u32)| match wildcard {
        Some(any) if !named => any,
        _ => best,
    };
    let (br, gzip) = (weight(br), weight(gzip));
    // At equal weight brotli (smaller) comes first.
    let order = if br >= gzip {
        [(Encoding::Brotli, br), (Encoding::Gzip, gzip)]
    } else {
        [(Encoding::Gzip, gzip), (Encoding::Brotli, br)]
    };
    order
        .into_iter()
        .filter(|(_, weight)| *weight > 0)
        .map(|(encoding, _)| encoding)
}

/// Picks the representation: ranges always get identity bytes, so offsets mean one thing.
pub fn choose(
    state: &AppState,
    request: &HeaderMap,
    manifest: &SiteManifest,
    path: &str,
    file: &FileRef,
    ranged: bool,
) -> Representation {
    let can_compress = file.compressible && file.size <= state.config.cache.cache_max_file_bytes;
    let mut rep = Representation::identity(file);
    rep.vary = file.has_encoded_sibling || can_compress;
    if ranged || !rep.vary {
        return rep;
    }
    for encoding in accepted(request) {
        if file.has_encoded_sibling {
            let extension = if encoding == Encoding::Brotli {
                "br"
            } else {
                "gz"
            };
            if let Some(sibling) = manifest.file(&format!("{path}.{extension}")) {
                rep.digest = *sibling.digest();
                rep.size = sibling.size;
                rep.encoding = encoding;
                return rep;
            }
        }
        if can_compress {
            rep.encoding = encoding;
            rep.on_the_fly = true;
            return rep;
        }
    }
    rep
}

/// The representation's bytes from the in-process cache (loading and, for on-the-fly
/// encodings, compressing them once), or `None` when the file is too large to cache.
/// For on-the-fly encodings `rep.size` is updated by the caller via `compressed_size`.
pub async fn cached_bytes(
    state: &AppState,
    rep: &Representation,
) -> Result<Option<Bytes>, ServeError> {
    if rep.size > state.config.cache.cache_max_file_bytes && !rep.on_the_fly {
        return Ok(None);
    }
    let identity = load_identity(state, &rep.digest, rep.size).await?;
    if !rep.on_the_fly {
        return Ok(Some(identity));
    }
    let key = (rep.digest, rep.encoding);
    let encoding = rep.encoding;
    // Compressed variants are counted with the files they come from.
    // Boxed, as every path a hit of identity bytes does not take: see `tiers::l1`.
    let compressed = Box::pin(state.cache.files.try_get_with(key, async move {
        tokio::task::spawn_blocking(move || compress(&identity, encoding)).await?
    }))
    .await
    .map_err(ServeError::Shared)?;
    Ok(Some(compressed))
}

/// Files up to this size are read on the runtime thread when the blob store can (a
/// local folder, embedded): a read of the page cache costs a few microseconds, the
/// hand-off to the blocking pool and back more than that, and at 10,000 sites three
/// requests in four missed the file cache (issue 23). A cold disk read then blocks the
/// thread as it blocks an nginx worker.
const READ_NOW_MAX_BYTES: u64 = 64 * 1024;

async fn load_identity(state: &AppState, digest: &Digest, size: u64) -> Result<Bytes, ServeError> {
    let key = (*digest, Encoding::Identity);
    if let Some(found) = tiers::l1_get(&state.cache.files, "file", &key).await {
        return Ok(found);
    }
    // Boxed, as every path a hit does not take: see `tiers::l1`.
    Box::pin(load_missing(state, digest, size)).await
}

/// After a miss of the file cache: the bytes from the store (or the shared cache),
/// put in the file cache.
async fn load_missing(state: &AppState, digest: &Digest, size: u64) -> Result<Bytes, ServeError> {
    let key = (*digest, Encoding::Identity);
    if size <= READ_NOW_MAX_BYTES && !state.config.is_cluster() {
        let sha256 = Sha256::from_digest(digest);
        if let Some(read) = state.blobs.read_now(&sha256) {
            // No await between the miss and the read: nothing to wait for together, so
            // a plain insert, without the waiters `try_get_with` keeps per key.
            let bytes = read?.ok_or(ServeError::MissingBlob(sha256))?;
            state.cache.files.insert(key, bytes.clone()).await;
            return Ok(bytes);
        }
    }
    tiers::l1_fill(&state.cache.files, &key, || async {
        let sha256 = &Sha256::from_digest(digest);
        let from_store = async {
            state
                .blobs
                .read(sha256)
                .await?
                .ok_or_else(|| ServeError::MissingBlob(sha256.clone()))
        };
        if size <= state.config.cache.redis_blob_max_bytes {
            let l2 = tiers::L2 {
                shared: &state.shared,
                kind: "file",
                key: format!("blob:{sha256}"),
                ttl: SHARED_BLOB_TTL,
            };
            tiers::l2(l2, |_| true, from_store).await
        } else {
            from_store.await
        }
    })
    .await
}

fn compress(bytes: &[u8], encoding: Encoding) -> Result<Bytes, ServeError> {
    use std::io::Write;
    match encoding {
        Encoding::Identity => Ok(Bytes::copy_from_slice(bytes)),
        Encoding::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            encoder.write_all(bytes)?;
            Ok(Bytes::from(encoder.finish()?))
        }
        Encoding::Brotli => {
            let mut out = Vec::new();
            {
                // Quality 5: most of brotli's gain at a fraction of quality 11's CPU.
                let mut writer = brotli::CompressorWriter::new(&mut out, 64 * 1024, 5, 22);
                writer.write_all(bytes)?;
            }
            Ok(Bytes::from(out))
        }
    }
}

/// A single-range request, resolved against the representation's size.
#[derive(Debug, PartialEq)]
pub enum RangeRequest {
    /// `[start, end)`
    Satisfiable(u64, u64),
    Unsatisfiable,
    /// Not a byte range we serve (several ranges, other units, malformed): send it all.
    Ignored,
}

pub fn parse_range(value: &HeaderValue, size: u64) -> RangeRequest {
    let Some(spec) = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return RangeRequest::Ignored;
    };
    if spec.contains(',') {
        return RangeRequest::Ignored;
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return RangeRequest::Ignored;
    };
    let (start, end) = (start.trim(), end.trim());
    let parsed = match (start.is_empty(), end.is_empty()) {
        // `bytes=-N`: the last N bytes.
        (true, false) => match end.parse::<u64>() {
            Ok(0) => return RangeRequest::Unsatisfiable,
            Ok(n) => Some((size.saturating_sub(n), size)),
            Err(_) => None,
        },
        (false, true) => start.parse::<u64>().ok().map(|s| (s, size)),
        (false, false) => match (start.parse::<u64>(), end.parse::<u64>()) {
            (Ok(s), Ok(e)) if e >= s => Some((s, e.saturating_add(1).min(size))),
            _ => None,
        },
        (true, true) => None,
    };
    match parsed {
        None => RangeRequest::Ignored,
        Some((start, _)) if start >= size => RangeRequest::Unsatisfiable,
        Some((start, end)) => RangeRequest::Satisfiable(start, end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Vec<Encoding> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).expect("value"),
        );
        accepted(&headers).collect()
    }

    #[test]
    fn brotli_is_preferred_at_equal_quality_and_q_zero_refuses() {
        assert_eq!(
            accept("gzip, deflate, br"),
            vec![Encoding::Brotli, Encoding::Gzip]
        );
        assert_eq!(
            accept("gzip;q=1, br;q=0.5"),
            vec![Encoding::Gzip, Encoding::Brotli]
        );
        assert_eq!(accept("br;q=0, gzip"), vec![Encoding::Gzip]);
        assert_eq!(accept("identity"), vec![]);
        assert_eq!(accept("*"), vec![Encoding::Brotli, Encoding::Gzip]);
        assert_eq!(accept("*;q=0.5, br;q=0"), vec![Encoding::Gzip]);
        assert_eq!(
            accept("br;q=0.2, *;q=0.5"),
            vec![Encoding::Gzip, Encoding::Brotli]
        );
        assert_eq!(accept("GZIP, gzip;q=0"), vec![Encoding::Gzip]);
        assert_eq!(
            accept("x-gzip;q=0.3, br;q=0.3"),
            vec![Encoding::Brotli, Encoding::Gzip]
        );
        assert_eq!(accept(""), vec![]);
    }

    #[test]
    fn ranges_resolve_against_the_size() {
        let range = |v: &str| parse_range(&HeaderValue::from_str(v).expect("value"), 100);
        assert_eq!(range("bytes=0-9"), RangeRequest::Satisfiable(0, 10));
        assert_eq!(range("bytes=90-"), RangeRequest::Satisfiable(90, 100));
        assert_eq!(range("bytes=-10"), RangeRequest::Satisfiable(90, 100));
        assert_eq!(range("bytes=-500"), RangeRequest::Satisfiable(0, 100));
        assert_eq!(range("bytes=95-200"), RangeRequest::Satisfiable(95, 100));
        assert_eq!(range("bytes=100-"), RangeRequest::Unsatisfiable);
        assert_eq!(range("bytes=-0"), RangeRequest::Unsatisfiable);
        assert_eq!(range("bytes=0-1,5-6"), RangeRequest::Ignored);
        assert_eq!(range("items=0-1"), RangeRequest::Ignored);
        assert_eq!(range("bytes=5-2"), RangeRequest::Ignored);
    }

    #[test]
    fn text_types_carry_a_charset_and_binaries_do_not() {
        assert_eq!(
            crate::domain::manifest::content_type_for("/index.html"),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            crate::domain::manifest::content_type_for("/app.js"),
            "text/javascript; charset=utf-8".replace(
                "text/javascript",
                mime_guess::from_path("a.js")
                    .first_or_octet_stream()
                    .essence_str()
            )
        );
        assert_eq!(
            crate::domain::manifest::content_type_for("/logo.png"),
            "image/png"
        );
        assert_eq!(
            crate::domain::manifest::content_type_for("/noext"),
            "application/octet-stream"
        );
    }

    #[test]
    fn compression_round_trips() {
        use std::io::Read;
        let text = "hello hello hello hello ".repeat(100);
        let gz = compress(text.as_bytes(), Encoding::Gzip).expect("gzip");
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut out)
            .expect("gunzip");
        assert_eq!(out, text);
        let br = compress(text.as_bytes(), Encoding::Brotli).expect("brotli");
        let mut out = String::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_string(&mut out)
            .expect("unbrotli");
        assert_eq!(out, text);
        assert!(br.len() < text.len() / 4);
    }
}
