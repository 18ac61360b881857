//! Command-line grammar: the clap types, whose `///` comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Deploy a folder to hosting, roll back, and manage sites, tokens and users.
#[derive(Debug, Parser)]
#[command(name = "hostctl", version, about, propagate_version = true)]
pub struct Cli {
    /// Server base URL, e.g. http://localhost:3000; overrides the stored login.
    #[arg(long, global = true, env = "HOSTCTL_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// API token; overrides the stored login.
    #[arg(
        long,
        global = true,
        env = "HOSTCTL_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// Print results as JSON on stdout instead of human-readable text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Also trust this PEM CA certificate for HTTPS (a private CA or a self-signed proxy).
    #[arg(long, global = true, env = "HOSTCTL_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a token against the server and store the login for later commands.
    Login,
    /// Forget the stored login.
    Logout,
    /// Show who the current token belongs to.
    Whoami,
    /// Upload a folder as a new deploy of a site and publish it.
    Deploy(DeployArgs),
    /// Create, list and delete sites.
    #[command(subcommand)]
    Sites(SitesCommand),
    /// List the deploys of a site, or roll it back.
    #[command(subcommand)]
    Deploys(DeploysCommand),
    /// Add, list, verify and remove a site's custom domains.
    #[command(subcommand)]
    Domains(DomainsCommand),
    /// Create, list and revoke your API tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Manage user accounts (admin only).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Read the audit log: who changed what, when and from where (admins see everything).
    Audit(AuditArgs),
    /// Add, list and remove a site's webhooks, and show their deliveries.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// List and remove a site's deploy aliases (`hostctl deploy --alias NAME` sets them).
    #[command(subcommand)]
    Aliases(AliasesCommand),
    /// Show a site's traffic: requests, page views, visitors, bytes, top pages, referrers and 404s.
    Analytics(AnalyticsArgs),
}

/// Arguments of `hostctl analytics`.
#[derive(Debug, Args)]
pub struct AnalyticsArgs {
    /// The site whose figures to show.
    #[arg(long, value_name = "NAME")]
    pub site: String,

    /// How far back to look: a number with a unit (`90m`, `24h`, `7d`, `4w`).
    #[arg(long, value_name = "SPAN", default_value = "7d", value_parser = parse_span)]
    pub since: chrono::Duration,

    /// Span of each row: `minute`, `hour` or `day` (default: about a dozen to thirty rows).
    #[arg(long, value_name = "SPAN", value_parser = parse_granularity)]
    pub granularity: Option<hosting_api::AnalyticsGranularity>,
}

/// Arguments of `hostctl deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Folder to deploy; its contents become the site root.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Site to deploy to; created if it does not exist yet.
    #[arg(long, value_name = "NAME")]
    pub site: String,

    /// Upload the deploy but leave the live site as it is (use the preview URL to check it).
    #[arg(long)]
    pub no_publish: bool,

    /// A note stored with the deploy and shown in its history (at most 500 characters, one line).
    #[arg(long, short = 'm', value_name = "TEXT")]
    pub message: Option<String>,

    /// Publish to the alias `<NAME>--<site>.<base-domain>` (a branch deploy) instead of
    /// the live site, which stays as it is; the alias moves with each deploy to it.
    #[arg(long, value_name = "NAME", conflicts_with = "no_publish")]
    pub alias: Option<String>,

    /// How many files to upload at the same time.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,

    /// Files per upload request (the server takes up to `HOSTING_MAX_BATCH_FILES`, 5,000
    /// by default; each request also stays under 32 MiB of files).
    #[arg(long, env = "HOSTCTL_BATCH_FILES", value_name = "N",
          default_value_t = crate::deploy::bulk::BATCH_FILES as u16,
          value_parser = clap::value_parser!(u16).range(1..=5_000))]
    pub batch_files: u16,

    /// Upload requests in flight at the same time.
    #[arg(long, env = "HOSTCTL_BATCHES_IN_FLIGHT", value_name = "N",
          default_value_t = crate::deploy::bulk::IN_FLIGHT as u8,
          value_parser = clap::value_parser!(u8).range(1..=16))]
    pub batches_in_flight: u8,

    /// Read and hash every file instead of trusting the digest cache, which keeps each
    /// file's digest with its size, times and inode from the previous deploy of this
    /// folder (`$XDG_CACHE_HOME/hostctl/digests/`); the cache is neither read nor written.
    #[arg(long, env = "HOSTCTL_NO_CACHE", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_cache: bool,

    /// Upload the files hashing reads while the rest of the folder is still being hashed
    /// (`POST /blobs`), before the deploy is created. Off by default: on the benchmark
    /// machine it was not consistently faster (BENCHMARKS.md, "Uploading while hashing"
    /// and "Where a bulk upload's server time goes").
    #[arg(long, env = "HOSTCTL_EARLY_UPLOAD", value_parser = clap::builder::BoolishValueParser::new())]
    pub early_upload: bool,

    /// Print how long each step took (listing, hashing, the file list, uploading,
    /// publishing) on stderr.
    #[arg(long, env = "HOSTCTL_TIMINGS", value_parser = clap::builder::BoolishValueParser::new())]
    pub timings: bool,
}

