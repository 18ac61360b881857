//! A site's custom domains on its dashboard page: add, check now, order the certificate
//! now, remove. The operations are the API's (`crate::actions::custom_domains`).

use axum::extract::{Path, State};
use axum::Form;
use hosting_api::{Certificate, CertificateStatus, Domain, DomainStatus};
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{csrf_field, opt_time};
use super::session::{CurrentSession, SignedIn};
use super::{see_other, PageResult};
use crate::actions::custom_domains::{add_domain, order_certificate, remove_domain, verify_domain};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    name: String,
}

fn status_badge(status: DomainStatus) -> Markup {
    let (class, label) = match status {
        DomainStatus::Pending => ("pending", "Pending"),
        DomainStatus::Verified => ("live", "Verified"),
        DomainStatus::Failed => ("error", "Failed"),
    };
    html! { span.badge.(class) { (label) } }
}

fn certificate_cell(certificate: Option<&Certificate>) -> Markup {
    let Some(c) = certificate else {
        return html! { span.muted { "—" } };
    };
    html! {
        @match c.status {
            CertificateStatus::Pending => span.badge.pending { "Ordering" },
            CertificateStatus::Issued => span { span.badge.live { "HTTPS" } " until " (opt_time(c.not_after)) },
            CertificateStatus::Failed => span {
                span.badge.error { "Failing" } " "
                @if c.not_after.is_some() { "(current one until " (opt_time(c.not_after)) ") " }
                small.muted { (c.last_error.as_deref().unwrap_or("")) }
            },
        }
    }
}

fn action(session: &CurrentSession, site: &str, domain: &str, verb: &str, label: &str) -> Markup {
    html! {
        form method="post" action={ "/sites/" (site) "/domains/" (domain) "/" (verb) } {
            (csrf_field(session))
            button.small type="submit" aria-label={ (label) " " (domain) } { (label) }
        }
    }
}

/// The "Custom domains" card of a site's page.
pub fn section(
    session: &CurrentSession,
    site: &str,
    domains: &[Domain],
    certificates_on: bool,
) -> Markup {
    html! {
        section.card #domains aria-labelledby="domains-title" {
            h2 #domains-title { "Custom domains" }
            @if domains.is_empty() {
                p.muted { "No custom domains yet." }
            } @else {
                div.table-wrap {
                    table #domain-list {
                        thead { tr {
                            th scope="col" { "Domain" } th scope="col" { "Ownership" }
                            th scope="col" { "Certificate" } th scope="col" { span.sr-only { "Actions" } }
                        } }
                        tbody {
                            @for d in domains {
                                tr data-domain=(d.name) {
                                    td { code { (d.name) } }
                                    td {
                                        (status_badge(d.status))
                                        @if d.status != DomainStatus::Verified {
                                            details {
                                                summary { "How to verify" }
                                                p { "A DNS TXT record " code { (d.verification.txt_name) } " = " code { (d.verification.txt_value) } }
                                                p { "or point the domain at the platform: it then answers " code { (d.verification.http_path) } " itself." }
                                                @if let Some(detail) = &d.status_detail { p.muted { (detail) } }
                                            }
                                        }
                                    }
                                    td { (certificate_cell(d.certificate.as_ref())) }
                                    td.actions {
                                        (action(session, site, &d.name, "verify", "Check now"))
                                        @if certificates_on && d.status == DomainStatus::Verified {
                                            (action(session, site, &d.name, "certificate", "Renew certificate"))
                                        }
                                        (action(session, site, &d.name, "remove", "Remove"))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.inline method="post" action={ "/sites/" (site) "/domains" } {
                (csrf_field(session))
                label for="domain-name" { "Domain" }
                input #domain-name name="name" type="text" required placeholder="www.example.com"
                    autocomplete="off" spellcheck="false";
                button type="submit" { "Add domain" }
            }
        }
    }
}

fn back(site: &str, done: &str) -> axum::response::Response {
    see_other(&format!("/sites/{site}?done={done}#domains"))
}

pub async fn add(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(site): Path<String>,
    Form(form): Form<AddForm>,
) -> PageResult<axum::response::Response> {
    add_domain(&state.0, session.user.id, &site, &form.name).await?;
    Ok(back(&site, "domain-added"))
}

pub async fn verify(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path((site, domain)): Path<(String, String)>,
) -> PageResult<axum::response::Response> {
    let checked = verify_domain(&state.0, session.user.id, &site, &domain).await?;
    let done = if checked.status == DomainStatus::Verified {
        "domain-verified"
    } else {
        "domain-not-verified"
    };
    Ok(back(&site, done))
}

pub async fn certificate(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path((site, domain)): Path<(String, String)>,
) -> PageResult<axum::response::Response> {
    order_certificate(&state, session.user.id, &site, &domain).await?;
    Ok(back(&site, "certificate-ordered"))
}

pub async fn remove(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path((site, domain)): Path<(String, String)>,
) -> PageResult<axum::response::Response> {
    remove_domain(&state.0, session.user.id, &site, &domain).await?;
    Ok(back(&site, "domain-removed"))
}
