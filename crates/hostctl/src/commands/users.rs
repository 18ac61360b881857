//! `hostctl users create | list | disable | enable` (operator helpers; admin only).

use hosting_api::{CreateUser, Role, UpdateUser};

use super::auth::{role_name, user_row};
use super::Context;
use crate::cli::UsersCommand;
use crate::output;

/// Runs one `users` subcommand.
pub async fn run(ctx: &Context, command: UsersCommand) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match command {
        UsersCommand::Create { username, admin } => {
            let role = if admin { Role::Admin } else { Role::Member };
            let request = CreateUser {
                username,
                role: Some(role),
                password: None,
            };
            let created = client.create_user(&request).await?;
            if ctx.json {
                return output::print_json(&created);
            }
            let user = &created.user;
            println!(
                "Created user {} (id {}, {})",
                user.username,
                user.id,
                role_name(user.role)
            );
            println!("API token (shown only this once, hand it over securely):");
            println!("{}", created.token.secret);
        }
        UsersCommand::List => {
            let users = client.list_users().await?;
            if ctx.json {
                return output::print_json(&users);
            }
            let rows: Vec<Vec<String>> = users.iter().map(user_row).collect();
            output::print_table(
                &["ID", "USERNAME", "ROLE", "STATUS", "CREATED"],
                &rows,
                "No users",
            )?;
        }
        UsersCommand::Disable { id } => set_disabled(ctx, &client, id, true).await?,
        UsersCommand::Enable { id } => set_disabled(ctx, &client, id, false).await?,
    }
    Ok(())
}

async fn set_disabled(
    ctx: &Context,
    client: &crate::client::Client,
    id: i64,
    disabled: bool,
) -> anyhow::Result<()> {
    let user = client.update_user(id, &UpdateUser { disabled }).await?;
    if ctx.json {
        return output::print_json(&user);
    }
    let verb = if disabled { "Disabled" } else { "Enabled" };
    println!("{verb} user {} (id {})", user.username, user.id);
    Ok(())
}
