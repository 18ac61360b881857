//! The first run as a new user meets it, with the real binary as a subprocess: a start
//! on a taken port fails before creating anything and names the setting to change; a
//! start on a free port prints a token that works; the operator commands issue a new
//! token and set a password on a running server's data; the README's curl example runs
//! as written. Every server binds loopback port 0 (port 3000 may be taken here).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Generous: only a hung or silent server reaches it (never a timing assertion).
const START_LIMIT: Duration = Duration::from_secs(180);

/// The binary under test with a clean environment: only the settings given apply.
fn hosting_app(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hosting-app"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOSTING_DATA_DIR", data_dir)
        .env("HOSTING_LISTEN", "127.0.0.1:0")
        .env("HOSTING_MGMT_LISTEN", "127.0.0.1:0")
        .env("HOSTING_GC_INTERVAL", "0")
        .env("HOSTING_DOMAIN_CHECK_INTERVAL", "0");
    command
}

/// A running `hosting-app`, killed when dropped.
struct Server {
    child: Child,
    /// The public listener's port, from the "listening" line.
    port: u16,
    /// Everything the server printed on stdout up to and including the "listening" line.
    output: String,
}

impl Server {
    /// Starts the server and reads its stdout until it says it is listening.
    fn start(mut command: Command) -> Server {
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("hosting-app starts");
        // Owned by a `Server` at once, so a failing test still kills and reaps it.
        let mut server = Server {
            child,
            port: 0,
            output: String::new(),
        };
        let stdout = server.child.stdout.take().expect("piped stdout");
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        loop {
            let line = lines.recv_timeout(START_LIMIT).unwrap_or_else(|e| {
                panic!(
                    "no 'listening' line ({e}); output so far:\n{}",
                    server.output
                )
            });
            server.output.push_str(&line);
            server.output.push('\n');
            if let Some((_, rest)) = line.split_once("API http://localhost:") {
                server.port = rest
                    .split('/')
                    .next()
                    .expect("port")
                    .parse()
                    .expect("a port");
                // Keep draining stdout so the server never blocks on a full pipe.
                std::thread::spawn(move || while lines.recv().is_ok() {});
                return server;
            }
        }
    }

    fn api(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/api/v1{path}", self.port)
    }

