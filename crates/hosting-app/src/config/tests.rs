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
    assert_eq!(cli.config.validate(), Ok(()));
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
        Cli::parse_from(all).config.validate()
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
    assert_eq!(config.validate(), Ok(()));
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
    assert_eq!(padded.validate(), Ok(()));

    let alone = parse(&["--acme-eab-kid", "kid-1"]).validate();
    assert!(alone.expect_err("refused").contains("go together"));
    let not_base64 = parse(&["--acme-eab-kid", "k", "--acme-eab-hmac-key", "not base64!"]);
    assert!(not_base64
        .validate()
        .expect_err("refused")
        .contains("base64url"));
    let short = parse(&["--acme-eab-kid", "k", "--acme-eab-hmac-key", "c2hvcnQ"]);
    assert!(short.validate().expect_err("refused").contains("16 bytes"));
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
