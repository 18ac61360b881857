//! A site's deploy aliases and visitor access on its dashboard page: the aliases with
//! links to their hosts (removable), and the password form. The operations are the
//! API's (`crate::actions::aliases`, `crate::actions::protection`).

use axum::extract::{Path, State};
use axum::Form;
use hosting_api::{Alias, Protection, ProtectionScope};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{csrf_field, time};
use super::session::{CurrentSession, SignedIn};
use super::{see_other, PageResult};
use crate::actions::aliases::remove_alias;
use crate::actions::protection::{protect, unprotect, MIN_PASSWORD_CHARS};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct ProtectForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    scope: String,
}

/// The "Aliases" and "Visitor access" cards of a site's page.
pub fn section(
    session: &CurrentSession,
    site: &str,
    aliases: &[Alias],
    protection: &Protection,
) -> Markup {
    html! {
        section.card #aliases aria-labelledby="aliases-title" {
            h2 #aliases-title { "Aliases" }
            @if aliases.is_empty() {
                p.muted { "No aliases yet. " code { "hostctl deploy DIR --site " (site) " --alias staging" } " publishes to " code { "staging--" (site) } " without touching the live site." }
            } @else {
                div.table-wrap {
                    table #alias-list {
                        thead { tr {
                            th scope="col" { "Alias" } th scope="col" { "Deploy" }
                            th scope="col" { "Moved" } th scope="col" { span.sr-only { "Actions" } }
                        } }
                        tbody {
                            @for a in aliases {
                                tr data-alias=(a.name) {
                                    td { a href=(a.url) { (a.url) } }
                                    td { code { (a.deploy_id) } }
                                    td { (time(a.updated_at)) }
                                    td.actions {
                                        form method="post" action={ "/sites/" (site) "/aliases/" (a.name) "/remove" } {
                                            (csrf_field(session))
                                            button.small type="submit" aria-label={ "Remove alias " (a.name) } { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card #visitor-access aria-labelledby="access-title" {
            h2 #access-title { "Visitor access" }
            @if protection.protected {
                p {
                    span.badge.pending { "Password" } " "
                    @match protection.scope {
                        ProtectionScope::All => "Every visitor of this site, its domains, previews and aliases needs the password.",
                        ProtectionScope::Previews => "Visitors of previews and aliases need the password; the live site is public.",
                    }
                }
                form.inline method="post" action={ "/sites/" (site) "/protection/remove" } {
                    (csrf_field(session))
                    button.small type="submit" { "Make public" }
                }
            } @else {
                p.muted { "Anyone can visit this site, its previews and aliases." }
            }
            form.inline method="post" action={ "/sites/" (site) "/protection" } {
                (csrf_field(session))
                label for="visitor-password" { @if protection.protected { "New password" } @else { "Password" } }
                input #visitor-password name="password" type="password" required
                    minlength=(MIN_PASSWORD_CHARS) autocomplete="new-password";
                label for="visitor-scope" { "Ask on" }
                select #visitor-scope name="scope" {
                    option value="all" selected[protection.scope == ProtectionScope::All] { "the whole site" }
                    option value="previews" selected[protection.scope == ProtectionScope::Previews] { "previews and aliases only" }
                }
                button type="submit" { "Protect" }
            }
        }
    }
}

pub async fn remove(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path((site, alias)): Path<(String, String)>,
) -> PageResult<axum::response::Response> {
    remove_alias(&state.0, session.user.id, &site, &alias).await?;
    Ok(see_other(&format!(
        "/sites/{site}?done=alias-removed#aliases"
    )))
}

pub async fn set_protection(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(site): Path<String>,
    Form(form): Form<ProtectForm>,
) -> PageResult<axum::response::Response> {
    let scope = if form.scope == "previews" {
        ProtectionScope::Previews
    } else {
        ProtectionScope::All
    };
    protect(&state.0, session.user.id, &site, &form.password, scope).await?;
    Ok(see_other(&format!(
        "/sites/{site}?done=protected#visitor-access"
    )))
}

pub async fn remove_protection(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(site): Path<String>,
) -> PageResult<axum::response::Response> {
    unprotect(&state.0, session.user.id, &site).await?;
    Ok(see_other(&format!(
        "/sites/{site}?done=unprotected#visitor-access"
    )))
}
