//! The rules of what a tenant does, above the store and below HTTP: who owns a site, a
//! deploy or a domain; creating, publishing and rolling back deploys; claiming,
//! verifying and removing custom domains. The API (`http::api`) and the dashboard
//! (`http::dashboard`) both call down into these; neither imports the other.
//!
//! Every function takes the caller's id and answers another tenant's records as not
//! found, so existence is never revealed. Failures are [`ActionError`]s, which the HTTP
//! layer maps to problem+json (or a dashboard page) in one place, `http::error`.

pub mod aliases;
pub mod custom_domains;
pub mod deploys;
mod error;
pub mod protection;
pub mod quota;
pub mod sites;

pub use self::error::{ActionError, ActionResult};
