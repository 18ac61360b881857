//! Netlify-compatible `_redirects` and `_headers` rules.
//!
//! Sites deployed to the platform can ship the same rule files they would
//! ship to Netlify. This crate parses those files once per deploy and answers
//! the two questions the server asks on every request: "does a redirect or
//! rewrite rule apply to this path?" ([`Redirects::find_for`]), "which extra
//! response headers does this path get?" ([`HeaderRules::for_path`]) and "is
//! this path password-protected?" ([`HeaderRules::basic_auth`]).
//!
//! Parsing never fails as a whole: like Netlify, an invalid line is skipped
//! and reported as a [`ParseWarning`] so the deploy still goes out and the
//! site owner can be told what was ignored.

pub mod headers;
mod lines;
pub mod redirects;

pub use headers::{BasicAuth, HeaderRules};
pub use redirects::{MatchKind, RedirectRule, Redirects, RuleMatch, Visitor};

/// A line that was skipped while parsing, with its 1-based line number and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseWarning {
    /// 1-based line number in the parsed file.
    pub line: usize,
    /// Human-readable reason the line was skipped, suitable for showing to the site owner.
    pub message: String,
}

impl ParseWarning {
    /// Builds a warning from anything displayable, usually a module's error type.
    pub(crate) fn new(line: usize, message: impl std::fmt::Display) -> Self {
        Self {
            line,
            message: message.to_string(),
        }
    }
}

impl std::fmt::Display for ParseWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}
