//! Site webhooks: add (the secret is shown once), list, remove, and the delivery log.

use axum::extract::State;
use axum::http::StatusCode;
use hosting_api as api;

use super::{Json, Path};
use crate::actions::sites::owned_site;
use crate::http::auth::AuthUser;
use crate::http::error::ApiResult;
use crate::state::AppState;
use crate::store::{DeliveryRecord, WebhookRecord};
use crate::webhooks;

#[utoipa::path(get, path = "/api/v1/sites/{site}/webhooks", operation_id = "listWebhooks", tag = "webhooks",
    params(("site" = api::schema::SiteName, Path, description = "The site's name")),
    responses(
        (status = 200, description = "The site's webhook endpoints (never their secrets)", body = api::List<api::Webhook>),
        (status = 404, description = "No such site of the caller"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
) -> ApiResult<axum::Json<api::List<api::Webhook>>> {
    let site = owned_site(&state, user.id, &site).await?;
    let hooks = state.store.list_webhooks(user.id, site.id).await?;
    Ok(axum::Json(api::List {
        items: hooks.iter().map(webhook_view).collect(),
    }))
}

#[tracing::instrument(skip_all, fields(site.name = %site))]
#[utoipa::path(post, path = "/api/v1/sites/{site}/webhooks", operation_id = "addWebhook", tag = "webhooks",
    description = "Add an endpoint. Messages are POSTed as JSON, signed in the Standard Webhooks format \
        (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>` with the secret \
        shown once in this answer), and retried with exponential backoff for a day.",
    params(("site" = api::schema::SiteName, Path, description = "The site's name")),
    request_body = api::CreateWebhook,
    responses(
        (status = 201, description = "The endpoint and its secret, shown this once", body = api::CreatedWebhook),
        (status = 400, description = "The body is not JSON of this shape"),
        (status = 404, description = "No such site of the caller"),
        (status = 409, description = "The site has the most endpoints allowed"),
        (status = 413, description = "The body is too large"),
        (status = 415, description = "The body is not `application/json`"),
        (status = 422, description = "An invalid or non-public URL, or an unknown event"),
    ))]
pub async fn add(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(site): Path<String>,
    Json(body): Json<api::CreateWebhook>,
) -> ApiResult<(StatusCode, axum::Json<api::CreatedWebhook>)> {
    let site = owned_site(&state, user.id, &site).await?;
    let created = webhooks::add(&state, user.id, &site, &body.url, &body.events).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(api::CreatedWebhook {
            webhook: webhook_view(&created.webhook),
            secret: created.secret,
        }),
    ))
}

#[tracing::instrument(skip_all, fields(site.name = %site, webhook.id = id))]
#[utoipa::path(delete, path = "/api/v1/sites/{site}/webhooks/{id}", operation_id = "removeWebhook", tag = "webhooks",
    description = "Remove an endpoint and its queued deliveries.",
    params(
        ("site" = api::schema::SiteName, Path, description = "The site's name"),
        ("id" = i64, Path, description = "The endpoint's id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such site or endpoint of the caller"),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((site, id)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    let site = owned_site(&state, user.id, &site).await?;
    webhooks::remove(&state, user.id, &site, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/sites/{site}/webhooks/{id}/deliveries", operation_id = "listWebhookDeliveries", tag = "webhooks",
    description = "The endpoint's latest 50 deliveries, newest first, each with every attempt (status, duration, error).",
    params(
        ("site" = api::schema::SiteName, Path, description = "The site's name"),
        ("id" = i64, Path, description = "The endpoint's id"),
    ),
    responses(
        (status = 200, description = "Deliveries and their attempts", body = api::List<api::WebhookDelivery>),
        (status = 404, description = "No such site or endpoint of the caller"),
    ))]
pub async fn deliveries(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((site, id)): Path<(String, i64)>,
) -> ApiResult<axum::Json<api::List<api::WebhookDelivery>>> {
    let site = owned_site(&state, user.id, &site).await?;
    let deliveries = webhooks::deliveries(&state, user.id, &site, id).await?;
    Ok(axum::Json(api::List {
        items: deliveries.iter().map(delivery_view).collect(),
    }))
}

pub(crate) fn webhook_view(hook: &WebhookRecord) -> api::Webhook {
    api::Webhook {
        id: hook.id,
        site: hook.site.clone(),
        url: hook.url.clone(),
        events: hook.events.clone(),
        created_at: hook.created_at,
    }
}

pub(crate) fn delivery_view(delivery: &DeliveryRecord) -> api::WebhookDelivery {
    api::WebhookDelivery {
        id: delivery.id,
        message_id: delivery.message_id.clone(),
        event: delivery.event.clone(),
        status: delivery.status.clone(),
        attempts: delivery.attempts,
        created_at: delivery.created_at,
        next_attempt_at: (delivery.status == "pending").then_some(delivery.next_attempt_at),
        completed_at: delivery.completed_at,
        log: delivery
            .log
            .iter()
            .map(|a| api::WebhookAttempt {
                at: a.at,
                status_code: a.status_code,
                duration_ms: a.duration_ms,
                error: a.error.clone(),
            })
            .collect(),
    }
}