impl DeployArgs {
    /// How the upload is cut into requests (`--batch-files`, `--batches-in-flight`).
    pub fn batching(&self) -> crate::deploy::bulk::Batching {
        crate::deploy::bulk::Batching {
            files: usize::from(self.batch_files),
            in_flight: usize::from(self.batches_in_flight),
        }
    }
}

/// `--since`: a positive number with a unit `m`, `h`, `d` or `w`.
pub fn parse_span(text: &str) -> Result<chrono::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and a unit, e.g. 7d or 24h"))?;
    let span = match unit {
        "m" => chrono::Duration::try_minutes(n),
        "h" => chrono::Duration::try_hours(n),
        "d" => chrono::Duration::try_days(n),
        "w" => chrono::Duration::try_weeks(n),
        _ => return Err(format!("{text:?}: the unit must be m, h, d or w")),
    };
    span.filter(|s| *s > chrono::Duration::zero())
        .ok_or_else(|| format!("{text:?}: must be above zero and at most a few years"))
}

/// `--granularity`: `minute`, `hour` or `day`.
pub fn parse_granularity(text: &str) -> Result<hosting_api::AnalyticsGranularity, String> {
    match text {
        "minute" => Ok(hosting_api::AnalyticsGranularity::Minute),
        "hour" => Ok(hosting_api::AnalyticsGranularity::Hour),
        "day" => Ok(hosting_api::AnalyticsGranularity::Day),
        _ => Err(format!("{text:?}: expected minute, hour or day")),
    }
}

