//! `hosting-app [serve|migrate|gc]`: see `hosting-app --help`.

use anyhow::Context;

/// mimalloc: the hot path allocates small, short-lived buffers, which glibc's malloc
/// serves markedly slower under concurrency (measured in BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser;
use hosting_app::config::{Cli, Command};
use hosting_app::{gc, startup, telemetry, Application};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = cli.config;
    telemetry::init_logging(&config.log_format);
    config.load_secret_files().map_err(anyhow::Error::msg)?;
    config.validate().map_err(anyhow::Error::msg)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            tracing::info!(config = %config.redacted(), "starting hosting-app");
            let app = Application::build(config.clone()).await?;
            announce(&app, &config);
            app.run_until_stopped().await
        }
        Command::Migrate => {
            startup::open_backends(&config).await.context("migrating")?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Gc => {
            // No listeners: this runs beside a stopped server (a running one collects by itself).
            let (store, blobs) = startup::open_backends(&config).await?;
            let shared = startup::open_shared(&config)?;
            let app = hosting_app::state::App::new(config, store, blobs, shared.state);
            let report = gc::run_once(&app).await?;
            tracing::info!(?report, "garbage collection done");
            Ok(())
        }
    }
}

/// Tells a first-time user where things are and what to run next.
fn announce(app: &Application, config: &hosting_app::Config) {
    let api = config.public_url(&config.control_host());
    if let Some(token) = &app.bootstrap_token {
        println!(
            "\nCreated the first admin account. Its API token (shown once, keep it safe):\n\n    {token}\n\n\
             Next: log in and deploy a folder:\n\n    \
             hostctl login --server {} --token {token}\n    hostctl deploy ./public --site my-site\n",
            api.trim_end_matches('/')
        );
    }
    println!(
        "hosting-app is listening: API {api}api/v1, sites at {}, management on {}",
        config.public_url(&format!("<site>.{}", config.base_domain)),
        app.mgmt_addr()
    );
}
