//! Line splitting shared by the `_redirects` and `_headers` parsers.
//!
//! Both formats trim every line and skip blank lines and `#` comments, so the
//! rule lives here once and both parsers see the same line numbers.

/// Yields `(1-based line number, trimmed line)` for every line that is not
/// blank and not a full-line `#` comment.
pub(crate) fn meaningful_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    // Editors on Windows like to prepend a byte-order mark; `trim` does not
    // remove it, and it would otherwise turn the first rule into garbage.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_and_comment_lines_are_skipped_but_numbering_is_kept() {
        let text = "\n# comment\n  /a /b  \r\n\n   # indented comment\n/c /d";
        let lines: Vec<_> = meaningful_lines(text).collect();
        assert_eq!(lines, vec![(3, "/a /b"), (6, "/c /d")]);
    }

    #[test]
    fn a_leading_byte_order_mark_is_ignored() {
        let lines: Vec<_> = meaningful_lines("\u{feff}/a /b").collect();
        assert_eq!(lines, vec![(1, "/a /b")]);
    }
}
