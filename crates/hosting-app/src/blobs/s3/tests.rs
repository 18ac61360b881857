//! The S3 store against the client's in-memory object store (same trait as the real
//! client), and against a closed port for outages. The Garage cluster runs are the
//! API suite with `HOSTING_BLOB_STORE=s3` and `tests/cluster/s3.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::memory::InMemory;
use object_store::ObjectStore;
use sha2::Digest;

use super::*;

const PART: u64 = 5 * 1024 * 1024;

fn store() -> (Arc<InMemory>, S3BlobStore) {
    let memory = Arc::new(InMemory::new());
    let blobs = S3BlobStore::new(memory.clone(), "/site-files/", PART, 4);
    (memory, blobs)
}

fn digest(bytes: &[u8]) -> Sha256 {
    Sha256::from_digest(&sha2::Sha256::digest(bytes))
}

async fn put(
    blobs: &S3BlobStore,
    bytes: &[u8],
    expected: Option<&Sha256>,
) -> Result<(Sha256, u64), BlobError> {
    let mut writer = blobs.writer(64 * 1024 * 1024).await?;
    for chunk in bytes.chunks(100_000) {
        writer.write(chunk).await?;
    }
    writer.commit(expected).await
}

async fn object(memory: &InMemory, key: &str) -> Option<Bytes> {
    match memory.get(&object_store::path::Path::from(key)).await {
        Ok(result) => Some(result.bytes().await.expect("body")),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("in-memory store: {e}"),
    }
}

#[tokio::test]
async fn a_verified_blob_is_the_object_prefix_slash_digest() {
    let (memory, blobs) = store();
    let (sha, len) = put(&blobs, b"hello", None).await.expect("put");
    assert_eq!(len, 5);
    let key = format!("site-files/{sha}");
    assert_eq!(
        object(&memory, &key).await,
        Some(Bytes::from_static(b"hello"))
    );
    assert_eq!(
        blobs.read(&sha).await.expect("read"),
        Some(Bytes::from_static(b"hello"))
    );
}

#[tokio::test]
async fn a_wrong_digest_uploads_nothing() {
    let (memory, blobs) = store();
    let claimed = digest(b"other bytes");
    let err = put(&blobs, b"hello", Some(&claimed))
        .await
        .expect_err("refused");
    assert!(matches!(err, BlobError::DigestMismatch { .. }));
    let listed: Vec<_> = memory.list(None).collect().await;
    assert!(listed.is_empty(), "objects were written: {listed:?}");
}

#[tokio::test]
async fn writes_past_the_limit_are_refused() {
    let (_, blobs) = store();
    let mut writer = blobs.writer(4).await.expect("writer");
    assert!(matches!(
        writer.write(b"hello").await,
        Err(BlobError::TooLarge { limit: 4 })
    ));
}

#[tokio::test]
async fn a_file_above_the_part_size_goes_up_in_parts_and_reads_back_whole_or_by_range() {
    let (_, blobs) = store();
    let bytes: Vec<u8> = (0..(2 * PART + 1234)).map(|i| (i % 251) as u8).collect();
    let (sha, len) = put(&blobs, &bytes, Some(&digest(&bytes)))
        .await
        .expect("put");
    assert_eq!(len, bytes.len() as u64);
    let read = blobs.read(&sha).await.expect("read").expect("present");
    assert_eq!(read.as_ref(), bytes.as_slice());
    let range = blobs
        .read_range(&sha, PART - 10..PART + 10)
        .await
        .expect("range")
        .expect("present");
    assert_eq!(
        range.as_ref(),
        &bytes[(PART - 10) as usize..(PART + 10) as usize]
    );
}

#[tokio::test]
async fn a_missing_blob_is_none_not_an_error() {
    let (_, blobs) = store();
    let sha = digest(b"never stored");
    assert!(blobs.read(&sha).await.expect("read").is_none());
    assert!(blobs.get(&sha).await.expect("get").is_none());
    assert!(blobs.read_range(&sha, 0..1).await.expect("range").is_none());
}

