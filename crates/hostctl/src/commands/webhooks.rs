//! `hostctl webhooks add | list | remove | deliveries --site NAME`.

use hosting_api::CreateWebhook;

use super::Context;
use crate::cli::WebhooksCommand;
use crate::output::{self, outln};

/// Runs one `webhooks` subcommand.
pub async fn run(ctx: &Context, command: WebhooksCommand) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match command {
        WebhooksCommand::Add { site, url, events } => {
            let created = client
                .add_webhook(&site, &CreateWebhook { url, events })
                .await?;
            if ctx.json {
                return output::print_json(&created);
            }
            outln!(
                "Added webhook {} of {}: {} ({})",
                created.webhook.id,
                created.webhook.site,
                created.webhook.url,
                created.webhook.events.join(", ")
            );
            outln!("Signing secret (shown only this once, store it now):");
            outln!("{}", created.secret);
        }
        WebhooksCommand::List { site } => {
            let hooks = client.list_webhooks(&site).await?;
            if ctx.json {
                return output::print_json(&hooks);
            }
            let rows: Vec<Vec<String>> = hooks
                .iter()
                .map(|h| {
                    vec![
                        h.id.to_string(),
                        h.url.clone(),
                        h.events.join(","),
                        output::timestamp(&h.created_at),
                    ]
                })
                .collect();
            output::print_table(&["ID", "URL", "EVENTS", "CREATED"], &rows, "No webhooks")?;
        }
        WebhooksCommand::Remove { site, id } => {
            client.remove_webhook(&site, id).await?;
            if !ctx.json {
                outln!("Removed webhook {id} of {site}");
            }
        }
        WebhooksCommand::Deliveries { site, id } => {
            let deliveries = client.webhook_deliveries(&site, id).await?;
            if ctx.json {
                return output::print_json(&deliveries);
            }
            let rows: Vec<Vec<String>> = deliveries
                .iter()
                .map(|d| {
                    let last = d.log.last();
                    vec![
                        output::timestamp(&d.created_at),
                        d.event.clone(),
                        d.status.clone(),
                        d.attempts.to_string(),
                        last.and_then(|a| a.status_code)
                            .map_or_else(|| "-".into(), |s| s.to_string()),
                        last.and_then(|a| a.error.clone()).unwrap_or_default(),
                    ]
                })
                .collect();
            output::print_table(
                &[
                    "CREATED",
                    "EVENT",
                    "STATUS",
                    "ATTEMPTS",
                    "LAST ANSWER",
                    "LAST ERROR",
                ],
                &rows,
                "No deliveries",
            )?;
        }
    }
    Ok(())
}
