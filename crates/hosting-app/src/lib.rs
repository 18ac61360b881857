//! hosting-app: the application server of the hosting platform. The binary is a thin
//! wrapper around [`startup::Application`]; tests boot the very same way.

#![recursion_limit = "256"]

pub mod actions;
pub mod admin;
pub mod admin_cli;
pub mod analytics;
pub mod audit;
pub mod blobs;
pub mod blobs_admin;
pub mod cache;
pub mod certs;
pub mod config;
pub mod counters;
pub mod domain;
pub mod domains;
pub mod freshness;
pub mod gc;
pub mod http;
pub mod metrics;
pub mod publish;
pub mod routing;
pub mod sessions;
pub mod shared;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod webhooks;

pub use config::Config;
pub use startup::Application;
