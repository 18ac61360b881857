//! The command line and environment parsed into groups, and the checks across them.

use super::*;
use clap::CommandFactory;
use secrecy::ExposeSecret;
use std::time::Duration;

#[test]
fn the_command_line_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn defaults_need_no_configuration_and_validate() {
    let cli = Cli::parse_from(["hosting-app"]);
    assert_eq!(cli.config.listeners.listen.to_string(), "0.0.0.0:3000");
    assert_eq!(cli.config.listeners.mgmt_listen.to_string(), "0.0.0.0:9000");
    assert_eq!(cli.config.public.base_domain, "localhost");
    cli.config.validate().expect("valid");
}

#[test]
fn quota_sizes_take_plain_bytes_or_a_unit() {
    let cli = Cli::parse_from(["hosting-app"]);
    assert_eq!(
        cli.config.quotas.quota_storage_bytes,
        hosting_api::ByteSize(10 << 30)
    );
    let cli = Cli::parse_from(["hosting-app", "--quota-storage-bytes", "500MB"]);
    assert_eq!(cli.config.quotas.quota_storage_bytes.0, 500_000_000);
    let cli = Cli::parse_from(["hosting-app", "--quota-storage-bytes", "0"]);
    assert_eq!(cli.config.quotas.quota_storage_bytes.0, 0);
    assert!(Cli::try_parse_from(["hosting-app", "--quota-storage-bytes", "lots"]).is_err());
}

#[test]
fn certificate_settings_are_checked_together() {
    let parse = |args: &[&str]| {
        let mut all = vec!["hosting-app"];
        all.extend_from_slice(args);
        Cli::parse_from(all)
            .config
            .validate()
            .map_err(|errors| errors.to_string())
    };
    assert!(parse(&["--acme-directory", "http://ca.test/dir"])
        .expect_err("refused")
        .contains("https://"));
    assert_eq!(parse(&["--acme-directory", "https://ca.test/dir"]), Ok(()));
    let cluster = ["--database-url", "postgres://u@db/h"];
    let error = parse(&[&cluster[..], &["--acme-directory", "https://ca.test/dir"]].concat())
        .expect_err("refused");
    assert!(
        error.contains("HOSTING_CERT_ENCRYPTION_KEY_FILE"),
        "{error}"
    );
    // An installer alone starts without a key (it installs nothing it cannot open).
    assert_eq!(
        parse(
            &[
                &cluster[..],
                &[
                    "--haproxy-runtime-api",
                    "unix:/run/h.sock",
                    "--cert-dir",
                    "/c"
                ]
            ]
            .concat()
        ),
        Ok(())
    );
    let error = parse(&["--cert-dir", "/c"]).expect_err("refused");
    assert!(error.contains("go together"), "{error}");
    assert_eq!(
        parse(
            &[
                &cluster[..],
                &[
                    "--acme-directory",
                    "https://ca.test/dir",
                    "--cert-encryption-key-file",
                    "/k"
                ]
            ]
            .concat()
        ),
        Ok(())
    );
}

#[test]
fn an_external_account_binding_needs_both_parts_and_a_base64url_key() {
    let parse = |args: &[&str]| {
        let mut all = vec!["hosting-app", "--acme-directory", "https://ca.test/dir"];
        all.extend_from_slice(args);
        Cli::parse_from(all).config
    };
    let key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let config = parse(&["--acme-eab-kid", "kid-1", "--acme-eab-hmac-key", key]);
    config.validate().expect("valid");
    let binding = config.acme.external_account().expect("a binding");
    assert_eq!(
        (binding.key_id.as_str(), binding.hmac_key.len()),
        ("kid-1", 48)
    );
    // Padded keys are accepted as well.
    let padded = parse(&[
        "--acme-eab-kid",
        "k",
        "--acme-eab-hmac-key",
        "AAAAAAAAAAAAAAAAAAAAAA==",
    ]);
    padded.validate().expect("valid");

    let alone = parse(&["--acme-eab-kid", "kid-1"]).validate();
    assert!(alone
        .expect_err("refused")
        .to_string()
        .contains("go together"));
    let not_base64 = parse(&["--acme-eab-kid", "k", "--acme-eab-hmac-key", "not base64!"]);
    assert!(not_base64
        .validate()
        .expect_err("refused")
        .to_string()
        .contains("base64url"));
    let short = parse(&["--acme-eab-kid", "k", "--acme-eab-hmac-key", "c2hvcnQ"]);
    assert!(short
        .validate()
        .expect_err("refused")
        .to_string()
        .contains("16 bytes"));
    assert!(parse(&[]).acme.external_account().is_none());
    let summary = format!("{config:?}");
    assert!(!summary.contains(key), "{summary}");
    assert!(summary.contains("kid-1"), "{summary}");
}

