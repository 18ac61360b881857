//! The S3 object store of `HOSTING_BLOB_STORE=s3` (Garage, MinIO, AWS): where it is,
//! how to sign in, and how the blob store talks to it.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::error::{ConfigError, ConfigErrors, Needed, Problems, Setting, Value};
use super::secret::Secret;
use super::storage::BlobStoreKind;

/// S3 parts below 5 MiB are refused by S3 (except the last one).
const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;

/// The bucket and credentials of the S3 blob store; read only with `HOSTING_BLOB_STORE=s3`.
#[derive(Debug, Clone, Args)]
pub struct S3 {
    /// S3 endpoint URL (`http://garage:3900`); requests are always path-style.
    #[arg(long, env = "HOSTING_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// Bucket holding the site files.
    #[arg(long, env = "HOSTING_S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// Region the requests are signed for (Garage: its `s3_region`).
    #[arg(long, env = "HOSTING_S3_REGION", default_value = "garage")]
    pub s3_region: String,

    /// Access key id (Garage: `GK...`).
    #[arg(long, env = "HOSTING_S3_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<Secret>,

    /// File holding the access key id (a Docker / Kubernetes secret).
    #[arg(long, env = "HOSTING_S3_ACCESS_KEY_ID_FILE")]
    pub s3_access_key_id_file: Option<PathBuf>,

    /// Secret access key.
    #[arg(long, env = "HOSTING_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<Secret>,

    /// File holding the secret access key (a Docker / Kubernetes secret).
    #[arg(long, env = "HOSTING_S3_SECRET_ACCESS_KEY_FILE")]
    pub s3_secret_access_key_file: Option<PathBuf>,

    /// Key prefix of the blobs: each file is `<prefix>/<sha256>`.
    #[arg(long, env = "HOSTING_S3_PREFIX", default_value = "blobs")]
    pub s3_prefix: String,

    /// Files larger than this are uploaded in parts of this size (at least 5 MiB).
    #[arg(long, env = "HOSTING_S3_MULTIPART_THRESHOLD", default_value_t = 8 * 1024 * 1024)]
    pub s3_multipart_threshold: u64,

    /// Uploads in flight at once for one bulk upload or archive.
    #[arg(long, env = "HOSTING_S3_CONCURRENCY", default_value_t = 16)]
    pub s3_concurrency: usize,

    /// Longest an S3 request may take, retries included; past it the request fails (503).
    #[arg(long, env = "HOSTING_S3_TIMEOUT", default_value = "30s", value_parser = super::duration::parse)]
    pub s3_timeout: Duration,
}

impl S3 {
    /// The settings `HOSTING_BLOB_STORE=s3` needs, when it is chosen.
    pub fn validate(&self, chosen: bool) -> Result<(), ConfigErrors> {
        let mut problems = Problems::new();
        if !chosen {
            return problems.finish();
        }
        let setting = || Setting("HOSTING_BLOB_STORE");
        let missing = [
            (
                self.s3_endpoint.is_none(),
                Needed::All(vec![Setting("HOSTING_S3_ENDPOINT")]),
            ),
            (
                self.s3_bucket.is_none(),
                Needed::All(vec![Setting("HOSTING_S3_BUCKET")]),
            ),
            (
                self.s3_access_key_id.is_none(),
                Needed::Any(vec![
                    Setting("HOSTING_S3_ACCESS_KEY_ID"),
                    Setting("HOSTING_S3_ACCESS_KEY_ID_FILE"),
                ]),
            ),
            (
                self.s3_secret_access_key.is_none(),
                Needed::Any(vec![
                    Setting("HOSTING_S3_SECRET_ACCESS_KEY"),
                    Setting("HOSTING_S3_SECRET_ACCESS_KEY_FILE"),
                ]),
            ),
        ];
        for (absent, needed) in missing {
            problems.check(absent, || ConfigError::Needs {
                setting: setting(),
                value: Value::choice(BlobStoreKind::S3),
                needed,
                reason: "",
            });
        }
        problems.check(self.s3_multipart_threshold < MIN_PART_BYTES, || {
            ConfigError::invalid(
                Setting("HOSTING_S3_MULTIPART_THRESHOLD"),
                Value::shown(self.s3_multipart_threshold),
                "must be at least 5 MiB (5242880): S3 refuses smaller parts",
            )
        });
        problems.check(self.s3_concurrency == 0, || {
            ConfigError::invalid(
                Setting("HOSTING_S3_CONCURRENCY"),
                Value::shown(self.s3_concurrency),
                "must be at least 1",
            )
        });
        problems.check(self.s3_prefix.trim_matches('/').is_empty(), || {
            ConfigError::invalid(
                Setting("HOSTING_S3_PREFIX"),
                Value::text(&self.s3_prefix),
                "must not be empty",
            )
        });
        problems.finish()
    }

