//! Parsing one `_redirects` line into a [`RedirectRule`].
//!
//! The grammar follows Netlify's reference parser
//! (`netlify/build` `packages/redirect-parser`):
//! `from [key=value…] to [status[!]] [Condition=value…]`, or the forward
//! form `/path/* 200` where the destination is implied.

use super::conditions::{ConditionError, Conditions};
use super::pattern::{PathPattern, PatternError, QueryParam};
use super::{MatchKind, RedirectRule};

/// Why a `_redirects` line was skipped. The message is shown to site owners.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum RuleError {
    #[error("missing destination path/URL")]
    MissingDestination,
    #[error("domain-level rules are not supported")]
    DomainLevel,
    #[error("source '{0}' must be a path starting with '/'")]
    BadSource(String),
    #[error("paths under /.netlify are reserved")]
    ReservedSource,
    #[error("the destination path/URL must start with '/', 'http://' or 'https://'")]
    BadDestination,
    #[error("a destination may only be omitted for a '/path/*' source with status 200")]
    InvalidForward,
    #[error("invalid status code '{0}'")]
    InvalidStatus(String),
    #[error("status {0} is not supported; use 200, 301, 302, 303, 307, 308 or a 4xx")]
    UnsupportedStatus(u16),
    #[error("status {0} needs a path destination, not a URL")]
    StatusNeedsPath(u16),
    #[error(transparent)]
    Condition(#[from] ConditionError),
    #[error("unexpected '{0}' after the status code")]
    UnexpectedToken(String),
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error("more than {0} rules; this line and everything after it were ignored")]
    TooManyRules(usize),
}

/// The status a rule gets when none is written (Netlify's default).
const DEFAULT_STATUS: u16 = 301;

/// Parses a trimmed, non-comment line found at `line` (1-based).
pub(crate) fn parse_line(text: &str, line: usize) -> Result<RedirectRule, RuleError> {
    // An inline comment is the first token starting with '#' and everything
    // after it; a '#' inside a token (`/page#anchor`) is a URL fragment.
    let tokens: Vec<&str> = text
        .split_whitespace()
        .take_while(|token| !token.starts_with('#'))
        .collect();
    let Some((&from, rest)) = tokens.split_first() else {
        return Err(RuleError::MissingDestination);
    };
    check_source(from)?;

    let (query_tokens, to, after_to) = match rest.first() {
        None => return Err(RuleError::MissingDestination),
        Some(first) if looks_like_status(first) => {
            // Forward rule: `/path/* 200` means `/path/* /path/:splat 200`.
            let status = parse_status(first)?;
            let prefix = from.strip_suffix('*').filter(|p| p.ends_with('/'));
            match prefix {
                Some(prefix) if status.0 == 200 => (&[][..], format!("{prefix}:splat"), rest),
                _ => return Err(RuleError::InvalidForward),
            }
        }
        Some(_) => {
            let index = rest
                .iter()
                .position(|token| is_destination(token))
                .ok_or(RuleError::BadDestination)?;
            (&rest[..index], rest[index].to_owned(), &rest[index + 1..])
        }
    };

    let (status, force, conditions) = match after_to.split_first() {
        Some((token, more)) if looks_like_status(token) => {
            let (status, force) = parse_status(token)?;
            (status, force, more)
        }
        _ => (DEFAULT_STATUS, false, after_to),
    };
    check_conditions(conditions)?;
    let conditions = Conditions::parse(conditions)?;
    // Netlify applies Country and Language rules "as though you set force": a visitor
    // sent to their language's page is sent there even from a page that exists.
    let force = force || !conditions.is_empty();

    let kind = classify(status, &to)?;
    let query = query_tokens
        .iter()
        .map(|token| QueryParam::parse(token))
        .collect::<Result<Vec<_>, _>>()?;
    let path = PathPattern::parse(from)?;
    Ok(RedirectRule {
        from: from.to_owned(),
        to,
        status,
        force,
        kind,
        path,
        query,
        conditions,
        line,
    })
}

fn check_source(from: &str) -> Result<(), RuleError> {
    if is_url(from) {
        return Err(RuleError::DomainLevel);
    }
    if !from.starts_with('/') {
        return Err(RuleError::BadSource(from.to_owned()));
    }
    // Netlify reserves this prefix for platform endpoints; refusing it keeps
    // sites from shadowing anything we might mount there later.
    if from == "/.netlify" || from.starts_with("/.netlify/") {
        return Err(RuleError::ReservedSource);
    }
    Ok(())
}

/// Every token after the status is a `Key=value` condition.
fn check_conditions(tokens: &[&str]) -> Result<(), RuleError> {
    match tokens.iter().find(|token| !token.contains('=')) {
        Some(stray) => Err(RuleError::UnexpectedToken((*stray).to_owned())),
        None => Ok(()),
    }
}

fn classify(status: u16, to: &str) -> Result<MatchKind, RuleError> {
    match status {
        200 if is_url(to) => Ok(MatchKind::Proxy),
        200 => Ok(MatchKind::Rewrite),
        301 | 302 | 303 | 307 | 308 => Ok(MatchKind::Redirect),
        400..=499 if is_url(to) => Err(RuleError::StatusNeedsPath(status)),
        400..=499 => Ok(MatchKind::Custom),
        _ => Err(RuleError::UnsupportedStatus(status)),
    }
}

/// A token starting with a digit is meant as a status, even if malformed,
/// so that `30x` is reported as a bad status rather than a bad condition.
fn looks_like_status(token: &str) -> bool {
    token.starts_with(|c: char| c.is_ascii_digit())
}

