//! End to end: the real `hostctl` binary against a real `hosting-app` on loopback.
//! Deploys a multi-level folder, reads every file back byte-exact, changes one file,
//! redeploys (exactly one upload), rolls back, and checks login and error handling.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use hosting_app::config::Secret;
use hosting_app::{Application, Config};

const ADMIN_TOKEN: &str = "hst_cli-test-admin-token-0123456789";

struct Server {
    port: u16,
    _data: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_server() -> Server {
    start_server_with(|_| {}).await
}

/// Starts a server after `adjust` has changed its test configuration.
async fn start_server_with(adjust: impl FnOnce(&mut Config)) -> Server {
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_tests(data.path());
    config.admin.admin_token = Some(Secret::from(ADMIN_TOKEN));
    adjust(&mut config);
    let app = Application::build(config).await.expect("server builds");
    let port = app.api_addr().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    Server {
        port,
        _data: data,
        _stop: stop,
    }
}

/// Runs `hostctl` with `args` off the async runtime (the server shares the runtime).
async fn hostctl(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let envs: Vec<(String, String)> = envs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hostctl"))
            .args(&args)
            .env_remove("HOSTCTL_SERVER")
            .env_remove("HOSTCTL_TOKEN")
            .env_remove("HOSTCTL_NO_CACHE")
            .env_remove("HOSTCTL_TIMINGS")
            // The digest cache goes under target/, not the developer's ~/.cache; a
            // test that looks at it gives its own.
            .env("XDG_CACHE_HOME", env!("CARGO_TARGET_TMPDIR"))
            .envs(envs)
            .output()
            .expect("hostctl runs")
    })
    .await
    .expect("join")
}

/// Runs `hostctl` with its stdout a pipe that nobody reads (`hostctl ... | head -0`).
async fn hostctl_into_closed_pipe(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let envs: Vec<(String, String)> = envs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hostctl"))
            .args(&args)
            .env_remove("HOSTCTL_SERVER")
            .env_remove("HOSTCTL_TOKEN")
            .env("XDG_CACHE_HOME", env!("CARGO_TARGET_TMPDIR"))
            .envs(envs)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("hostctl runs");
        // Close the read end before hostctl can print: its request to the server takes
        // far longer than this, and if it ever won the race the write would simply succeed.
        drop(child.stdout.take());
        child.wait_with_output().expect("hostctl ends")
    })
    .await
    .expect("join")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every regular file under `root` (hidden ones excluded), as (site path, bytes).
fn files_of(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let entry = entry.expect("entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .into_owned();
                files.push((format!("/{rel}"), std::fs::read(&path).expect("read")));
            }
        }
    }
    files.sort();
    files
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

