//! One site: live deploy, deploy from the browser, history with one-click rollback,
//! and deletion with confirmation, through the same actions as the API (`crate::actions`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use hosting_api::DeployState;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{bytes, csrf_field, notice, opt_time, page, time, Nav};
use super::session::{CurrentSession, SignedIn};
use super::sites::Flash;
use super::{access, assets, domains, hsts};
use super::{html, see_other, PageError, PageResult};
use crate::actions::aliases::list_aliases;
use crate::actions::custom_domains::site_domains;
use crate::actions::deploys::{self, rollback_target};
use crate::actions::protection::protection;
use crate::actions::sites::{delete_site, owned_site};
use crate::actions::ActionError;
use crate::state::AppState;
use crate::store::{DeployRecord, SiteRecord};

#[derive(Deserialize)]
pub struct RollbackForm {
    deploy_id: String,
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

fn state_badge(deploy: &DeployRecord) -> Markup {
    let (class, label) = match (deploy.live, deploy.state) {
        (true, _) => ("live", "Live"),
        (false, DeployState::Ready) => ("ready", "Ready"),
        (false, DeployState::Uploading) => ("pending", "Uploading"),
        (false, DeployState::Expired) => ("muted", "Expired"),
        (false, DeployState::Failed) => ("error", "Failed"),
    };
    html! { span.badge.(class) { (label) } }
}

fn deploy_form(session: &CurrentSession, site: &SiteRecord, url: &str) -> Markup {
    html! {
        section.card #deploy aria-labelledby="deploy-title" {
            h2 #deploy-title { "Deploy" }
            form #deploy-form data-site=(site.name) data-csrf=(session.csrf) data-url=(url) {
                div.dropzone #dropzone {
                    p { strong { "Drop a folder here" } " or " }
                    label.button for="folder" { "Choose a folder…" }
                    input #folder.visually-hidden type="file" webkitdirectory multiple;
                    p.muted { "Files are hashed in your browser; only files the server does not have yet are uploaded." }
                }
            }
            div #deploy-status aria-live="polite" {}
            progress #deploy-progress max="100" value="0" hidden {}
        }
        script src=(assets::js_url()) defer {}
    }
}