/// Parses `301` or `301!` into the code and whether the rule is forced.
fn parse_status(token: &str) -> Result<(u16, bool), RuleError> {
    let (digits, force) = match token.strip_suffix('!') {
        Some(digits) => (digits, true),
        None => (token, false),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RuleError::InvalidStatus(token.to_owned()));
    }
    let status = digits
        .parse()
        .map_err(|_| RuleError::InvalidStatus(token.to_owned()))?;
    Ok((status, force))
}

fn is_destination(token: &str) -> bool {
    token.starts_with('/') || is_url(token)
}

/// Whether a token is an absolute `http(s)://` URL (scheme case-insensitive).
pub(crate) fn is_url(token: &str) -> bool {
    let has_prefix = |prefix: &str| {
        token
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    has_prefix("http://") || has_prefix("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> RedirectRule {
        parse_line(text, 1).expect("line should parse")
    }

    fn error(text: &str) -> RuleError {
        parse_line(text, 1).expect_err("line should be rejected")
    }

    #[test]
    fn status_defaults_to_301_and_is_not_forced() {
        let r = rule("/old /new");
        assert_eq!(
            (r.status, r.force, r.kind),
            (301, false, MatchKind::Redirect)
        );
        assert_eq!(r.to, "/new");
    }

    #[test]
    fn a_bang_after_the_status_forces_the_rule() {
        let r = rule("/old /new 302!");
        assert_eq!((r.status, r.force), (302, true));
    }

    #[test]
    fn kinds_follow_status_and_destination() {
        assert_eq!(rule("/a /b 200").kind, MatchKind::Rewrite);
        assert_eq!(rule("/a https://x.test/b 200").kind, MatchKind::Proxy);
        assert_eq!(rule("/a /closed 404").kind, MatchKind::Custom);
        assert_eq!(rule("/a /gone 410").kind, MatchKind::Custom);
        assert_eq!(rule("/a /teapot 418").kind, MatchKind::Custom);
        assert_eq!(rule("/a https://x.test 308").kind, MatchKind::Redirect);
    }

    #[test]
    fn server_errors_and_odd_statuses_are_rejected() {
        assert_eq!(error("/a /b 500"), RuleError::UnsupportedStatus(500));
        assert_eq!(error("/a /b 304"), RuleError::UnsupportedStatus(304));
        assert_eq!(error("/a /b 201"), RuleError::UnsupportedStatus(201));
        assert_eq!(error("/a /b 30x"), RuleError::InvalidStatus("30x".into()));
        assert_eq!(
            error("/a https://x.test 404"),
            RuleError::StatusNeedsPath(404)
        );
    }

    #[test]
    fn inline_comments_end_the_line_but_fragments_do_not() {
        let r = rule("/a /b#top 302 # moved in 2020");
        assert_eq!((r.to.as_str(), r.status), ("/b#top", 302));
    }

    #[test]
    fn a_forward_rule_implies_the_splat_destination() {
        let r = rule("/app/* 200!");
        assert_eq!(
            (r.to.as_str(), r.status, r.force),
            ("/app/:splat", 200, true)
        );
        assert_eq!(rule("/* 200").to, "/:splat");
        assert_eq!(error("/app 200"), RuleError::InvalidForward);
        assert_eq!(error("/app/* 301"), RuleError::InvalidForward);
    }

    #[test]
    fn query_tokens_sit_between_source_and_destination() {
        let r = rule("/blog post=:id lang=en /posts/:id 301");
        assert_eq!(r.query.len(), 2);
        assert_eq!(r.to, "/posts/:id");
        assert!(matches!(
            error("/blog post /posts"),
            RuleError::Pattern(PatternError::BadQuery(_))
        ));
    }

    #[test]
    fn missing_or_malformed_destinations_are_reported() {
        assert_eq!(error("/lonely"), RuleError::MissingDestination);
        assert_eq!(error("/a b c"), RuleError::BadDestination);
        assert_eq!(error("a /b"), RuleError::BadSource("a".into()));
    }

    #[test]
    fn domain_level_and_reserved_sources_are_skipped() {
        assert_eq!(
            error("http://old.example.com/* https://new.example.com/:splat 301!"),
            RuleError::DomainLevel
        );
        assert_eq!(error("/.netlify/functions/x /y"), RuleError::ReservedSource);
        assert_eq!(rule("/.netlifyish /y").from, "/.netlifyish");
    }

    #[test]
    fn country_and_language_rules_parse_and_are_forced() {
        let r = rule("/ /china 302 Country=cn,hk Language=zh");
        assert!(r.force, "conditional rules are forced, as on Netlify");
        assert!(r.conditions.uses_country() && r.conditions.uses_language());
        assert!(!rule("/a /b 302").force);
    }

    #[test]
    fn rules_with_other_conditions_are_skipped_instead_of_applied_to_everyone() {
        assert!(matches!(
            error("/api/* https://api.test/:splat 200! Sign=SECRET"),
            RuleError::Condition(ConditionError::Unsupported(_))
        ));
        assert!(matches!(
            error("/a /b Role=admin"),
            RuleError::Condition(ConditionError::Unsupported(_))
        ));
        assert_eq!(
            error("/a /b 301 please"),
            RuleError::UnexpectedToken("please".into())
        );
    }

    #[test]
    fn uppercase_url_schemes_are_recognised() {
        assert!(is_url("HTTPS://example.com"));
        assert!(!is_url("/https://example.com"));
        assert!(!is_url("ftp://example.com"));
    }
}
