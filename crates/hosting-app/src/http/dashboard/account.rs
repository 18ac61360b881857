//! The signed-in user's account: who they are, and changing their password.

use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use hosting_api::Role;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{csrf_field, notice, page, time, Nav};
use super::session::{self, CurrentSession, SignedIn};
use super::sites::Flash;
use super::{html, see_other, PageError, PageResult};
use crate::audit::{self, Actor};
use crate::http::auth::{hash_password, verify_password};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

fn render(session: &CurrentSession, message: Option<Markup>) -> Markup {
    let user = &session.user;
    page(
        "Account",
        session,
        Nav::Account,
        html! {
            div.heading { h1 { "Account" } }
            @if let Some(message) = message { (message) }
            section.card {
                dl.facts {
                    div { dt { "User name" } dd { (user.username) } }
                    div { dt { "Role" } dd { @if user.role == Role::Admin { "Administrator" } @else { "Member" } } }
                    div { dt { "Member since" } dd { (time(user.created_at)) } }
                }
            }
            section.card {
                h2 { "Change password" }
                form.stack method="post" action="/account/password" {
                    (csrf_field(session))
                    @if user.password_hash.is_some() {
                        label for="current" { "Current password" }
                        input #current name="current" type="password" autocomplete="current-password" required;
                    }
                    label for="new" { "New password" }
                    input #new name="new" type="password" autocomplete="new-password" minlength="10" required aria-describedby="new-help";
                    p #new-help .muted { "At least 10 characters." }
                    label for="confirm" { "Repeat the new password" }
                    input #confirm name="confirm" type="password" autocomplete="new-password" minlength="10" required;
                    div { button.primary type="submit" { "Change password" } }
                }
            }
        },
    )
}

pub async fn show(SignedIn(session): SignedIn, Query(flash): Query<Flash>) -> Response {
    let message = match flash.done.as_deref() {
        Some("password") => Some(notice(
            "ok",
            "Your password has been changed; other sessions were signed out.",
        )),
        _ => None,
    };
    html(StatusCode::OK, render(&session, message))
}

pub async fn change_password(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    let refuse = |status: StatusCode, text: &str| {
        Ok(html(status, render(&session, Some(notice("error", text)))))
    };
    let current_hash = session.user.password_hash.clone();
    if current_hash.is_some() {
        let current = form.current.clone();
        let hash = current_hash.clone();
        let verified =
            tokio::task::spawn_blocking(move || verify_password(hash.as_deref(), &current))
                .await
                .unwrap_or(false);
        if !verified {
            let (actor, why) = (Actor::User(&session.user), Some("wrong current password"));
            audit::events::password_set(state.store.as_ref(), actor, &session.user, why).await;
            return refuse(StatusCode::UNAUTHORIZED, "The current password is wrong.");
        }
    }
    if form.new != form.confirm {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The new passwords do not match.",
        );
    }
    let hash = match hash_password(&form.new) {
        Ok(hash) => hash,
        Err(e) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, &format!("{e}.")),
    };
    state.store.set_password(session.user.id, &hash).await?;
    let actor = Actor::User(&session.user);
    audit::events::password_set(state.store.as_ref(), actor, &session.user, None).await;
    // Every other session of this user ends; this browser gets a fresh one.
    state
        .sessions
        .delete_user(session.user.id)
        .await
        .map_err(|e| PageError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let _ = state.sessions.delete(&session.id_hash).await;
    let cookie = session::start(&state, session.user.id)
        .await
        .map_err(|_| PageError::sessions_unavailable())?;
    let mut response = see_other("/account?done=password");
    response.headers_mut().append(SET_COOKIE, cookie);
    Ok(response)
}
