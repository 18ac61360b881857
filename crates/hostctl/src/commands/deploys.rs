//! `hostctl deploys list | rollback`.

use hosting_api::{Deploy, DeployState};

use super::{live_url, Context};
use crate::cli::DeploysCommand;
use crate::output::{self, outln};

/// Runs one `deploys` subcommand.
pub async fn run(ctx: &Context, command: DeploysCommand) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match command {
        DeploysCommand::List { site } => {
            let deploys = client.list_deploys(&site).await?;
            if ctx.json {
                return output::print_json(&deploys);
            }
            let rows: Vec<Vec<String>> = deploys.iter().map(row).collect();
            output::print_table(
                &[
                    "ID", "STATE", "LIVE", "FILES", "SIZE", "CREATED", "BY", "MESSAGE",
                ],
                &rows,
                &format!("No deploys of {site} yet"),
            )?;
        }
        DeploysCommand::Rollback { site, deploy_id } => {
            let deploy = client.rollback(&site, deploy_id).await?;
            if ctx.json {
                return output::print_json(&deploy);
            }
            outln!("Rolled back {} to deploy {}", deploy.site, deploy.id);
            outln!("Live:    {}", live_url(&client, &deploy).await);
        }
    }
    Ok(())
}

/// The state as the API spells it.
fn state_name(state: DeployState) -> &'static str {
    match state {
        DeployState::Uploading => "uploading",
        DeployState::Ready => "ready",
        DeployState::Expired => "expired",
        DeployState::Failed => "failed",
    }
}

fn row(deploy: &Deploy) -> Vec<String> {
    vec![
        deploy.id.clone(),
        state_name(deploy.state).to_owned(),
        if deploy.live { "*" } else { "" }.to_owned(),
        deploy.file_count.to_string(),
        output::human_size(deploy.total_bytes),
        output::timestamp(&deploy.created_at),
        deploy.created_by.clone(),
        deploy.message.clone().unwrap_or_default(),
    ]
}
