//! Client for HAProxy's runtime API (the `stats socket ... level admin` of
//! `deploy/haproxy/haproxy.cfg`), and parsers for the replies of its certificate commands
//! as HAProxy 2.6 writes them. The certificate installer (`super::install`) drives it.
//!
//! One command per connection: without `prompt`, HAProxy answers one command and closes
//! the connection, so a reply is everything read until EOF. Payloads may hold private
//! keys: they are never logged, and never copied into longer-lived buffers here.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::x509::normalize_serial;

/// Upper bound for one command: connect, send and read the whole reply.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// `show ssl cert` grows with the number of certificates; anything past this is not HAProxy.
const MAX_REPLY_BYTES: u64 = 16 * 1024 * 1024;

/// Where the runtime API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeApiAddr {
    /// A Unix socket (`unix:/path` or an absolute path).
    Unix(PathBuf),
    /// A TCP `host:port`.
    Tcp(String),
}

impl FromStr for RuntimeApiAddr {
    type Err = RuntimeApiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || RuntimeApiError::InvalidAddress(s.to_owned());
        if let Some(path) = s.strip_prefix("unix:") {
            return if path.is_empty() {
                Err(invalid())
            } else {
                Ok(Self::Unix(path.into()))
            };
        }
        if s.starts_with('/') {
            return Ok(Self::Unix(s.into()));
        }
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
                Ok(Self::Tcp(s.to_owned()))
            }
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for RuntimeApiAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
            Self::Tcp(addr) => f.write_str(addr),
        }
    }
}

/// Why a runtime-API command did not produce a reply. A reply HAProxy did send, even an
/// error message, is not an error here: the caller checks it.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeApiError {
    #[error("invalid HAProxy runtime API address {0:?} (expected unix:<path>, /<absolute path> or <host>:<port>)")]
    InvalidAddress(String),
    #[error("invalid runtime API request: {0}")]
    InvalidRequest(&'static str),
    #[error("HAProxy runtime API at {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("HAProxy runtime API at {addr} did not answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("HAProxy runtime API at {addr}: reply longer than {MAX_REPLY_BYTES} bytes")]
    ReplyTooLarge { addr: String },
}

/// A runtime-API client; cheap to clone (it holds only the address).
#[derive(Debug, Clone)]
pub struct RuntimeApi {
    addr: RuntimeApiAddr,
}

impl RuntimeApi {
    pub fn new(addr: RuntimeApiAddr) -> Self {
        Self { addr }
    }

    pub fn addr(&self) -> &RuntimeApiAddr {
        &self.addr
    }

    /// One command per connection; reads the reply until EOF; bounded by a timeout (5 s).
    pub async fn command(&self, cmd: &str) -> Result<String, RuntimeApiError> {
        check_command(cmd)?;
        self.exchange(&[cmd.as_bytes(), b"\n"]).await
    }

    /// Sends `cmd <<\n<payload>\n\n`. Trailing newlines of `payload` are dropped; an empty
    /// payload, or one with an empty line (which would end it early), is refused.
    pub async fn command_with_payload(
        &self,
        cmd: &str,
        payload: &str,
    ) -> Result<String, RuntimeApiError> {
        check_command(cmd)?;
        let payload = payload.trim_end_matches(['\n', '\r']);
        if payload.is_empty()
            || payload
                .split('\n')
                .any(|line| line.trim_end_matches('\r').is_empty())
        {
            return Err(RuntimeApiError::InvalidRequest(
                "payload is empty or has an empty line",
            ));
        }
        self.exchange(&[cmd.as_bytes(), b" <<\n", payload.as_bytes(), b"\n\n"])
            .await
    }

    async fn exchange(&self, parts: &[&[u8]]) -> Result<String, RuntimeApiError> {
        let addr = || self.addr.to_string();
        let io_error = |source| RuntimeApiError::Io {
            addr: addr(),
            source,
        };
        let talk = async {
            let reply = match &self.addr {
                RuntimeApiAddr::Unix(path) => talk(UnixStream::connect(path).await?, parts).await?,
                RuntimeApiAddr::Tcp(host_port) => {
                    talk(TcpStream::connect(host_port).await?, parts).await?
                }
            };
            Ok::<_, io::Error>(reply)
        };
        let reply = tokio::time::timeout(COMMAND_TIMEOUT, talk)
            .await
            .map_err(|_| RuntimeApiError::Timeout {
                addr: addr(),
                timeout: COMMAND_TIMEOUT,
            })?
            .map_err(io_error)?;
        if reply.len() as u64 > MAX_REPLY_BYTES {
            return Err(RuntimeApiError::ReplyTooLarge { addr: addr() });
        }
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }
}

