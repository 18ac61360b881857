//! The names the platform answers to and the URLs it reports.

use clap::Args;

use super::error::{ConfigError, ConfigErrors, Problems, Setting, Value};

/// Scheme of the public URLs: `https` behind a TLS proxy also makes cookies `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PublicScheme {
    Http,
    Https,
}

impl PublicScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            PublicScheme::Http => "http",
            PublicScheme::Https => "https",
        }
    }

    /// The port a URL of this scheme leaves out.
    pub fn default_port(self) -> u16 {
        match self {
            PublicScheme::Http => 80,
            PublicScheme::Https => 443,
        }
    }
}

/// Base domain, control host and the public URLs' scheme and port.
#[derive(Debug, Clone, Args)]
pub struct Public {
    /// Base domain: sites are served on `<site>.<base-domain>`, the API on the base domain itself.
    #[arg(long, env = "HOSTING_BASE_DOMAIN", default_value = "localhost")]
    pub base_domain: String,

    /// Host of the API and dashboard (defaults to the base domain).
    #[arg(long, env = "HOSTING_CONTROL_HOST")]
    pub control_host: Option<String>,

    /// Scheme of the public URLs the API reports (`https` behind a TLS proxy).
    #[arg(
        long,
        env = "HOSTING_PUBLIC_SCHEME",
        value_enum,
        default_value = "http"
    )]
    pub public_scheme: PublicScheme,

    /// Port of the public URLs the API reports (defaults to the listen port for http, none for https).
    #[arg(long, env = "HOSTING_PUBLIC_PORT")]
    pub public_port: Option<u16>,
}

impl Public {
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut problems = Problems::new();
        problems.check(
            self.base_domain.is_empty() || self.base_domain.contains(['/', ':', ' ']),
            || {
                ConfigError::invalid(
                    Setting("HOSTING_BASE_DOMAIN"),
                    Value::text(&self.base_domain),
                    "is not a domain name",
                )
            },
        );
        problems.finish()
    }
}
