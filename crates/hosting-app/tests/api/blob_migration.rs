//! `hosting-app blobs migrate --to s3` and `blobs verify` on a platform with deploys:
//! into a bucket (the S3 client's in-memory store, so this runs on every backend under
//! test), resumable, byte-identical, and a verification that names what is missing.

use std::sync::Arc;

use hosting_app::blobs::{BlobStore, S3BlobStore};
use hosting_app::blobs_admin::{migrate, verify};
use hosting_app::domain::names::Sha256;

use crate::helpers::{sha256_hex, TestApp, ADMIN_TOKEN};

fn files() -> Vec<(String, Vec<u8>)> {
    (0..12)
        .map(|i| {
            (
                format!("/page{i:02}.html"),
                format!("<p>page {i}</p>{}", "x".repeat(i * 1000)).into_bytes(),
            )
        })
        .collect()
}

async fn deployed_platform() -> (TestApp, Vec<(String, Vec<u8>)>) {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "migrating").await;
    let files = files();
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    app.deploy_digest(ADMIN_TOKEN, "migrating", &borrowed).await;
    (app, files)
}

fn in_memory_bucket() -> Arc<S3BlobStore> {
    Arc::new(S3BlobStore::new(
        Arc::new(object_store::memory::InMemory::new()),
        "blobs",
        8 * 1024 * 1024,
        4,
    ))
}

#[tokio::test]
async fn migrating_copies_every_blob_byte_identical_and_a_second_run_copies_nothing() {
    // Arrange
    let (app, files) = deployed_platform().await;
    let target = in_memory_bucket();

    // Act
    let first = migrate(
        app.state.store.as_ref(),
        &app.state.blobs,
        target.bucket(),
        4,
    )
    .await
    .expect("migrate");
    let second = migrate(
        app.state.store.as_ref(),
        &app.state.blobs,
        target.bucket(),
        4,
    )
    .await
    .expect("migrate again");

    // Assert
    assert_eq!(first.copied, files.len() as u64, "{first:?}");
    assert!(
        first.missing.is_empty() && first.corrupt.is_empty(),
        "{first:?}"
    );
    assert_eq!(
        second.copied, 0,
        "resumed, nothing left to copy: {second:?}"
    );
    assert_eq!(second.present, files.len() as u64);
    for (path, bytes) in &files {
        let sha = Sha256::parse(&sha256_hex(bytes)).expect("sha");
        let stored = target.read(&sha).await.expect("read").expect("copied");
        assert_eq!(stored.as_ref(), bytes.as_slice(), "{path} byte-identical");
    }
}

#[tokio::test]
async fn verify_passes_on_a_complete_store_and_names_a_missing_blob() {
    // Arrange
    let (app, files) = deployed_platform().await;
    let target = in_memory_bucket();
    migrate(
        app.state.store.as_ref(),
        &app.state.blobs,
        target.bucket(),
        4,
    )
    .await
    .expect("migrate");
    let as_store: Arc<dyn BlobStore> = target.clone();

    // Act
    let complete = verify(app.state.store.as_ref(), &as_store)
        .await
        .expect("verify");
    let lost = Sha256::parse(&sha256_hex(&files[3].1)).expect("sha");
    target.delete(&lost).await.expect("delete");
    let incomplete = verify(app.state.store.as_ref(), &as_store)
        .await
        .expect("verify");

    // Assert
    assert_eq!(complete.checked, files.len() as u64);
    assert!(
        complete.missing.is_empty() && complete.corrupt.is_empty(),
        "{complete:?}"
    );
    assert_eq!(incomplete.missing, vec![lost]);
    // The platform's own store verifies too (any backend).
    let own = verify(app.state.store.as_ref(), &app.state.blobs)
        .await
        .expect("verify own store");
    assert_eq!(own.checked, files.len() as u64);
    assert!(own.missing.is_empty() && own.corrupt.is_empty(), "{own:?}");
}
