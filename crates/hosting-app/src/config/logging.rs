//! How log lines are written.

use std::path::PathBuf;
use std::str::FromStr;

use clap::Args;

/// `json` for log shippers, `text` for people, `auto` to pick by whether stdout is a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
    Auto,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Text => "text",
            LogFormat::Auto => "auto",
        }
    }
}

/// Logging settings (the filter is `RUST_LOG`).
#[derive(Debug, Clone, Args)]
pub struct Logging {
    /// Log format: `json` (one object per line), `text`, or `auto` (text when standard
    /// output is a terminal, else JSON).
    #[arg(long, env = "HOSTING_LOG_FORMAT", value_enum, default_value = "auto")]
    pub log_format: LogFormat,
    /// Where the access log (one line per request) goes: `stdout`, `off`, or a file path
    /// (appended to). Written by its own thread; lines it cannot keep up with are dropped
    /// and counted (`hosting_access_log_dropped_lines_total`), never waited for.
    #[arg(long, env = "HOSTING_ACCESS_LOG", default_value = "stdout")]
    pub access_log: AccessLogTarget,
}

/// Where the access log goes (`HOSTING_ACCESS_LOG`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    Off,
    Stdout,
    /// Appended to; created when missing.
    File(PathBuf),
}

impl FromStr for AccessLogTarget {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "off" | "" => AccessLogTarget::Off,
            "stdout" | "-" => AccessLogTarget::Stdout,
            path => AccessLogTarget::File(PathBuf::from(path)),
        })
    }
}

impl std::fmt::Display for AccessLogTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccessLogTarget::Off => f.write_str("off"),
            AccessLogTarget::Stdout => f.write_str("stdout"),
            AccessLogTarget::File(path) => write!(f, "{}", path.display()),
        }
    }
}
