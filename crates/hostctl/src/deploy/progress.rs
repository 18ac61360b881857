//! How a deploy shows progress: bars on a terminal (hashing by files, uploading by bytes
//! and files), plain step lines otherwise, so CI logs read "Hashing 10 files", "Uploading
//! 3 of 10 files" instead of filling with redraws.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Whether progress is drawn as bars (stderr is a terminal) or told in step lines.
pub fn bars_on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(template)
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(len).with_style(style)
}

/// A bar counting hashed files, or a hidden one without a terminal.
pub fn hashing_bar(files: usize, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    bar(
        files as u64,
        "{spinner} Hashing   [{bar:30}] {pos}/{len} files ({eta} left)",
    )
}

/// A bar counting uploaded bytes (and, in its message, files), or a hidden one without a
/// terminal.
pub fn upload_bar(total_bytes: u64, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    bar(
        total_bytes,
        "{spinner} Uploading [{bar:30}] {bytes}/{total_bytes}, {msg} ({bytes_per_sec}, {eta} left)",
    )
}

/// `1 file`, `2 files`.
pub fn files(n: usize) -> String {
    if n == 1 {
        "1 file".to_owned()
    } else {
        format!("{n} files")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_is_singular() {
        assert_eq!(files(1), "1 file");
        assert_eq!(files(0), "0 files");
        assert_eq!(files(2), "2 files");
    }

    #[test]
    fn bars_are_hidden_without_a_terminal() {
        assert!(hashing_bar(3, false).is_hidden());
        assert!(upload_bar(3, false).is_hidden());
    }
}
