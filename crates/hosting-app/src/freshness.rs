//! How long a site response may be kept: what bounds the time a publish takes to show
//! through the proxies. Read by serving, computed once into the application state.

/// Browsers revalidate every time (the ETag makes that cheap); the proxies may keep a
/// response `s-maxage` seconds, which bounds how long a publish takes to show.
pub fn site_cache_control(proxy_seconds: u64) -> String {
    if proxy_seconds == 0 {
        "public, max-age=0, must-revalidate".to_owned()
    } else {
        format!("public, max-age=0, must-revalidate, s-maxage={proxy_seconds}")
    }
}
