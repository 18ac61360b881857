//! Typed configuration errors: which setting (its environment variable and its flag),
//! the value it had (redacted for secrets), and why it is refused, with the underlying
//! error (an unreadable `*_FILE`, a URL that does not parse) kept as the source.
//!
//! Each group's `validate` returns every problem it finds as [`ConfigErrors`], and
//! [`super::Config::validate`] gathers all groups' problems, so an operator fixes them
//! in one go. Its `Display` is one line per problem, causes appended.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::secret::{Secret, SecretUrl};

/// The underlying error of a refused value.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A setting, named by its environment variable. Its flag is the variable without the
/// `HOSTING_` prefix, lower-cased, `_` as `-` (how clap names our fields; the
/// command-line definition is held to that by a test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting(pub &'static str);

impl Setting {
    /// The environment variable.
    pub fn env(self) -> &'static str {
        self.0
    }

    /// The flag, `--` included.
    pub fn flag(self) -> String {
        flag_of(self.0)
    }
}

/// `HOSTING_ACME_EAB_KID` -> `--acme-eab-kid`, `DATABASE_URL` -> `--database-url`.
pub(super) fn flag_of(env: &str) -> String {
    let name = env.strip_prefix("HOSTING_").unwrap_or(env);
    format!("--{}", name.to_ascii_lowercase().replace('_', "-"))
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.flag())
    }
}

/// A setting's value as an error shows it: secrets as `[redacted]`, URLs without their
/// password. Built only through the constructors below, so a secret cannot be shown
/// by mistake (there is no `From<&Secret>` that exposes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value(String);

impl Value {
    /// A value shown as `Display` prints it (numbers, addresses, paths' text).
    pub fn shown(value: impl fmt::Display) -> Value {
        Value(value.to_string())
    }

    /// Text, quoted (so an empty value or one with spaces reads as such).
    pub fn text(value: &str) -> Value {
        Value(format!("{value:?}"))
    }

    /// A path.
    pub fn path(path: &Path) -> Value {
        Value(path.display().to_string())
    }

    /// A duration, in the units the settings take.
    pub fn duration(duration: Duration) -> Value {
        let millis = duration.as_millis();
        Value(if millis.is_multiple_of(1000) {
            format!("{}s", millis / 1000)
        } else {
            format!("{millis}ms")
        })
    }

    /// A choice (`clap::ValueEnum`), as it is written.
    pub fn choice(choice: impl clap::ValueEnum) -> Value {
        Value(
            choice
                .to_possible_value()
                .map(|value| value.get_name().to_owned())
                .unwrap_or_default(),
        )
    }

    /// A secret: never shown.
    pub fn secret(secret: &Secret) -> Value {
        Value(secret.to_string())
    }

    /// A URL that may carry a password: shown without it.
    pub fn url(url: &SecretUrl) -> Value {
        Value(url.to_string())
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a setting needs besides itself: all of some settings, or any one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needed {
    All(Vec<Setting>),
    Any(Vec<Setting>),
}

impl fmt::Display for Needed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (settings, joint) = match self {
            Needed::All(settings) => (settings, " and "),
            Needed::Any(settings) => (settings, " or "),
        };
        for (index, setting) in settings.iter().enumerate() {
            if index > 0 {
                f.write_str(joint)?;
            }
            write!(f, "{setting}")?;
        }
        Ok(())
    }
}

/// One refused setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The value is not one the setting takes.
    #[error("{setting} = {value}: {reason}")]
    Invalid {
        setting: Setting,
        value: Value,
        reason: Cow<'static, str>,
        #[source]
        source: Option<Cause>,
    },
    /// The setting is set, and needs others that are not.
    #[error("{setting} = {value} needs {needed}{}", because(reason))]
    Needs {
        setting: Setting,
        value: Value,
        needed: Needed,
        reason: &'static str,
    },
    /// The setting is set together with one it excludes.
    #[error("{setting} = {value} excludes {other}{}", because(reason))]
    Excludes {
        setting: Setting,
        value: Value,
        other: Setting,
        reason: &'static str,
    },
    /// A `*_FILE` setting names a file that cannot be read.
    #[error("{setting} = {}: the file cannot be read", path.display())]
    SecretFile {
        setting: Setting,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn because(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason})")
    }
}

impl ConfigError {
    /// A value the setting does not take, for `reason`.
    pub fn invalid(setting: Setting, value: Value, reason: impl Into<Cow<'static, str>>) -> Self {
        ConfigError::Invalid {
            setting,
            value,
            reason: reason.into(),
            source: None,
        }
    }

    /// A value the setting does not take, because of `source`.
    pub fn invalid_because(
        setting: Setting,
        value: Value,
        reason: impl Into<Cow<'static, str>>,
        source: impl Into<Cause>,
    ) -> Self {
        ConfigError::Invalid {
            setting,
            value,
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    /// The setting that is refused.
    pub fn setting(&self) -> Setting {
        match self {
            ConfigError::Invalid { setting, .. }
            | ConfigError::Needs { setting, .. }
            | ConfigError::Excludes { setting, .. }
            | ConfigError::SecretFile { setting, .. } => *setting,
        }
    }
}

/// Every refused setting of a configuration (never empty).
#[derive(Debug)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    /// The refused settings, in the order they were found.
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }

    /// How many problems there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// `invalid configuration:` and then one problem per line, each with its causes.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration:")?;
        for error in &self.0 {
            write!(f, "\n  {error}")?;
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                write!(f, ": {cause}")?;
                source = cause.source();
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects a group's problems; `finish` turns them into the group's result.
#[derive(Debug, Default)]
pub struct Problems(Vec<ConfigError>);

impl Problems {
    pub fn new() -> Self {
        Problems::default()
    }

    /// Records one problem.
    pub fn push(&mut self, error: ConfigError) {
        self.0.push(error);
    }

    /// Records the problem `error` describes when `refused` holds.
    pub fn check(&mut self, refused: bool, error: impl FnOnce() -> ConfigError) {
        if refused {
            self.0.push(error());
        }
    }

    /// Records another check's problems, if it had any.
    pub fn merge<T>(&mut self, result: Result<T, impl Into<ConfigErrors>>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(errors) => {
                self.0.extend(errors.into());
                None
            }
        }
    }

    /// `Ok` when nothing was recorded.
    pub fn finish(self) -> Result<(), ConfigErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(self.0))
        }
    }
}
