//! Integration tests of hosting-app over real HTTP: one test binary, one module per area.
//! Each test boots its own server on loopback port 0 with its own data folder.

mod helpers;

mod admin_commands;
mod aliases;
mod analytics;
mod api;
mod archive_site_creation;
mod audit;
mod blob_migration;
mod cert_store;
mod certificates;
mod dashboard;
mod deploy_message;
mod deploys;
mod dns01;
mod domains;
mod haproxy;
mod hardening;
mod isolation;
mod knot;
mod pebble;
mod protection;
mod quotas;
mod serving;
mod tls;
mod webhooks;