#[test]
fn public_urls_carry_the_listen_port_only_when_needed() {
    let cli = Cli::parse_from(["hosting-app"]);
    assert_eq!(
        cli.config.public_url("blog.localhost"),
        "http://blog.localhost:3000/"
    );
    let tls = Cli::parse_from(["hosting-app", "--public-scheme", "https"]);
    assert_eq!(
        tls.config.public_url("blog.example.com"),
        "https://blog.example.com/"
    );
}

#[test]
fn database_passwords_are_redacted_and_injected_from_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("pw");
    std::fs::write(&file, "s3cret@/x\n").expect("write");
    let mut cli = Cli::parse_from([
        "hosting-app",
        "--database-url",
        "postgres://app@db:5432/hosting",
    ]);
    cli.config.database.database_password_file = Some(file);
    cli.config.load_secret_files().expect("loads");
    let url = cli
        .config
        .database
        .database_url
        .as_ref()
        .expect("url")
        .expose_secret()
        .to_owned();
    assert_eq!(url, "postgres://app:s3cret%40%2Fx@db:5432/hosting");
    let shown = format!("{:?}", cli.config);
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(
        shown.contains("postgres://app:[redacted]@db:5432/hosting"),
        "{shown}"
    );
    assert!(cli.config.is_cluster());
    assert_eq!(cli.config.blob_store_kind(), BlobStoreKind::Postgres);
}

#[test]
fn redacted_settings_never_show_the_admin_token() {
    let cli = Cli::parse_from(["hosting-app", "--admin-token", "super-secret-token-value"]);
    let shown = format!("{:?}", cli.config);
    assert!(!shown.contains("super-secret"), "{shown}");
    assert!(shown.contains("[redacted]"));
}

#[test]
fn durations_take_bare_seconds_as_before_or_a_unit() {
    let cli = Cli::parse_from(["hosting-app"]);
    assert_eq!(
        cli.config.listeners.request_timeout,
        Duration::from_secs(300)
    );
    assert_eq!(
        cli.config.acme.acme_renew_before,
        Duration::from_secs(30 * 24 * 3600)
    );
    let cli = Cli::parse_from([
        "hosting-app",
        "--request-timeout",
        "45",
        "--gc-interval",
        "10m",
    ]);
    assert_eq!(
        cli.config.listeners.request_timeout,
        Duration::from_secs(45)
    );
    assert_eq!(cli.config.limits.gc_interval, Duration::from_secs(600));
    assert!(Cli::try_parse_from(["hosting-app", "--idle-timeout", "soon"]).is_err());
}

#[test]
fn enumerated_settings_refuse_unknown_values() {
    let cli = Cli::parse_from([
        "hosting-app",
        "--log-format",
        "json",
        "--public-scheme",
        "https",
    ]);
    assert_eq!(cli.config.logging.log_format, LogFormat::Json);
    assert_eq!(cli.config.public.public_scheme, PublicScheme::Https);
    assert!(Cli::try_parse_from(["hosting-app", "--log-format", "xml"]).is_err());
    assert!(Cli::try_parse_from(["hosting-app", "--public-scheme", "ftp"]).is_err());
    assert!(Cli::try_parse_from(["hosting-app", "--blob-store", "nfs"]).is_err());
}

