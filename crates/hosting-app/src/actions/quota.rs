//! A user's usage and the limits that apply, as the API and the dashboard show them.

use hosting_api::{self as api, QuotaKind};

use super::{ActionError, ActionResult};
use crate::domain::quota::{Quotas, UserQuota};
use crate::state::App;

/// `user_id`'s quota view; not found for no such user.
pub async fn user_quota(app: &App, user_id: i64) -> ActionResult<api::Quota> {
    let quota = app
        .store
        .user_quota(user_id)
        .await?
        .ok_or_else(|| ActionError::not_found(format!("user {user_id}")))?;
    Ok(quota_view(&Quotas::from_config(&app.config), &quota))
}

pub fn quota_view(quotas: &Quotas, quota: &UserQuota) -> api::Quota {
    let item = |kind: QuotaKind| api::QuotaItem {
        used: quota.usage.get(kind),
        limit: quotas.limit(quota, kind),
        overridden: quota.overrides.get(kind).is_some(),
    };
    api::Quota {
        storage_bytes: item(QuotaKind::StorageBytes),
        sites: item(QuotaKind::Sites),
        deploys_per_hour: item(QuotaKind::DeploysPerHour),
    }
}

/// The owner's quota state (an authenticated user exists; a vanished one is refused).
pub async fn owner_quota(app: &App, owner_id: i64) -> ActionResult<UserQuota> {
    app.store
        .user_quota(owner_id)
        .await?
        .ok_or(ActionError::UnknownUser)
}