/// `hostctl sites ...`
#[derive(Debug, Subcommand)]
pub enum SitesCommand {
    /// Create an empty site.
    Create {
        /// Site name; it becomes the first label of the site's host name.
        name: String,
    },
    /// List your sites.
    List,
    /// Delete a site and all of its deploys.
    Delete {
        /// Site to delete.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Ask visitors for a password: on the whole site, or only on its previews and aliases.
    Protect {
        /// Site to protect.
        name: String,
        /// File holding the password (its first line; at least 8 characters).
        #[arg(long, value_name = "FILE", required_unless_present = "remove")]
        password_file: Option<PathBuf>,
        /// Which hosts ask for it.
        #[arg(long, value_enum, default_value_t = ProtectScope::All)]
        scope: ProtectScope,
        /// Make the site public again.
        #[arg(long, conflicts_with_all = ["password_file", "scope"])]
        remove: bool,
    },
    /// Show or set the site's HSTS (Strict-Transport-Security over HTTPS).
    Hsts {
        /// Site whose setting to show or change.
        name: String,
        /// Seconds browsers keep to HTTPS (up to two years: 63072000); 0 turns it off.
        /// Without it, the current setting is shown.
        #[arg(long, value_name = "SECONDS")]
        max_age: Option<u32>,
        /// Add includeSubDomains.
        #[arg(long, requires = "max_age")]
        include_subdomains: bool,
    },
}

/// `hostctl sites protect --scope`
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtectScope {
    /// Every host: the site, its custom domains, previews and aliases.
    All,
    /// Only deploy previews and aliases; the live site stays public.
    Previews,
}

/// `hostctl aliases ...`
#[derive(Debug, Subcommand)]
pub enum AliasesCommand {
    /// List a site's aliases and the deploys they serve.
    List {
        /// Site whose aliases to list.
        #[arg(long, value_name = "NAME")]
        site: String,
    },
    /// Remove an alias; its host stops serving at once.
    Remove {
        /// Site the alias belongs to.
        #[arg(long, value_name = "NAME")]
        site: String,
        /// The alias to remove.
        alias: String,
    },
}

/// `hostctl deploys ...`
#[derive(Debug, Subcommand)]
pub enum DeploysCommand {
    /// List a site's deploys, newest first.
    List {
        /// Site whose deploys to list.
        #[arg(long, value_name = "NAME")]
        site: String,
    },
    /// Make an older deploy live again.
    Rollback {
        /// Site to roll back.
        #[arg(long, value_name = "NAME")]
        site: String,
        /// Deploy to publish; defaults to the one that was live before the current one.
        deploy_id: Option<String>,
    },
}

/// `hostctl domains ...`
#[derive(Debug, Subcommand)]
pub enum DomainsCommand {
    /// Claim a custom domain for a site and print the records that prove ownership.
    Add {
        /// Site the domain serves once verified.
        #[arg(long, value_name = "NAME")]
        site: String,
        /// The domain, e.g. www.example.com.
        domain: String,
    },
    /// List a site's custom domains and their status.
    List {
        /// Site whose domains to list.
        #[arg(long, value_name = "NAME")]
        site: String,
    },
    /// Check a domain's ownership now (instead of waiting for the periodic check).
    Verify {
        /// Site the domain belongs to.
        #[arg(long, value_name = "NAME")]
        site: String,
        /// The domain to check.
        domain: String,
    },
    /// Order a verified domain's TLS certificate now (first order, retry, early renewal).
    Renew {
        /// Site the domain belongs to.
        #[arg(long, value_name = "NAME")]
        site: String,
        /// The domain whose certificate to order.
        domain: String,
    },
    /// Remove a custom domain; it stops serving the site at once.
    Remove {
        /// Site the domain belongs to.
        #[arg(long, value_name = "NAME")]
        site: String,
        /// The domain to remove.
        domain: String,
    },
}

/// `hostctl tokens ...`
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token; its secret is printed this once.
    Create {
        /// A label to recognise the token by, e.g. "ci".
        name: String,
    },
    /// List your tokens (never their secrets).
    List,
    /// Revoke a token so it can no longer be used.
    Revoke {
        /// Id of the token, as shown by `tokens list`.
        id: i64,
    },
}

/// `hostctl users ...` (admin only)
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user and a first API token for them.
    Create {
        /// Login name of the new user.
        username: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// List all users.
    List,
    /// Disable a user: their tokens stop working.
    Disable {
        /// Id of the user, as shown by `users list`.
        id: i64,
    },
    /// Enable a disabled user again.
    Enable {
        /// Id of the user, as shown by `users list`.
        id: i64,
    },
    /// Show a user's quota usage and limits; with options, change the limits.
    Quota(QuotaArgs),
}

/// Arguments of `hostctl users quota`. Each limit is a number (sizes may carry a unit:
/// `1GiB`, `500MB`), `unlimited`, or `default` (the platform default again).
#[derive(Debug, Args)]
pub struct QuotaArgs {
    /// Id of the user, as shown by `users list`.
    pub id: i64,
    /// Stored bytes: the distinct files of the user's deploys.
    #[arg(long, value_name = "SIZE")]
    pub storage: Option<QuotaLimit<hosting_api::ByteSize>>,
    /// Number of sites.
    #[arg(long, value_name = "N")]
    pub sites: Option<QuotaLimit<u64>>,
    /// Deploys created per rolling hour.
    #[arg(long, value_name = "N")]
    pub deploys_per_hour: Option<QuotaLimit<u64>>,
}

/// One limit as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaLimit<T> {
    /// Back to the platform default.
    Default,
    Unlimited,
    Limit(T),
}

