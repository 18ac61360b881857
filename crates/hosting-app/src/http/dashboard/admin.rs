//! Administrators' pages: users (create, disable / enable, set a password, quotas) and
//! the platform's health at a glance.

use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Form;
use hosting_api::Role;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{bytes, csrf_field, notice, page, quota_cell, quota_field, time, Nav};
use super::session::{AdminSignedIn, CurrentSession};
use super::sites::Flash;
use super::{html, see_other, PageError, PageResult};
use crate::actions::quota::user_quota;
use crate::domain::names::validate_username;
use crate::http::auth::hash_password;
use crate::sessions::hash::{generate_token, hash_token};
use crate::state::AppState;
use crate::store::UserRecord;

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
}

fn render(
    session: &CurrentSession,
    users: &[(UserRecord, hosting_api::Quota)],
    message: Option<Markup>,
) -> Markup {
    let count = |n: u64| n.to_string();
    let size = |n: u64| hosting_api::ByteSize(n).to_string();
    page(
        "Users",
        session,
        Nav::Users,
        html! {
            div.heading { h1 { "Users" } }
            @if let Some(message) = message { (message) }
            section.card {
                h2 { "Create a user" }
                form.grid method="post" action="/admin/users" {
                    (csrf_field(session))
                    div { label for="new-username" { "User name" }
                        input #new-username name="username" type="text" required maxlength="64" autocapitalize="none" spellcheck="false"; }
                    div { label for="new-role" { "Role" }
                        select #new-role name="role" { option value="member" selected { "Member" } option value="admin" { "Administrator" } } }
                    div { label for="new-password" { "Password (optional)" }
                        input #new-password name="password" type="password" autocomplete="new-password" minlength="10"; }
                    div.end { button.primary type="submit" { "Create user" } }
                }
            }
            p.muted { "Quotas: used / limit; * = set for this user (blank = the platform default; admins have none). Sizes take units: 500MB, 10GiB." }
            div.table-wrap {
                table #users {
                    thead { tr { th scope="col" { "User" } th scope="col" { "Role" } th scope="col" { "Status" } th scope="col" { "Created" }
                        th scope="col" { "Storage" } th scope="col" { "Sites" } th scope="col" { "Deploys / hour" } th scope="col" { span.sr-only { "Actions" } } } }
                    tbody {
                        @for (user, quota) in users {
                            tr {
                                th scope="row" { (user.username) }
                                td { @if user.role == Role::Admin { "Administrator" } @else { "Member" } }
                                td { @if user.disabled { span.badge.error { "Disabled" } } @else { span.badge.live { "Active" } } }
                                td { (time(user.created_at)) }
                                td.quota { (quota_cell(&quota.storage_bytes, bytes)) }
                                td.quota { (quota_cell(&quota.sites, count)) }
                                td.quota { (quota_cell(&quota.deploys_per_hour, count)) }
                                td.actions {
                                    @if user.id != session.user.id {
                                        form method="post" action={ "/admin/users/" (user.id) (if user.disabled { "/enable" } else { "/disable" }) } {
                                            (csrf_field(session))
                                            button.small.(if user.disabled { "" } else { "danger" }) type="submit" {
                                                @if user.disabled { "Enable" } @else { "Disable" }
                                            }
                                        }
                                    }
                                    details.inline-details {
                                        summary { "Set password" }
                                        form.inline method="post" action={ "/admin/users/" (user.id) "/password" } {
                                            (csrf_field(session))
                                            label.sr-only for={ "pw-" (user.id) } { "New password for " (user.username) }
                                            input id={ "pw-" (user.id) } name="password" type="password" autocomplete="new-password" minlength="10" required;
                                            button.small type="submit" { "Save" }
                                        }
                                    }
                                    details.inline-details {
                                        summary { "Set quota" }
                                        form.inline method="post" action={ "/admin/users/" (user.id) "/quota" } {
                                            (csrf_field(session))
                                            label for={ "qs-" (user.id) } { "Storage" }
                                            input id={ "qs-" (user.id) } name="storage" type="text" size="8" placeholder="default" value=(quota_field(&quota.storage_bytes, size));
                                            label for={ "qn-" (user.id) } { "Sites" }
                                            input id={ "qn-" (user.id) } name="sites" type="text" size="6" placeholder="default" value=(quota_field(&quota.sites, count));
                                            label for={ "qd-" (user.id) } { "Deploys / hour" }
                                            input id={ "qd-" (user.id) } name="deploys_per_hour" type="text" size="6" placeholder="default" value=(quota_field(&quota.deploys_per_hour, count));
                                            button.small type="submit" { "Save" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub(super) async fn users_page(
    state: &AppState,
    session: &CurrentSession,
    status: StatusCode,
    message: Option<Markup>,
) -> PageResult {
    let mut users = Vec::new();
    for user in state.store.list_users().await? {
        let quota = user_quota(state, user.id).await?;
        users.push((user, quota));
    }
    Ok(html(status, render(session, &users, message)))
}

pub async fn users(
    State(state): State<AppState>,
    AdminSignedIn(session): AdminSignedIn,
    Query(flash): Query<Flash>,
) -> PageResult {
    let message = match flash.done.as_deref() {
        Some("disabled") => Some(notice(
            "ok",
            "The user has been disabled: their tokens and sessions stop working.",
        )),
        Some("enabled") => Some(notice("ok", "The user has been enabled.")),
        Some("password") => Some(notice("ok", "The password has been set.")),
        Some("quota") => Some(notice("ok", "The quota has been set.")),
        _ => None,
    };
    users_page(&state, &session, StatusCode::OK, message).await
}

pub async fn create_user(
    State(state): State<AppState>,
    AdminSignedIn(session): AdminSignedIn,
    Form(form): Form<CreateForm>,
) -> PageResult {
    let fail = |text: String| notice("error", &text);
    let username = match validate_username(form.username.trim()) {
        Ok(name) => name,
        Err(e) => {
            return users_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(fail(e)),
            )
            .await
        }
    };
    let role = if form.role == "admin" {
        Role::Admin
    } else {
        Role::Member
    };
    let password_hash = if form.password.is_empty() {
        None
    } else {
        match hash_password(&form.password) {
            Ok(hash) => Some(hash),
            Err(e) => {
                return users_page(
                    &state,
                    &session,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some(fail(format!("{e}."))),
                )
                .await
            }
        }
    };
    let user = match state
        .store
        .create_user(&username, role, password_hash.as_deref())
        .await
    {
        Ok(user) => user,
        Err(crate::store::StoreError::Conflict(_)) => {
            return users_page(
                &state,
                &session,
                StatusCode::CONFLICT,
                Some(fail(format!("A user named {username:?} already exists."))),
            )
            .await
        }
        Err(e) => return Err(e.into()),
    };
    let secret = generate_token();
    state
        .store
        .create_token(user.id, "initial", &hash_token(&secret))
        .await?;
    crate::audit::events::user_changed(&state, &session.user, &user, true).await;
    let message = html! {
        div.notice.ok.secret role="status" {
            p { "User " strong { (user.username) } " created. Their first API token (shown once):" }
            code #new-token { (secret) }
        }
    };
    users_page(&state, &session, StatusCode::CREATED, Some(message)).await
}

async fn set_disabled(
    state: &AppState,
    admin: &CurrentSession,
    id: i64,
    disabled: bool,
) -> PageResult {
    if id == admin.user.id && disabled {
        return Err(PageError::new(
            StatusCode::CONFLICT,
            "You cannot disable your own account.",
        ));
    }
    let user = state
        .store
        .set_user_disabled(id, disabled)
        .await?
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "There is no such user."))?;
    crate::audit::events::user_changed(state, &admin.user, &user, false).await;
    Ok(see_other(if disabled {
        "/admin/users?done=disabled"
    } else {
        "/admin/users?done=enabled"
    }))
}

pub async fn disable(
    State(state): State<AppState>,
    AdminSignedIn(session): AdminSignedIn,
    Path(id): Path<i64>,
) -> PageResult {
    set_disabled(&state, &session, id, true).await
}

pub async fn enable(
    State(state): State<AppState>,
    AdminSignedIn(session): AdminSignedIn,
    Path(id): Path<i64>,
) -> PageResult {
    set_disabled(&state, &session, id, false).await
}

pub async fn set_password(
    State(state): State<AppState>,
    AdminSignedIn(session): AdminSignedIn,
    Path(id): Path<i64>,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    let hash = match hash_password(&form.password) {
        Ok(hash) => hash,
        Err(e) => {
            return users_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(notice("error", &format!("{e}."))),
            )
            .await
        }
    };
    if !state.store.set_password(id, &hash).await? {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "There is no such user.",
        ));
    }
    if let Some(user) = state.store.user_by_id(id).await? {
        let admin = crate::audit::Actor::User(&session.user);
        crate::audit::events::password_set(state.store.as_ref(), admin, &user, None).await;
    }
    if let Err(e) = state.sessions.delete_user(id).await {
        tracing::warn!(error = %e, "could not end the user's sessions");
    }
    Ok(see_other("/admin/users?done=password"))
}

fn check(name: &str, status: &str, detail: &str) -> Markup {
    let class = match status {
        "up" | "ok" | "disabled" => "live",
        _ => "error",
    };
    html! {
        div.check {
            dt { (name) }
            dd { span.badge.(class) { (status) } " " span.muted { (detail) } }
        }
    }
}

pub async fn health(
    State(state): State<AppState>,
    AdminSignedIn(session): AdminSignedIn,
) -> PageResult {
    let started = Instant::now();
    let database = state.store.ping().await;
    let db_ms = started.elapsed().as_secs_f64() * 1000.0;
    let users = state.store.count_users().await.unwrap_or(0);
    let mode = if state.config.is_cluster() {
        "cluster"
    } else {
        "embedded"
    };
    let content = html! {
        div.heading { h1 { "Platform health" } }
        section.card {
            dl.checks #health {
                (check("Accepting traffic", if state.is_accepting() { "up" } else { "down" }, "readiness of this replica"))
                (check("Database", if database.is_ok() { "up" } else { "down" }, &match &database {
                    Ok(()) => format!("{db_ms:.1} ms round trip"),
                    Err(e) => e.to_string(),
                }))
                @if let Some(replica) = state.store.replica_status() {
                    (check("Read replica", replica, "reads fall back to the primary when it lags"))
                }
                (check("Redis", state.shared.status(), "shared cache, invalidation, rate limits"))
                (check("Sessions", "ok", state.sessions.backend()))
            }
        }
        section.card {
            dl.facts {
                div { dt { "Mode" } dd { (mode) } }
                div { dt { "Version" } dd { (env!("CARGO_PKG_VERSION")) } }
                div { dt { "Sites domain" } dd { code { "*." (state.config.public.base_domain) } } }
                div { dt { "Users" } dd { (users) } }
            }
            p.muted { "Metrics for Prometheus are on the management port: " code { "/metrics" } ", " code { "/readyz" } "." }
        }
    };
    Ok(html(
        StatusCode::OK,
        page("Health", &session, Nav::Health, content),
    ))
}
