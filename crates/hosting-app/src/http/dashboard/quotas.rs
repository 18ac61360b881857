//! The quota parts of the admin Users page: the override form (blank = the platform
//! default, `unlimited`, or a limit; sizes take units) and the "used / limit" cells.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Form;
use serde::Deserialize;

use super::admin::users_page;
use super::layout::notice;
use super::session::AdminSignedIn;
use super::{see_other, PageError, PageResult};
use crate::domain::quota::QuotaOverrides;
use crate::state::AppState;

/// Quota overrides as typed: blank or `default` = the platform default, `unlimited`
/// (or 0), or a limit (storage may carry a unit: `1GiB`).
#[derive(Deserialize)]
pub struct QuotaForm {
    #[serde(default)]
    storage: String,
    #[serde(default)]
    sites: String,
    #[serde(default)]
    deploys_per_hour: String,
}

fn parse_limit<T: std::str::FromStr>(
    label: &str,
    raw: &str,
    value: impl Fn(T) -> u64,
) -> Result<Option<u64>, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "" | "default" => Ok(None),
        "unlimited" => Ok(Some(0)),
        text => text.parse().map(|v| Some(value(v))).map_err(|_| {
            format!("{label}: {raw:?} is not a limit (a number, \"unlimited\" or \"default\").")
        }),
    }
}

impl QuotaForm {
    fn overrides(&self) -> Result<QuotaOverrides, String> {
        Ok(QuotaOverrides {
            storage_bytes: parse_limit("Storage", &self.storage, |s: hosting_api::ByteSize| s.0)?,
            sites: parse_limit("Sites", &self.sites, |n: u64| n)?,
            deploys_per_hour: parse_limit("Deploys per hour", &self.deploys_per_hour, |n: u64| n)?,
        })
    }
}

/// `POST /admin/users/{id}/quota`: replaces the user's quota overrides.
pub async fn set_quota(
    State(state): State<AppState>,
    AdminSignedIn(session): AdminSignedIn,
    Path(id): Path<i64>,
    Form(form): Form<QuotaForm>,
) -> PageResult {
    let overrides = match form.overrides() {
        Ok(overrides) => overrides,
        Err(error) => {
            let message = Some(notice("error", &error));
            return users_page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, message).await;
        }
    };
    if !state.store.set_user_quota(id, &overrides).await? {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "There is no such user.",
        ));
    }
    crate::audit::events::quota_set(&state, &session.user, id, &overrides).await;
    Ok(see_other("/admin/users?done=quota"))
}
