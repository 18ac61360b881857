//! `hostctl tokens create | list | revoke`.

use super::Context;
use crate::cli::TokensCommand;
use crate::output::{self, outln};

/// Runs one `tokens` subcommand.
pub async fn run(ctx: &Context, command: TokensCommand) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match command {
        TokensCommand::Create { name } => {
            let created = client.create_token(&name).await?;
            if ctx.json {
                return output::print_json(&created);
            }
            outln!(
                "Created token {} (id {})",
                created.token.name,
                created.token.id
            );
            outln!("Secret (shown only this once, store it now):");
            outln!("{}", created.secret);
        }
        TokensCommand::List => {
            let tokens = client.list_tokens().await?;
            if ctx.json {
                return output::print_json(&tokens);
            }
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|token| {
                    vec![
                        token.id.to_string(),
                        token.name.clone(),
                        output::timestamp(&token.created_at),
                        token
                            .last_used_at
                            .as_ref()
                            .map_or_else(|| "never".to_owned(), output::timestamp),
                    ]
                })
                .collect();
            output::print_table(&["ID", "NAME", "CREATED", "LAST USED"], &rows, "No tokens")?;
        }
        TokensCommand::Revoke { id } => {
            client.revoke_token(id).await?;
            if !ctx.json {
                outln!("Revoked token {id}");
            }
        }
    }
    Ok(())
}
