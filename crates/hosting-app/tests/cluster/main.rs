//! Cluster-only tests: several app instances on one PostgreSQL (primary + replica) and
//! Redis, with dependencies failing under load. Run by scripts/test after
//! `deploy/local/services up` (`cargo test -p hosting-app --features cluster-tests --test cluster`),
//! then again with `TEST_BLOB_STORE=s3` (site files in the Garage bucket, `helpers::use_cluster`)
//! and `--skip s3::`: the `s3` tests pick their stores themselves, so they run once.

#[allow(
    dead_code,
    reason = "the harness is shared with the api suite, which uses all of it"
)]
#[path = "../api/helpers.rs"]
mod helpers;

#[allow(dead_code, reason = "the fixture is shared with the api suite")]
#[path = "../api/pebble.rs"]
mod pebble;

mod access;
mod analytics;
mod certificates;
mod failures;
mod instances;
mod s3;
mod webhooks;
