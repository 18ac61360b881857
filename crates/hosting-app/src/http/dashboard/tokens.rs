//! API tokens: create (the secret is shown once, on the response page), list, revoke.

use crate::audit::{self, Actor};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{csrf_field, notice, opt_time, page, time, Nav};
use super::session::{CurrentSession, SignedIn};
use super::sites::Flash;
use super::{html, see_other, PageError, PageResult};
use crate::sessions::hash::{generate_token, hash_token};
use crate::state::AppState;
use crate::store::TokenRecord;

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
}

fn render(session: &CurrentSession, tokens: &[TokenRecord], message: Option<Markup>) -> Markup {
    page(
        "API tokens",
        session,
        Nav::Tokens,
        html! {
            div.heading { h1 { "API tokens" } }
            p.muted { "Tokens let " code { "hostctl" } ", CI jobs and scripts use the API as you. Each one is shown once, when it is created." }
            @if let Some(message) = message { (message) }
            section.card {
                h2 { "Create a token" }
                form.inline method="post" action="/tokens" {
                    (csrf_field(session))
                    label for="token-name" { "Name" }
                    input #token-name name="name" type="text" required maxlength="100" placeholder="ci-deploy";
                    button.primary type="submit" { "Create token" }
                }
            }
            @if tokens.is_empty() {
                section.card.empty { p { "No tokens." } }
            } @else {
                div.table-wrap {
                    table #tokens {
                        thead { tr { th scope="col" { "Name" } th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { span.sr-only { "Actions" } } } }
                        tbody {
                            @for token in tokens {
                                tr {
                                    th scope="row" { (token.name) }
                                    td { (time(token.created_at)) }
                                    td { (opt_time(token.last_used_at)) }
                                    td.actions {
                                        form method="post" action={ "/tokens/" (token.id) "/revoke" } {
                                            (csrf_field(session))
                                            button.small.danger type="submit" aria-label={ "Revoke token " (token.name) } { "Revoke" }
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

pub async fn list(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Query(flash): Query<Flash>,
) -> PageResult {
    let tokens = state.store.list_tokens(session.user.id).await?;
    let message = match flash.done.as_deref() {
        Some("revoked") => Some(notice("ok", "The token has been revoked.")),
        _ => None,
    };
    Ok(html(StatusCode::OK, render(&session, &tokens, message)))
}

pub async fn create(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Form(form): Form<CreateForm>,
) -> PageResult {
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        let tokens = state.store.list_tokens(session.user.id).await?;
        let message = notice("error", "A token name has 1 to 100 printable characters.");
        return Ok(html(
            StatusCode::UNPROCESSABLE_ENTITY,
            render(&session, &tokens, Some(message)),
        ));
    }
    let secret = generate_token();
    let token = state
        .store
        .create_token(session.user.id, name, &hash_token(&secret))
        .await?;
    let event = audit::events::token("token.create", session.user.id, token.id, Some(name));
    audit::record(&state, Actor::User(&session.user), event).await;
    let tokens = state.store.list_tokens(session.user.id).await?;
    let message = html! {
        div.notice.ok.secret role="status" {
            p { "Token " strong { (name) } " created. Copy it now: it will not be shown again." }
            code #new-token { (secret) }
        }
    };
    Ok(html(
        StatusCode::CREATED,
        render(&session, &tokens, Some(message)),
    ))
}

pub async fn revoke(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<i64>,
) -> PageResult {
    if !state.store.delete_token(session.user.id, id).await? {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "There is no such token.",
        ));
    }
    let event = audit::events::token("token.revoke", session.user.id, id, None);
    audit::record(&state, Actor::User(&session.user), event).await;
    Ok(see_other("/tokens?done=revoked"))
}
