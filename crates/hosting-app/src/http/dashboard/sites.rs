//! The sites list and site creation.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{bytes, csrf_field, notice, opt_time, page, Nav};
use super::session::{CurrentSession, SignedIn};
use super::{html, see_other, PageResult};
use crate::actions::quota::user_quota;
use crate::actions::sites::create_site;
use crate::actions::ActionError;
use crate::domain::names::SiteName;
use crate::state::AppState;
use crate::store::{DeployRecord, StoreError};

#[derive(Debug, Default, Deserialize)]
pub struct Flash {
    #[serde(default)]
    pub done: Option<String>,
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
}

struct Row {
    name: String,
    url: String,
    live: Option<DeployRecord>,
    last: Option<DeployRecord>,
}

async fn rows(state: &AppState, owner_id: i64) -> PageResult<Vec<Row>> {
    let mut rows = Vec::new();
    for site in state.store.list_sites(owner_id).await? {
        let deploys = state.store.list_deploys(owner_id, site.id).await?;
        rows.push(Row {
            url: state.site_url(&site.name),
            live: deploys.iter().find(|d| d.live).cloned(),
            last: deploys.first().cloned(),
            name: site.name,
        });
    }
    Ok(rows)
}

/// One quota as "used of limit" (sizes in bytes units when `as_bytes`).
fn quota_item(label: &str, item: &hosting_api::QuotaItem, as_bytes: bool) -> Markup {
    let show = |n: u64| if as_bytes { bytes(n) } else { n.to_string() };
    html! {
        li data-quota=(label) {
            strong { (label) ": " } (show(item.used))
            @match item.limit { Some(limit) => { " of " (show(limit)) }, None => { span.muted { " (unlimited)" } } }
        }
    }
}

fn usage(quota: &hosting_api::Quota) -> Markup {
    html! {
        section.card #usage aria-label="Usage" {
            h2 { "Usage" }
            ul.usage {
                (quota_item("Storage", &quota.storage_bytes, true))
                (quota_item("Sites", &quota.sites, false))
                (quota_item("Deploys in the last hour", &quota.deploys_per_hour, false))
            }
        }
    }
}

fn render(
    session: &CurrentSession,
    rows: &[Row],
    quota: &hosting_api::Quota,
    message: Option<Markup>,
    name: &str,
) -> Markup {
    page(
        "Sites",
        session,
        Nav::Sites,
        html! {
            div.heading {
                h1 { "Sites" }
            }
            @if let Some(message) = message { (message) }
            (usage(quota))
            section.card {
                h2 { "Create a site" }
                form.inline method="post" action="/sites" {
                    (csrf_field(session))
                    label for="site-name" { "Name" }
                    input #site-name name="name" type="text" required pattern="[a-z0-9]([a-z0-9\\-]*[a-z0-9])?"
                        maxlength="63" placeholder="my-site" autocapitalize="none" spellcheck="false"
                        aria-describedby="site-name-help" value=(name);
                    button.primary type="submit" { "Create site" }
                }
                p #site-name-help .muted { "Lower-case letters, digits and hyphens; the site is served at " code { "<name>." } "your domain." }
            }
            @if rows.is_empty() {
                section.card.empty {
                    p { "No sites yet. Create one above, then drop a folder on its page to deploy it." }
                }
            } @else {
                div.table-wrap {
                    table #sites {
                        caption.sr-only { "Your sites" }
                        thead { tr { th scope="col" { "Site" } th scope="col" { "Live URL" } th scope="col" { "Last deploy" } th scope="col" { "Live size" } } }
                        tbody {
                            @for row in rows {
                                tr {
                                    th scope="row" { a href={ "/sites/" (row.name) } { (row.name) } }
                                    td { @if row.live.is_some() { a href=(row.url) { (row.url) } } @else { span.muted { "not published yet" } } }
                                    td { (opt_time(row.last.as_ref().map(|d| d.created_at))) }
                                    td { @if let Some(live) = &row.live { (bytes(live.total_bytes)) " · " (live.file_count) @if live.file_count == 1 { " file" } @else { " files" } } @else { span.muted { "—" } } }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub async fn list(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Query(flash): Query<Flash>,
) -> PageResult {
    let rows = rows(&state, session.user.id).await?;
    let quota = user_quota(&state, session.user.id).await?;
    let message = match flash.done.as_deref() {
        Some("deleted") => Some(notice("ok", "The site has been deleted.")),
        _ => None,
    };
    Ok(html(
        StatusCode::OK,
        render(&session, &rows, &quota, message, ""),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Form(form): Form<CreateForm>,
) -> PageResult<Response> {
    let raw = form.name.trim().to_lowercase();
    let error = match SiteName::parse(&raw) {
        Ok(name) => match create_site(&state, session.user.id, &name).await {
            Ok(site) => return Ok(see_other(&format!("/sites/{}?done=created", site.name))),
            Err(ActionError::Store(StoreError::Conflict(_))) => {
                (StatusCode::CONFLICT, format!("The name {raw:?} is taken."))
            }
            Err(
                ActionError::Quota(exceeded)
                | ActionError::Store(StoreError::QuotaExceeded(exceeded)),
            ) => (StatusCode::FORBIDDEN, exceeded.to_string()),
            Err(e) => return Err(e.into()),
        },
        Err(reason) => (StatusCode::UNPROCESSABLE_ENTITY, reason),
    };
    let rows = rows(&state, session.user.id).await?;
    let quota = user_quota(&state, session.user.id).await?;
    let page = render(
        &session,
        &rows,
        &quota,
        Some(notice("error", &error.1)),
        &raw,
    );
    Ok(html(error.0, page))
}
