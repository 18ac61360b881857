//! Path patterns of `_headers` blocks (`/blog/*`, `/*.css`, `/u/:id`).
//!
//! Netlify compiles these into a regular expression (`getForRegExp`):
//! `:name` matches one segment, a standalone `*` segment is optional, a `*`
//! inside a segment matches anything, the match is case-insensitive and a
//! trailing slash is optional. Here the pattern becomes a tiny NFA that is
//! simulated state-set style, so matching costs O(pattern × path) with no
//! backtracking however many stars a hostile file uses.

use percent_encoding::percent_decode_str;

/// One NFA instruction. Characters are compared after lowercasing both sides.
#[derive(Debug, Clone, PartialEq)]
enum Inst {
    /// Consume exactly this character.
    Char(char),
    /// Consume exactly one character that is not `/`.
    NonSlash,
    /// Consume zero or more characters that are not `/`.
    NonSlashStar,
    /// Consume zero or more characters of any kind.
    AnyStar,
    /// Continue at the next instruction or jump to the given one.
    Split(usize),
}

/// A compiled `_headers` block path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PathGlob {
    program: Vec<Inst>,
}

impl PathGlob {
    /// Compiles a block path that starts with `/`.
    pub(crate) fn new(pattern: &str) -> Self {
        let mut program = Vec::new();
        let segments: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
        if segments.is_empty() {
            program.push(Inst::Char('/'));
        }
        for segment in segments {
            if segment == "*" {
                // Optional "/anything": `/blog/*` matches `/blog` and
                // `/blog/x/y` but, unlike Netlify's regex, not `/blogger`.
                let after = program.len() + 3;
                program.extend([Inst::Split(after), Inst::Char('/'), Inst::AnyStar]);
                continue;
            }
            program.push(Inst::Char('/'));
            if segment.len() > 1 && segment.starts_with(':') {
                program.extend([Inst::NonSlash, Inst::NonSlashStar]);
                continue;
            }
            for (index, piece) in segment.split('*').enumerate() {
                if index > 0 {
                    program.push(Inst::AnyStar);
                }
                // Paths arrive decoded, so literal pieces are decoded too;
                // undecodable bytes are kept as written and simply never match.
                let decoded = percent_decode_str(piece).decode_utf8_lossy();
                program.extend(decoded.to_lowercase().chars().map(Inst::Char));
            }
        }
        // Trailing slash is optional.
        let after = program.len() + 2;
        program.extend([Inst::Split(after), Inst::Char('/')]);
        Self { program }
    }

    /// Whether a decoded request path matches, ignoring case.
    pub(crate) fn matches(&self, path: &str) -> bool {
        let len = self.program.len();
        let mut current = vec![false; len + 1];
        let mut next = vec![false; len + 1];
        let mut stack = Vec::new();
        self.add(&mut current, &mut stack, 0);
        for c in path.to_lowercase().chars() {
            next.fill(false);
            for (state, inst) in self.program.iter().enumerate() {
                if !current[state] {
                    continue;
                }
                match inst {
                    Inst::Char(expected) if *expected == c => {
                        self.add(&mut next, &mut stack, state + 1);
                    }
                    Inst::NonSlash if c != '/' => self.add(&mut next, &mut stack, state + 1),
                    Inst::NonSlashStar if c != '/' => self.add(&mut next, &mut stack, state),
                    Inst::AnyStar => self.add(&mut next, &mut stack, state),
                    _ => {}
                }
            }
            std::mem::swap(&mut current, &mut next);
            if !current.contains(&true) {
                return false;
            }
        }
        current[len]
    }

    /// Marks `start` active together with everything reachable from it
    /// without consuming input. Iterative, because a run of thousands of
    /// `*` would otherwise recurse once per star.
    fn add(&self, states: &mut [bool], stack: &mut Vec<usize>, start: usize) {
        stack.push(start);
        while let Some(state) = stack.pop() {
            if std::mem::replace(&mut states[state], true) {
                continue;
            }
            match self.program.get(state) {
                Some(Inst::Split(target)) => stack.extend([state + 1, *target]),
                Some(Inst::NonSlashStar | Inst::AnyStar) => stack.push(state + 1),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, path: &str) -> bool {
        PathGlob::new(pattern).matches(path)
    }

    #[test]
    fn literal_paths_match_with_optional_trailing_slash() {
        assert!(matches("/about", "/about"));
        assert!(matches("/about", "/about/"));
        assert!(matches("/about/", "/about"));
        assert!(!matches("/about", "/about/team"));
        assert!(!matches("/about", "/abou"));
    }

    #[test]
    fn matching_ignores_case() {
        assert!(matches("/Docs/API", "/docs/api"));
        assert!(matches("/docs", "/DOCS"));
    }

    #[test]
    fn the_root_pattern_matches_only_the_root() {
        assert!(matches("/", "/"));
        assert!(!matches("/", "/a"));
    }

    #[test]
    fn a_standalone_star_segment_is_optional() {
        assert!(matches("/blog/*", "/blog"));
        assert!(matches("/blog/*", "/blog/"));
        assert!(matches("/blog/*", "/blog/2024/post"));
        assert!(!matches("/blog/*", "/blogger"));
        assert!(matches("/*", "/"));
        assert!(matches("/*", "/anything/at/all"));
    }

    #[test]
    fn a_star_in_the_middle_spans_any_number_of_segments() {
        assert!(matches("/*/feed.xml", "/feed.xml"));
        assert!(matches("/*/feed.xml", "/a/b/feed.xml"));
        assert!(!matches("/*/feed.xml", "/a/feed.json"));
    }

    #[test]
    fn a_star_inside_a_segment_matches_anything() {
        assert!(matches("/*.css", "/site.css"));
        assert!(matches("/*.css", "/assets/site.css"));
        assert!(matches("/img-*.png", "/img-1.png"));
        assert!(!matches("/*.css", "/site.js"));
    }

    #[test]
    fn a_placeholder_matches_exactly_one_non_empty_segment() {
        assert!(matches("/users/:id", "/users/42"));
        assert!(matches("/users/:id/posts", "/users/42/posts"));
        assert!(!matches("/users/:id", "/users"));
        assert!(!matches("/users/:id", "/users/42/posts"));
    }

    #[test]
    fn percent_encoded_literals_match_decoded_paths() {
        assert!(matches("/caf%C3%A9", "/café"));
        assert!(matches("/caf%C3%A9", "/CAFÉ"));
    }

    #[test]
    fn many_stars_against_a_long_path_do_not_blow_up() {
        let pattern = format!("/{}b", "*a".repeat(200));
        let path = format!("/{}", "a".repeat(5000));
        assert!(!matches(&pattern, &path));
    }

    #[test]
    fn a_long_run_of_stars_does_not_overflow_the_stack() {
        let pattern = format!("/x{}", "*".repeat(100_000));
        assert!(matches(&pattern, "/xyz"));
    }
}
