//! Printing results: aligned tables and human sizes for people, JSON for scripts (`--json`).

use std::fmt::Write as _;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("cannot encode the result as JSON")?;
    println!("{text}");
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
        out.push('\n');
    }
    out
}

/// Prints a table, or a short note when there is nothing to list.
pub fn print_table(header: &[&str], rows: &[Vec<String>], empty: &str) {
    if rows.is_empty() {
        println!("{empty}");
    } else {
        print!("{}", table(header, rows));
    }
}

/// `1536` -> `1.5 KiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Precision loss above 2^53 bytes is irrelevant for one decimal place.
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
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
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
    }

    #[test]
    fn tables_align_columns_without_trailing_spaces() {
        let rows = vec![
            vec!["1".to_owned(), "blog".to_owned()],
            vec!["22".to_owned(), "x".to_owned()],
        ];
        assert_eq!(table(&["ID", "NAME"], &rows), "ID  NAME\n1   blog\n22  x\n");
    }
}
