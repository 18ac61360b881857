//! Custom-domain certificates: ACME orders, sealed storage, and installing them into HAProxy.

pub mod haproxy;
pub mod install;
