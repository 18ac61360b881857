//! Operator commands on the platform's data: `hosting-app admin token USER` issues a new
//! API token, `hosting-app admin password USER` sets a dashboard password (like Gitea's
//! `admin user` commands). They open the same database as the server, embedded (SQLite,
//! also while the server runs: WAL mode lets both write) or cluster (PostgreSQL), so an
//! operator who lost the first admin's token gets back in without deleting anything.

use std::io::{IsTerminal, Read, Write};
use std::sync::Arc;

use anyhow::{bail, Context};

use crate::admin_cli::{AdminArgs, AdminCommand};
use crate::audit::{self, Actor};
use crate::config::Config;
use crate::http::auth::hash_password;
use crate::sessions::hash::{generate_token, hash_token};
use crate::sessions::{RedisSessions, SessionStore, StoreSessions};
use crate::startup::{open_backends, open_shared};
use crate::store::{Store, UserRecord};

/// Runs one admin command against the configured database.
pub async fn run(config: &Config, args: AdminArgs) -> anyhow::Result<()> {
    let api = config.public_url(&config.control_host());
    match args.command {
        AdminCommand::Token { user, name } => {
            let issued = issue_token(config, &user, &name).await?;
            eprintln!(
                "Issued a new API token for {:?} (shown once, keep it safe):",
                issued.username
            );
            // A write that fails must fail the command: the token would be lost unseen.
            writeln!(std::io::stdout().lock(), "{}", issued.secret)
                .context("printing the token")?;
            // Not repeated here: whoever captures stdout alone keeps the only copy.
            eprintln!(
                "Use it with: hostctl login --server {} --token <the token above>",
                api.trim_end_matches('/')
            );
            Ok(())
        }
        AdminCommand::Password {
            user,
            password_stdin,
        } => {
            // Checked before asking, so nobody types a password twice for a typo'd name.
            let (store, _blobs) = open_backends(config).await?;
            existing_user(store.as_ref(), &user).await?;
            drop(store);
            let password = if password_stdin {
                password_from_stdin()?
            } else {
                password_from_terminal(&user)?
            };
            let username = set_password(config, &user, &password).await?;
            eprintln!("Set the dashboard password of {username:?}; sign in at {api}login");
            Ok(())
        }
    }
}

/// A token [`issue_token`] created.
pub struct IssuedToken {
    pub username: String,
    /// The secret, shown once; the database keeps only its hash.
    pub secret: String,
}

/// Creates a new API token named `name` for the user `username`.
pub async fn issue_token(
    config: &Config,
    username: &str,
    name: &str,
) -> anyhow::Result<IssuedToken> {
    let (store, _blobs) = open_backends(config).await?;
    let user = existing_user(store.as_ref(), username).await?;
    if user.disabled {
        bail!(
            "user {:?} is disabled, so its tokens are refused: enable it first \
             (hostctl users enable {})",
            user.username,
            user.id
        );
    }
    let secret = generate_token();
    let token = store
        .create_token(user.id, name, &hash_token(&secret))
        .await
        .context("storing the token")?;
    let event = audit::events::token("token.create", user.id, token.id, Some(name));
    audit::record_in(store.as_ref(), Actor::Operator, event).await;
    Ok(IssuedToken {
        username: user.username,
        secret,
    })
}

/// Sets the dashboard password of `username` and ends their sessions; returns the
/// user's name as stored.
pub async fn set_password(
    config: &Config,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    let (store, _blobs) = open_backends(config).await?;
    let user = existing_user(store.as_ref(), username).await?;
    // Validated before anything changes; argon2 is slow, but this is a one-shot command.
    let hash = hash_password(password).map_err(|e| anyhow::anyhow!("{e}"))?;
    store
        .set_password(user.id, &hash)
        .await
        .context("storing the password")?;
    audit::events::password_set(store.as_ref(), Actor::Operator, &user, None).await;
    // As a password change in the dashboard: whoever was signed in with the old one is out.
    let sessions: Arc<dyn SessionStore> = match open_shared(config)?.redis {
        Some(redis) => Arc::new(RedisSessions(redis)),
        None => Arc::new(StoreSessions(store.clone())),
    };
    if let Err(e) = sessions.delete_user(user.id).await {
        tracing::warn!(error = %e, "could not end the user's sessions");
    }
    Ok(user.username)
}

/// The user named `name`, or an error listing the users there are.
async fn existing_user(store: &dyn Store, name: &str) -> anyhow::Result<UserRecord> {
    let name = name.trim().to_lowercase();
    if let Some(user) = store.user_by_name(&name).await? {
        return Ok(user);
    }
    let users = store.list_users().await?;
    if users.is_empty() {
        bail!(
            "there is no user {name:?}: the database has no users yet (the first start of \
             the server creates `admin`)"
        );
    }
    let names: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
    bail!(
        "there is no user {name:?}; the users are: {}",
        names.join(", ")
    )
}

/// The first line of standard input, without its line ending.
fn password_from_stdin() -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut input)
        .context("reading the password from standard input")?;
    let line = input.lines().next().unwrap_or_default().to_owned();
    if line.is_empty() {
        bail!("standard input held no password (give it on the first line)");
    }
    Ok(line)
}

/// Asks twice on the terminal, without echo.
fn password_from_terminal(user: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "no terminal to ask for the password: pass it on standard input with \
             --password-stdin (never as an argument: it would show in `ps` and shell history)"
        );
    }
    let term = console::Term::stderr();
    eprint!("New dashboard password for {user:?} (at least 10 characters): ");
    let first = term.read_secure_line().context("reading the password")?;
    eprint!("The same again: ");
    let second = term.read_secure_line().context("reading the password")?;
    if first != second {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}
