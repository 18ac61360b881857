//! `hostctl`, the site owner's command-line client for hosting: deploy a folder, roll
//! back, manage sites, tokens and (for admins) users.
//!
//! The binary (`main.rs`) only parses arguments and reports errors; everything else lives
//! here so tests can reach it.

pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod deploy;
pub mod output;

pub use cli::Cli;

/// Runs one parsed command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    commands::run(cli).await
}
