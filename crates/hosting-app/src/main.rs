//! `hosting-app [serve|migrate|gc|admin]`: see `hosting-app --help`.

use std::io::Write;

use anyhow::Context;

/// mimalloc: the hot path allocates small, short-lived buffers, which glibc's malloc
/// serves markedly slower under concurrency (measured in BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser;
use hosting_app::config::{Cli, Command};
use hosting_app::{admin, gc, startup, telemetry, Application};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = cli.config;
    let command = cli.command.unwrap_or(Command::Serve);
    match &command {
        // Its result goes to stdout alone; logs go to stderr.
        Command::Admin(_) | Command::Blobs(_) => telemetry::init_command_logging(),
        _ => telemetry::init_logging(config.logging.log_format.as_str()),
    }
    // Every refused setting on its own line (`ConfigErrors`), exit code 1.
    config.load_secret_files()?;
    config.validate()?;
    match command {
        Command::Serve => {
            tracing::info!(
                version = env!("CARGO_PKG_VERSION"),
                mode = if config.is_cluster() { "cluster" } else { "embedded" },
                listen = %config.listeners.listen,
                mgmt_listen = %config.listeners.mgmt_listen,
                data_dir = %config.storage.data_dir.display(),
                "starting hosting-app"
            );
            // Every setting (secrets redacted), for whoever debugs a deployment.
            tracing::debug!(config = ?config, "configuration");
            let app = Application::build(config).await?;
            announce(&app);
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
        Command::Admin(args) => admin::run(&config, args).await,
        Command::Blobs(args) => hosting_app::blobs_admin::run(config, args).await,
    }
}

/// Tells a first-time user where things are and what to run next. Printed once
/// `build` has bound every listener and, on a first start, created the first admin.
fn announce(app: &Application) {
    // Not println!: it panics when stdout is closed (a log pipe that went away), and
    // the server must not die over its banner.
    let say = |text: std::fmt::Arguments| {
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    };
    let state = app.state();
    let config = &state.config;
    let api = config.public_url(&config.control_host());
    let api = api.trim_end_matches('/');
    if let Some(token) = &app.bootstrap_token {
        say(format_args!(
            "\nCreated the first admin account. Its API token (shown once, keep it safe):\n\n    {token}\n\n\
             Next: log in and deploy a folder:\n\n    \
             hostctl login --server {api} --token {token}\n    hostctl deploy ./public --site my-site\n\n\
             Lost it? `hosting-app admin token admin` issues a new one, \
             `hosting-app admin password admin` sets a dashboard password.\n"
        ));
    }
    say(format_args!(
        "hosting-app is listening: API {api}/api/v1, sites at {}, management on {}",
        config.public_url(&format!("<site>.{}", config.public.base_domain)),
        app.mgmt_addr()
    ));
    if app.bootstrap_token.is_none() {
        say(format_args!(
            "No admin token at hand? `hosting-app admin token admin` issues a new one \
             (also while this server runs)."
        ));
    }
}
