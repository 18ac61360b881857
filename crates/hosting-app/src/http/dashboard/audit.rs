//! `/audit`: the audit log as a table, newest first, with the API's filters and an
//! "Older" link that follows its cursor. Admins see every entry, others what they own.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use hosting_api::Role;
use maud::html;
use serde::Deserialize;

use super::layout::{page, time, Nav};
use super::session::SignedIn;
use super::{html, PageResult};
use crate::state::AppState;
use crate::store::AuditFilter;

const PAGE: u32 = 100;

#[derive(Deserialize)]
pub struct Filters {
    #[serde(default)]
    site: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    before: Option<i64>,
}

/// An empty form field means no filter.
fn given(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Query(filters): Query<Filters>,
) -> PageResult {
    let site = given(filters.site);
    let action = given(filters.action);
    let entries = state
        .store
        .audit_entries(&AuditFilter {
            visible_to: (session.user.role != Role::Admin).then_some(session.user.id),
            site: site.clone(),
            action: action.clone(),
            before_id: filters.before,
            limit: PAGE,
            ..AuditFilter::default()
        })
        .await?;
    let older = (entries.len() == PAGE as usize)
        .then(|| entries.last().map(|e| e.id))
        .flatten()
        .map(|before| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("site", site.as_deref().unwrap_or_default());
            query.append_pair("action", action.as_deref().unwrap_or_default());
            query.append_pair("before", &before.to_string());
            format!("/audit?{}", query.finish())
        });
    let markup = page(
        "Audit log",
        &session,
        Nav::Audit,
        html! {
            div.heading { h1 { "Audit log" } }
            p.muted {
                @if session.user.role == Role::Admin { "Every change on the platform, newest first." }
                @else { "Changes to your account, sites, deploys and domains, newest first." }
            }
            form.inline method="get" action="/audit" {
                label for="audit-site" { "Site" }
                input #audit-site name="site" type="text" value=(site.as_deref().unwrap_or_default());
                label for="audit-action" { "Action" }
                input #audit-action name="action" type="text" placeholder="deploy" value=(action.as_deref().unwrap_or_default());
                button type="submit" { "Filter" }
            }
            @if entries.is_empty() {
                section.card.empty { p { "No entries." } }
            } @else {
                div.table-wrap {
                    table #audit {
                        thead { tr {
                            th scope="col" { "Time" } th scope="col" { "Actor" } th scope="col" { "Address" }
                            th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Outcome" }
                            th scope="col" { "Detail" }
                        } }
                        tbody {
                            @for entry in &entries {
                                tr {
                                    td { (time(entry.at)) }
                                    td { (entry.actor) }
                                    td { (entry.client_addr.as_deref().unwrap_or("—")) }
                                    td { code { (entry.action) } }
                                    td { (entry.target) }
                                    td { (entry.outcome) }
                                    td { (entry.detail.as_deref().unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(older) = older { p { a.button href=(older) { "Older entries" } } }
        },
    );
    Ok(html(StatusCode::OK, markup))
}
