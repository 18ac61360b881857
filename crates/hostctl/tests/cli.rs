//! End to end: the real `hostctl` binary against a real `hosting-app` on loopback.
//! Deploys a multi-level folder, reads every file back byte-exact, changes one file,
//! redeploys (exactly one upload), rolls back, and checks login and error handling.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use hosting_app::{Application, Config};
use secrecy::SecretString;

const ADMIN_TOKEN: &str = "hst_cli-test-admin-token-0123456789";

struct Server {
    port: u16,
    _data: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_server() -> Server {
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_tests(data.path());
    config.admin_token = Some(SecretString::from(ADMIN_TOKEN));
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
            .envs(envs)
            .output()
            .expect("hostctl runs")
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
        text.contains("Storage:           0B of 1.0 GiB, set by an admin"),
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
