//! Netlify-compatible `_redirects`: the parsed rule table and request matching.
//!
//! [`Redirects::parse`] compiles a file once per deploy; [`Redirects::find`]
//! then answers, per request, which rule (if any) applies. Rules are tried
//! in file order and the first match wins; non-forced rules step aside when a
//! static file exists at the request path ("shadowing"). A rewrite is never
//! fed back into the table: the server serves its target directly.

mod conditions;
mod parse;
mod pattern;
mod target;

pub use conditions::Visitor;

use crate::lines::meaningful_lines;
use crate::ParseWarning;
use conditions::Conditions;
use parse::RuleError;
use pattern::{parse_request_query, query_matches, Bindings, PathPattern, QueryParam};

/// Most rules a `_redirects` file may hold. Matching is linear in the number
/// of rules, so the cap keeps a hostile file from slowing every request.
pub const MAX_RULES: usize = 10_000;

/// What the server should do with a matched rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// 301, 302, 303, 307 or 308: answer with that status and a `Location` of the target.
    Redirect,
    /// 200 with a path target: serve the target's content under the
    /// requested URL. Rules are not evaluated again for the target.
    Rewrite,
    /// A 4xx with a path target: serve the target's content with that status.
    Custom,
    /// 200 with an absolute `http(s)` target: the server forwards the request
    /// there and streams the answer back.
    Proxy,
}

/// The outcome of matching a request against the rule table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    /// HTTP status to answer with.
    pub status: u16,
    /// The target with placeholders and `:splat` substituted.
    ///
    /// For [`MatchKind::Redirect`] and [`MatchKind::Proxy`] this is a URL
    /// (captured values percent-encoded) and the request's query string is
    /// appended when the rule's target has none. For [`MatchKind::Rewrite`]
    /// and [`MatchKind::Custom`] it is a decoded path inside the deploy,
    /// without query or fragment, ready for a file lookup. Captured values
    /// come from the request, so such a path may contain `..` segments and
    /// must go through the same path sanitising as a request path.
    pub target: String,
    /// What kind of answer the rule asks for.
    pub kind: MatchKind,
    /// Whether the rule was forced with `!`.
    pub force: bool,
}

/// One parsed `_redirects` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RedirectRule {
    from: String,
    to: String,
    status: u16,
    force: bool,
    kind: MatchKind,
    path: PathPattern,
    query: Vec<QueryParam>,
    conditions: Conditions,
    line: usize,
}

impl RedirectRule {
    /// The source path as written in the file.
    pub fn source(&self) -> &str {
        &self.from
    }

    /// The destination as written (or implied, for `/path/* 200` forward rules).
    pub fn destination(&self) -> &str {
        &self.to
    }

    /// The status code the rule answers with.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the rule applies even when a static file exists at the path.
    pub fn force(&self) -> bool {
        self.force
    }

    /// What the server does when the rule matches.
    pub fn kind(&self) -> MatchKind {
        self.kind
    }

    /// 1-based line of the rule in the `_redirects` file, for diagnostics.
    pub fn line(&self) -> usize {
        self.line
    }

    fn matches(
        &self,
        path: &str,
        request_query: &[(String, String)],
        visitor: &Visitor,
    ) -> Option<Bindings> {
        if !self.conditions.admit(visitor) {
            return None;
        }
        let mut bindings = self.path.matches(path)?;
        query_matches(&self.query, request_query, &mut bindings).then_some(bindings)
    }

    fn apply(&self, bindings: &Bindings, query: Option<&str>) -> RuleMatch {
        let target = match self.kind {
            MatchKind::Redirect | MatchKind::Proxy => target::render_url(&self.to, bindings, query),
            MatchKind::Rewrite | MatchKind::Custom => target::render_path(&self.to, bindings),
        };
        RuleMatch {
            status: self.status,
            target,
            kind: self.kind,
            force: self.force,
        }
    }
}

/// The parsed rule table of one deploy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Redirects {
    rules: Vec<RedirectRule>,
}

impl Redirects {
    /// Parses a `_redirects` file; invalid lines are skipped and reported
    /// (Netlify ignores them too). At most [`MAX_RULES`] rules are kept: the
    /// first rule past the cap is reported and the rest of the file ignored.
    pub fn parse(text: &str) -> (Redirects, Vec<ParseWarning>) {
        let mut rules = Vec::new();
        let mut warnings = Vec::new();
        for (line, content) in meaningful_lines(text) {
            match parse::parse_line(content, line) {
                Ok(_) if rules.len() >= MAX_RULES => {
                    warnings.push(ParseWarning::new(line, RuleError::TooManyRules(MAX_RULES)));
                    break;
                }
                Ok(rule) => rules.push(rule),
                Err(error) => warnings.push(ParseWarning::new(line, error)),
            }
        }
        (Redirects { rules }, warnings)
    }

    /// Whether the file held no usable rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Number of usable rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The usable rules in file order.
    pub fn rules(&self) -> &[RedirectRule] {
        &self.rules
    }

    /// Whether some rule has a `Country=` condition (the server then looks the
    /// client address up).
    pub fn uses_country(&self) -> bool {
        self.rules.iter().any(|rule| rule.conditions.uses_country())
    }

    /// Whether some rule has a `Language=` condition.
    pub fn uses_language(&self) -> bool {
        self.rules
            .iter()
            .any(|rule| rule.conditions.uses_language())
    }

    /// [`Redirects::find_for`] a visitor nothing is known about: rules with
    /// conditions never apply.
    pub fn find(
        &self,
        path: &str,
        query: Option<&str>,
        file_exists: impl Fn(&str) -> bool,
    ) -> Option<RuleMatch> {
        self.find_for(path, query, &Visitor::default(), file_exists)
    }

    /// First rule (in file order) matching `path` (already percent-decoded,
    /// starts with '/'), the raw query string (without '?') and the visitor's
    /// country and language, honouring shadowing: a non-forced rule is skipped
    /// when `file_exists(path)` is true (the static file wins); forced (`!`)
    /// rules, and rules with conditions, always apply. Order still holds.
    pub fn find_for(
        &self,
        path: &str,
        query: Option<&str>,
        visitor: &Visitor,
        file_exists: impl Fn(&str) -> bool,
    ) -> Option<RuleMatch> {
        let request_query = parse_request_query(query);
        // The existence check may hit storage, so ask at most once per request.
        let mut shadowed = None;
        for rule in &self.rules {
            let Some(bindings) = rule.matches(path, &request_query, visitor) else {
                continue;
            };
            if !rule.force && *shadowed.get_or_insert_with(|| file_exists(path)) {
                continue;
            }
            return Some(rule.apply(&bindings, query));
        }
        None
    }
}

#[cfg(test)]
mod tests;
