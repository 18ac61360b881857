//! Netlify-compatible `_headers`: custom response headers per path pattern.
//!
//! A file is a list of blocks: a line starting with `/` opens a block and the
//! `Name: value` lines under it add headers to every path the block matches.
//! The format follows Netlify's reference parser (`netlify/build`
//! `packages/headers-parser`).

mod auth;
mod glob;
mod validate;

pub use auth::BasicAuth;

use crate::lines::meaningful_lines;
use crate::ParseWarning;
use glob::PathGlob;
use validate::{parse_line, HeaderError, Line};

/// Most blocks a `_headers` file may hold. Every request is checked against
/// every block, so the cap keeps a hostile file from slowing every request.
pub const MAX_BLOCKS: usize = 10_000;

/// One path pattern and the headers it sets.
#[derive(Debug, Clone, PartialEq)]
struct Block {
    glob: PathGlob,
    /// Header names keep the spelling of their first occurrence in the block.
    headers: Vec<(String, String)>,
    /// `Basic-Auth` pairs: the block's paths are password-protected.
    auth: Option<BasicAuth>,
}

/// The parsed `_headers` file of one deploy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeaderRules {
    blocks: Vec<Block>,
}

impl HeaderRules {
    /// Parses a `_headers` file. Reserved header names (Accept-Ranges, Age,
    /// Allow, Alt-Svc, Connection, Content-Encoding, Content-Length,
    /// Content-Range, Date, Location, Server, Set-Cookie, Trailer,
    /// Transfer-Encoding, Upgrade) are dropped with a warning, as are names
    /// and values that are not valid in HTTP. `Basic-Auth` lines protect the
    /// block's paths (see [`HeaderRules::basic_auth`]) and are never headers.
    /// Lines without `:` are ignored silently, like Netlify does. At most
    /// [`MAX_BLOCKS`] blocks are kept.
    pub fn parse(text: &str) -> (HeaderRules, Vec<ParseWarning>) {
        let mut blocks: Vec<Block> = Vec::new();
        let mut warnings = Vec::new();
        for (line, content) in meaningful_lines(text) {
            if content.starts_with('/') {
                if blocks.len() >= MAX_BLOCKS {
                    warnings.push(ParseWarning::new(
                        line,
                        HeaderError::TooManyBlocks(MAX_BLOCKS),
                    ));
                    break;
                }
                blocks.push(Block {
                    glob: PathGlob::new(content),
                    headers: Vec::new(),
                    auth: None,
                });
                continue;
            }
            if !content.contains(':') {
                continue;
            }
            let Some(block) = blocks.last_mut() else {
                warnings.push(ParseWarning::new(line, HeaderError::NoPath));
                continue;
            };
            match parse_line(content) {
                Ok(Line::Header(name, value)) => add_joined(&mut block.headers, name, value),
                Ok(Line::BasicAuth(auth)) => match &mut block.auth {
                    Some(existing) => existing.extend(auth),
                    None => block.auth = Some(auth),
                },
                Err(error) => warnings.push(ParseWarning::new(line, error)),
            }
        }
        // A block left empty (all of its headers rejected) can never add
        // anything, so it is not worth checking on every request.
        blocks.retain(|block| !block.headers.is_empty() || block.auth.is_some());
        (HeaderRules { blocks }, warnings)
    }

    /// Whether no block sets any header.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The credentials protecting a path (already percent-decoded): those of the
    /// last matching block with a `Basic-Auth` line (a later block overrides an
    /// earlier one, as headers do); `None` when the path is not protected.
    pub fn basic_auth(&self, path: &str) -> Option<&BasicAuth> {
        self.blocks
            .iter()
            .rev()
            .filter(|block| block.auth.is_some())
            .find(|block| block.glob.matches(path))
            .and_then(|block| block.auth.as_ref())
    }

    /// Headers for a request path (already percent-decoded), in block order.
    /// Every matching block applies; when several blocks set the same header
    /// name (case-insensitive) the later block's value replaces the earlier
    /// one, as in Netlify's dev emulation. Within one block a repeated name
    /// has its values joined with ", ".
    pub fn for_path(&self, path: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for block in self.blocks.iter().filter(|block| block.glob.matches(path)) {
            for (name, value) in &block.headers {
                match out
                    .iter_mut()
                    .find(|(seen, _)| seen.eq_ignore_ascii_case(name))
                {
                    Some(existing) => *existing = (name.clone(), value.clone()),
                    None => out.push((name.clone(), value.clone())),
                }
            }
        }
        out
    }
}

