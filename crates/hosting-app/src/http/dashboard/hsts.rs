//! The site page's HSTS section: the site's Strict-Transport-Security setting and the
//! form that changes it (`tls::hsts`, as the API).

use axum::extract::{Path, State};
use axum::Form;
use hosting_api::Hsts;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::csrf_field;
use super::session::{CurrentSession, SignedIn};
use super::{see_other, PageResult};
use crate::state::AppState;
use crate::tls::hsts::set;

#[derive(Deserialize)]
pub struct HstsForm {
    max_age: u32,
    /// A checkbox: present ("on") when ticked.
    #[serde(default)]
    include_subdomains: Option<String>,
}

pub fn section(session: &CurrentSession, site: &str, hsts: &Hsts) -> Markup {
    html! {
        section.card #hsts aria-labelledby="hsts-title" {
            h2 #hsts-title { "HTTPS only (HSTS)" }
            @if hsts.max_age > 0 {
                p {
                    span.badge.live { "On" } " Browsers keep to HTTPS for " (hsts.max_age) " seconds"
                    @if hsts.include_subdomains { ", subdomains included" } "."
                }
            } @else {
                p.muted { "No Strict-Transport-Security header is sent for this site." }
            }
            form.inline method="post" action={ "/sites/" (site) "/hsts" } {
                (csrf_field(session))
                label for="hsts-max-age" { "Max-age (seconds, 0 = off)" }
                input #hsts-max-age name="max_age" type="number" min="0" max=(hosting_api::HSTS_MAX_AGE_LIMIT) value=(hsts.max_age) required;
                label for="hsts-subdomains" { "Include subdomains" }
                input #hsts-subdomains name="include_subdomains" type="checkbox" checked[hsts.include_subdomains];
                button type="submit" { "Save" }
            }
        }
    }
}

pub async fn update(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(site): Path<String>,
    Form(form): Form<HstsForm>,
) -> PageResult<axum::response::Response> {
    let wanted = Hsts {
        max_age: form.max_age,
        include_subdomains: form.include_subdomains.is_some(),
    };
    set(&state.0, session.user.id, &site, wanted).await?;
    Ok(see_other(&format!("/sites/{site}?done=hsts#hsts")))
}
