//! The platform's own HTML pages for site hosts: unknown host, nothing deployed, bad
//! request. Self-contained (no external assets) and small.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A platform page with `status`, a heading and one explanatory sentence.
pub fn platform_page(status: StatusCode, heading: &str, message: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{code} {heading}</title><style>\
         body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;min-height:100vh;\
         display:flex;align-items:center;justify-content:center;background:#f6f7f9;color:#1d2330}}\
         main{{max-width:32rem;padding:2rem;text-align:center}}h1{{font-size:1.6rem;margin:.2em 0}}\
         .code{{font-size:4rem;font-weight:700;color:#4a5568;margin:0}}p{{line-height:1.5;color:#4a5568}}\
         </style></head><body><main><p class=\"code\">{code}</p><h1>{heading}</h1><p>{message}</p>\
         <p><small>hosting</small></p></main></body></html>\n",
        code = status.as_u16(),
        heading = escape(heading),
        message = escape(message),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

pub fn not_found() -> Response {
    platform_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no site at this address, or nothing has been published to it yet.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_html_escaped() {
        let response = platform_page(StatusCode::BAD_REQUEST, "<b>", "a & b");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(escape("<script>\"&"), "&lt;script&gt;&quot;&amp;");
    }
}