fn make_site(root: &Path) {
    write(root, "index.html", b"<!doctype html><h1>Home</h1>");
    write(root, "about.html", b"<h1>About</h1>");
    write(root, "css/site.css", b"body { color: #333 }");
    write(root, "js/app.js", b"console.log('hello');");
    write(root, "docs/index.html", b"<h1>Docs</h1>");
    write(root, "docs/guide/intro.html", b"<h1>Intro</h1>");
    write(root, "docs/guide/deep/er/file.txt", b"deep text");
    let binary: Vec<u8> = (0..70_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    write(root, "img/noise.bin", &binary);
    write(root, "dup-a.txt", b"same bytes");
    write(root, "dup-b.txt", b"same bytes");
    write(root, ".secret", b"hidden files are not deployed");
}

async fn fetch(client: &reqwest::Client, port: u16, host: &str, path: &str) -> (u16, Vec<u8>) {
    let response = client
        .get(format!("http://127.0.0.1:{port}{path}"))
        .header("host", host)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploying_a_folder_serves_every_file_and_a_redeploy_uploads_only_what_changed() {
    let server = start_server().await;
    let url = format!("http://localhost:{}", server.port);
    let env = [
        ("HOSTCTL_SERVER", url.as_str()),
        ("HOSTCTL_TOKEN", ADMIN_TOKEN),
    ];
    let site_dir = tempfile::tempdir().expect("temp dir");
    make_site(site_dir.path());
    let dir = site_dir.path().to_str().expect("utf-8 path");
    let client = reqwest::Client::new();

    // First deploy: the site does not exist yet, so hostctl creates it.
    let first = hostctl(&["deploy", dir, "--site", "blog"], &env).await;
    assert!(first.status.success(), "deploy failed: {}", stderr(&first));
    let out = stdout(&first);
    assert!(
        out.contains("Deployed 10 files (10 uploaded, 0 unchanged)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("Live:    http://blog.localhost:{}/", server.port)),
        "{out}"
    );
    assert!(out.contains("Preview: http://"), "{out}");

    // Every file comes back byte-exact; the hidden file was not deployed.
    let files = files_of(site_dir.path());
    assert_eq!(files.len(), 10);
    for (path, bytes) in &files {
        let (status, body) = fetch(&client, server.port, "blog.localhost", path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(&body, bytes, "{path} differs");
    }
    assert_eq!(
        fetch(&client, server.port, "blog.localhost", "/.secret")
            .await
            .0,
        404
    );

    // Change one file and redeploy: exactly one upload.
    write(
        site_dir.path(),
        "docs/guide/intro.html",
        b"<h1>Intro, revised</h1>",
    );
    let second = hostctl(&["deploy", dir, "--site", "blog"], &env).await;
    assert!(
        second.status.success(),
        "redeploy failed: {}",
        stderr(&second)
    );
    let out = stdout(&second);
    assert!(
        out.contains("Deployed 10 files (1 uploaded, 9 unchanged)"),
        "{out}"
    );
    let (_, body) = fetch(
        &client,
        server.port,
        "blog.localhost",
        "/docs/guide/intro.html",
    )
    .await;
    assert_eq!(body, b"<h1>Intro, revised</h1>");

    // History, then rollback restores the first version.
    let list = hostctl(&["--json", "deploys", "list", "--site", "blog"], &env).await;
    assert!(list.status.success(), "{}", stderr(&list));
    let deploys: Vec<hosting_api::Deploy> =
        serde_json::from_slice(&list.stdout).expect("deploy list json");
    assert_eq!(deploys.len(), 2);
    assert!(deploys[0].live && !deploys[1].live);
    let rollback = hostctl(&["deploys", "rollback", "--site", "blog"], &env).await;
    assert!(rollback.status.success(), "{}", stderr(&rollback));
    let (_, body) = fetch(
        &client,
        server.port,
        "blog.localhost",
        "/docs/guide/intro.html",
    )
    .await;
    assert_eq!(body, b"<h1>Intro</h1>");

    // --no-publish leaves the live site alone.
    write(site_dir.path(), "index.html", b"unpublished");
    let staged = hostctl(&["deploy", dir, "--site", "blog", "--no-publish"], &env).await;
    assert!(staged.status.success(), "{}", stderr(&staged));
    assert!(stdout(&staged).contains("Not published"));
    let (_, body) = fetch(&client, server.port, "blog.localhost", "/").await;
    assert_eq!(body, b"<!doctype html><h1>Home</h1>");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_stores_a_private_config_that_later_commands_use() {
    let server = start_server().await;
    let url = format!("http://localhost:{}", server.port);
    let home = tempfile::tempdir().expect("temp dir");
    let xdg = home.path().to_str().expect("utf-8");
    let env = [("XDG_CONFIG_HOME", xdg), ("HOME", xdg)];

    let login = hostctl(&["login", "--server", &url, "--token", ADMIN_TOKEN], &env).await;
    assert!(login.status.success(), "{}", stderr(&login));
    assert!(stdout(&login).contains("as admin"), "{}", stdout(&login));
    let config = home.path().join("hostctl").join("config.json");
    let mode = std::fs::metadata(&config)
        .expect("config written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "config file mode {mode:o}");

    let whoami = hostctl(&["whoami"], &env).await;
    assert!(whoami.status.success(), "{}", stderr(&whoami));
    assert!(stdout(&whoami).contains("admin"));

    let sites = hostctl(&["sites", "create", "docs"], &env).await;
    assert!(sites.status.success(), "{}", stderr(&sites));
    let list = hostctl(&["--json", "sites", "list"], &env).await;
    let listed: Vec<hosting_api::Site> =
        serde_json::from_slice(&list.stdout).expect("site list json");
    assert_eq!(
        listed.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["docs"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_a_quota_and_whoami_shows_the_usage_against_it() {
    let server = start_server().await;
    let url = format!("http://localhost:{}", server.port);
    let admin = [
        ("HOSTCTL_SERVER", url.as_str()),
        ("HOSTCTL_TOKEN", ADMIN_TOKEN),
    ];
    let created = hostctl(&["--json", "users", "create", "bob"], &admin).await;
    assert!(created.status.success(), "{}", stderr(&created));
    let created: hosting_api::CreatedUser =
        serde_json::from_slice(&created.stdout).expect("created user json");
    let id = created.user.id.to_string();

    let set = hostctl(
        &["users", "quota", &id, "--storage", "1GiB", "--sites", "3"],
        &admin,
    )
    .await;
    assert!(set.status.success(), "{}", stderr(&set));
    assert!(
        stdout(&set).contains("of 3, set by an admin"),
        "{}",
        stdout(&set)
    );
    let bob = [
        ("HOSTCTL_SERVER", url.as_str()),
        ("HOSTCTL_TOKEN", created.token.secret.as_str()),
    ];
    let site = hostctl(&["sites", "create", "bobs"], &bob).await;
    assert!(site.status.success(), "{}", stderr(&site));
    // Changing one limit keeps the others.
    let deploys = hostctl(&["users", "quota", &id, "--deploys-per-hour", "5"], &admin).await;
    assert!(deploys.status.success(), "{}", stderr(&deploys));

    let whoami = hostctl(&["whoami"], &bob).await;

    assert!(whoami.status.success(), "{}", stderr(&whoami));
    let text = stdout(&whoami);
    assert!(
        text.contains("Storage:           0 B of 1.00 GiB, set by an admin"),
        "{text}"
    );
    assert!(
        text.contains("Sites:             1 of 3, set by an admin"),
        "{text}"
    );
    assert!(
        text.contains("Deploys last hour: 0 of 5, set by an admin"),
        "{text}"
    );
    let member = hostctl(&["users", "quota", &id, "--sites", "unlimited"], &bob).await;
    assert!(!member.status.success(), "a member cannot change a quota");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_clear_messages_with_a_non_zero_exit() {
    let server = start_server().await;
    let url = format!("http://localhost:{}", server.port);
    let home = tempfile::tempdir().expect("temp dir");
    let xdg = home.path().to_str().expect("utf-8");

    let bad_token = hostctl(
        &["sites", "list"],
        &[
            ("HOSTCTL_SERVER", &url),
            ("HOSTCTL_TOKEN", "hst_wrong"),
            ("XDG_CONFIG_HOME", xdg),
        ],
    )
    .await;
    assert!(!bad_token.status.success());
    assert!(
        stderr(&bad_token).starts_with("error:"),
        "{}",
        stderr(&bad_token)
    );

    let not_logged_in = hostctl(
        &["sites", "list"],
        &[("XDG_CONFIG_HOME", xdg), ("HOME", xdg)],
    )
    .await;
    assert!(!not_logged_in.status.success());
    assert!(
        stderr(&not_logged_in).contains("not logged in"),
        "{}",
        stderr(&not_logged_in)
    );

    let env = [
        ("HOSTCTL_SERVER", url.as_str()),
        ("HOSTCTL_TOKEN", ADMIN_TOKEN),
        ("XDG_CONFIG_HOME", xdg),
    ];
    let bad_name = hostctl(&["sites", "create", "Not_A_Label"], &env).await;
    assert!(!bad_name.status.success());
    assert!(
        stderr(&bad_name).contains("site name"),
        "{}",
        stderr(&bad_name)
    );

    let missing_dir = hostctl(&["deploy", "/definitely/not/here", "--site", "blog"], &env).await;
    assert!(!missing_dir.status.success());
    assert!(
        stderr(&missing_dir).starts_with("error:"),
        "{}",
        stderr(&missing_dir)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_are_added_listed_and_removed() {
    let server = start_server().await;
    let url = format!("http://localhost:{}", server.port);
    let env = [
        ("HOSTCTL_SERVER", url.as_str()),
        ("HOSTCTL_TOKEN", ADMIN_TOKEN),
    ];
    let created = hostctl(&["sites", "create", "shop"], &env).await;
    assert!(created.status.success(), "{}", stderr(&created));

    let add = hostctl(
        &["domains", "add", "--site", "shop", "www.example.test"],
        &env,
    )
    .await;
    assert!(add.status.success(), "{}", stderr(&add));
    assert!(
        stdout(&add).contains("_hosting-verify.www.example.test"),
        "{}",
        stdout(&add)
    );
    let list = hostctl(&["--json", "domains", "list", "--site", "shop"], &env).await;
    let listed: Vec<hosting_api::Domain> =
        serde_json::from_slice(&list.stdout).expect("domain list json");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, hosting_api::DomainStatus::Pending);

    let bad = hostctl(&["domains", "add", "--site", "shop", "localhost"], &env).await;
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("two labels"), "{}", stderr(&bad));

    let remove = hostctl(
        &["domains", "remove", "--site", "shop", "www.example.test"],
        &env,
    )
    .await;
    assert!(remove.status.success(), "{}", stderr(&remove));
    let list = hostctl(&["--json", "domains", "list", "--site", "shop"], &env).await;
    let listed: Vec<hosting_api::Domain> =
        serde_json::from_slice(&list.stdout).expect("domain list json");
    assert!(listed.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_reaches_a_localhost_subdomain_without_dns() {
    // The system resolver here knows only plain `localhost` (RFC 6761 says every
    // `*.localhost` name is loopback, as browsers and curl treat it).
    let server = start_server_with(|config| {
        config.public.control_host = Some("hosting.localhost".into());
    })
    .await;
    let url = format!("http://hosting.localhost:{}", server.port);
    let home = tempfile::tempdir().expect("temp dir");
    let xdg = home.path().to_str().expect("utf-8");
    let env = [("XDG_CONFIG_HOME", xdg), ("HOME", xdg)];

    let login = hostctl(&["login", "--server", &url, "--token", ADMIN_TOKEN], &env).await;

    assert!(login.status.success(), "{}", stderr(&login));
    assert_eq!(
        stdout(&login),
        format!("Logged in to {url} as admin\n"),
        "{}",
        stderr(&login)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_went_wrong_and_what_to_do() {
    let server = start_server().await;
    let url = format!("http://localhost:{}", server.port);
    let home = tempfile::tempdir().expect("temp dir");
    let xdg = home.path().to_str().expect("utf-8");
    let isolated = [("XDG_CONFIG_HOME", xdg), ("HOME", xdg)];

    // Nothing listens on a port we just released.
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let nobody = format!("http://127.0.0.1:{free_port}");
    let refused = hostctl(
        &["sites", "list", "--server", &nobody, "--token", "t"],
        &isolated,
    )
    .await;
    assert!(!refused.status.success());
    assert_eq!(
        stderr(&refused),
        format!("error: no server at {nobody}: is it running?\n")
    );

    // The platform's site host answers 404 pages, not problem documents.
    let site_host = format!("http://nosuch.localhost:{}", server.port);
    let not_api = hostctl(
        &["sites", "list", "--server", &site_host, "--token", "t"],
        &isolated,
    )
    .await;
    assert!(!not_api.status.success());
    assert!(
        stderr(&not_api).starts_with(&format!("error: {site_host} is not a hosting API")),
        "{}",
        stderr(&not_api)
    );

    let wrong_token = hostctl(
        &["sites", "list", "--server", &url, "--token", "hst_wrong"],
        &isolated,
    )
    .await;
    assert!(!wrong_token.status.success());
    assert!(
        stderr(&wrong_token).starts_with(&format!(
            "error: the token was refused by {url}: run `hostctl login"
        )),
        "{}",
        stderr(&wrong_token)
    );

    // Logged in to one server, pointed at another without a token.
    let login = hostctl(
        &["login", "--server", &url, "--token", ADMIN_TOKEN],
        &isolated,
    )
    .await;
    assert!(login.status.success(), "{}", stderr(&login));
    let other = hostctl(&["sites", "list", "--server", &nobody], &isolated).await;
    assert!(!other.status.success());
    assert!(
        stderr(&other).starts_with(&format!("error: logged in to {url}, not {nobody}")),
        "{}",
        stderr(&other)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_mode_reports_errors_as_json_on_stderr() {
    let server = start_server().await;
    let url = format!("http://localhost:{}", server.port);
    let env = [
        ("HOSTCTL_SERVER", url.as_str()),
        ("HOSTCTL_TOKEN", ADMIN_TOKEN),
    ];

    let missing = hostctl(&["--json", "deploys", "list", "--site", "nope"], &env).await;

    assert!(!missing.status.success());
    assert!(missing.stdout.is_empty(), "{}", stdout(&missing));
    let error: serde_json::Value =
        serde_json::from_slice(&missing.stderr).expect("stderr is one JSON document");
    assert_eq!(error["error"]["status"], 404, "{error}");
    assert_eq!(error["error"]["problem"]["status"], 404, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nope")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_into_a_closed_pipe_ends_quietly() {
    let server = start_server().await;
    let url = format!("http://localhost:{}", server.port);
    let env = [
        ("HOSTCTL_SERVER", url.as_str()),
        ("HOSTCTL_TOKEN", ADMIN_TOKEN),
    ];
    let created = hostctl(&["sites", "create", "piped"], &env).await;
    assert!(created.status.success(), "{}", stderr(&created));

    for args in [&["sites", "list"][..], &["--json", "sites", "list"][..]] {
        let piped = hostctl_into_closed_pipe(args, &env).await;

        assert_eq!(stderr(&piped), "", "{args:?}");
        assert!(piped.status.success(), "{args:?}: {:?}", piped.status);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_without_a_terminal_prints_steps_and_keeps_its_message() {
    let server = start_server().await;
    let url = format!("http://localhost:{}", server.port);
    let env = [
        ("HOSTCTL_SERVER", url.as_str()),
        ("HOSTCTL_TOKEN", ADMIN_TOKEN),
    ];
    let site_dir = tempfile::tempdir().expect("temp dir");
    write(site_dir.path(), "about.html", b"<h1>About</h1>");
    let dir = site_dir.path().to_str().expect("utf-8 path");

    let deploy = hostctl(
        &["deploy", dir, "--site", "notes", "--message", "First draft"],
        &env,
    )
    .await;

    assert!(deploy.status.success(), "{}", stderr(&deploy));
    let out = stdout(&deploy);
    let live = format!("http://notes.localhost:{}/", server.port);
    for line in [
        "Created site notes\n",
        "Hashing 1 file\n",
        "Uploading 1 of 1 file (14 B)\n",
        &format!("Live at {live}\n"),
        "Deployed 1 file (1 uploaded, 0 unchanged) in ",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    assert!(
        stderr(&deploy).contains("has no index.html"),
        "{}",
        stderr(&deploy)
    );
    let list = hostctl(&["deploys", "list", "--site", "notes"], &env).await;
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(stdout(&list).contains("First draft"), "{}", stdout(&list));

    // A redeploy in JSON: the deploy plus where it is live and what was uploaded.
    let again = hostctl(&["--json", "deploy", dir, "--site", "notes"], &env).await;
    assert!(again.status.success(), "{}", stderr(&again));
    let result: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json");
    assert_eq!(result["url"], live.as_str(), "{result}");
    assert_eq!(result["uploaded"], 0, "{result}");
    assert_eq!(result["unchanged"], 1, "{result}");
    assert!(
        result["preview_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://")),
        "{result}"
    );
    assert!(result["live"].as_bool().unwrap_or(false), "{result}");
}

/// How many files `hostctl deploy --timings` read, from its `timing hash` line.
fn files_read(output: &Output) -> usize {
    let err = stderr(output);
    let line = err
        .lines()
        .find(|l| l.starts_with("timing hash"))
        .unwrap_or_else(|| panic!("no hash timing in:\n{err}"));
    let (_, after) = line.split_once(" s  ").expect("detail");
    after
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"))
}

/// Waits until the filesystem clock has passed the change time of every file under
/// `root`: the digest cache only trusts files that settled before its scan began.
fn settle(root: &Path, probe_dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    let ctime = |meta: std::fs::Metadata| (meta.ctime(), meta.ctime_nsec());
    let newest = files_of(root)
        .iter()
        .map(|(rel, _)| ctime(std::fs::metadata(root.join(&rel[1..])).expect("stat")))
        .max()
        .expect("files");
    let probe = probe_dir.join("clock-probe");
    while {
        std::fs::write(&probe, "").expect("probe");
        ctime(std::fs::metadata(&probe).expect("stat")) <= newest
    } {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redeploy_reads_only_changed_files_and_no_cache_reads_them_all() {
    let server = start_server().await;
    let url = format!("http://localhost:{}", server.port);
    let cache_home = tempfile::tempdir().expect("temp dir");
    let cache_dir = cache_home.path().to_str().expect("utf-8 path");
    let env = [
        ("HOSTCTL_SERVER", url.as_str()),
        ("HOSTCTL_TOKEN", ADMIN_TOKEN),
        ("XDG_CACHE_HOME", cache_dir),
    ];
    let site_dir = tempfile::tempdir().expect("temp dir");
    make_site(site_dir.path());
    settle(site_dir.path(), cache_home.path());
    let dir = site_dir.path().to_str().expect("utf-8 path");
    let deploy = |extra: &'static [&'static str]| {
        let mut args = vec!["deploy", dir, "--site", "cached", "--timings"];
        args.extend_from_slice(extra);
        hostctl_owned(args, &env)
    };

    let first = deploy(&[]).await;
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(files_read(&first), 10);

    // The same size, the mtime put back: only the ctime and the digest tell.
    let intro = site_dir.path().join("docs/guide/intro.html");
    let mtime = std::fs::metadata(&intro)
        .and_then(|m| m.modified())
        .expect("mtime");
    write(site_dir.path(), "docs/guide/intro.html", b"<h1>Outro</h1>");
    std::fs::File::options()
        .write(true)
        .open(&intro)
        .and_then(|f| f.set_modified(mtime))
        .expect("set mtime");
    let second = deploy(&[]).await;
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(files_read(&second), 1, "{}", stderr(&second));
    assert!(
        stdout(&second).contains("Deployed 10 files (1 uploaded, 9 unchanged)"),
        "{}",
        stdout(&second)
    );
    let (_, body) = fetch(
        &reqwest::Client::new(),
        server.port,
        "cached.localhost",
        "/docs/guide/intro.html",
    )
    .await;
    assert_eq!(body, b"<h1>Outro</h1>");

    let all = deploy(&["--no-cache"]).await;
    assert!(all.status.success(), "{}", stderr(&all));
    assert_eq!(files_read(&all), 10);

    // One cache file, outside the deployed folder, which holds only the site.
    let caches = std::fs::read_dir(cache_home.path().join("hostctl/digests"))
        .expect("cache folder")
        .count();
    assert_eq!(caches, 1);
    assert_eq!(files_of(site_dir.path()).len(), 10);
}

/// [`hostctl`] with owned arguments, for tests that build them.
async fn hostctl_owned(args: Vec<&str>, envs: &[(&str, &str)]) -> Output {
    hostctl(&args, envs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_file_is_refused_before_anything_is_created() {
    let server = start_server_with(|config| config.limits.max_file_bytes = 1024).await;
    let url = format!("http://localhost:{}", server.port);
    let env = [
        ("HOSTCTL_SERVER", url.as_str()),
        ("HOSTCTL_TOKEN", ADMIN_TOKEN),
    ];
    let site_dir = tempfile::tempdir().expect("temp dir");
    write(site_dir.path(), "index.html", b"home");
    write(site_dir.path(), "big.bin", &[7u8; 2048]);
    let dir = site_dir.path().to_str().expect("utf-8 path");

    let deploy = hostctl(&["deploy", dir, "--site", "big"], &env).await;

    assert!(!deploy.status.success());
    assert_eq!(
        stderr(&deploy),
        "error: /big.bin is 2.00 KiB; the server accepts files up to 1.00 KiB\n"
    );
    let sites = hostctl(&["--json", "sites", "list"], &env).await;
    let listed: Vec<hosting_api::Site> = serde_json::from_slice(&sites.stdout).expect("json");
    assert!(listed.is_empty(), "{listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_first_deploy_leaves_no_empty_site_behind() {
    let server = start_server().await;
    let url = format!("http://localhost:{}", server.port);
    let env = [
        ("HOSTCTL_SERVER", url.as_str()),
        ("HOSTCTL_TOKEN", ADMIN_TOKEN),
    ];
    // The server refuses paths differing only in case; hostctl only learns it after
    // creating the site.
    let site_dir = tempfile::tempdir().expect("temp dir");
    write(site_dir.path(), "index.html", b"home");
    write(site_dir.path(), "Page.html", b"one");
    write(site_dir.path(), "page.html", b"two");
    let dir = site_dir.path().to_str().expect("utf-8 path");

    let deploy = hostctl(&["deploy", dir, "--site", "clash"], &env).await;

    assert!(!deploy.status.success());
    assert!(
        stderr(&deploy).contains("collides with"),
        "{}",
        stderr(&deploy)
    );
    let site = hostctl(&["--json", "sites", "list"], &env).await;
    let listed: Vec<hosting_api::Site> = serde_json::from_slice(&site.stdout).expect("json");
    assert!(listed.is_empty(), "{listed:?}");

    // An existing site is never deleted over a failed deploy.
    let created = hostctl(&["sites", "create", "clash"], &env).await;
    assert!(created.status.success(), "{}", stderr(&created));
    let deploy = hostctl(&["deploy", dir, "--site", "clash"], &env).await;
    assert!(!deploy.status.success());
    let site = hostctl(&["--json", "sites", "list"], &env).await;
    let listed: Vec<hosting_api::Site> = serde_json::from_slice(&site.stdout).expect("json");
    assert_eq!(listed.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_inside_the_folder_are_deployed_and_links_leaving_it_are_refused() {
    let server = start_server().await;
    let url = format!("http://localhost:{}", server.port);
    let env = [
        ("HOSTCTL_SERVER", url.as_str()),
        ("HOSTCTL_TOKEN", ADMIN_TOKEN),
    ];
    let client = reqwest::Client::new();
    let site_dir = tempfile::tempdir().expect("temp dir");
    write(site_dir.path(), "pages/home.html", b"<h1>Home</h1>");
    std::os::unix::fs::symlink("pages/home.html", site_dir.path().join("index.html"))
        .expect("symlink");
    let dir = site_dir.path().to_str().expect("utf-8 path");

    let inside = hostctl(&["deploy", dir, "--site", "linked"], &env).await;

    assert!(inside.status.success(), "{}", stderr(&inside));
    let (status, body) = fetch(&client, server.port, "linked.localhost", "/").await;
    assert_eq!((status, body.as_slice()), (200, &b"<h1>Home</h1>"[..]));

    let outside = tempfile::tempdir().expect("temp dir");
    write(outside.path(), "secret.txt", b"do not publish");
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        site_dir.path().join("leak.txt"),
    )
    .expect("symlink");
    let refused = hostctl(&["deploy", dir, "--site", "linked"], &env).await;
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(err.contains("leak.txt") && err.contains("outside"), "{err}");
    let (status, _) = fetch(&client, server.port, "linked.localhost", "/leak.txt").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_to_an_alias_leaves_the_live_site_and_protection_is_set_and_removed() {
    let server = start_server().await;
    let url = format!("http://localhost:{}", server.port);
    let env = [
        ("HOSTCTL_SERVER", url.as_str()),
        ("HOSTCTL_TOKEN", ADMIN_TOKEN),
    ];
    let client = reqwest::Client::new();
    let site_dir = tempfile::tempdir().expect("temp dir");
    let dir = site_dir.path().to_str().expect("utf-8");
    write(site_dir.path(), "index.html", b"live");
    let live = hostctl(&["deploy", dir, "--site", "blog"], &env).await;
    assert!(live.status.success(), "{}", stderr(&live));

    write(site_dir.path(), "index.html", b"staging");
    let staged = hostctl(
        &["deploy", dir, "--site", "blog", "--alias", "staging"],
        &env,
    )
    .await;
    assert!(staged.status.success(), "{}", stderr(&staged));
    assert!(
        stdout(&staged).contains("staging--blog.localhost"),
        "{}",
        stdout(&staged)
    );
    let (_, body) = fetch(&client, server.port, "staging--blog.localhost", "/").await;
    assert_eq!(body, b"staging");
    let (_, body) = fetch(&client, server.port, "blog.localhost", "/").await;
    assert_eq!(body, b"live");
    let list = hostctl(&["--json", "aliases", "list", "--site", "blog"], &env).await;
    let listed: Vec<hosting_api::Alias> =
        serde_json::from_slice(&list.stdout).expect("alias list json");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "staging");

    let password = site_dir.path().join("password");
    std::fs::write(&password, "correct horse\n").expect("write");
    let password = password.to_str().expect("utf-8");
    let protect = hostctl(
        &[
            "sites",
            "protect",
            "blog",
            "--password-file",
            password,
            "--scope",
            "previews",
        ],
        &env,
    )
    .await;
    assert!(protect.status.success(), "{}", stderr(&protect));
    let (status, _) = fetch(&client, server.port, "staging--blog.localhost", "/").await;
    assert_eq!(status, 401);
    let (status, _) = fetch(&client, server.port, "blog.localhost", "/").await;
    assert_eq!(status, 200);

    let unprotect = hostctl(&["sites", "protect", "blog", "--remove"], &env).await;
    assert!(unprotect.status.success(), "{}", stderr(&unprotect));
    let (status, _) = fetch(&client, server.port, "staging--blog.localhost", "/").await;
    assert_eq!(status, 200);
    let remove = hostctl(&["aliases", "remove", "--site", "blog", "staging"], &env).await;
    assert!(remove.status.success(), "{}", stderr(&remove));
    let (status, _) = fetch(&client, server.port, "staging--blog.localhost", "/").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_added_listed_and_removed_and_the_audit_log_shows_it_all() {
    let server = start_server().await;
    let url = format!("http://localhost:{}", server.port);
    let env = [
        ("HOSTCTL_SERVER", url.as_str()),
        ("HOSTCTL_TOKEN", ADMIN_TOKEN),
    ];
    let created = hostctl(&["sites", "create", "shop"], &env).await;
    assert!(created.status.success(), "{}", stderr(&created));

    let add = hostctl(
        &[
            "--json",
            "webhooks",
            "add",
            "--site",
            "shop",
            "https://hooks.example.com/shop",
            "--event",
            "deploy.published",
        ],
        &env,
    )
    .await;
    assert!(add.status.success(), "{}", stderr(&add));
    let added: hosting_api::CreatedWebhook = serde_json::from_slice(&add.stdout).expect("json");
    assert!(added.secret.starts_with("whsec_"));
    let list = hostctl(&["webhooks", "list", "--site", "shop"], &env).await;
    assert!(stdout(&list).contains("https://hooks.example.com/shop"));
    assert!(!stdout(&list).contains(&added.secret));
    let private = hostctl(
        &["webhooks", "add", "--site", "shop", "http://127.0.0.1:1/"],
        &env,
    )
    .await;
    assert!(!private.status.success());
    assert!(stderr(&private).contains("public"), "{}", stderr(&private));
    let id = added.webhook.id.to_string();
    let remove = hostctl(&["webhooks", "remove", "--site", "shop", &id], &env).await;
    assert!(remove.status.success(), "{}", stderr(&remove));

    let audit = hostctl(&["audit", "--site", "shop", "--since", "1h"], &env).await;
    assert!(audit.status.success(), "{}", stderr(&audit));
    assert!(stdout(&audit).contains("site.create"), "{}", stdout(&audit));
    let json = hostctl(&["--json", "audit", "--limit", "1"], &env).await;
    let entries: Vec<hosting_api::AuditEntry> = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, "webhook.remove");
    assert_eq!(entries[0].actor, "admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sites_hsts_setting_is_shown_set_and_turned_off() {
    let server = start_server().await;
    let url = format!("http://localhost:{}", server.port);
    let env = [
        ("HOSTCTL_SERVER", url.as_str()),
        ("HOSTCTL_TOKEN", ADMIN_TOKEN),
    ];
    let created = hostctl(&["sites", "create", "blog"], &env).await;
    assert!(created.status.success(), "{}", stderr(&created));

    let shown = hostctl(&["sites", "hsts", "blog"], &env).await;
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(
        stdout(&shown).contains("sends no HSTS header"),
        "{}",
        stdout(&shown)
    );
    let set = hostctl(
        &[
            "--json",
            "sites",
            "hsts",
            "blog",
            "--max-age",
            "31536000",
            "--include-subdomains",
        ],
        &env,
    )
    .await;
    assert!(set.status.success(), "{}", stderr(&set));
    let hsts: hosting_api::Hsts = serde_json::from_slice(&set.stdout).expect("json");
    assert_eq!(
        hsts,
        hosting_api::Hsts {
            max_age: 31_536_000,
            include_subdomains: true
        }
    );
    let shown = hostctl(&["sites", "hsts", "blog"], &env).await;
    assert!(
        stdout(&shown).contains("max-age=31536000; includeSubDomains"),
        "{}",
        stdout(&shown)
    );
    let too_long = hostctl(&["sites", "hsts", "blog", "--max-age", "99999999"], &env).await;
    assert!(!too_long.status.success());
    assert!(
        stderr(&too_long).contains("two years"),
        "{}",
        stderr(&too_long)
    );
    let off = hostctl(&["sites", "hsts", "blog", "--max-age", "0"], &env).await;
    assert!(off.status.success(), "{}", stderr(&off));
    assert!(
        stdout(&off).contains("sends no HSTS header"),
        "{}",
        stdout(&off)
    );
}
