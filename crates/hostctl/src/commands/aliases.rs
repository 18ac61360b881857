//! `hostctl aliases list | remove`, and `hostctl sites protect` (visitor access).

use anyhow::{bail, Context as _};
use hosting_api::{ProtectionScope, SetProtection};

use super::Context;
use crate::cli::{AliasesCommand, ProtectScope};
use crate::output::{self, outln};

/// Runs one `aliases` subcommand.
pub async fn run(ctx: &Context, command: AliasesCommand) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match command {
        AliasesCommand::List { site } => {
            let aliases = client.list_aliases(&site).await?;
            if ctx.json {
                return output::print_json(&aliases);
            }
            let rows: Vec<Vec<String>> = aliases
                .iter()
                .map(|alias| {
                    vec![
                        alias.name.clone(),
                        alias.url.clone(),
                        alias.deploy_id.clone(),
                        output::timestamp(&alias.updated_at),
                    ]
                })
                .collect();
            output::print_table(
                &["ALIAS", "URL", "DEPLOY", "UPDATED"],
                &rows,
                &format!("No aliases yet: deploy to one with `hostctl deploy DIR --site {site} --alias staging`"),
            )?;
        }
        AliasesCommand::Remove { site, alias } => {
            client.remove_alias(&site, &alias).await?;
            if !ctx.json {
                outln!("Removed alias {alias} of site {site}");
            }
        }
    }
    Ok(())
}

/// The password in `path`: its first line, without the line ending (so `echo pw > f` works).
pub fn read_password(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the password file {}", path.display()))?;
    let password = text.lines().next().unwrap_or_default().to_owned();
    if password.is_empty() {
        bail!("the password file {} is empty", path.display());
    }
    Ok(password)
}

/// `hostctl sites protect NAME (--password-file F [--scope all|previews] | --remove)`.
pub async fn protect(
    ctx: &Context,
    site: &str,
    password_file: Option<&std::path::Path>,
    scope: ProtectScope,
    remove: bool,
) -> anyhow::Result<()> {
    let client = ctx.client()?;
    if remove {
        client.unprotect_site(site).await?;
        if !ctx.json {
            outln!("Site {site} is public again");
        }
        return Ok(());
    }
    let Some(path) = password_file else {
        bail!("give --password-file FILE, or --remove");
    };
    let body = SetProtection {
        password: read_password(path)?,
        scope: match scope {
            ProtectScope::All => ProtectionScope::All,
            ProtectScope::Previews => ProtectionScope::Previews,
        },
    };
    let protection = client.protect_site(site, &body).await?;
    if ctx.json {
        return output::print_json(&protection);
    }
    match protection.scope {
        ProtectionScope::All => outln!("Site {site} now asks every visitor for the password"),
        ProtectionScope::Previews => outln!(
            "Site {site}'s previews and aliases now ask visitors for the password; the live site stays public"
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_the_files_first_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("pw");
        std::fs::write(&path, "correct horse\nsecond line\n").expect("write");
        assert_eq!(read_password(&path).expect("read"), "correct horse");
        std::fs::write(&path, "\n").expect("write");
        assert!(read_password(&path).is_err());
    }
}
