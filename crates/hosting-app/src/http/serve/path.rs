//! Request paths of site hosts, decoded and checked in one place.

use std::borrow::Cow;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// Characters escaped when a decoded path goes back into a `Location` header.
const PATH_ESCAPES: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\');

/// Percent-decodes and normalizes a request path; a path that is already both (no
/// escapes, nothing to collapse) is borrowed, not copied.
///
/// SECURITY: decoding happens before the checks, so `%2e%2e`, `%2f..` and `%00` are caught
/// like their literal forms; `.`/`..` segments, NUL and control characters, backslashes and
/// invalid UTF-8 are refused rather than interpreted, so no request can name a file outside
/// the deploy or mean different things to different layers. Repeated slashes collapse, so a
/// path can never start with `//` (a protocol-relative URL when echoed into `Location`).
pub fn decode_path(raw: &str) -> Result<Cow<'_, str>, &'static str> {
    if is_normal(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| "the path is not valid UTF-8")?;
    normalize_path(&decoded).map(Cow::Owned)
}

/// Whether `path` is what [`normalize_path`] would make of it and has no escape: it
/// starts with `/`, has no `%`, control character or backslash, no empty, `.` or `..`
/// segment. The common request path, checked in one pass.
fn is_normal(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    // Bytes from 0x80 are parts of UTF-8 sequences (the request line's bytes were
    // checked by hyper, but its UTF-8 is not): those paths take the full decode.
    if bytes
        .iter()
        .any(|&b| b == b'%' || b == b'\\' || !(0x20..0x7f).contains(&b))
    {
        return false;
    }
    // Only the last segment may be empty (`/`, `/dir/`): no `//` anywhere.
    !path.contains("//") && path[1..].split('/').all(|s| s != "." && s != "..")
}

/// Checks and normalizes an already decoded path (for rewrite targets too).
pub fn normalize_path(path: &str) -> Result<String, &'static str> {
    if !path.starts_with('/') {
        return Err("the path must start with '/'");
    }
    if path.chars().any(|c| c.is_control()) {
        return Err("the path contains a control character");
    }
    if path.contains('\\') {
        return Err("the path contains a backslash");
    }
    let mut normalized = String::with_capacity(path.len());
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." {
            return Err("the path contains a '.' or '..' segment");
        }
        normalized.push('/');
        normalized.push_str(segment);
    }
    if normalized.is_empty() || path.ends_with('/') {
        normalized.push('/');
    }
    Ok(normalized)
}

/// A decoded path made safe for a `Location` header.
pub fn encode_path(path: &str) -> String {
    utf8_percent_encode(path, PATH_ESCAPES).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_paths_decode_and_normalize() {
        assert_eq!(decode_path("/").as_deref(), Ok("/"));
        assert_eq!(decode_path("/a%20b/c.html").as_deref(), Ok("/a b/c.html"));
        assert_eq!(decode_path("//a///b/").as_deref(), Ok("/a/b/"));
        assert_eq!(decode_path("/caf%C3%A9").as_deref(), Ok("/café"));
    }

    #[test]
    fn normal_paths_are_borrowed_and_the_rest_normalized_as_before() {
        for path in ["/", "/a", "/a/", "/a/b.html", "/.well-known/x", "/a..b/c.d"] {
            assert!(
                matches!(decode_path(path), Ok(Cow::Borrowed(p)) if p == path),
                "{path}"
            );
        }
        for path in [
            "//",
            "/a//b",
            "//a",
            "/a/./b",
            "/a/..",
            "/.",
            "/a%20b",
            "/caf\u{e9}",
            "/a\\b",
            "/a\tb",
            "a",
            "",
        ] {
            let decoded = decode_path(path);
            assert!(!matches!(decoded, Ok(Cow::Borrowed(_))), "{path} borrowed");
            let expected = percent_decode_str(path)
                .decode_utf8()
                .map_err(|_| "the path is not valid UTF-8")
                .and_then(|d| normalize_path(&d));
            assert_eq!(decoded.map(Cow::into_owned), expected, "{path}");
        }
    }

    #[test]
    fn traversal_in_any_encoding_is_refused() {
        for bad in [
            "/../etc/passwd",
            "/a/%2e%2e/b",
            "/%2e%2e%2fetc",
            "/a/./b",
            "/%2E%2E/x",
            "/a%5c..%5cb",
            "/a%00b",
            "/%ff",
            "/a%0d%0aSet-Cookie:x",
        ] {
            assert!(decode_path(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn encoded_paths_cannot_smuggle_a_query_or_header() {
        assert_eq!(encode_path("/a b?c#d"), "/a%20b%3Fc%23d");
        assert_eq!(encode_path("/café"), "/caf%C3%A9");
    }
}
