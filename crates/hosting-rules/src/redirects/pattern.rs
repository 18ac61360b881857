//! The `from` side of a redirect rule: a compiled path pattern and the query
//! parameters a request must carry.
//!
//! Matching is segment by segment with no backtracking (placeholders take
//! exactly one segment and the splat can only be last), so a request is
//! checked against a rule in time linear in the path length whatever the
//! rule says.

use percent_encoding::percent_decode_str;

/// Values captured while matching, in capture order. Lookups take the first
/// binding of a name, so path placeholders win over query placeholders.
pub(crate) type Bindings = Vec<(String, String)>;

/// Name under which the `*` capture is exposed to targets.
const SPLAT: &str = "splat";

/// Why a `from` path or query token could not be compiled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum PatternError {
    #[error("a splat '*' is only allowed as the whole last segment of the source path")]
    MisplacedSplat,
    #[error("placeholder ':{0}' may only contain letters, digits and '_'")]
    BadPlaceholder(String),
    #[error("'{0}' is not valid percent-encoded UTF-8")]
    BadEncoding(String),
    #[error("query parameter '{0}' must look like key=value or key=:placeholder")]
    BadQuery(String),
}

/// One compiled segment of a `from` path.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    /// Must equal the request segment exactly (paths are case-sensitive).
    Literal(String),
    /// Matches any one non-empty segment and binds it under this name.
    Placeholder(String),
}

/// A compiled `from` path such as `/news/:year/*`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PathPattern {
    segments: Vec<Segment>,
    splat: bool,
}

impl PathPattern {
    /// Compiles a `from` path that is known to start with `/`.
    pub(crate) fn parse(from: &str) -> Result<Self, PatternError> {
        let raw: Vec<&str> = from.split('/').filter(|s| !s.is_empty()).collect();
        let mut segments = Vec::with_capacity(raw.len());
        let mut splat = false;
        for (index, segment) in raw.iter().enumerate() {
            if *segment == "*" && index + 1 == raw.len() {
                splat = true;
            } else if segment.contains('*') {
                return Err(PatternError::MisplacedSplat);
            } else if let Some(name) = segment.strip_prefix(':').filter(|n| !n.is_empty()) {
                if !is_placeholder_name(name) {
                    return Err(PatternError::BadPlaceholder(name.to_owned()));
                }
                segments.push(Segment::Placeholder(name.to_owned()));
            } else {
                // Rules are written URL-encoded (Netlify requires it for
                // special characters) but the server hands us decoded paths,
                // so literals are decoded once here rather than per request.
                let decoded = decode(segment)?;
                segments.extend(
                    decoded
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .map(|s| Segment::Literal(s.to_owned())),
                );
            }
        }
        Ok(Self { segments, splat })
    }

    /// Matches a decoded request path and returns the captured placeholders
    /// (plus `splat` when the pattern ends in `*`).
    pub(crate) fn matches(&self, path: &str) -> Option<Bindings> {
        // `rest` is what follows the last consumed '/'; `None` means the path
        // ended without a trailing slash.
        let mut rest = Some(path.strip_prefix('/').unwrap_or(path));
        let mut bindings = Vec::new();
        for segment in &self.segments {
            let current = rest?;
            let (head, tail) = match current.split_once('/') {
                Some((head, tail)) => (head, Some(tail)),
                None => (current, None),
            };
            match segment {
                Segment::Literal(literal) if literal == head => {}
                Segment::Placeholder(name) if !head.is_empty() => {
                    bindings.push((name.clone(), head.to_owned()));
                }
                _ => return None,
            }
            rest = tail;
        }
        if self.splat {
            // The splat keeps the remainder verbatim (including a trailing
            // slash) and may be empty, so `/blog/*` also matches `/blog`.
            bindings.push((SPLAT.to_owned(), rest.unwrap_or_default().to_owned()));
        } else if !matches!(rest, None | Some("")) {
            // `Some("")` is a single trailing slash, which Netlify ignores.
            return None;
        }
        Some(bindings)
    }
}

/// A query parameter the request must carry for the rule to match.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueryParam {
    key: String,
    value: QueryValue,
}

#[derive(Debug, Clone, PartialEq)]
enum QueryValue {
    /// The request value must be exactly this.
    Exact(String),
    /// Any non-empty value, bound under this placeholder name.
    Bind(String),
}

impl QueryParam {
    /// Parses a `key=value` or `key=:placeholder` token.
    pub(crate) fn parse(token: &str) -> Result<Self, PatternError> {
        let bad = || PatternError::BadQuery(token.to_owned());
        let (key, value) = token.split_once('=').ok_or_else(bad)?;
        if key.is_empty() {
            return Err(bad());
        }
        let value = match value.strip_prefix(':').filter(|n| !n.is_empty()) {
            Some(name) if is_placeholder_name(name) => QueryValue::Bind(name.to_owned()),
            Some(name) => return Err(PatternError::BadPlaceholder(name.to_owned())),
            None => QueryValue::Exact(decode_query_part(value)),
        };
        Ok(Self {
            key: decode_query_part(key),
            value,
        })
    }
}

