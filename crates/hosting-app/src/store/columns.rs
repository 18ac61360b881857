//! Conversions between the stores' column encodings and the domain types, shared by
//! every backend so they cannot drift apart: times are Unix milliseconds, roles and
//! deploy states lower-case words.

use chrono::{DateTime, TimeZone, Utc};
use hosting_api::{DeployState, Role};

use super::StoreError;

pub(super) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub(super) fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub(super) fn opt_time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(time)
}

pub(super) fn role_str(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

pub(super) fn state_str(state: DeployState) -> &'static str {
    match state {
        DeployState::Uploading => "uploading",
        DeployState::Ready => "ready",
        DeployState::Expired => "expired",
        DeployState::Failed => "failed",
    }
}

pub(super) fn parse_state(raw: &str) -> DeployState {
    match raw {
        "ready" => DeployState::Ready,
        "expired" => DeployState::Expired,
        "failed" => DeployState::Failed,
        _ => DeployState::Uploading,
    }
}

pub(super) fn other(e: sqlx::Error) -> StoreError {
    StoreError::Other(e.to_string())
}

pub(super) fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}