#[test]
fn an_installer_needs_its_folder_and_runtime_api_and_defaults_haproxys_view() {
    let cli = Cli::parse_from([
        "hosting-app",
        "--cert-dir",
        "/certs",
        "--haproxy-runtime-api",
        "unix:/run/h.sock",
    ]);
    let settings = cli.config.installer.settings().expect("an installer");
    assert_eq!(
        settings,
        InstallerSettings {
            dir: PathBuf::from("/certs"),
            haproxy_dir: PathBuf::from("/certs"),
            runtime_api: "unix:/run/h.sock".into(),
        }
    );
    let cli = Cli::parse_from(["hosting-app"]);
    assert_eq!(cli.config.installer.settings(), None);
}

/// A configuration from these flags alone (variables of the environment still apply).
fn parsed(args: &[&str]) -> Config {
    let mut all = vec!["hosting-app"];
    all.extend_from_slice(args);
    Cli::parse_from(all).config
}

/// The problems of `config`, which must have some.
fn problems(config: &Config) -> Vec<ConfigError> {
    config
        .validate()
        .expect_err("the configuration is refused")
        .into_iter()
        .collect()
}

#[test]
fn the_flag_an_error_names_is_the_command_lines_own() {
    let command = Cli::command();
    let mut checked = 0;
    for arg in command.get_arguments() {
        let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        let env = env.to_str().expect("an ASCII variable name");
        assert_eq!(error::flag_of(env), format!("--{long}"), "{env}");
        checked += 1;
    }
    assert!(checked > 50, "only {checked} settings have a variable");
}

#[test]
fn a_value_the_setting_does_not_take_names_the_setting_its_flag_and_the_value() {
    let config = parsed(&["--base-domain", "not a domain"]);

    let problems = problems(&config);

    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(matches!(problems[0], ConfigError::Invalid { .. }));
    assert_eq!(problems[0].setting(), Setting("HOSTING_BASE_DOMAIN"));
    assert_eq!(
        problems[0].to_string(),
        "HOSTING_BASE_DOMAIN (--base-domain) = \"not a domain\": is not a domain name"
    );
}

#[test]
fn a_value_that_does_not_parse_keeps_the_parse_error_as_its_source() {
    let config = parsed(&["--acme-directory", "https://[::1"]);

    let problems = problems(&config);

    let [ConfigError::Invalid {
        setting,
        source: Some(source),
        ..
    }] = &problems[..]
    else {
        panic!("one invalid value with a source: {problems:?}");
    };
    assert_eq!(*setting, Setting("HOSTING_ACME_DIRECTORY"));
    assert!(
        source.downcast_ref::<url::ParseError>().is_some(),
        "{source:?}"
    );
}

#[test]
fn a_setting_that_needs_another_names_both() {
    let config = parsed(&["--database-replica-url", "postgres://app@replica/hosting"]);

    let problems = problems(&config);

    let [error @ ConfigError::Needs { needed, .. }] = &problems[..] else {
        panic!("one missing setting: {problems:?}");
    };
    assert_eq!(error.setting(), Setting("DATABASE_REPLICA_URL"));
    assert_eq!(needed, &Needed::All(vec![Setting("DATABASE_URL")]));
    let line = error.to_string();
    assert!(line.starts_with("DATABASE_REPLICA_URL (--database-replica-url) = postgres://app@replica/hosting needs DATABASE_URL (--database-url)"), "{line}");
}