/// Adds a header to a block, joining with ", " when the block already has it.
fn add_joined(headers: &mut Vec<(String, String)>, name: String, value: String) {
    match headers
        .iter_mut()
        .find(|(seen, _)| seen.eq_ignore_ascii_case(&name))
    {
        Some((_, existing)) => {
            existing.push_str(", ");
            existing.push_str(&value);
        }
        None => headers.push((name, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> HeaderRules {
        let (rules, warnings) = HeaderRules::parse(text);
        assert_eq!(warnings, vec![], "unexpected warnings");
        rules
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_block_applies_its_headers_to_matching_paths() {
        let rules = parse_ok("/*\n  X-Frame-Options: DENY\n  X-Robots-Tag: noindex\n");
        assert_eq!(
            rules.for_path("/any/page"),
            pairs(&[("X-Frame-Options", "DENY"), ("X-Robots-Tag", "noindex")])
        );
    }

    #[test]
    fn an_empty_file_sets_nothing() {
        let rules = parse_ok("# only a comment\n\n");
        assert!(rules.is_empty());
        assert_eq!(rules.for_path("/"), vec![]);
    }

    #[test]
    fn repeated_names_in_one_block_join_with_a_comma() {
        let rules = parse_ok("/\n  Cache-Control: max-age=0\n  cache-control: no-cache\n");
        assert_eq!(
            rules.for_path("/"),
            pairs(&[("Cache-Control", "max-age=0, no-cache")])
        );
    }

    #[test]
    fn a_later_block_overrides_an_earlier_same_named_header() {
        let rules = parse_ok(
            "/*\n  Cache-Control: no-cache\n  X-A: 1\n/assets/*\n  cache-control: max-age=31536000\n",
        );
        assert_eq!(
            rules.for_path("/assets/app.js"),
            pairs(&[("cache-control", "max-age=31536000"), ("X-A", "1")])
        );
        assert_eq!(
            rules.for_path("/index.html"),
            pairs(&[("Cache-Control", "no-cache"), ("X-A", "1")])
        );
    }

    #[test]
    fn a_standalone_star_also_matches_the_bare_directory() {
        let rules = parse_ok("/blog/*\n  X-Section: blog\n");
        assert_eq!(rules.for_path("/blog"), pairs(&[("X-Section", "blog")]));
        assert_eq!(
            rules.for_path("/blog/post/"),
            pairs(&[("X-Section", "blog")])
        );
        assert_eq!(rules.for_path("/blogger"), vec![]);
    }

    #[test]
    fn a_star_inside_a_segment_and_placeholders_match() {
        let rules = parse_ok("/*.css\n  X-Kind: css\n/users/:id\n  X-Kind: user\n");
        assert_eq!(rules.for_path("/a/b/site.css"), pairs(&[("X-Kind", "css")]));
        assert_eq!(rules.for_path("/users/42"), pairs(&[("X-Kind", "user")]));
        assert_eq!(rules.for_path("/users/42/x"), vec![]);
    }

    #[test]
    fn header_paths_match_case_insensitively() {
        let rules = parse_ok("/Docs/*\n  X-Docs: yes\n");
        assert_eq!(rules.for_path("/docs/INTRO"), pairs(&[("X-Docs", "yes")]));
    }

    #[test]
    fn a_header_before_any_path_is_reported() {
        let (rules, warnings) = HeaderRules::parse("X-Early: 1\n/a\n  X-Ok: 2\n");
        assert_eq!(
            warnings,
            vec![ParseWarning {
                line: 1,
                message: "path should come before header".into()
            }]
        );
        assert_eq!(rules.for_path("/a"), pairs(&[("X-Ok", "2")]));
    }

    #[test]
    fn reserved_and_invalid_headers_are_dropped_with_warnings() {
        let text = "/*\n  Content-Length: 1\n  X-Bad\u{1}: v\n  X-Ok: fine\n  Location: /x\n  X-Ctl: a\u{7f}\n";
        let (rules, warnings) = HeaderRules::parse(text);
        let lines: Vec<usize> = warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, vec![2, 3, 5, 6]);
        assert!(warnings[0].message.contains("Content-Length"));
        assert_eq!(rules.for_path("/x"), pairs(&[("X-Ok", "fine")]));
    }

    #[test]
    fn lines_without_a_colon_are_ignored_silently() {
        let rules = parse_ok("/a\n  just some words\n  X-Ok: 1\n");
        assert_eq!(rules.for_path("/a"), pairs(&[("X-Ok", "1")]));
    }

    #[test]
    fn values_keep_their_inner_colons() {
        let rules = parse_ok("/a\n  Content-Security-Policy: default-src https://cdn.test:443\n");
        assert_eq!(
            rules.for_path("/a"),
            pairs(&[(
                "Content-Security-Policy",
                "default-src https://cdn.test:443"
            )])
        );
    }

    #[test]
    fn basic_auth_protects_matching_paths_and_is_never_a_header() {
        let rules = parse_ok(
            "/admin/*\n  Basic-Auth: root:secret ops:pw\n  X-Admin: 1\n/admin/open/*\n  X-Open: 1\n",
        );
        assert_eq!(rules.for_path("/admin/x"), pairs(&[("X-Admin", "1")]));
        let auth = rules.basic_auth("/admin/missing/page").expect("protected");
        assert!(auth.accepts("root", "secret") && auth.accepts("ops", "pw"));
        assert!(rules.basic_auth("/admin").is_some());
        assert!(rules.basic_auth("/public").is_none());
    }

    #[test]
    fn a_later_basic_auth_block_overrides_an_earlier_one() {
        let rules = parse_ok("/*\n  Basic-Auth: all:one\n/team/*\n  Basic-Auth: team:two\n");
        let team = rules.basic_auth("/team/a").expect("protected");
        assert!(team.accepts("team", "two"));
        assert!(!team.accepts("all", "one"));
        let rest = rules.basic_auth("/else").expect("protected");
        assert!(rest.accepts("all", "one"));
    }

    #[test]
    fn a_malformed_basic_auth_line_is_reported_without_its_value() {
        let (rules, warnings) = HeaderRules::parse("/admin/*\n  Basic-Auth: rootsecret\n");
        assert_eq!(warnings.len(), 1);
        assert!(!warnings[0].message.contains("rootsecret"));
        assert!(rules.basic_auth("/admin/x").is_none());
    }

    #[test]
    fn blocks_past_the_cap_are_reported_once_and_ignored() {
        let mut text: String = (0..MAX_BLOCKS)
            .map(|i| format!("/p{i}\n  X-N: {i}\n"))
            .collect();
        text.push_str("/extra\n  X-N: extra\n/more\n  X-N: more\n");
        let (rules, warnings) = HeaderRules::parse(&text);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].line, 2 * MAX_BLOCKS + 1);
        assert_eq!(rules.for_path("/extra"), vec![]);
        assert_eq!(rules.for_path("/p9999"), pairs(&[("X-N", "9999")]));
    }
}
