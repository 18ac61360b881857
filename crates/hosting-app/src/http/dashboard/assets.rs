//! The dashboard's stylesheet, script and icon, compiled into the binary and served under
//! `/assets/` with a content hash in the URL, so browsers and proxies may keep them for
//! a year (`immutable`): a new build changes the URL. Nothing is loaded from elsewhere.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

pub const CSS: &str = include_str!("assets/dashboard.css");
pub const DEPLOY_JS: &str = include_str!("assets/deploy.js");
pub const LOGO_SVG: &str = include_str!("assets/logo.svg");

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
    etag: String,
}

fn asset(name: &'static str, content_type: &'static str, body: &'static str) -> Asset {
    let etag = hex::encode(&Sha256::digest(body.as_bytes())[..8]);
    Asset {
        name,
        content_type,
        body,
        etag,
    }
}

static ASSETS: LazyLock<[Asset; 3]> = LazyLock::new(|| {
    [
        asset("dashboard.css", "text/css; charset=utf-8", CSS),
        asset("deploy.js", "text/javascript; charset=utf-8", DEPLOY_JS),
        asset("logo.svg", "image/svg+xml", LOGO_SVG),
    ]
});

fn url(name: &str) -> String {
    let version = ASSETS
        .iter()
        .find(|a| a.name == name)
        .map_or("", |a| a.etag.as_str());
    format!("/assets/{name}?v={version}")
}

pub fn css_url() -> String {
    url("dashboard.css")
}

pub fn js_url() -> String {
    url("deploy.js")
}

pub fn icon_url() -> String {
    url("logo.svg")
}

pub async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == file) else {
        return super::not_found();
    };
    let etag = format!("\"{}\"", asset.etag);
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
