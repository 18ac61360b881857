//! How log lines are written.

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
    pub access_log: String,
}
