//! The command line of `hosting-app admin ...`: only its shape, so the configuration,
//! which parses the whole command line, need not import the commands themselves
//! (`admin.rs`), which use the configuration.

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Issue a new API token for USER and print it once (on stdout, alone); the user's
    /// other tokens keep working.
    Token {
        /// The user name (the first account is `admin`).
        user: String,
        /// Name of the token, as `hostctl tokens list` shows it.
        #[arg(long, default_value = "issued by hosting-app admin token")]
        name: String,
    },
    /// Set USER's dashboard password (at least 10 characters) and sign them out
    /// everywhere. Asked on the terminal, or read from standard input with
    /// `--password-stdin`; never taken from the command line (shell history, `ps`).
    Password {
        /// The user name (the first account is `admin`).
        user: String,
        /// Read the password from standard input (its first line).
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `hosting-app blobs ...`: the blob store's own operator commands.
#[derive(Debug, Args)]
pub struct BlobsArgs {
    #[command(subcommand)]
    pub command: BlobsCommand,
}

#[derive(Debug, Subcommand)]
pub enum BlobsCommand {
    /// Copy every recorded blob into the S3 bucket of `HOSTING_S3_*`, checking each
    /// digest; blobs already there are skipped, so it can run while the server serves and
    /// be run again (after switching `HOSTING_BLOB_STORE=s3`) to pick up what arrived meanwhile.
    Migrate {
        /// The store to copy to (only `s3`).
        #[arg(long, value_enum)]
        to: crate::config::storage::BlobStoreKind,
        /// The store to copy from; by default `HOSTING_BLOB_STORE`.
        #[arg(long, value_enum)]
        from: Option<crate::config::storage::BlobStoreKind>,
    },
    /// Check that every file of every deploy is in the blob store of `HOSTING_BLOB_STORE`
    /// and hashes to its digest; exits 1 naming the ones that do not.
    Verify,
}
