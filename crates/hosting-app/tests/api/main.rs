//! Integration tests of hosting-app over real HTTP: one test binary, one module per area.
//! Each test boots its own server on loopback port 0 with its own data folder.

mod helpers;

mod api;
mod cert_store;
mod certificates;
mod dashboard;
mod deploys;
mod domains;
mod isolation;
mod pebble;
mod quotas;
mod serving;
