//! `hostctl users create | list | disable | enable | quota` (operator helpers; admin only).

use hosting_api::{CreateUser, Quota, QuotaItem, Role, SetQuota, UpdateUser, User};

use super::Context;
use crate::cli::{QuotaArgs, QuotaLimit, UsersCommand};
use crate::output::{self, outln};

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
            outln!(
                "Created user {} (id {}, {})",
                user.username,
                user.id,
                role_name(user.role)
            );
            outln!("API token (shown only this once, hand it over securely):");
            outln!("{}", created.token.secret);
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
        UsersCommand::Quota(args) => quota(ctx, &client, args).await?,
    }
    Ok(())
}

/// Shows a user's quota; with limits given, changes only those (the others are kept).
async fn quota(
    ctx: &Context,
    client: &crate::client::Client,
    args: QuotaArgs,
) -> anyhow::Result<()> {
    let current = client.user_quota(args.id).await?;
    let quota = if args.storage.is_none() && args.sites.is_none() && args.deploys_per_hour.is_none()
    {
        current
    } else {
        let body = SetQuota {
            storage_bytes: merged(
                &current.storage_bytes,
                args.storage.map(|l| map_limit(l, |s| s.0)),
            ),
            sites: merged(&current.sites, args.sites),
            deploys_per_hour: merged(&current.deploys_per_hour, args.deploys_per_hour),
        };
        client.set_user_quota(args.id, &body).await?
    };
    if ctx.json {
        return output::print_json(&quota);
    }
    output::out(&quota_lines(&quota))?;
    Ok(())
}

fn map_limit<T, U>(limit: QuotaLimit<T>, f: impl FnOnce(T) -> U) -> QuotaLimit<U> {
    match limit {
        QuotaLimit::Default => QuotaLimit::Default,
        QuotaLimit::Unlimited => QuotaLimit::Unlimited,
        QuotaLimit::Limit(value) => QuotaLimit::Limit(f(value)),
    }
}

/// The override to send: the new limit, or the current override when none was given.
fn merged(current: &QuotaItem, given: Option<QuotaLimit<u64>>) -> Option<u64> {
    match given {
        Some(QuotaLimit::Default) => None,
        Some(QuotaLimit::Unlimited) => Some(0),
        Some(QuotaLimit::Limit(limit)) => Some(limit),
        None if current.overridden => Some(current.limit.unwrap_or(0)),
        None => None,
    }
}

/// The usage lines of `whoami` and `users quota`.
pub fn quota_lines(quota: &Quota) -> String {
    let line = |label: &str, item: &QuotaItem, show: &dyn Fn(u64) -> String| {
        let limit = match item.limit {
            Some(limit) => format!("of {}", show(limit)),
            None => "(unlimited)".to_owned(),
        };
        let source = if item.overridden {
            ", set by an admin"
        } else {
            ""
        };
        format!("{label:<19}{} {limit}{source}\n", show(item.used))
    };
    let size = |n: u64| output::human_size(n);
    [
        line("Storage:", &quota.storage_bytes, &size),
        line("Sites:", &quota.sites, &|n: u64| n.to_string()),
        line("Deploys last hour:", &quota.deploys_per_hour, &|n: u64| {
            n.to_string()
        }),
    ]
    .concat()
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
    outln!("{verb} user {} (id {})", user.username, user.id);
    Ok(())
}

/// `admin` / `member`, as the API spells them.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

/// One row of a users table.
pub fn user_row(user: &User) -> Vec<String> {
    vec![
        user.id.to_string(),
        user.username.clone(),
        role_name(user.role).to_owned(),
        if user.disabled { "disabled" } else { "active" }.to_owned(),
        output::timestamp(&user.created_at),
    ]
}
