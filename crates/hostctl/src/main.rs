//! Entry point of `hostctl`: parse the command line, run it, report any error on stderr.

use std::process::ExitCode;

use clap::Parser;
use hostctl::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    // clap prints usage errors itself and exits with status 2.
    let cli = Cli::parse();
    match hostctl::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole context chain on one line: "what: why: root cause".
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
