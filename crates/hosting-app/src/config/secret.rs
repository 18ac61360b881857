//! Secret settings: their `Debug` never shows the value, so `Config`'s derived `Debug`
//! is the redacted view logged at start-up (no hand-kept list of fields to forget one in).

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

/// A token, password or key: printed as `[redacted]`, wiped from memory when dropped.
#[derive(Clone)]
pub struct Secret(SecretString);

/// A URL that may carry a password (`postgres://user:pass@host/db`): printed with the
/// password replaced, so logs still show which server it names.
#[derive(Clone)]
pub struct SecretUrl(SecretString);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(self.0.expose_secret()))
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl ExposeSecret<str> for Secret {
    fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl ExposeSecret<str> for SecretUrl {
    fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(SecretString::from(value))
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(SecretString::from(value))
    }
}

impl From<&str> for SecretUrl {
    fn from(value: &str) -> Self {
        SecretUrl(SecretString::from(value))
    }
}

impl From<String> for SecretUrl {
    fn from(value: String) -> Self {
        SecretUrl(SecretString::from(value))
    }
}

// clap parses settings through `FromStr`; neither can fail.
impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Secret::from(text))
    }
}

impl FromStr for SecretUrl {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(SecretUrl::from(text))
    }
}

/// `scheme://user:secret@host/...` -> `scheme://user:[redacted]@host/...`
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_none() {
                return parsed.to_string();
            }
            // The marker is percent-encoded in the URL; shown as written, it reads as
            // the other redacted settings do.
            let _ = parsed.set_password(Some("[redacted]"));
            parsed
                .to_string()
                .replacen("%5Bredacted%5D", "[redacted]", 1)
        }
        Err(_) => "[unparseable URL]".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_print_redacted_and_urls_keep_their_host() {
        let token = Secret::from("super-secret-token");
        assert_eq!(format!("{token:?} {token}"), "[redacted] [redacted]");
        assert_eq!(token.expose_secret(), "super-secret-token");
        let url = SecretUrl::from("postgres://app:pw@db:5432/hosting");
        assert_eq!(
            format!("{url:?}"),
            "postgres://app:[redacted]@db:5432/hosting"
        );
        assert_eq!(
            format!("{:?}", SecretUrl::from("not a url")),
            "[unparseable URL]"
        );
    }
}
