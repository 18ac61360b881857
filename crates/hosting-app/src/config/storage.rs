//! Where the embedded database and file contents live.

use std::path::PathBuf;

use clap::Args;

/// Where file contents are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BlobStoreKind {
    Postgres,
    Folder,
    /// An S3 object store (`HOSTING_S3_*`).
    S3,
}

/// The data folder and the blob store.
#[derive(Debug, Clone, Args)]
pub struct Storage {
    /// Folder for the SQLite database and the blob store (embedded mode).
    #[arg(long, env = "HOSTING_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Where file contents live in cluster mode: `postgres` (default) or `folder` (HOSTING_DATA_DIR on a shared volume) or `s3` (HOSTING_S3_*).
    #[arg(long, env = "HOSTING_BLOB_STORE")]
    pub blob_store: Option<BlobStoreKind>,
}