async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    parts: &[&[u8]],
) -> io::Result<Vec<u8>> {
    for part in parts {
        stream.write_all(part).await?;
    }
    stream.flush().await?;
    let mut reply = Vec::new();
    stream
        .take(MAX_REPLY_BYTES + 1)
        .read_to_end(&mut reply)
        .await?;
    Ok(reply)
}

/// SECURITY: a newline would start a second command (or a payload) on the admin socket.
fn check_command(cmd: &str) -> Result<(), RuntimeApiError> {
    if cmd.trim().is_empty() || cmd.chars().any(char::is_control) {
        return Err(RuntimeApiError::InvalidRequest(
            "command is empty or has control characters",
        ));
    }
    Ok(())
}

/// What `show ssl cert` lists: certificate names, and the name of the open transaction.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CertList {
    pub names: Vec<String>,
    pub transaction: Option<String>,
}

/// Parses `show ssl cert`: an optional `# transaction` block (`*<name>`) then
/// `# filename` and one name a line. `None` if the reply is not such a listing.
pub fn parse_cert_list(reply: &str) -> Option<CertList> {
    enum Block {
        None,
        Transaction,
        Names,
    }
    let (mut list, mut block, mut listing) = (CertList::default(), Block::None, false);
    for line in reply.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        match line {
            "# transaction" => block = Block::Transaction,
            "# filename" => (block, listing) = (Block::Names, true),
            _ => match block {
                Block::Transaction => {
                    list.transaction = Some(line.trim_start_matches('*').to_owned())
                }
                Block::Names => list.names.push(line.to_owned()),
                Block::None => return None,
            },
        }
    }
    listing.then_some(list)
}

/// Parses `show ssl crt-list <crtlist>`: `# <crtlist>` then one entry a line (the
/// certificate name, possibly followed by `[options]` and SNI filters). `None` if the
/// reply is something else (e.g. HAProxy does not know that crt-list).
pub fn parse_crt_list(reply: &str, crtlist: &str) -> Option<Vec<String>> {
    let mut lines = reply.lines().map(str::trim_end).filter(|l| !l.is_empty());
    if lines.next()? != format!("# {crtlist}") {
        return None;
    }
    Some(
        lines
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect(),
    )
}

/// Parses `show acl <file>`: one `0x<ref> <pattern>` a line. `None` if the reply is something
/// else (e.g. `Unknown ACL identifier.`: the running configuration does not use that file).
pub fn parse_acl_patterns(reply: &str) -> Option<Vec<String>> {
    reply
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (reference, pattern) = line.split_once(' ')?;
            reference
                .starts_with("0x")
                .then(|| pattern.trim().to_owned())
        })
        .collect()
}

/// The normalized `Serial:` of a `show ssl cert <name>` reply; `None` when HAProxy does
/// not have the certificate, or has only an empty store (`new ssl cert` without commit).
pub fn parse_served_serial(reply: &str) -> Option<String> {
    reply
        .lines()
        .find_map(|l| l.strip_prefix("Serial:"))
        .map(normalize_serial)
        .filter(|s| !s.is_empty())
}

/// True if the reply is exactly `expected` (HAProxy ends every reply with an empty line).
pub fn reply_is(reply: &str, expected: &str) -> bool {
    reply.trim_end() == expected
}

/// True if the last line of the reply is `Success!` (`commit ssl cert`, `add ssl crt-list`).
pub fn reply_succeeded(reply: &str) -> bool {
    reply.lines().map(str::trim_end).rfind(|l| !l.is_empty()) == Some("Success!")
}

