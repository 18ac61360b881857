//! Request bodies the API refuses or reads whole.
//!
//! Answering a request while its body is still arriving makes the server close the
//! connection with unread bytes in it, and the kernel then resets it: the client, or a
//! proxy streaming the upload (Nginx on the deploy route), sees a broken connection (Nginx
//! answers 502) instead of the 4xx. So a refused body is read on, up to [`DRAIN_LIMIT`]
//! more bytes, and dropped before the answer goes out.

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

/// The request's media type (`Content-Type` without parameters), lower-case; empty if none.
pub fn media_type(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Most bytes read (and dropped) after deciding to refuse a body.
pub const DRAIN_LIMIT: u64 = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("reading the body failed: {0}")]
    Read(#[from] axum::Error),
}

/// The whole body if it has at most `limit` bytes; a larger one is drained (bounded) and
/// refused.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut collected = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if collected.len() + chunk.len() > limit {
            drain_stream(stream).await;
            return Err(BodyError::TooLarge { limit });
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(collected.freeze())
}

/// Reads and drops a body that will not be used (at most [`DRAIN_LIMIT`] bytes).
pub async fn discard(body: Body) {
    drain_stream(body.into_data_stream()).await;
}

async fn drain_stream(mut stream: axum::body::BodyDataStream) {
    let mut drained: u64 = 0;
    while let Some(Ok(chunk)) = stream.next().await {
        drained += chunk.len() as u64;
        if drained >= DRAIN_LIMIT {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(chunks: Vec<&'static [u8]>) -> Body {
        Body::from_stream(futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c))),
        ))
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let body = chunked(vec![b"ab", b"cd", b"e"]);
        let bytes = read_limited(body, 5).await.expect("within the limit");
        assert_eq!(&bytes[..], b"abcde");
    }

    #[tokio::test]
    async fn a_larger_body_is_read_to_its_end_and_refused() {
        let consumed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = consumed.clone();
        let chunks = (0..10).map(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, std::io::Error>(Bytes::from_static(b"0123456789"))
        });
        let body = Body::from_stream(futures::stream::iter(chunks));

        let refused = read_limited(body, 25).await;

        assert!(matches!(refused, Err(BodyError::TooLarge { limit: 25 })));
        assert_eq!(
            consumed.load(std::sync::atomic::Ordering::SeqCst),
            10,
            "the rest of the body was drained, not left unread"
        );
    }
}
