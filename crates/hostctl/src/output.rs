//! Printing results: aligned tables and human sizes for people, JSON for scripts (`--json`).
//!
//! Everything goes through [`out`], which returns write errors instead of panicking as
//! `println!` does: `hostctl deploys list | head -1` closes the pipe early, and that must
//! end the command quietly (see [`is_broken_pipe`]), not with a panic.

use std::fmt::Write as _;
use std::io::{self, Write as _};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use crate::client::ApiError;

/// Writes `text` to stdout and flushes it.
pub fn out(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// `println!` that returns the write error with `?` instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::out(&format!("{}\n", format_args!($($arg)*)))?
    };
}
pub(crate) use outln;

/// Whether `error` comes from writing into a closed pipe (`hostctl ... | head`).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The `--json` form of a failed command, printed on stderr: the message a person would
/// read, plus the HTTP status and the server's problem document when there was one.
pub fn error_json(error: &anyhow::Error) -> serde_json::Value {
    let api = error.chain().find_map(|e| e.downcast_ref::<ApiError>());
    let mut body = json!({ "message": format!("{error:#}") });
    if let Some(status) = api.and_then(ApiError::status) {
        body["status"] = json!(status.as_u16());
    }
    if let Some(problem) = api.and_then(ApiError::problem) {
        body["problem"] = json!(problem);
    }
    json!({ "error": body })
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("cannot encode the result as JSON")?;
    outln!("{text}");
    Ok(())
}

/// Renders rows under a header with columns padded to the widest cell; the last column
/// is left unpadded so lines carry no trailing spaces.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let pad = widths.get(i).copied().unwrap_or(0);
                // Writing to a String cannot fail.
                let _ = write!(out, "{cell:<pad$}  ");
            }
        }
        // An empty last cell would leave the padding of the one before it.
        out.truncate(out.trim_end_matches(' ').len());
        out.push('\n');
    }
    out
}

/// Prints a table, or a short note when there is nothing to list.
pub fn print_table(header: &[&str], rows: &[Vec<String>], empty: &str) -> io::Result<()> {
    if rows.is_empty() {
        out(&format!("{empty}\n"))
    } else {
        out(&table(header, rows))
    }
}

/// `1536` -> `1.50 KiB`: IEC units, the same as the dashboard and the progress bars.
pub fn human_size(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// Timestamps in tables: minute precision, UTC, sortable.
pub fn timestamp(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_human_readable() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.50 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.00 MiB");
    }

    #[test]
    fn tables_align_columns_without_trailing_spaces() {
        let rows = vec![
            vec!["1".to_owned(), "blog".to_owned()],
            vec!["22".to_owned(), "x".to_owned()],
        ];
        assert_eq!(table(&["ID", "NAME"], &rows), "ID  NAME\n1   blog\n22  x\n");
        let rows = vec![vec!["1".to_owned(), String::new()]];
        assert_eq!(table(&["ID", "NOTE"], &rows), "ID  NOTE\n1\n");
    }
}