    /// Reads `HOSTING_S3_*_FILE` into their settings.
    pub fn load_secret_files(&mut self) -> Result<(), ConfigErrors> {
        let mut problems = Problems::new();
        if let Some(path) = &self.s3_access_key_id_file {
            let id = super::read_secret_file(Setting("HOSTING_S3_ACCESS_KEY_ID_FILE"), path);
            if let Some(id) = problems.merge(id) {
                self.s3_access_key_id = Some(Secret::from(id));
            }
        }
        if let Some(path) = &self.s3_secret_access_key_file {
            let key = super::read_secret_file(Setting("HOSTING_S3_SECRET_ACCESS_KEY_FILE"), path);
            if let Some(key) = problems.merge(key) {
                self.s3_secret_access_key = Some(Secret::from(key));
            }
        }
        problems.finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{BlobStoreKind, Cli, Config};
    use clap::Parser;

    fn s3_config(extra: &[&str]) -> Config {
        let mut args = vec![
            "hosting-app",
            "--database-url",
            "postgres://app@db/hosting",
            "--blob-store",
            "s3",
        ];
        args.extend_from_slice(extra);
        Cli::parse_from(args).config
    }

    #[test]
    fn s3_needs_its_endpoint_bucket_and_credentials() {
        let mut config = s3_config(&[]);
        // Whatever the environment holds (`deploy/local/services env` exports them).
        config.s3.s3_endpoint = None;
        config.s3.s3_secret_access_key = None;
        assert_eq!(config.blob_store_kind(), BlobStoreKind::S3);
        let err = config.validate().expect_err("incomplete").to_string();
        assert!(err.contains("HOSTING_S3_ENDPOINT"), "{err}");
        assert!(err.contains("HOSTING_S3_SECRET_ACCESS_KEY"), "{err}");
        let config = s3_config(&[
            "--s3-endpoint",
            "http://127.0.0.1:3900",
            "--s3-bucket",
            "blobs",
            "--s3-access-key-id",
            "GK1",
            "--s3-secret-access-key",
            "secret",
        ]);
        config.validate().expect("valid");
        assert!(
            !format!("{config:?}").contains("secret\""),
            "the secret is redacted"
        );
    }

    #[test]
    fn s3_needs_cluster_mode_and_parts_of_at_least_five_mib() {
        let embedded = Cli::parse_from(["hosting-app", "--blob-store", "s3"]).config;
        assert!(embedded
            .validate()
            .expect_err("embedded")
            .to_string()
            .contains("DATABASE_URL"));
        let config = s3_config(&[
            "--s3-endpoint",
            "http://s3",
            "--s3-bucket",
            "b",
            "--s3-access-key-id",
            "k",
            "--s3-secret-access-key",
            "s",
            "--s3-multipart-threshold",
            "1000",
        ]);
        assert!(config
            .validate()
            .expect_err("small parts")
            .to_string()
            .contains("5 MiB"));
    }

    #[test]
    fn the_credentials_can_come_from_files() {
        let dir = tempfile::tempdir().expect("dir");
        let (id, secret) = (dir.path().join("id"), dir.path().join("secret"));
        std::fs::write(&id, "GKfromfile\n").expect("write");
        std::fs::write(&secret, "s3cr3t\n").expect("write");
        let mut config = s3_config(&[
            "--s3-access-key-id-file",
            id.to_str().expect("utf-8"),
            "--s3-secret-access-key-file",
            secret.to_str().expect("utf-8"),
        ]);
        config.load_secret_files().expect("load");
        use secrecy::ExposeSecret;
        let loaded = |value: &Option<crate::config::Secret>| {
            value.as_ref().map(|s| s.expose_secret().to_owned())
        };
        assert_eq!(
            loaded(&config.s3.s3_access_key_id).as_deref(),
            Some("GKfromfile")
        );
        assert_eq!(
            loaded(&config.s3.s3_secret_access_key).as_deref(),
            Some("s3cr3t")
        );
    }
}
