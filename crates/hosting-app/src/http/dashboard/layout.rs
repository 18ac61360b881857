//! The dashboard's page frame (header, navigation, footer), the error page and small
//! formatting helpers. maud escapes every interpolated value.

use chrono::{DateTime, Utc};
use hosting_api::Role;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::assets;
use crate::sessions::lookup::{CurrentSession, CSRF_FIELD};

/// Which navigation entry is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Sites,
    Tokens,
    Account,
    Users,
    Health,
    Audit,
}

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        meta name="color-scheme" content="light dark";
        title { (title) " · hosting" }
        link rel="stylesheet" href=(assets::css_url());
        link rel="icon" href=(assets::icon_url());
    }
}

fn logo() -> Markup {
    html! {
        span.logo aria-hidden="true" { (PreEscaped(assets::LOGO_SVG)) }
        span { "hosting" }
    }
}

/// A signed-in page: header with navigation and sign-out, then `content`.
pub fn page(title: &str, session: &CurrentSession, nav: Nav, content: Markup) -> Markup {
    let admin = session.user.role == Role::Admin;
    let item = |target: Nav, href: &str, label: &str| {
        html! {
            @if target == nav {
                a href=(href) aria-current="page" { (label) }
            } @else {
                a href=(href) { (label) }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                a.skip href="#main" { "Skip to content" }
                header.topbar {
                    a.brand href="/sites" { (logo()) }
                    nav aria-label="Main" {
                        (item(Nav::Sites, "/sites", "Sites"))
                        (item(Nav::Tokens, "/tokens", "API tokens"))
                        (item(Nav::Audit, "/audit", "Audit log"))
                        @if admin {
                            (item(Nav::Users, "/admin/users", "Users"))
                            (item(Nav::Health, "/admin/health", "Health"))
                        }
                    }
                    div.me {
                        (item(Nav::Account, "/account", &session.user.username))
                        form method="post" action="/logout" {
                            (csrf_field(session))
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { (content) }
                footer.foot { "hosting · self-hosted static sites" }
            }
        }
    }
}

/// A page without the signed-in frame (sign-in, errors).
pub fn bare(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body.bare {
                main #main.narrow {
                    a.brand.center href="/" { (logo()) }
                    (content)
                }
            }
        }
    }
}

pub fn error_page(code: u16, title: &str, message: &str) -> Markup {
    bare(
        title,
        html! {
            section.card.center {
                p.code { (code) }
                h1 { (title) }
                p { (message) }
                p { a.button href="/sites" { "Back to the dashboard" } }
            }
        },
    )
}

/// The hidden CSRF field every POST form carries.
pub fn csrf_field(session: &CurrentSession) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(session.csrf); }
}

/// A success or error banner.
pub fn notice(kind: &str, text: &str) -> Markup {
    html! { div.notice.(kind) role=(if kind == "error" { "alert" } else { "status" }) { (text) } }
}

pub fn time(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M UTC")) } }
}

pub fn opt_time(at: Option<DateTime<Utc>>) -> Markup {
    match at {
        Some(at) => time(at),
        None => html! { span.muted { "—" } },
    }
}

/// `1.40 MiB`: IEC units, the same as `hostctl` and the browser deploy print
/// (`indicatif::HumanBytes` on both Rust sides).
pub fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// "used / limit" of one quota; a limit an admin set is marked.
pub(super) fn quota_cell(item: &hosting_api::QuotaItem, show: fn(u64) -> String) -> Markup {
    html! {
        (show(item.used)) " / "
        @match item.limit { Some(limit) => (show(limit)), None => "unlimited" }
        @if item.overridden { " *" }
    }
}

/// The value an override field starts with: empty for the platform default.
pub(super) fn quota_field(item: &hosting_api::QuotaItem, show: fn(u64) -> String) -> String {
    match (item.overridden, item.limit) {
        (false, _) => String::new(),
        (true, None) => "unlimited".into(),
        (true, Some(limit)) => show(limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_the_same_iec_units_as_hostctl() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(25 * 1024 * 1024), "25.00 MiB");
    }

    #[test]
    fn interpolated_text_is_escaped() {
        let markup = error_page(400, "<b>", "<script>alert(1)</script>").into_string();
        assert!(!markup.contains("<script>alert"), "{markup}");
        assert!(markup.contains("&lt;script&gt;"));
    }
}
