//! The stored login (`<config dir>/hostctl/config.json`) and how it combines with
//! `--server` / `--token` into the credentials a command uses.

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors reading or writing the stored login.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No `--server`/`--token` and nothing stored (or stored for another server).
    #[error(
        "not logged in: run `hostctl login --server URL` or set HOSTCTL_SERVER and HOSTCTL_TOKEN"
    )]
    NotLoggedIn,
    /// `--server` names another server than the stored login, and no `--token` was given.
    #[error(
        "logged in to {stored}, not {requested}: run `hostctl login --server {requested}` or pass --token"
    )]
    OtherServer { stored: String, requested: String },
    /// The platform has no per-user config directory (no `$HOME`, no `$XDG_CONFIG_HOME`).
    #[error("cannot find a config directory: set XDG_CONFIG_HOME or HOME")]
    NoConfigDir,
    /// The server URL is not an absolute http(s) URL.
    #[error("invalid server URL `{0}`: expected something like http://localhost:3000")]
    InvalidServer(String),
    #[error("cannot read {}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is not a valid hostctl config file", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// A server and the token to use with it; this is also the stored file's JSON shape.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Base URL without a trailing slash, e.g. `http://localhost:3000`.
    pub server: String,
    pub token: String,
}

// Hand-written so a `{:?}` in a log or panic never prints the token.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("server", &self.server)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Checks that `raw` is an absolute http(s) URL and returns it without trailing slashes,
/// so `http://h:3000` and `http://h:3000/` are the same server.
pub fn normalize_server(raw: &str) -> Result<String, ConfigError> {
    let parsed =
        url::Url::parse(raw.trim()).map_err(|_| ConfigError::InvalidServer(raw.to_owned()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(ConfigError::InvalidServer(raw.to_owned()));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// Where the login is stored: `<config dir>/hostctl/config.json` (honours `XDG_CONFIG_HOME`).
pub fn default_path() -> Result<PathBuf, ConfigError> {
    dirs::config_dir()
        .map(|dir| dir.join("hostctl").join("config.json"))
        .ok_or(ConfigError::NoConfigDir)
}

/// Reads the stored login; `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<Credentials>, ConfigError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
}

/// Stores the login, readable by the owner only (file 0600, directory 0700).
pub fn save(path: &Path, credentials: &Credentials) -> Result<(), ConfigError> {
    let write_err = |source| ConfigError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(write_err)?;
    }
    let mut json =
        serde_json::to_vec_pretty(credentials).map_err(|e| write_err(io::Error::other(e)))?;
    json.push(b'\n');

    // Write a fresh file and rename it over the old one: `mode` only applies when a file is
    // created, so rewriting an existing (perhaps world-readable) file in place would keep
    // its old permissions, and a crash half-way would lose the previous login.
    let tmp = path.with_extension("json.tmp");
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_err(e)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(write_err)?;
    file.write_all(&json)
        .and_then(|()| file.sync_all())
        .map_err(write_err)?;
    fs::rename(&tmp, path).map_err(write_err)
}

/// Deletes the stored login; returns what was stored, if anything.
pub fn remove(path: &Path) -> Result<Option<Credentials>, ConfigError> {
    // A corrupt file should still be removable, so a parse error only loses the message.
    let previous = load(path).ok().flatten();
    match fs::remove_file(path) {
        Ok(()) => Ok(previous),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Write {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Combines `--server`/`--token` (or their env vars) with the stored login.
///
/// The stored token is only used with the stored server: sending it to whatever
/// `--server` names would hand a credential to a host it was never meant for.
pub fn resolve(
    server: Option<&str>,
    token: Option<&str>,
    stored: Option<Credentials>,
) -> Result<Credentials, ConfigError> {
    let server = server.map(normalize_server).transpose()?;
    match (server, token, stored) {
        (Some(server), Some(token), _) => Ok(Credentials {
            server,
            token: token.to_owned(),
        }),
        (None, Some(token), Some(stored)) => Ok(Credentials {
            server: stored.server,
            token: token.to_owned(),
        }),
        (Some(server), None, Some(stored))
            if normalize_server(&stored.server).ok() == Some(server.clone()) =>
        {
            Ok(stored)
        }
        (None, None, Some(stored)) => Ok(stored),
        (Some(requested), None, Some(stored)) => Err(ConfigError::OtherServer {
            stored: stored.server,
            requested,
        }),
        _ => Err(ConfigError::NotLoggedIn),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn creds(server: &str, token: &str) -> Credentials {
        Credentials {
            server: server.into(),
            token: token.into(),
        }
    }

    #[test]
    fn saved_login_is_private_and_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir
            .path()
            .join("nested")
            .join("hostctl")
            .join("config.json");
        let login = creds("http://localhost:3000", "secret");

        save(&path, &login).expect("save");

        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().expect("parent"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(load(&path).expect("load"), Some(login));
    }

    #[test]
    fn saving_over_a_world_readable_file_makes_it_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        fs::write(&path, "{}").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");

        save(&path, &creds("http://h", "t")).expect("save");

        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_missing_file_means_no_login_and_remove_is_idempotent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        assert_eq!(load(&path).expect("load"), None);
        assert_eq!(remove(&path).expect("remove"), None);
        save(&path, &creds("http://h", "t")).expect("save");
        assert_eq!(remove(&path).expect("remove"), Some(creds("http://h", "t")));
        assert!(!path.exists());
    }

    #[test]
    fn servers_are_normalized_and_validated() {
        assert_eq!(
            normalize_server("http://localhost:3000/").expect("ok"),
            "http://localhost:3000"
        );
        assert_eq!(
            normalize_server("https://h.example/base/").expect("ok"),
            "https://h.example/base"
        );
        assert!(normalize_server("localhost:3000").is_err());
        assert!(normalize_server("ftp://h").is_err());
    }

    #[test]
    fn flags_override_the_stored_login() {
        let stored = Some(creds("http://stored", "stored-token"));
        assert_eq!(
            resolve(Some("http://other"), Some("t"), stored.clone()).expect("ok"),
            creds("http://other", "t")
        );
        assert_eq!(
            resolve(None, Some("t"), stored.clone()).expect("ok"),
            creds("http://stored", "t")
        );
        assert_eq!(
            resolve(None, None, stored.clone()).expect("ok"),
            creds("http://stored", "stored-token")
        );
        assert_eq!(
            resolve(Some("http://stored/"), None, stored).expect("ok"),
            creds("http://stored", "stored-token")
        );
    }

    #[test]
    fn the_stored_token_is_never_sent_to_another_server() {
        let stored = Some(creds("http://stored", "stored-token"));
        let err = resolve(Some("http://evil"), None, stored).expect_err("refused");
        assert!(matches!(err, ConfigError::OtherServer { .. }));
        assert_eq!(
            err.to_string(),
            "logged in to http://stored, not http://evil: \
             run `hostctl login --server http://evil` or pass --token"
        );
    }

    #[test]
    fn nothing_configured_is_a_not_logged_in_error() {
        let err = resolve(None, None, None).expect_err("not logged in");
        assert_eq!(
            err.to_string(),
            "not logged in: run `hostctl login --server URL` or set HOSTCTL_SERVER and HOSTCTL_TOKEN"
        );
        assert!(matches!(
            resolve(Some("http://h"), None, None),
            Err(ConfigError::NotLoggedIn)
        ));
    }

    #[test]
    fn debug_output_hides_the_token() {
        assert!(!format!("{:?}", creds("http://h", "hunter2")).contains("hunter2"));
    }
}