fn history(
    state: &AppState,
    session: &CurrentSession,
    site: &SiteRecord,
    deploys: &[DeployRecord],
) -> Markup {
    html! {
        section.card #history aria-labelledby="history-title" {
            h2 #history-title { "Deploys" }
            @if deploys.is_empty() {
                p.muted { "Nothing deployed yet." }
            } @else {
                div.table-wrap {
                    table #deploys {
                        thead { tr {
                            th scope="col" { "Deploy" } th scope="col" { "State" } th scope="col" { "Created" }
                            th scope="col" { "Files" } th scope="col" { "Size" } th scope="col" { "By" } th scope="col" { span.sr-only { "Actions" } }
                        } }
                        tbody {
                            @for d in deploys {
                                tr data-deploy=(d.id) {
                                    td {
                                        a href=(state.preview_url(&site.name, &d.id)) title="Preview this deploy" { code { (d.id) } }
                                        @if let Some(message) = &d.message { div.muted.deploy-message { (message) } }
                                    }
                                    td { (state_badge(d)) }
                                    td { (time(d.created_at)) }
                                    td { (d.file_count) }
                                    td { (bytes(d.total_bytes)) }
                                    td { (d.created_by) }
                                    td.actions {
                                        @if !d.live && d.state == DeployState::Ready {
                                            form method="post" action={ "/sites/" (site.name) "/rollback" } {
                                                (csrf_field(session))
                                                input type="hidden" name="deploy_id" value=(d.id);
                                                button.small type="submit" aria-label={ "Publish deploy " (d.id) } {
                                                    @if d.published_at.is_some() { "Roll back to this" } @else { "Publish" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn render(
    state: &AppState,
    session: &CurrentSession,
    loaded: &Loaded,
    message: Option<Markup>,
) -> Markup {
    let Loaded {
        site,
        deploys,
        domains,
        aliases,
        protection,
        hsts,
    } = loaded;
    let live = deploys.iter().find(|d| d.live);
    let url = state.site_url(&site.name);
    page(
        &site.name,
        session,
        Nav::Sites,
        html! {
            nav.crumbs aria-label="Breadcrumb" { a href="/sites" { "Sites" } " / " span { (site.name) } }
            div.heading #site-heading {
                h1 { (site.name) }
                a.button #analytics-link href={ "/sites/" (site.name) "/analytics" } { "Analytics" }
                @if live.is_some() { a.button.primary #live-link href=(url) { "Open live site" } }
            }
            @if let Some(message) = message { (message) }
            section.card.live #live aria-labelledby="live-title" {
                h2 #live-title { "Live" }
                @if let Some(live) = live {
                    dl.facts {
                        div { dt { "URL" } dd { a href=(url) { (url) } } }
                        div { dt { "Deploy" } dd { code { (live.id) } } }
                        div { dt { "Published" } dd { (opt_time(live.published_at)) } }
                        div { dt { "Files" } dd { (live.file_count) " · " (bytes(live.total_bytes)) } }
                    }
                } @else {
                    p.muted { "Nothing is published yet: deploy a folder below." }
                }
            }
            (deploy_form(session, site, &url))
            (history(state, session, site, deploys))
            (domains::section(session, &site.name, domains, state.config.acme.acme_directory.is_some()))
            (access::section(session, &site.name, aliases, protection))
            (hsts::section(session, &site.name, hsts))
            p { a.button href={ "/sites/" (site.name) "/webhooks" } { "Webhooks" } }
            section.card.danger aria-labelledby="delete-title" {
                h2 #delete-title { "Delete this site" }
                p { "Deleting removes the site and all its deploys; its address stops working at once. This cannot be undone." }
                form.inline method="post" action={ "/sites/" (site.name) "/delete" } {
                    (csrf_field(session))
                    label for="confirm" { "Type " strong { (site.name) } " to confirm" }
                    input #confirm name="confirm" type="text" required autocomplete="off" spellcheck="false";
                    button.danger type="submit" { "Delete site" }
                }
            }
        },
    )
}

struct Loaded {
    site: SiteRecord,
    deploys: Vec<DeployRecord>,
    domains: Vec<hosting_api::Domain>,
    aliases: Vec<hosting_api::Alias>,
    protection: hosting_api::Protection,
    hsts: hosting_api::Hsts,
}

async fn load(state: &AppState, session: &CurrentSession, name: &str) -> PageResult<Loaded> {
    let site = owned_site(state, session.user.id, name).await?;
    let deploys = state.store.list_deploys(session.user.id, site.id).await?;
    let domains = site_domains(state, session.user.id, site.id).await?;
    let aliases = list_aliases(state, session.user.id, &site.name).await?;
    let protection = protection(state, session.user.id, &site.name).await?;
    let hsts = crate::tls::hsts::setting(state, session.user.id, &site.name).await?;
    Ok(Loaded {
        site,
        deploys,
        domains,
        aliases,
        protection,
        hsts,
    })
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(name): Path<String>,
    Query(flash): Query<Flash>,
) -> PageResult {
    let loaded = load(&state, &session, &name).await?;
    let message = match flash.done.as_deref() {
        Some("created") => Some(notice(
            "ok",
            "Site created. Drop a folder below to deploy it.",
        )),
        Some("rolled-back") => Some(notice(
            "ok",
            "Published: the site now serves the chosen deploy.",
        )),
        Some("domain-added") => Some(notice(
            "ok",
            "Domain added: prove you control it (see How to verify), then Check now.",
        )),
        Some("domain-verified") => Some(notice("ok", "Domain verified: it serves this site.")),
        Some("domain-not-verified") => Some(notice(
            "error",
            "The domain is not verified yet: see How to verify.",
        )),
        Some("certificate-ordered") => Some(notice(
            "ok",
            "A certificate is being ordered; this page shows it once issued.",
        )),
        Some("domain-removed") => Some(notice(
            "ok",
            "Domain removed: it no longer serves this site.",
        )),
        Some("alias-removed") => Some(notice(
            "ok",
            "Alias removed: its address no longer serves a deploy.",
        )),
        Some("protected") => Some(notice("ok", "Protected: visitors now need the password.")),
        Some("unprotected") => Some(notice("ok", "The site is public again.")),
        Some("hsts") => Some(notice("ok", "HSTS setting saved.")),
        _ => None,
    };
    Ok(html(
        StatusCode::OK,
        render(&state, &session, &loaded, message),
    ))
}

pub async fn rollback(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(name): Path<String>,
    Form(form): Form<RollbackForm>,
) -> PageResult {
    let site = owned_site(&state, session.user.id, &name).await?;
    let deploy = match rollback_target(&state, session.user.id, &site, Some(&form.deploy_id)).await
    {
        Ok(deploy) => deploy,
        Err(ActionError::OtherSite { .. }) => {
            return Err(PageError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "That deploy belongs to another site.",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let live = deploys::publish(&state.0, session.user.id, &deploy.id).await?;
    crate::audit::events::deploy_rolled_back(&state, session.user.id, &live).await;
    Ok(see_other(&format!("/sites/{}?done=rolled-back", site.name)))
}

pub async fn delete(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(name): Path<String>,
    Form(form): Form<DeleteForm>,
) -> PageResult<Response> {
    let loaded = load(&state, &session, &name).await?;
    let site = &loaded.site;
    if form.confirm.trim() != site.name {
        let message = notice(
            "error",
            "The name typed does not match: the site was not deleted.",
        );
        let page = render(&state, &session, &loaded, Some(message));
        return Ok(html(StatusCode::UNPROCESSABLE_ENTITY, page));
    }
    delete_site(&state.0, session.user.id, site).await?;
    Ok(see_other("/sites?done=deleted"))
}
