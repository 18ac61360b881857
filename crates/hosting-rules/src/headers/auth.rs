//! `Basic-Auth` lines of `_headers`: Netlify's path-level password protection.
//!
//! `Basic-Auth: alice:secret bob:hunter2` under a path pattern protects every path the
//! pattern matches: the server asks for one of those user/password pairs. The line is
//! never sent as a header, and the passwords never appear in `Debug` output or in
//! parse warnings, so they cannot reach a log.

use subtle::ConstantTimeEq;

/// Why a `Basic-Auth` line was dropped. The message never repeats the value: it holds
/// passwords.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("Basic-Auth needs 'user:password' pairs separated by spaces; the line was dropped")]
    Malformed,
}

/// The user/password pairs that unlock a protected path.
#[derive(Clone, PartialEq)]
pub struct BasicAuth {
    users: Vec<(String, String)>,
}

impl BasicAuth {
    /// Parses `user:pass user2:pass2`. A user name has no `:` (RFC 7617); the password
    /// is everything after the first one. Empty names or passwords are refused.
    pub(crate) fn parse(value: &str) -> Result<BasicAuth, AuthError> {
        let users = value
            .split_whitespace()
            .map(|pair| match pair.split_once(':') {
                Some((user, password)) if !user.is_empty() && !password.is_empty() => {
                    Ok((user.to_owned(), password.to_owned()))
                }
                _ => Err(AuthError::Malformed),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if users.is_empty() {
            return Err(AuthError::Malformed);
        }
        Ok(BasicAuth { users })
    }

    /// Adds the pairs of another `Basic-Auth` line of the same block.
    pub(crate) fn extend(&mut self, other: BasicAuth) {
        self.users.extend(other.users);
    }

    /// Whether `user` / `password` is one of the pairs. Every pair is compared, in
    /// constant time for equal lengths, so timing does not tell which part was wrong.
    pub fn accepts(&self, user: &str, password: &str) -> bool {
        let mut accepted = subtle::Choice::from(0);
        for (known_user, known_password) in &self.users {
            accepted |= known_user.as_bytes().ct_eq(user.as_bytes())
                & known_password.as_bytes().ct_eq(password.as_bytes());
        }
        accepted.into()
    }

    /// The user names (for diagnostics; never the passwords).
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.iter().map(|(user, _)| user.as_str())
    }
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("users", &self.users().collect::<Vec<_>>())
            .field("passwords", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_split_at_the_first_colon() {
        let auth = BasicAuth::parse("alice:se:cret  bob:pw").expect("parses");
        assert!(auth.accepts("alice", "se:cret"));
        assert!(auth.accepts("bob", "pw"));
        assert!(!auth.accepts("alice", "pw"));
        assert!(!auth.accepts("bob", "pw "));
        assert!(!auth.accepts("", ""));
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in ["", "alice", "alice:", ":pw", "alice:pw bob"] {
            assert_eq!(BasicAuth::parse(bad), Err(AuthError::Malformed), "{bad}");
        }
    }

    #[test]
    fn debug_output_never_shows_a_password() {
        let auth = BasicAuth::parse("alice:hunter2").expect("parses");
        let shown = format!("{auth:?}");
        assert!(shown.contains("alice"));
        assert!(!shown.contains("hunter2"));
    }
}