#[tokio::test]
async fn a_batch_uploads_each_distinct_entry_and_spills_past_its_bound() {
    let (memory, blobs) = store();
    // Spill after 10 bytes staged: the first two entries go up before publish.
    let mut batch = blobs.batch(Some(10)).expect("own batch");
    let entries: [&[u8]; 4] = [b"first file", b"second file", b"first file", b"third"];
    let mut finished = Vec::new();
    let batch = tokio::task::spawn_blocking(move || {
        for bytes in entries {
            batch.start(Some(digest(bytes)), 1024).expect("start");
            batch.write(bytes).expect("write");
            finished.push(batch.finish().expect("finish"));
        }
        (batch, finished)
    })
    .await
    .expect("staging thread");
    let (batch, finished) = batch;
    assert_eq!(finished.len(), 4);
    let first = digest(b"first file");
    assert!(
        object(&memory, &format!("site-files/{first}"))
            .await
            .is_some(),
        "the spilled entry is uploaded before publish"
    );
    let mut published = batch.publish().await.expect("publish");
    published.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let mut expected: Vec<(Sha256, u64)> = [&b"first file"[..], b"second file", b"third"]
        .iter()
        .map(|bytes| (digest(bytes), bytes.len() as u64))
        .collect();
    expected.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    assert_eq!(published, expected);
    for (sha, _) in &expected {
        assert!(
            blobs.read(sha).await.expect("read").is_some(),
            "{sha} stored"
        );
    }
}

#[tokio::test]
async fn a_batch_entry_with_the_wrong_digest_is_refused_and_not_uploaded() {
    let (memory, blobs) = store();
    let mut batch = blobs.batch(None).expect("own batch");
    let err = tokio::task::spawn_blocking(move || {
        batch.start(Some(digest(b"claimed")), 1024).expect("start");
        batch.write(b"actual").expect("write");
        batch.finish().expect_err("mismatch")
    })
    .await
    .expect("staging thread");
    assert!(matches!(err, BlobError::DigestMismatch { .. }));
    assert!(memory.list(None).collect::<Vec<_>>().await.is_empty());
}

#[tokio::test]
async fn delete_many_removes_the_objects_and_ignores_missing_ones() {
    let (_, blobs) = store();
    let (a, _) = put(&blobs, b"a", None).await.expect("put");
    let (b, _) = put(&blobs, b"b", None).await.expect("put");
    let never = digest(b"never stored");
    blobs
        .delete_many(&[a.clone(), never, b.clone()])
        .await
        .expect("delete");
    assert!(blobs.read(&a).await.expect("read").is_none());
    assert!(blobs.read(&b).await.expect("read").is_none());
}

#[tokio::test]
async fn concurrent_reads_of_one_blob_share_one_load() {
    let coalesce = Arc::new(coalesce::Coalesce::default());
    let loads = Arc::new(AtomicUsize::new(0));
    let (release, gate) = tokio::sync::watch::channel(false);
    let key = digest(b"popular");
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (coalesce, loads, key, mut gate) =
                (coalesce.clone(), loads.clone(), key.clone(), gate.clone());
            tokio::spawn(async move {
                coalesce
                    .run(&key, async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        let _ = gate.wait_for(|open| *open).await;
                        Ok(Some(Bytes::from_static(b"bytes")))
                    })
                    .await
            })
        })
        .collect();
    // Every reader has joined the one load before it is let through.
    while coalesce.in_flight() == 0 || loads.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    release.send(true).expect("release");
    for reader in readers {
        let read = reader.await.expect("reader").expect("read");
        assert_eq!(read, Some(Bytes::from_static(b"bytes")));
    }
    assert_eq!(
        loads.load(Ordering::SeqCst),
        1,
        "one load for eight readers"
    );
    assert_eq!(coalesce.in_flight(), 0, "nothing kept after the read");
}

#[tokio::test]
async fn a_failed_read_is_not_reused_by_the_next_one() {
    let coalesce = coalesce::Coalesce::default();
    let key = digest(b"flaky");
    let failed = coalesce
        .run(&key, async { Err(BlobError::Unavailable("down".into())) })
        .await;
    assert!(matches!(failed, Err(BlobError::Unavailable(_))));
    let next = coalesce
        .run(&key, async { Ok(Some(Bytes::from_static(b"up"))) })
        .await
        .expect("read");
    assert_eq!(next, Some(Bytes::from_static(b"up")));
}

/// A store nobody listens for: every operation is `Unavailable` (a 503), quickly.
#[tokio::test]
async fn an_unreachable_store_is_unavailable_not_an_error_of_the_request() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let mut settings = crate::config::Config::for_tests("unused").s3;
    settings.s3_endpoint = Some(format!("http://127.0.0.1:{port}"));
    settings.s3_bucket = Some("blobs".into());
    settings.s3_access_key_id = Some("GK0000".into());
    settings.s3_secret_access_key = Some("secret".into());
    settings.s3_timeout = Duration::from_secs(3);
    let blobs = S3BlobStore::open(&settings).expect("client");
    let sha = digest(b"x");
    assert!(matches!(
        blobs.read(&sha).await,
        Err(BlobError::Unavailable(_))
    ));
    assert!(matches!(
        put(&blobs, b"x", None).await,
        Err(BlobError::Unavailable(_))
    ));
    assert!(matches!(
        blobs.probe().await,
        Some(Err(BlobError::Unavailable(_)))
    ));
}