/// The first non-empty line of a reply, for error messages and logs.
pub fn first_line(reply: &str) -> &str {
    reply
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("<empty reply>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_as_unix_paths_or_host_and_port() {
        let parse = |s: &str| s.parse::<RuntimeApiAddr>().ok();
        assert_eq!(
            parse("unix:/run/haproxy/admin.sock"),
            Some(RuntimeApiAddr::Unix("/run/haproxy/admin.sock".into()))
        );
        assert_eq!(
            parse("unix:admin.sock"),
            Some(RuntimeApiAddr::Unix("admin.sock".into()))
        );
        assert_eq!(
            parse("/run/admin.sock"),
            Some(RuntimeApiAddr::Unix("/run/admin.sock".into()))
        );
        assert_eq!(
            parse("haproxy:9999"),
            Some(RuntimeApiAddr::Tcp("haproxy:9999".into()))
        );
        assert_eq!(
            parse("[::1]:9999"),
            Some(RuntimeApiAddr::Tcp("[::1]:9999".into()))
        );
        for bad in [
            "",
            "unix:",
            "admin.sock",
            "haproxy",
            ":9999",
            "haproxy:0",
            "haproxy:http",
            "haproxy:70000",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            RuntimeApiAddr::Unix("/a.sock".into()).to_string(),
            "unix:/a.sock"
        );
    }

    #[test]
    fn acl_listings_give_their_patterns_and_anything_else_is_refused() {
        let reply = "0x5560b0fced70 a.example.test\n0x7f0508046730 b.example.test\n\n";
        assert_eq!(
            parse_acl_patterns(reply),
            Some(vec![
                "a.example.test".to_owned(),
                "b.example.test".to_owned()
            ])
        );
        assert_eq!(parse_acl_patterns("\n"), Some(vec![]));
        assert_eq!(
            parse_acl_patterns("Unknown ACL identifier. Please use #<id> or <file>.\n\n"),
            None
        );
    }

    #[test]
    fn cert_list_reports_names_and_the_open_transaction() {
        let reply =
            "# transaction\n*/c/a.test.pem\n# filename\n/c/a.test.pem\n/etc/default.pem\n\n";
        let list = parse_cert_list(reply).expect("a listing");
        assert_eq!(list.transaction.as_deref(), Some("/c/a.test.pem"));
        assert_eq!(list.names, ["/c/a.test.pem", "/etc/default.pem"]);

        let list = parse_cert_list("# filename\n/etc/default.pem\n\n").expect("a listing");
        assert_eq!(
            (list.transaction, list.names),
            (None, vec!["/etc/default.pem".to_owned()])
        );

        assert_eq!(parse_cert_list("Permission denied\n\n"), None);
        assert_eq!(parse_cert_list(""), None);
    }

    #[test]
    fn crt_list_entries_are_names_without_options() {
        let reply = "# /c/crt-list.txt\n/c/a.test.pem\n/c/b.test.pem [alpn h2] b.test\n\n";
        assert_eq!(
            parse_crt_list(reply, "/c/crt-list.txt"),
            Some(vec!["/c/a.test.pem".into(), "/c/b.test.pem".into()])
        );
        assert_eq!(
            parse_crt_list("# /c/crt-list.txt\n\n", "/c/crt-list.txt"),
            Some(vec![])
        );
        assert_eq!(
            parse_crt_list("didn't find the specified filename\n\n", "/c/crt-list.txt"),
            None
        );
        assert_eq!(parse_crt_list("# /other.txt\n\n", "/c/crt-list.txt"), None);
    }

    #[test]
    fn served_serial_is_read_from_show_ssl_cert() {
        let used = "Filename: /c/a.pem\nStatus: Used\nSerial: 00140EE0BA\nnotBefore: x\n\n";
        assert_eq!(parse_served_serial(used).as_deref(), Some("140EE0BA"));
        assert_eq!(
            parse_served_serial("Filename: /c/a.pem\nStatus: Empty\nOCSP Response Key: \n\n"),
            None
        );
        assert_eq!(
            parse_served_serial(
                "Can't display the certificate: Not found or the certificate is a bundle!\n"
            ),
            None
        );
    }

    #[test]
    fn serials_are_compared_upper_case_without_leading_zeros() {
        assert_eq!(normalize_serial("00ab:cd"), "ABCD");
        assert_eq!(normalize_serial("7FBCD1AD"), normalize_serial("07fbcd1ad"));
    }

    #[test]
    fn replies_are_checked_exactly() {
        assert!(reply_is(
            "Transaction created for certificate /c/a.pem!\n\n",
            "Transaction created for certificate /c/a.pem!"
        ));
        assert!(!reply_is(
            "Transaction updated for certificate /c/b.pem!\n\n",
            "Transaction created for certificate /c/a.pem!"
        ));
        assert!(reply_succeeded("Committing /c/a.pem\nSuccess!\n\n"));
        assert!(reply_succeeded(
            "Inserting certificate '/c/a.pem' in crt-list '/c/l.txt'.\nSuccess!\n\n"
        ));
        assert!(!reply_succeeded("inconsistencies between private key and certificate loaded '/c/a.pem'.\nCan't commit /c/a.pem!\n\n"));
        assert_eq!(first_line("\nCan't commit x!\n\n"), "Can't commit x!");
        assert_eq!(first_line(""), "<empty reply>");
    }

    #[tokio::test]
    async fn commands_with_newlines_and_payloads_with_empty_lines_are_refused() {
        let api = RuntimeApi::new(RuntimeApiAddr::Unix("/nonexistent/admin.sock".into()));
        let refused = |r: Result<String, RuntimeApiError>| {
            matches!(r, Err(RuntimeApiError::InvalidRequest(_)))
        };
        assert!(refused(
            api.command("show info\nshutdown frontend fe").await
        ));
        assert!(refused(api.command("").await));
        assert!(refused(
            api.command_with_payload("set ssl cert x", "a\n\nb").await
        ));
        assert!(refused(
            api.command_with_payload("set ssl cert x", "a\r\n\r\nb")
                .await
        ));
        assert!(refused(
            api.command_with_payload("set ssl cert x", "\n").await
        ));
        assert!(matches!(
            api.command("show info").await,
            Err(RuntimeApiError::Io { .. })
        ));
    }
}
