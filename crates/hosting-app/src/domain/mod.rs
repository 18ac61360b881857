//! Domain types and rules, independent of HTTP and of any backend.

pub mod claims;
pub mod hostname;
pub mod manifest;
pub mod names;
pub mod quota;