    /// The token printed in the first-start banner (an indented `hst_...` line).
    fn printed_token(&self) -> Option<String> {
        self.output
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with("hst_") && !line.contains(' '))
            .map(str::to_owned)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// `GET /api/v1/whoami` with `token`: the status and the user name.
async fn whoami(server: &Server, token: &str) -> (u16, String) {
    let response = client()
        .get(server.api("/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (
        status,
        body["username"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Runs `hosting-app admin ARGS` on `data_dir` with `stdin` as standard input.
fn admin(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = hosting_app(data_dir);
    command
        .arg("admin")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("hosting-app admin starts");
    if let Some(text) = stdin {
        let mut input = child.stdin.take().expect("piped stdin");
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("hosting-app admin ends")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn a_first_start_on_a_taken_port_names_the_setting_and_creates_nothing_then_a_free_port_prints_a_usable_token(
) {
    // Arrange: something already listens where the server is told to listen
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().expect("addr").to_string();

    // Act: the public port taken, then the management port taken
    let public_taken = hosting_app(&data)
        .env("HOSTING_LISTEN", &taken_addr)
        .output()
        .expect("runs");
    let mgmt_taken = hosting_app(&data)
        .env("HOSTING_MGMT_LISTEN", &taken_addr)
        .output()
        .expect("runs");

    // Assert: both fail, name the address and the setting, and create no database
    assert!(!public_taken.status.success());
    let error = text(&public_taken.stderr);
    assert!(error.contains(&taken_addr), "{error}");
    assert!(error.contains("HOSTING_LISTEN"), "{error}");
    assert!(!mgmt_taken.status.success());
    let error = text(&mgmt_taken.stderr);
    assert!(error.contains("HOSTING_MGMT_LISTEN"), "{error}");
    assert!(
        !data.join("hosting.db").exists(),
        "a failed start created the database"
    );

    // Act: a start on free ports
    let server = Server::start(hosting_app(&data));

    // Assert: it prints the first admin's token (so no admin existed), and the token works
    let token = server
        .printed_token()
        .unwrap_or_else(|| panic!("no token printed:\n{}", server.output));
    assert_eq!(whoami(&server, &token).await, (200, "admin".into()));
    assert!(
        server.output.contains("hosting-app admin token admin"),
        "the banner says what to do when the token is lost:\n{}",
        server.output
    );
    // The start-up line is a summary, not every setting (those are at debug level).
    assert!(
        !server.output.contains("cache_max_file_bytes"),
        "{}",
        server.output
    );
    drop(taken);
}

#[tokio::test]
async fn admin_commands_issue_a_working_token_and_set_a_password_on_a_running_servers_data() {
    // Arrange: a running server whose first token was never seen
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let server = Server::start(hosting_app(&data));

    // Act: a new token, while the server runs on the same SQLite database
    let issued = admin(&data, &["token", "admin"], None);

    // Assert: stdout is the token alone, and it works
    assert!(issued.status.success(), "{}", text(&issued.stderr));
    let token = text(&issued.stdout).trim().to_owned();
    assert!(
        token.starts_with("hst_") && !token.contains('\n'),
        "{token}"
    );
    assert!(
        !text(&issued.stderr).contains(&token),
        "the secret is printed once, on stdout"
    );
    assert_eq!(whoami(&server, &token).await, (200, "admin".into()));

    // Act: a password from standard input, then a sign-in to the dashboard with it
    let password = "correct horse battery";
    let set = admin(
        &data,
        &["password", "admin", "--password-stdin"],
        Some(&format!("{password}\n")),
    );
    assert!(set.status.success(), "{}", text(&set.stderr));
    let signed_in = sign_in(&server, "admin", password).await;
    let wrong = sign_in(&server, "admin", "not the password").await;

    // Assert
    assert_eq!(signed_in, 303, "the new password signs in");
    assert_eq!(wrong, 401);
}

#[tokio::test]
async fn admin_commands_refuse_what_they_cannot_do_and_say_why() {
    // Arrange: a server that has created its admin
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let server = Server::start(hosting_app(&data));
    assert!(server.printed_token().is_some());

    // Act
    let unknown = admin(&data, &["token", "nobody"], None);
    let unknown_password = admin(&data, &["password", "nobody"], None);
    let no_terminal = admin(&data, &["password", "admin"], None);
    let short = admin(
        &data,
        &["password", "admin", "--password-stdin"],
        Some("short\n"),
    );

    // Assert
    assert!(!unknown.status.success());
    let error = text(&unknown.stderr);
    assert!(
        error.contains("nobody") && error.contains("admin"),
        "{error}"
    );
    // The user is checked before any password is asked for.
    assert!(!unknown_password.status.success());
    let error = text(&unknown_password.stderr);
    assert!(error.contains("no user \"nobody\""), "{error}");
    assert!(!no_terminal.status.success());
    let error = text(&no_terminal.stderr);
    assert!(error.contains("--password-stdin"), "{error}");
    assert!(!short.status.success());
    let error = text(&short.stderr);
    assert!(error.contains("10 characters"), "{error}");
}

/// Signs in on the dashboard's form; returns the status (303 on success).
async fn sign_in(server: &Server, username: &str, password: &str) -> u16 {
    let client = client();
    // An IP-literal host reaches the control host (API and dashboard).
    let login = format!("http://127.0.0.1:{}/login", server.port);
    let page = client.get(&login).send().await.expect("login page");
    let cookies: Vec<String> = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next().map(str::to_owned))
        .collect();
    let body = page.text().await.expect("page");
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).expect("a csrf field") + marker.len();
    let csrf = &body[start..start + body[start..].find('"').expect("end of value")];
    client
        .post(&login)
        .header("cookie", cookies.join("; "))
        .form(&[
            ("csrf", csrf),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .expect("sign-in")
        .status()
        .as_u16()
}

/// The shell block the README marks as tested, as written.
fn readme_block(marker: &str) -> String {
    let readme = include_str!("../../../README.md");
    let after = &readme[readme
        .find(marker)
        .unwrap_or_else(|| panic!("README.md lost the marker {marker:?}"))..];
    let start = after.find("```sh\n").expect("a sh block after the marker") + "```sh\n".len();
    let end = start + after[start..].find("```").expect("the block's end");
    after[start..end].to_owned()
}

#[tokio::test]
async fn the_readmes_curl_deploy_works_as_written_on_a_fresh_server() {
    // Arrange: a fresh server, its printed token, a `public` folder; curl is pointed at
    // the server for `localhost:3000` by a curlrc, so the README's URL stays as written.
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(hosting_app(&dir.path().join("data")));
    let token = server.printed_token().expect("a printed token");
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("public")).expect("mkdir");
    std::fs::write(work.join("public/index.html"), "<h1>from the README</h1>").expect("write");
    std::fs::write(
        work.join(".curlrc"),
        format!("connect-to = localhost:3000:127.0.0.1:{}\n", server.port),
    )
    .expect("curlrc");
    let block = readme_block("<!-- readme-test:");

    // Act
    let ran = Command::new("sh")
        .args(["-eu", "-c", &block])
        .current_dir(&work)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &work)
        .env("CURL_HOME", &work)
        .env("TOKEN", &token)
        .output()
        .expect("sh runs");

    // Assert: the commands succeed and the site serves the folder
    assert!(
        ran.status.success(),
        "the README block failed:\n{block}\nstdout: {}\nstderr: {}",
        text(&ran.stdout),
        text(&ran.stderr)
    );
    let page = client()
        .get(format!("http://127.0.0.1:{}/", server.port))
        .header("host", "blog.localhost")
        .send()
        .await
        .expect("site request");
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().await.expect("body"), "<h1>from the README</h1>");
}

#[test]
fn the_readme_builds_and_installs_with_the_lock_file() {
    let readme = include_str!("../../../README.md");
    let unlocked: Vec<&str> = readme
        .lines()
        .filter(|line| {
            ["cargo install", "cargo run", "cargo build"]
                .iter()
                .any(|command| line.contains(command))
        })
        .filter(|line| !line.contains("--locked"))
        .collect();
    assert!(
        unlocked.is_empty(),
        "README commands without --locked: {unlocked:#?}"
    );
}

#[tokio::test]
async fn a_server_whose_stdout_is_closed_still_starts_and_serves() {
    // Arrange: stdout is a pipe nobody reads (a log collector that went away)
    let dir = tempfile::tempdir().expect("temp dir");
    let mgmt = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr")
    };
    let child = hosting_app(&dir.path().join("data"))
        .env("HOSTING_MGMT_LISTEN", mgmt.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hosting-app starts");
    let mut server = Server {
        child,
        port: 0,
        output: String::new(),
    };
    drop(server.child.stdout.take());

    // Act: wait until /healthz answers (it is served only after the banner was written)
    // or the process ends.
    let deadline = std::time::Instant::now() + START_LIMIT;
    let healthy = loop {
        if let Some(status) = server.child.try_wait().expect("try_wait") {
            panic!("hosting-app ended with {status} when its stdout was closed");
        }
        let answer = client()
            .get(format!("http://{mgmt}/healthz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .ok();
        if answer == Some(200) {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Assert
    assert!(healthy, "no /healthz answer");
}