impl<T: std::str::FromStr> std::str::FromStr for QuotaLimit<T>
where
    T::Err: std::fmt::Display,
{
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "default" => Ok(QuotaLimit::Default),
            "unlimited" => Ok(QuotaLimit::Unlimited),
            _ => raw
                .parse()
                .map(QuotaLimit::Limit)
                .map_err(|e| format!("{e} (or write `unlimited` or `default`)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_are_accepted_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "hostctl",
            "deploy",
            "public",
            "--site",
            "blog",
            "--json",
            "--server",
            "http://localhost:3000",
        ])
        .expect("parses");
        assert!(cli.json);
        assert_eq!(cli.server.as_deref(), Some("http://localhost:3000"));
        let Command::Deploy(args) = cli.command else {
            panic!("expected deploy");
        };
        assert_eq!(args.concurrency, 8);
        assert!(!args.no_publish);
    }

    #[test]
    fn quota_limits_take_numbers_sizes_unlimited_and_default() {
        let cli = Cli::try_parse_from([
            "hostctl",
            "users",
            "quota",
            "7",
            "--storage",
            "1GiB",
            "--sites",
            "unlimited",
            "--deploys-per-hour",
            "default",
        ])
        .expect("parses");
        let Command::Users(UsersCommand::Quota(args)) = cli.command else {
            panic!("expected users quota");
        };
        assert_eq!(args.id, 7);
        assert_eq!(
            args.storage,
            Some(QuotaLimit::Limit(hosting_api::ByteSize(1 << 30)))
        );
        assert_eq!(args.sites, Some(QuotaLimit::Unlimited));
        assert_eq!(args.deploys_per_hour, Some(QuotaLimit::Default));
        let bad = Cli::try_parse_from(["hostctl", "users", "quota", "7", "--sites", "many"]);
        assert_eq!(bad.expect_err("rejected").exit_code(), 2);
    }

    #[test]
    fn concurrency_zero_is_a_usage_error() {
        let err = Cli::try_parse_from([
            "hostctl",
            "deploy",
            "d",
            "--site",
            "s",
            "--concurrency",
            "0",
        ])
        .expect_err("rejected");
        assert_eq!(err.exit_code(), 2);
    }
}

/// Arguments of `hostctl audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries by this user name (or `system`, or `operator` for the operator CLI).
    #[arg(long, value_name = "USER")]
    pub actor: Option<String>,
    /// Only entries on this site.
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
    /// Only this action (`deploy.publish`) or group of actions (`deploy`).
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
    /// Only entries since this time: RFC 3339 (`2026-01-31T12:00:00Z`) or an age (`7d`, `12h`, `30m`).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only entries before this time (RFC 3339 or an age, as `--since`).
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Show at most this many entries (newest first).
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
}

/// `hostctl webhooks ...`
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Add an endpoint; its signing secret (`whsec_...`) is printed this once.
    Add {
        /// Site whose events to send.
        #[arg(long, value_name = "NAME")]
        site: String,
        /// Where to POST the events (http or https, a public address).
        url: String,
        /// An event to send (repeatable): deploy.created, deploy.published, deploy.failed,
        /// deploy.rolled_back, domain.verified, certificate.issued, certificate.failed.
        /// Default: all of them.
        #[arg(long = "event", value_name = "EVENT")]
        events: Vec<String>,
    },
    /// List a site's endpoints (never their secrets).
    List {
        /// Site whose endpoints to list.
        #[arg(long, value_name = "NAME")]
        site: String,
    },
    /// Remove an endpoint and its queued deliveries.
    Remove {
        /// Site the endpoint belongs to.
        #[arg(long, value_name = "NAME")]
        site: String,
        /// Id of the endpoint, as shown by `webhooks list`.
        id: i64,
    },
    /// Show an endpoint's latest deliveries and their attempts.
    Deliveries {
        /// Site the endpoint belongs to.
        #[arg(long, value_name = "NAME")]
        site: String,
        /// Id of the endpoint, as shown by `webhooks list`.
        id: i64,
    },
}