/// Checks every required parameter against the decoded request query and
/// appends query placeholders to `bindings`. All parameters are required.
pub(crate) fn query_matches(
    required: &[QueryParam],
    request: &[(String, String)],
    bindings: &mut Bindings,
) -> bool {
    for param in required {
        let Some((_, actual)) = request.iter().find(|(key, _)| *key == param.key) else {
            return false;
        };
        match &param.value {
            QueryValue::Exact(expected) if expected == actual => {}
            QueryValue::Bind(name) if !actual.is_empty() => {
                bindings.push((name.clone(), actual.clone()));
            }
            _ => return false,
        }
    }
    true
}

/// Splits and decodes a raw query string (`a=1&b=two`) into pairs.
pub(crate) fn parse_request_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_query_part(key), decode_query_part(value))
        })
        .collect()
}

/// Looks up the first binding of `name`.
pub(crate) fn lookup<'a>(bindings: &'a Bindings, name: &str) -> Option<&'a str> {
    bindings
        .iter()
        .find(|(bound, _)| bound == name)
        .map(|(_, value)| value.as_str())
}

/// Placeholder names are restricted so that the end of a name in a target
/// such as `/blog-:year-:month.html` is unambiguous.
pub(crate) fn is_placeholder_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_placeholder_byte)
}

/// Bytes allowed in a placeholder name.
pub(crate) fn is_placeholder_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

fn decode(segment: &str) -> Result<String, PatternError> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| PatternError::BadEncoding(segment.to_owned()))
}

/// Decodes one key or value of a query string the way browsers encode forms
/// (`+` is a space). Invalid UTF-8 is replaced rather than rejected because a
/// request can carry anything.
fn decode_query_part(part: &str) -> String {
    let spaced = part.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(from: &str) -> PathPattern {
        PathPattern::parse(from).expect("pattern should compile")
    }

    fn bound(pairs: &[(&str, &str)]) -> Option<Bindings> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn literal_paths_match_exactly_and_case_sensitively() {
        let p = pattern("/About/team");
        assert_eq!(p.matches("/About/team"), bound(&[]));
        assert_eq!(p.matches("/about/team"), None);
        assert_eq!(p.matches("/About"), None);
        assert_eq!(p.matches("/About/team/more"), None);
    }

    #[test]
    fn a_single_trailing_slash_on_either_side_is_ignored() {
        assert_eq!(pattern("/about").matches("/about/"), bound(&[]));
        assert_eq!(pattern("/about/").matches("/about"), bound(&[]));
        assert_eq!(pattern("/about").matches("/about//"), None);
    }

    #[test]
    fn the_root_pattern_matches_only_the_root() {
        assert_eq!(pattern("/").matches("/"), bound(&[]));
        assert_eq!(pattern("/").matches("/a"), None);
    }

    #[test]
    fn placeholders_bind_exactly_one_non_empty_segment() {
        let p = pattern("/news/:year/:month");
        assert_eq!(
            p.matches("/news/2024/05"),
            bound(&[("year", "2024"), ("month", "05")])
        );
        assert_eq!(p.matches("/news/2024"), None);
        assert_eq!(p.matches("/news//05"), None);
        assert_eq!(p.matches("/news/2024/05/x"), None);
    }

    #[test]
    fn splat_captures_the_rest_verbatim_and_may_be_empty() {
        let p = pattern("/blog/*");
        assert_eq!(p.matches("/blog/a/b/"), bound(&[("splat", "a/b/")]));
        assert_eq!(p.matches("/blog/"), bound(&[("splat", "")]));
        assert_eq!(p.matches("/blog"), bound(&[("splat", "")]));
        assert_eq!(p.matches("/blogger"), None);
    }

    #[test]
    fn splat_anywhere_but_the_last_segment_is_rejected() {
        assert_eq!(
            PathPattern::parse("/*/x"),
            Err(PatternError::MisplacedSplat)
        );
        assert_eq!(
            PathPattern::parse("/blog*"),
            Err(PatternError::MisplacedSplat)
        );
    }

    #[test]
    fn percent_encoded_literals_match_decoded_request_paths() {
        assert_eq!(pattern("/caf%C3%A9").matches("/café"), bound(&[]));
        assert_eq!(pattern("/a%20b").matches("/a b"), bound(&[]));
        assert!(matches!(
            PathPattern::parse("/%FF"),
            Err(PatternError::BadEncoding(_))
        ));
    }

    #[test]
    fn query_params_are_required_and_can_bind_placeholders() {
        let required = vec![
            QueryParam::parse("id=:id").expect("valid"),
            QueryParam::parse("lang=en").expect("valid"),
        ];
        let mut b = Vec::new();
        let request = parse_request_query(Some("lang=en&id=4%2B2&x=1"));
        assert!(query_matches(&required, &request, &mut b));
        assert_eq!(lookup(&b, "id"), Some("4+2"));

        let missing = parse_request_query(Some("id=4"));
        assert!(!query_matches(&required, &missing, &mut Vec::new()));
        let wrong = parse_request_query(Some("id=4&lang=fr"));
        assert!(!query_matches(&required, &wrong, &mut Vec::new()));
        let empty = parse_request_query(Some("id=&lang=en"));
        assert!(!query_matches(&required, &empty, &mut Vec::new()));
    }

    #[test]
    fn query_tokens_without_equals_are_rejected() {
        assert!(matches!(
            QueryParam::parse("foo"),
            Err(PatternError::BadQuery(_))
        ));
        assert!(matches!(
            QueryParam::parse("=x"),
            Err(PatternError::BadQuery(_))
        ));
    }
}
