//! `Language=` and `Country=` conditions of `_redirects`.

use super::mmdb::country_db;
use super::{header, text};
use crate::helpers::{TestApp, ADMIN_TOKEN};

const FILES: &[(&str, &[u8])] = &[
    ("index.html", b"home"),
    ("fr/index.html", b"accueil"),
    (
        "_redirects",
        b"/ /fr/ 302 Language=fr\n/ /de/ 302 Country=de,at\n/shop /shop-eu 302 Country=DE Language=de\n",
    ),
];

async fn site(adjust: impl FnOnce(&mut hosting_app::Config)) -> TestApp {
    let app = TestApp::spawn_with(adjust).await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    app.deploy_archive(ADMIN_TOKEN, "blog", FILES).await;
    app
}

#[tokio::test]
async fn language_rules_follow_the_preferred_language_by_q_value() {
    let app = site(|_| {}).await;

    for (accept, location) in [
        ("fr-CA,fr;q=0.9,en;q=0.8", Some("/fr/")),
        ("en;q=0.5, fr;q=0.9", Some("/fr/")),
        ("en-US,en;q=0.9,fr;q=0.8", None),
        ("fr;q=0, en", None),
    ] {
        let response = app
            .site("blog.localhost", "/", &[("accept-language", accept)])
            .await;

        assert_eq!(
            header(&response, "location").as_deref(),
            location,
            "{accept}"
        );
        let status = if location.is_some() { 302 } else { 200 };
        assert_eq!(response.status(), status, "{accept}");
    }
    let none = app.site("blog.localhost", "/", &[]).await;
    assert_eq!(none.status(), 200, "no Accept-Language: no language rule");
    assert_eq!(text(none).await, "home");
}

#[tokio::test]
async fn country_rules_use_the_geoip_database_and_the_trusted_client_address() {
    let folder = tempfile::tempdir().expect("temp dir");
    let db = folder.path().join("countries.mmdb");
    std::fs::write(
        &db,
        country_db(&[([203, 0, 113, 0], 24, "DE"), ([198, 51, 100, 0], 24, "US")]),
    )
    .expect("write mmdb");
    let app = site(|config| config.routing.geoip_db = Some(db.clone())).await;

    // The app trusts X-Real-IP from a loopback peer (its proxies), as the rate limits do.
    let german = app
        .site("blog.localhost", "/", &[("x-real-ip", "203.0.113.7")])
        .await;
    let american = app
        .site("blog.localhost", "/", &[("x-real-ip", "198.51.100.7")])
        .await;
    let unknown = app
        .site("blog.localhost", "/", &[("x-real-ip", "192.0.2.1")])
        .await;
    let both = app
        .site(
            "blog.localhost",
            "/shop",
            &[("x-real-ip", "203.0.113.7"), ("accept-language", "de-DE")],
        )
        .await;
    let country_only = app
        .site(
            "blog.localhost",
            "/shop",
            &[("x-real-ip", "203.0.113.7"), ("accept-language", "en")],
        )
        .await;

    assert_eq!(german.status(), 302);
    assert_eq!(header(&german, "location").as_deref(), Some("/de/"));
    assert_eq!(american.status(), 200);
    assert_eq!(unknown.status(), 200);
    assert_eq!(header(&both, "location").as_deref(), Some("/shop-eu"));
    assert_eq!(country_only.status(), 404);
}

#[tokio::test]
async fn without_a_geoip_database_country_rules_never_apply() {
    let app = site(|_| {}).await;

    let response = app
        .site("blog.localhost", "/", &[("x-real-ip", "203.0.113.7")])
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(text(response).await, "home");
}