#[test]
fn settings_that_exclude_each_other_name_both() {
    let config = parsed(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--acme-directory",
        "https://ca.test/dir",
        "--dns-update-server",
        "127.0.0.1:53",
        "--dns-update-key",
        "hmac-sha256:k:c2VjcmV0",
        "--tls-cert-file",
        "a.pem",
        "--tls-key-file",
        "a.key",
    ]);

    let problems = problems(&config);

    let [error @ ConfigError::Excludes { other, .. }] = &problems[..] else {
        panic!("one exclusion: {problems:?}");
    };
    assert_eq!(error.setting(), Setting("HOSTING_DNS_UPDATE_SERVER"));
    assert_eq!(*other, Setting("HOSTING_TLS_CERT_FILE"));
    assert!(error.to_string().contains("--tls-cert-file"), "{error}");
}

#[test]
fn a_secret_file_that_cannot_be_read_names_its_setting_and_keeps_the_io_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such-token");
    let mut config = parsed(&[]);
    config.admin.admin_token_file = Some(missing.clone());
    config.s3.s3_secret_access_key_file = Some(dir.path().join("no-such-key"));

    let errors = config.load_secret_files().expect_err("unreadable");

    let problems: Vec<_> = errors.into_iter().collect();
    assert_eq!(problems.len(), 2, "both files are reported: {problems:?}");
    let ConfigError::SecretFile {
        setting,
        path,
        source,
    } = &problems[0]
    else {
        panic!("a secret file: {problems:?}");
    };
    assert_eq!(*setting, Setting("HOSTING_ADMIN_TOKEN_FILE"));
    assert_eq!(path, &missing);
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(
        problems[1].setting(),
        Setting("HOSTING_S3_SECRET_ACCESS_KEY_FILE")
    );
}

#[test]
fn a_url_the_password_file_cannot_go_into_keeps_the_url_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("pw");
    std::fs::write(&file, "pa55word-in-file\n").expect("write");
    let mut config = parsed(&["--database-url", "no scheme at all"]);
    config.database.database_password_file = Some(file);

    let errors = config.load_secret_files().expect_err("refused");

    let shown = errors.to_string();
    let problems: Vec<_> = errors.into_iter().collect();
    let [ConfigError::Invalid {
        setting,
        source: Some(source),
        ..
    }] = &problems[..]
    else {
        panic!("one invalid URL: {problems:?}");
    };
    assert_eq!(*setting, Setting("DATABASE_URL"));
    assert!(source.downcast_ref::<url::ParseError>().is_some());
    // The line carries the cause, and neither the password nor the URL's text.
    assert!(shown.contains("relative URL without a base"), "{shown}");
    assert!(!shown.contains("pa55word"), "{shown}");
}

#[test]
fn several_bad_settings_give_one_line_each() {
    let config = parsed(&[
        "--base-domain",
        "a/b",
        "--max-files",
        "0",
        "--idle-timeout",
        "0",
        "--db-primary-pool",
        "0",
        "--cert-dir",
        "/certs",
        "--analytics-minute-retention",
        "100d",
    ]);

    let errors = config.validate().expect_err("refused");

    let shown = errors.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines[0], "invalid configuration:", "{shown}");
    let expected = [
        "HOSTING_IDLE_TIMEOUT (--idle-timeout) = 0s",
        "HOSTING_BASE_DOMAIN (--base-domain) = \"a/b\"",
        "HOSTING_DB_PRIMARY_POOL (--db-primary-pool) = 0",
        "HOSTING_MAX_FILES (--max-files) = 0",
        "HOSTING_CERT_DIR (--cert-dir) = /certs needs HOSTING_HAPROXY_RUNTIME_API",
        "HOSTING_ANALYTICS_MINUTE_RETENTION (--analytics-minute-retention) = 8640000s",
    ];
    assert_eq!(lines.len(), 1 + expected.len(), "{shown}");
    for (line, start) in lines[1..].iter().zip(expected) {
        assert!(line.trim_start().starts_with(start), "{line:?} / {start:?}");
    }
    assert_eq!(errors.len(), expected.len());
}

