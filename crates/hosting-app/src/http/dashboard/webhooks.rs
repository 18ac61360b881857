//! `/sites/{site}/webhooks`: a site's webhook endpoints (add, with the secret shown once;
//! remove) and the latest deliveries of each, through the same rules as the API
//! (`webhooks::add`, `webhooks::remove`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{csrf_field, notice, page, time, Nav};
use super::session::{CurrentSession, SignedIn};
use super::sites::Flash;
use super::{html, see_other, PageResult};
use crate::actions::sites::owned_site;
use crate::state::AppState;
use crate::store::{DeliveryRecord, SiteRecord, WebhookRecord};
use crate::webhooks;

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    url: String,
}

/// Deliveries shown per endpoint.
const SHOWN: usize = 10;

fn render(
    session: &CurrentSession,
    site: &SiteRecord,
    hooks: &[(WebhookRecord, Vec<DeliveryRecord>)],
    message: Option<Markup>,
) -> Markup {
    let base = format!("/sites/{}/webhooks", site.name);
    page(
        "Webhooks",
        session,
        Nav::Sites,
        html! {
            nav.crumbs aria-label="Breadcrumb" {
                a href="/sites" { "Sites" } " / " a href={ "/sites/" (site.name) } { (site.name) } " / " span { "Webhooks" }
            }
            div.heading { h1 { "Webhooks of " (site.name) } }
            p.muted {
                "Each endpoint receives a signed JSON POST (Standard Webhooks: " code { "webhook-id" } ", "
                code { "webhook-timestamp" } ", " code { "webhook-signature" } ") when a deploy is created, "
                "published, fails or is rolled back, a domain is verified, or a certificate is issued or fails. "
                "Failed deliveries are retried for a day."
            }
            @if let Some(message) = message { (message) }
            section.card {
                h2 { "Add an endpoint" }
                form.inline method="post" action=(base) {
                    (csrf_field(session))
                    label for="webhook-url" { "URL" }
                    input #webhook-url name="url" type="url" required placeholder="https://ci.example.com/hooks/deploy";
                    button.primary type="submit" { "Add webhook" }
                }
            }
            @if hooks.is_empty() {
                section.card.empty { p { "No webhooks." } }
            }
            @for (hook, deliveries) in hooks {
                section.card {
                    h2 { code { (hook.url) } }
                    p.muted { (hook.events.join(", ")) }
                    @if deliveries.is_empty() {
                        p.muted { "No deliveries yet." }
                    } @else {
                        div.table-wrap {
                            table {
                                thead { tr {
                                    th scope="col" { "Created" } th scope="col" { "Event" } th scope="col" { "Status" }
                                    th scope="col" { "Attempts" } th scope="col" { "Last answer" } th scope="col" { "Last error" }
                                } }
                                tbody {
                                    @for d in deliveries.iter().take(SHOWN) {
                                        @let last = d.log.last();
                                        tr {
                                            td { (time(d.created_at)) }
                                            td { code { (d.event) } }
                                            td { (d.status) }
                                            td { (d.attempts) }
                                            td { (last.and_then(|a| a.status_code).map_or_else(|| "—".to_owned(), |s| s.to_string())) }
                                            td { (last.and_then(|a| a.error.as_deref()).unwrap_or_default()) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    form method="post" action={ (base) "/" (hook.id) "/remove" } {
                        (csrf_field(session))
                        button.small.danger type="submit" { "Remove" }
                    }
                }
            }
        },
    )
}

async fn load(
    state: &AppState,
    owner_id: i64,
    site: &SiteRecord,
) -> PageResult<Vec<(WebhookRecord, Vec<DeliveryRecord>)>> {
    let mut hooks = Vec::new();
    for hook in state.store.list_webhooks(owner_id, site.id).await? {
        let deliveries = state
            .store
            .webhook_deliveries(owner_id, hook.id, SHOWN as u32)
            .await?;
        hooks.push((hook, deliveries));
    }
    Ok(hooks)
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(site): Path<String>,
    Query(flash): Query<Flash>,
) -> PageResult {
    let site = owned_site(&state, session.user.id, &site).await?;
    let hooks = load(&state, session.user.id, &site).await?;
    let message = match flash.done.as_deref() {
        Some("removed") => Some(notice("ok", "The webhook has been removed.")),
        _ => None,
    };
    Ok(html(
        StatusCode::OK,
        render(&session, &site, &hooks, message),
    ))
}

pub async fn add(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(site): Path<String>,
    Form(form): Form<AddForm>,
) -> PageResult {
    let site = owned_site(&state, session.user.id, &site).await?;
    let created = webhooks::add(&state, session.user.id, &site, &form.url, &[]).await?;
    let hooks = load(&state, session.user.id, &site).await?;
    let message = html! {
        div.notice.ok.secret role="status" {
            p { "Webhook added. Its signing secret (shown once):" }
            code #new-secret { (created.secret) }
        }
    };
    Ok(html(
        StatusCode::CREATED,
        render(&session, &site, &hooks, Some(message)),
    ))
}

pub async fn remove(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path((site, id)): Path<(String, i64)>,
) -> PageResult {
    let site = owned_site(&state, session.user.id, &site).await?;
    webhooks::remove(&state, session.user.id, &site, id).await?;
    Ok(see_other(&format!(
        "/sites/{}/webhooks?done=removed",
        site.name
    )))
}
