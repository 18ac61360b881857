//! `hostctl sites create | list | delete`.

use anyhow::bail;

use super::{prompt, Context};
use crate::cli::SitesCommand;
use crate::output::{self, outln};

/// Runs one `sites` subcommand.
pub async fn run(ctx: &Context, command: SitesCommand) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match command {
        SitesCommand::Create { name } => {
            let site = client.create_site(&name).await?;
            if ctx.json {
                return output::print_json(&site);
            }
            outln!("Created site {}: {}", site.name, site.url);
        }
        SitesCommand::List => {
            let sites = client.list_sites().await?;
            if ctx.json {
                return output::print_json(&sites);
            }
            let rows: Vec<Vec<String>> = sites
                .iter()
                .map(|site| {
                    vec![
                        site.name.clone(),
                        site.url.clone(),
                        site.live_deploy_id
                            .clone()
                            .unwrap_or_else(|| "-".to_owned()),
                        output::timestamp(&site.updated_at),
                    ]
                })
                .collect();
            output::print_table(
                &["NAME", "URL", "LIVE DEPLOY", "UPDATED"],
                &rows,
                "No sites yet: deploy one with `hostctl deploy DIR --site NAME`",
            )?;
        }
        SitesCommand::Delete { name, yes } => {
            if !yes {
                let question = format!(
                    "Delete site {name} and all its deploys? This cannot be undone. [y/N] "
                );
                let answer = prompt(&question)?.unwrap_or_default().to_ascii_lowercase();
                if answer != "y" && answer != "yes" {
                    bail!("aborted: site {name} was not deleted (pass --yes to skip the question)");
                }
            }
            client.delete_site(&name).await?;
            if !ctx.json {
                outln!("Deleted site {name}");
            }
        }
        SitesCommand::Protect {
            name,
            password_file,
            scope,
            remove,
        } => {
            super::aliases::protect(ctx, &name, password_file.as_deref(), scope, remove).await?;
        }
        SitesCommand::Hsts {
            name,
            max_age,
            include_subdomains,
        } => super::hsts::run(ctx, &name, max_age, include_subdomains).await?,
    }
    Ok(())
}