#[test]
fn every_setting_an_error_names_is_one_of_the_command_line() {
    let variables: Vec<String> = Cli::command()
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect();
    let config = parsed(&[
        "--listen",
        "127.0.0.1:0",
        "--header-read-timeout",
        "0",
        "--idle-timeout",
        "0",
        "--max-connections",
        "0",
        "--base-domain",
        "",
        "--admin-token",
        "short",
        "--admin-password",
        "short",
        "--database-replica-url",
        "postgres://r/h",
        "--db-primary-pool",
        "0",
        "--db-replica-pool",
        "0",
        "--max-files",
        "0",
        "--max-file-bytes",
        "0",
        "--max-deploy-bytes",
        "0",
        "--max-batch-files",
        "0",
        "--max-batch-bytes",
        "0",
        "--acme-directory",
        "http://ca",
        "--acme-eab-kid",
        "k",
        "--acme-interval",
        "0",
        "--acme-retry-base",
        "0",
        "--haproxy-runtime-api",
        "unix:/h.sock",
        "--cert-sync-interval",
        "0",
        "--analytics-flush-interval",
        "0",
        "--analytics-hour-retention",
        "1000d",
        "--proxy-connect-timeout",
        "0",
        "--proxy-response-timeout",
        "0",
        "--proxy-max-concurrent",
        "0",
        "--geoip-db",
        "/nonexistent/geoip.mmdb",
        "--tls-cert-file",
        "a.pem",
        "--tls-reload-interval",
        "0",
        "--dns-update-server",
        "127.0.0.1:53",
        "--blob-store",
        "s3",
        "--s3-multipart-threshold",
        "1",
        "--s3-concurrency",
        "0",
        "--s3-prefix",
        "/",
    ]);

    let problems = problems(&config);

    assert!(problems.len() >= 30, "{}", problems.len());
    for problem in &problems {
        let env = problem.setting().env();
        assert!(variables.iter().any(|v| v == env), "{env}: {problem}");
    }
}

#[test]
fn a_secrets_value_never_shows_in_an_error_or_in_the_redacted_view() {
    let secrets = [
        "tok3n-short",
        "pa55-shrt",
        "eab:k3y!!",
        "tsig-s3cr3t-no-colons",
        "replica-pa55",
        "s3-k3y-id",
        "s3-s3cr3t-key",
    ];
    let replica = format!("postgres://app:{}@replica/hosting", secrets[4]);
    let config = parsed(&[
        "--admin-token",
        secrets[0],
        "--admin-password",
        secrets[1],
        "--acme-directory",
        "https://ca.test/dir",
        "--acme-eab-hmac-key",
        secrets[2],
        "--tls-listen",
        "127.0.0.1:0",
        "--dns-update-server",
        "127.0.0.1:53",
        "--dns-update-key",
        secrets[3],
        "--database-replica-url",
        &replica,
        "--s3-access-key-id",
        secrets[5],
        "--s3-secret-access-key",
        secrets[6],
        "--s3-concurrency",
        "0",
        "--blob-store",
        "s3",
    ]);

    let errors = config.validate().expect_err("refused");

    // Each secret is refused or named, and its value is nowhere: not in the lines, not
    // in the errors' Debug, not in the configuration's redacted view.
    let named: Vec<&str> = errors.iter().map(|e| e.setting().env()).collect();
    for setting in [
        "HOSTING_ADMIN_TOKEN",
        "HOSTING_ADMIN_PASSWORD",
        "HOSTING_ACME_EAB_HMAC_KEY",
        "HOSTING_DNS_UPDATE_KEY",
        "DATABASE_REPLICA_URL",
    ] {
        assert!(named.contains(&setting), "{setting} not in {named:?}");
    }
    for shown in [
        errors.to_string(),
        format!("{errors:?}"),
        format!("{config:?}"),
        format!("{:#?}", config),
    ] {
        for secret in secrets {
            assert!(!shown.contains(secret), "{secret} shown in {shown}");
        }
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}
