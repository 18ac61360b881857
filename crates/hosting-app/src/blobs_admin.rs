//! `hosting-app blobs migrate --to s3` and `hosting-app blobs verify`: moving the site
//! files of a running platform into an S3 bucket, and checking any blob store against
//! the deploys that need it. Both walk the database's blob list in digest order, a page
//! at a time, so they hold one page in memory whatever the platform's size.

use std::sync::Arc;

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use sha2::Digest;

use crate::admin_cli::{BlobsArgs, BlobsCommand};
use crate::blobs::s3::Bucket;
use crate::blobs::{BlobError, BlobStore, S3BlobStore};
use crate::config::{BlobStoreKind, Config};
use crate::domain::names::Sha256;
use crate::store::Store;

/// Blobs listed per database round trip.
const PAGE: u32 = 500;
/// Blobs checked at once by `verify` (reads of a remote store take ~45 ms each).
const VERIFY_CONCURRENCY: usize = 16;

/// What a migration did; `missing` and `corrupt` name blobs it could not copy.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MigrateReport {
    /// Copied into the bucket by this run.
    pub copied: u64,
    /// Already in the bucket with the right size (an earlier run, or uploaded there).
    pub present: u64,
    /// Recorded in the database but absent from the source store.
    pub missing: Vec<Sha256>,
    /// In the source store with bytes that do not hash to their digest (never copied).
    pub corrupt: Vec<Sha256>,
}

/// What a verification found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub checked: u64,
    pub missing: Vec<Sha256>,
    pub corrupt: Vec<Sha256>,
}

pub async fn run(mut config: Config, args: BlobsArgs) -> anyhow::Result<()> {
    match args.command {
        BlobsCommand::Migrate { to, from } => {
            anyhow::ensure!(
                to == BlobStoreKind::S3,
                "blobs migrate copies into S3 only (--to s3)"
            );
            if let Some(from) = from {
                config.storage.blob_store = Some(from);
            }
            anyhow::ensure!(
                config.blob_store_kind() != BlobStoreKind::S3,
                "the source is already s3: give --from postgres or --from folder"
            );
            config.s3.validate(true).map_err(anyhow::Error::msg)?;
            let target = S3BlobStore::open(&config.s3).context("opening the S3 bucket")?;
            let (store, source) = crate::startup::open_backends(&config).await?;
            let report = migrate(
                store.as_ref(),
                &source,
                target.bucket(),
                config.s3.s3_concurrency,
            )
            .await?;
            println!(
                "copied {}, already present {}, missing from the source {}, corrupt in the source {}",
                report.copied,
                report.present,
                report.missing.len(),
                report.corrupt.len()
            );
            fail_on("missing from the source", &report.missing)?;
            fail_on("corrupt in the source", &report.corrupt)
        }
        BlobsCommand::Verify => {
            let (store, blobs) = crate::startup::open_backends(&config).await?;
            let report = verify(store.as_ref(), &blobs).await?;
            println!(
                "checked {}, missing {}, corrupt {}",
                report.checked,
                report.missing.len(),
                report.corrupt.len()
            );
            fail_on("missing", &report.missing)?;
            fail_on("corrupt", &report.corrupt)
        }
    }
}

/// Names the blobs of a failed check on stderr and fails the command.
fn fail_on(what: &str, blobs: &[Sha256]) -> anyhow::Result<()> {
    if blobs.is_empty() {
        return Ok(());
    }
    for sha in blobs {
        eprintln!("{what}: {sha}");
    }
    anyhow::bail!("{} blobs {what}", blobs.len())
}

/// The outcome of one blob's copy.
enum Copy {
    Copied,
    Present,
    Missing(Sha256),
    Corrupt(Sha256),
}

/// Copies every blob the database records from `source` into `target`, `concurrency`
/// at a time. Resumable: a blob already in the bucket at its size is skipped (its key
/// is its digest, and only verified bytes are ever written). A store failure stops the
/// run with an error; running it again continues where it stopped.
pub async fn migrate(
    store: &dyn Store,
    source: &Arc<dyn BlobStore>,
    target: &Bucket,
    concurrency: usize,
) -> anyhow::Result<MigrateReport> {
    let mut report = MigrateReport::default();
    let mut after: Option<Sha256> = None;
    loop {
        let page = store
            .blob_page(after.as_ref(), PAGE, false)
            .await
            .context("listing blobs")?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        let outcomes: Vec<Copy> = futures::stream::iter(page)
            .map(|(sha, size)| copy_one(source.as_ref(), target, sha, size))
            .buffer_unordered(concurrency.max(1))
            .try_collect()
            .await?;
        for outcome in outcomes {
            match outcome {
                Copy::Copied => report.copied += 1,
                Copy::Present => report.present += 1,
                Copy::Missing(sha) => report.missing.push(sha),
                Copy::Corrupt(sha) => report.corrupt.push(sha),
            }
        }
        tracing::info!(
            copied = report.copied,
            present = report.present,
            "migrating blobs"
        );
    }
    Ok(report)
}

async fn copy_one(
    source: &dyn BlobStore,
    target: &Bucket,
    sha: Sha256,
    size: u64,
) -> Result<Copy, BlobError> {
    if target.size(&sha).await? == Some(size) {
        return Ok(Copy::Present);
    }
    let Some(bytes) = source.read(&sha).await? else {
        return Ok(Copy::Missing(sha));
    };
    if !hashes_to(&bytes, &sha) {
        return Ok(Copy::Corrupt(sha));
    }
    target.put(&sha, bytes).await?;
    Ok(Copy::Copied)
}

/// Reads every blob a deploy's uploaded files name from `blobs` and hashes it.
pub async fn verify(store: &dyn Store, blobs: &Arc<dyn BlobStore>) -> anyhow::Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut after: Option<Sha256> = None;
    loop {
        let page = store
            .blob_page(after.as_ref(), PAGE, true)
            .await
            .context("listing the deploys' blobs")?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        let checked: Vec<(Sha256, Option<bool>)> = futures::stream::iter(page)
            .map(|(sha, _)| async move {
                let bytes = blobs.read(&sha).await?;
                let sound = bytes.map(|bytes| hashes_to(&bytes, &sha));
                Ok::<_, BlobError>((sha, sound))
            })
            .buffer_unordered(VERIFY_CONCURRENCY)
            .try_collect()
            .await?;
        for (sha, sound) in checked {
            report.checked += 1;
            match sound {
                None => report.missing.push(sha),
                Some(false) => report.corrupt.push(sha),
                Some(true) => {}
            }
        }
    }
    Ok(report)
}

fn hashes_to(bytes: &[u8], sha: &Sha256) -> bool {
    Sha256::from_digest(&sha2::Sha256::digest(bytes)) == *sha
}
