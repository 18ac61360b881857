//! Entry point of `hostctl`: parse the command line, run it, report any error on stderr.

use std::process::ExitCode;

use clap::Parser;
use hostctl::{output, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    // clap prints usage errors itself and exits with status 2.
    let cli = Cli::parse();
    let json = cli.json;
    match hostctl::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`hostctl ... | head`): nobody is left to tell.
        Err(error) if output::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) if json => {
            eprintln!("{}", output::error_json(&error));
            ExitCode::FAILURE
        }
        Err(error) => {
            // `{:#}` prints the whole context chain on one line: "what: why: root cause".
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
