//! Serving over real HTTP: path resolution, `_redirects` and `_headers`, 404 pages,
//! hosts and previews, hostile request paths, validators and ranges, content types,
//! compression, large files, the warm (database-free) path, `Basic-Auth` protection,
//! proxy rules and `Country=` / `Language=` conditions.

#[path = "serving/access.rs"]
mod access;
#[path = "serving/caching.rs"]
mod caching;
#[path = "serving/conditions.rs"]
mod conditions;
#[path = "serving/mmdb.rs"]
mod mmdb;
#[path = "serving/paths.rs"]
mod paths;
#[path = "serving/proxy.rs"]
mod proxy;
#[path = "serving/representation.rs"]
mod representation;
#[path = "serving/rules.rs"]
mod rules;

use crate::helpers::{TestApp, ADMIN_TOKEN};

/// A running app with the site `blog` and `files` published to it.
async fn blog_with(files: &[(&str, &[u8])]) -> (TestApp, hosting_api::Deploy) {
    let app = TestApp::spawn().await;
    app.create_site(ADMIN_TOKEN, "blog").await;
    let deploy = app.deploy_archive(ADMIN_TOKEN, "blog", files).await;
    (app, deploy)
}

/// A response header as text (`None` when absent or not text).
fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn body(response: reqwest::Response) -> Vec<u8> {
    response.bytes().await.expect("body").to_vec()
}

async fn text(response: reqwest::Response) -> String {
    response.text().await.expect("text body")
}
