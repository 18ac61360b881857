//! One module per command group; [`run`] dispatches a parsed command line to them.

mod aliases;
pub(crate) mod analytics;
mod audit;
mod auth;
mod deploy;
mod deploys;
mod domains;
mod hsts;
mod sites;
mod tokens;
mod users;
mod webhooks;

use std::io::{self, BufRead, Write};

use anyhow::Context as _;
use hosting_api::Deploy;

use crate::cli::{Cli, Command};
use crate::client::Client;
use crate::config::{self, Credentials};

/// What every command needs besides its own arguments: the global flags.
pub struct Context {
    /// `--json`: machine-readable output on stdout.
    pub json: bool,
    server: Option<String>,
    token: Option<String>,
}

impl Context {
    /// The credentials to use: flags and env first, then the stored login.
    pub fn credentials(&self) -> anyhow::Result<Credentials> {
        let stored = if self.server.is_some() && self.token.is_some() {
            None
        } else {
            // No config directory at all just means nothing was ever stored.
            match config::default_path() {
                Ok(path) => config::load(&path)?,
                Err(_) => None,
            }
        };
        Ok(config::resolve(
            self.server.as_deref(),
            self.token.as_deref(),
            stored,
        )?)
    }

    /// An API client for [`Context::credentials`].
    pub fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(&self.credentials()?)?)
    }

    /// A progress note for humans: on stdout normally, on stderr under `--json` so the
    /// JSON on stdout stays parseable.
    pub fn note(&self, message: &str) {
        if self.json {
            eprintln!("{message}");
        } else {
            // A closed stdout is reported by the command's next real output; a progress
            // note is not worth failing over.
            let _ = crate::output::out(&format!("{message}\n"));
        }
    }
}

/// Runs `cli` to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(path) = &cli.ca_cert {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading the CA certificate {}", path.display()))?;
        crate::client::trust_ca_pem(&pem)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("loading the CA certificate {}", path.display()))?;
    }
    let ctx = Context {
        json: cli.json,
        server: cli.server,
        token: cli.token,
    };
    match cli.command {
        Command::Login => auth::login(&ctx).await,
        Command::Logout => auth::logout(&ctx),
        Command::Whoami => auth::whoami(&ctx).await,
        Command::Deploy(args) => deploy::run(&ctx, args).await,
        Command::Sites(command) => sites::run(&ctx, command).await,
        Command::Deploys(command) => deploys::run(&ctx, command).await,
        Command::Domains(command) => domains::run(&ctx, command).await,
        Command::Tokens(command) => tokens::run(&ctx, command).await,
        Command::Users(command) => users::run(&ctx, command).await,
        Command::Analytics(args) => analytics::run(&ctx, args).await,
        Command::Aliases(command) => aliases::run(&ctx, command).await,
        Command::Audit(args) => audit::run(&ctx, args).await,
        Command::Webhooks(command) => webhooks::run(&ctx, command).await,
    }
}

/// Asks `question` on stderr and reads one line from stdin; `None` at end of input.
fn prompt(question: &str) -> anyhow::Result<Option<String>> {
    eprint!("{question}");
    io::stderr().flush().context("cannot write to stderr")?;
    let mut line = String::new();
    let read = io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read from stdin")?;
    Ok((read > 0).then(|| line.trim().to_owned()))
}

/// The site's public URL, for telling the user where a deploy went live.
async fn live_url(client: &Client, deploy: &Deploy) -> String {
    match client.get_site(&deploy.site).await {
        Ok(site) => site.url,
        // The deploy already went live, so failing the command over this lookup would
        // misreport what happened; the preview URL minus its deploy prefix is the same host.
        Err(_) => deploy
            .preview_url
            .replacen(&format!("{}--", deploy.id), "", 1),
    }
}
