//! Checks on header lines of a `_headers` block.
//!
//! Every header that survives these checks can be turned into an `http`
//! `HeaderName`/`HeaderValue` without failing, so the server never has to
//! handle a bad header at request time.

use super::auth::BasicAuth;

/// Headers the server owns. Netlify ignores them in `_headers` too; letting a
/// site set them would break framing (`Content-Length`, `Transfer-Encoding`),
/// encoding, range handling or redirects.
const RESERVED: &[&str] = &[
    "accept-ranges",
    "age",
    "allow",
    "alt-svc",
    "connection",
    "content-encoding",
    "content-length",
    "content-range",
    "date",
    "location",
    "server",
    "set-cookie",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Why a header line was dropped. The message is shown to site owners.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum HeaderError {
    #[error("path should come before header")]
    NoPath,
    #[error("header name is empty")]
    EmptyName,
    #[error("header '{0}' has an empty value")]
    EmptyValue(String),
    #[error("'{0}' is not a valid header name")]
    InvalidName(String),
    #[error("header '{0}' has a value with characters that are not allowed (control or non-ASCII characters)")]
    InvalidValue(String),
    #[error("header '{0}' is set by the server and cannot be overridden")]
    Reserved(String),
    #[error(transparent)]
    BasicAuth(#[from] super::auth::AuthError),
    #[error("more than {0} header blocks; this line and everything after it were ignored")]
    TooManyBlocks(usize),
}

/// One line of a block: a header to send, or the block's password protection.
#[derive(Debug, PartialEq)]
pub(crate) enum Line {
    Header(String, String),
    BasicAuth(BasicAuth),
}

/// Splits `Name: value` at the first `:` and validates both halves.
pub(crate) fn parse_line(line: &str) -> Result<Line, HeaderError> {
    let (name, value) = line.split_once(':').unwrap_or((line, ""));
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() {
        return Err(HeaderError::EmptyName);
    }
    if !name.bytes().all(is_token_byte) {
        return Err(HeaderError::InvalidName(name.to_owned()));
    }
    if value.is_empty() {
        return Err(HeaderError::EmptyValue(name.to_owned()));
    }
    if !value.bytes().all(is_value_byte) {
        return Err(HeaderError::InvalidValue(name.to_owned()));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED.contains(&lower.as_str()) {
        return Err(HeaderError::Reserved(name.to_owned()));
    }
    // SECURITY: `Basic-Auth: user:pass` turns on password protection (Netlify's
    // syntax) and is never sent: passing it through would publish the passwords.
    if lower == "basic-auth" {
        return Ok(Line::BasicAuth(BasicAuth::parse(value)?));
    }
    Ok(Line::Header(name.to_owned(), value.to_owned()))
}

/// RFC 9110 `tchar`: the bytes allowed in a header name.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Visible ASCII, space and tab. RFC 9110 also tolerates obs-text (bytes
/// from 0x80 up), but `HeaderValue::from_str` rejects it and no real header
/// needs it, so it is refused here rather than failing later in the server.
fn is_value_byte(byte: u8) -> bool {
    byte == b'\t' || (b' '..=b'~').contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_header(line: &str) -> Result<(String, String), HeaderError> {
        match parse_line(line)? {
            Line::Header(name, value) => Ok((name, value)),
            Line::BasicAuth(_) => panic!("not a header: {line}"),
        }
    }

    #[test]
    fn a_header_is_split_at_the_first_colon_and_trimmed() {
        assert_eq!(
            parse_header("Link :  </a.css>; rel=preload; foo=\"x:y\" "),
            Ok(("Link".into(), "</a.css>; rel=preload; foo=\"x:y\"".into()))
        );
    }

    #[test]
    fn reserved_names_are_rejected_case_insensitively() {
        assert_eq!(
            parse_header("content-LENGTH: 5"),
            Err(HeaderError::Reserved("content-LENGTH".into()))
        );
        assert_eq!(
            parse_header("Set-Cookie: a=b"),
            Err(HeaderError::Reserved("Set-Cookie".into()))
        );
    }

    #[test]
    fn basic_auth_is_protection_never_a_header() {
        assert!(matches!(
            parse_line("basic-auth: admin:hunter2"),
            Ok(Line::BasicAuth(auth)) if auth.accepts("admin", "hunter2")
        ));
        let refused = parse_line("Basic-Auth: admin").expect_err("no password");
        assert!(matches!(refused, HeaderError::BasicAuth(_)));
        assert!(!refused.to_string().contains("admin"));
    }

    #[test]
    fn invalid_names_and_values_are_rejected() {
        assert_eq!(
            parse_header("X Bad: 1"),
            Err(HeaderError::InvalidName("X Bad".into()))
        );
        assert_eq!(
            parse_header("X-Bell: a\u{7}b"),
            Err(HeaderError::InvalidValue("X-Bell".into()))
        );
        assert_eq!(
            parse_header("X-Uni: café"),
            Err(HeaderError::InvalidValue("X-Uni".into()))
        );
        assert_eq!(parse_header(": v"), Err(HeaderError::EmptyName));
        assert_eq!(
            parse_header("X-Empty:  "),
            Err(HeaderError::EmptyValue("X-Empty".into()))
        );
    }

    #[test]
    fn tabs_inside_values_are_allowed() {
        assert_eq!(
            parse_header("X-Tab: a\tb"),
            Ok(("X-Tab".into(), "a\tb".into()))
        );
    }
}
