//! `GET /api/v1/audit`: the audit log, read-only (no route edits or deletes an entry).
//! Admins read every entry; anyone else the entries on what they own or did. Also the
//! layer that gives audit entries the client's address.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use hosting_api::{self as api, Role};

use super::Query;
use crate::http::auth::AuthUser;
use crate::http::error::{ApiError, ApiResult};
use crate::http::ratelimit::client_ip_of;
use crate::state::AppState;
use crate::store::{AuditFilter, AuditRecord};

/// Entries per page unless `limit` says otherwise, and the most a page holds.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

/// Runs a control-host request with its client address in scope of `audit::record`.
pub async fn client_scope(request: Request, next: Next) -> Response {
    let client = client_ip_of(request.extensions(), request.headers());
    crate::audit::with_client(client, next.run(request)).await
}

#[derive(Debug, serde::Deserialize)]
pub struct AuditParams {
    actor: Option<String>,
    site: Option<String>,
    action: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/audit", operation_id = "listAudit", tag = "audit",
    description = "Audit entries, newest first: every state change (sign-ins, tokens, users, sites, \
        deploys, domains, certificates, quotas) with actor, time, client address, action, target and \
        outcome. Admins see every entry; other users the entries on what they own or did.",
    params(
        ("actor" = Option<String>, Query, nullable = false, description = "Only entries by this user name (or `system`, or `operator` for the operator CLI)"),
        ("site" = Option<String>, Query, nullable = false, description = "Only entries on this site"),
        ("action" = Option<String>, Query, nullable = false, description = "An action (`deploy.publish`) or a group (`deploy`)"),
        ("since" = Option<DateTime<Utc>>, Query, nullable = false, description = "Entries at or after this time (RFC 3339)"),
        ("until" = Option<DateTime<Utc>>, Query, nullable = false, description = "Entries before this time (RFC 3339)"),
        ("cursor" = Option<String>, Query, nullable = false, pattern = "^[0-9]{1,18}$", description = "`next_cursor` of the previous page"),
        ("limit" = Option<u32>, Query, nullable = false, minimum = 1, maximum = 200, description = "Entries per page (default 50)"),
    ),
    responses(
        (status = 200, description = "A page of entries", body = api::AuditPage),
        (status = 400, description = "An invalid query parameter"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Query(params): Query<AuditParams>,
) -> ApiResult<axum::Json<api::AuditPage>> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit is 1 to {MAX_LIMIT}")));
    }
    let before_id = params
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::BadRequest("invalid cursor".into()))
        })
        .transpose()?;
    let filter = AuditFilter {
        visible_to: (user.role != Role::Admin).then_some(user.id),
        actor: params.actor,
        site: params.site,
        action: params.action,
        since: params.since,
        until: params.until,
        before_id,
        limit,
    };
    let entries = state.store.audit_entries(&filter).await?;
    let next_cursor = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(axum::Json(api::AuditPage {
        items: entries.iter().map(audit_view).collect(),
        next_cursor,
    }))
}

pub(crate) fn audit_view(entry: &AuditRecord) -> api::AuditEntry {
    api::AuditEntry {
        id: entry.id,
        at: entry.at,
        actor: entry.actor.clone(),
        actor_id: entry.actor_id,
        client_address: entry.client_addr.clone(),
        action: entry.action.clone(),
        target: entry.target.clone(),
        site: entry.site.clone(),
        outcome: entry.outcome.clone(),
        detail: entry.detail.clone(),
    }
}
