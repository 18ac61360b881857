//! `login`, `logout` and `whoami`.

use anyhow::{bail, Context as _};

use super::users::{quota_lines, role_name};
use super::{prompt, Context};
use crate::client::Client;
use crate::config::{self, Credentials};
use crate::output::{self, outln};

/// Verifies the token with `GET /whoami`, then stores server and token.
pub async fn login(ctx: &Context) -> anyhow::Result<()> {
    let Some(server) = ctx.server.as_deref() else {
        bail!("login needs a server: pass --server URL (or set HOSTCTL_SERVER)");
    };
    let server = config::normalize_server(server)?;
    let token = match ctx.token.clone() {
        Some(token) => token,
        None => prompt("API token: ")?.unwrap_or_default(),
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        bail!("no token given: pass --token TOKEN or type it when asked");
    }
    let credentials = Credentials { server, token };
    let user = Client::new(&credentials)?.whoami().await?;
    let path = config::default_path()?;
    config::save(&path, &credentials)?;
    if ctx.json {
        output::print_json(&user)
    } else {
        outln!("Logged in to {} as {}", credentials.server, user.username);
        Ok(())
    }
}

/// Deletes the stored login.
pub fn logout(ctx: &Context) -> anyhow::Result<()> {
    let path = config::default_path()?;
    let removed =
        config::remove(&path).with_context(|| format!("cannot log out: {}", path.display()))?;
    if !ctx.json {
        match removed {
            Some(credentials) => outln!("Logged out of {}", credentials.server),
            None => outln!("Not logged in"),
        }
    }
    Ok(())
}

/// Shows the user the token belongs to.
pub async fn whoami(ctx: &Context) -> anyhow::Result<()> {
    let credentials = ctx.credentials()?;
    let me = Client::new(&credentials)?.whoami_with_quota().await?;
    if ctx.json {
        return output::print_json(&me);
    }
    let user = &me.user;
    outln!(
        "{} ({}) on {}",
        user.username,
        role_name(user.role),
        credentials.server
    );
    if user.disabled {
        outln!("This account is disabled.");
    }
    output::out(&quota_lines(&me.quota))?;
    Ok(())
}
