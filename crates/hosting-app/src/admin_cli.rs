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
