//! Turns an entry's raw name bytes into a site path (`/css/site.css`) or says which rule
//! the name breaks. All path security lives here, one `SECURITY:` comment per check.

use crate::error::PathProblem;

/// Longest allowed path component, in bytes (the common filesystem `NAME_MAX`).
const MAX_COMPONENT_BYTES: usize = 255;
/// Longest allowed normalized path, in bytes (without the leading `/`).
const MAX_PATH_BYTES: usize = 1024;

/// Normalizes the raw name of a regular file (`is_dir == false`) or directory entry.
///
/// Returns the site path with a leading `/`, or `None` for a directory entry naming the
/// archive root itself (`./`, which `tar -C dist .` writes first).
pub(crate) fn normalize(raw: &[u8], is_dir: bool) -> Result<Option<String>, PathProblem> {
    if raw.is_empty() {
        return Err(PathProblem::Empty);
    }
    // SECURITY: decode the raw header bytes, never a lossy conversion: two different
    // byte strings must not map to the same name, and URLs are UTF-8.
    let name = std::str::from_utf8(raw).map_err(|_| PathProblem::NotUtf8)?;
    // SECURITY: NUL truncates names in C-based tools (GNU tar reads long names as C
    // strings, the tar crate does not), and control characters forge log lines.
    if name.chars().any(char::is_control) {
        return Err(PathProblem::ControlCharacter);
    }
    // SECURITY: `..\..\x` is a plain file name on Linux but a traversal on Windows and in
    // some URL decoders; refuse it so a name means the same everywhere.
    if name.contains('\\') {
        return Err(PathProblem::Backslash);
    }
    // SECURITY: absolute names are the classic tar-slip vector (`/etc/passwd`).
    if name.starts_with('/') {
        return Err(PathProblem::Absolute);
    }
    // SECURITY: a regular file named `x/` is a directory to GNU tar; refuse the ambiguity.
    if !is_dir && name.ends_with('/') {
        return Err(PathProblem::TrailingSlash);
    }
    // Empty components (`a//b`) collapse and `.` components (`./a`) vanish.
    let components: Vec<&str> = name
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if let Some(first) = components.first() {
        // SECURITY: `C:` / `c:x` select a drive on Windows (RUSTSEC-2022-0043 tower-http,
        // RUSTSEC-2022-0082 warp served `c:/...` paths).
        let bytes = first.as_bytes();
        if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
            return Err(PathProblem::DrivePrefix);
        }
    }
    for component in &components {
        // SECURITY: no `..` at all, even `a/../b` that stays inside: zip/tar slip
        // (CVE-2007-4559) lives in this component, and refusing it is simpler than
        // proving each use is contained.
        if *component == ".." {
            return Err(PathProblem::ParentComponent);
        }
        // SECURITY: longer components fail on every common filesystem and CDN key space.
        if component.len() > MAX_COMPONENT_BYTES {
            return Err(PathProblem::ComponentTooLong);
        }
    }
    let joined = components.join("/");
    // SECURITY: bounds the memory of the name tables and the size of every URL we serve.
    if joined.len() > MAX_PATH_BYTES {
        return Err(PathProblem::PathTooLong);
    }
    if joined.is_empty() {
        return if is_dir {
            Ok(None)
        } else {
            Err(PathProblem::Empty)
        };
    }
    Ok(Some(format!("/{joined}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(raw: &str) -> Result<Option<String>, PathProblem> {
        normalize(raw.as_bytes(), false)
    }

    #[test]
    fn a_plain_nested_name_becomes_a_site_path() {
        assert_eq!(file("css/site.css"), Ok(Some("/css/site.css".to_owned())));
    }

    #[test]
    fn leading_dot_slash_dot_components_and_double_slashes_are_normalized_away() {
        assert_eq!(file("./a//./b.html"), Ok(Some("/a/b.html".to_owned())));
    }

    #[test]
    fn the_root_directory_entry_is_skipped_but_a_file_named_dot_is_refused() {
        assert_eq!(normalize(b"./", true), Ok(None));
        assert_eq!(file("."), Err(PathProblem::Empty));
    }

    #[test]
    fn directory_names_may_end_with_a_slash_but_file_names_may_not() {
        assert_eq!(normalize(b"css/", true), Ok(Some("/css".to_owned())));
        assert_eq!(file("css/"), Err(PathProblem::TrailingSlash));
    }

    #[test]
    fn every_traversal_shape_is_refused() {
        assert_eq!(file("../x"), Err(PathProblem::ParentComponent));
        assert_eq!(file("a/../../x"), Err(PathProblem::ParentComponent));
        assert_eq!(file("a/.."), Err(PathProblem::ParentComponent));
        assert_eq!(file("/etc/passwd"), Err(PathProblem::Absolute));
        assert_eq!(file("..\\..\\x"), Err(PathProblem::Backslash));
        assert_eq!(file("C:/x"), Err(PathProblem::DrivePrefix));
        assert_eq!(file("./c:x"), Err(PathProblem::DrivePrefix));
    }

    #[test]
    fn a_colon_later_in_a_name_is_allowed() {
        assert_eq!(
            file("notes/2024:01.html"),
            Ok(Some("/notes/2024:01.html".to_owned()))
        );
    }

    #[test]
    fn bad_bytes_and_control_characters_are_refused() {
        assert_eq!(normalize(b"a\xff.html", false), Err(PathProblem::NotUtf8));
        assert_eq!(file("a\0b"), Err(PathProblem::ControlCharacter));
        assert_eq!(file("a\nb"), Err(PathProblem::ControlCharacter));
        assert_eq!(file("a\u{85}b"), Err(PathProblem::ControlCharacter));
        assert_eq!(file(""), Err(PathProblem::Empty));
    }

    #[test]
    fn component_and_path_lengths_are_bounded() {
        let long = "x".repeat(256);
        assert_eq!(file(&long), Err(PathProblem::ComponentTooLong));
        let deep = vec!["abcdefghi"; 103].join("/");
        assert_eq!(file(&deep), Err(PathProblem::PathTooLong));
        assert!(file(&"y".repeat(255)).is_ok());
    }
}
