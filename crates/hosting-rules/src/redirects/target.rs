//! Turning a rule's `to` template into the concrete target of one request.
//!
//! Two renderings exist because the server uses targets in two ways:
//! redirect and proxy targets become a URL (a `Location` header), so captured
//! values are percent-encoded back; rewrite and custom-status targets are
//! looked up in the deploy's files, so the whole path is decoded, matching
//! the decoded request paths the server already uses for file lookup.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use super::pattern::{is_placeholder_byte, lookup, Bindings};

/// Bytes of a captured value that must be escaped before it goes into a URL.
/// `/` stays as-is because splats legitimately span segments; `\\` is escaped
/// because browsers treat it like `/`.
const URL_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Renders a target that will be sent to the client as a URL. The request's
/// query string is carried over unless the template has a query of its own.
pub(crate) fn render_url(template: &str, bindings: &Bindings, query: Option<&str>) -> String {
    let rendered = substitute(template, bindings, str::to_owned, |value| {
        utf8_percent_encode(value, URL_VALUE).to_string()
    });
    let rendered = collapse_leading_slashes(rendered);
    match query.filter(|q| !q.is_empty()) {
        Some(query) => append_query(rendered, query),
        None => rendered,
    }
}

/// Renders a target that names content inside the deploy: query and fragment
/// are dropped (they mean nothing for a file lookup) and the path is decoded.
pub(crate) fn render_path(template: &str, bindings: &Bindings) -> String {
    let path = template.split(['?', '#']).next().unwrap_or(template);
    let rendered = substitute(
        path,
        bindings,
        |literal| percent_decode_str(literal).decode_utf8_lossy().into_owned(),
        str::to_owned,
    );
    collapse_leading_slashes(rendered)
}

/// Replaces every bound `:name` in `template`; unbound placeholders (and
/// things like the `:` in `https:` or a port) are left exactly as written.
fn substitute(
    template: &str,
    bindings: &Bindings,
    literal: impl Fn(&str) -> String,
    value: impl Fn(&str) -> String,
) -> String {
    let mut out = String::with_capacity(template.len());
    let mut literal_start = 0;
    let mut index = 0;
    while let Some(offset) = template[index..].find(':') {
        let colon = index + offset;
        let name_start = colon + 1;
        let name_len = template[name_start..]
            .bytes()
            .take_while(|b| is_placeholder_byte(*b))
            .count();
        let name_end = name_start + name_len;
        let name = &template[name_start..name_end];
        if let Some(bound) = lookup(bindings, name).filter(|_| !name.is_empty()) {
            out.push_str(&literal(&template[literal_start..colon]));
            out.push_str(&value(bound));
            literal_start = name_end;
        }
        index = name_end;
    }
    out.push_str(&literal(&template[literal_start..]));
    out
}

/// SECURITY: a target that starts with `//` or `/\` is protocol-relative:
/// browsers resolve `Location: //evil.com` (and, leniently, `/\evil.com`) to
/// another host. A rule as innocent as `/go/* /:splat 301` would turn a
/// request for `/go//evil.com` into such a target and make the site an open
/// redirect, so any run of leading slashes and backslashes becomes one `/`.
fn collapse_leading_slashes(target: String) -> String {
    let trimmed = target.trim_start_matches(['/', '\\']);
    if trimmed.len() == target.len() {
        target
    } else {
        format!("/{trimmed}")
    }
}

/// Appends `?query` before any `#fragment`, unless the URL already has a query.
fn append_query(url: String, query: &str) -> String {
    let (before_fragment, fragment) = match url.find('#') {
        Some(hash) => url.split_at(hash),
        None => (url.as_str(), ""),
    };
    if before_fragment.contains('?') {
        return url;
    }
    format!("{before_fragment}?{query}{fragment}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bindings(pairs: &[(&str, &str)]) -> Bindings {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn bound_placeholders_are_substituted_inside_segments() {
        let b = bindings(&[("year", "2024"), ("month", "05")]);
        assert_eq!(
            render_url("/blog-:year-:month.html", &b, None),
            "/blog-2024-05.html"
        );
    }

    #[test]
    fn unbound_placeholders_and_url_colons_are_left_as_written() {
        let b = bindings(&[("id", "7")]);
        assert_eq!(
            render_url("https://example.com:8443/:id/:other", &b, None),
            "https://example.com:8443/7/:other"
        );
        assert_eq!(render_url("/a/:id_x", &b, None), "/a/:id_x");
    }

    #[test]
    fn captured_values_are_percent_encoded_in_urls() {
        let b = bindings(&[("splat", "a b/ü?#")]);
        assert_eq!(render_url("/x/:splat", &b, None), "/x/a%20b/%C3%BC%3F%23");
    }

    #[test]
    fn the_request_query_is_appended_only_when_the_target_has_none() {
        let b = bindings(&[]);
        assert_eq!(render_url("/new", &b, Some("a=1")), "/new?a=1");
        assert_eq!(render_url("/new?b=2", &b, Some("a=1")), "/new?b=2");
        assert_eq!(render_url("/new#top", &b, Some("a=1")), "/new?a=1#top");
        assert_eq!(render_url("/new", &b, Some("")), "/new");
    }

    #[test]
    fn protocol_relative_targets_are_collapsed_to_a_local_path() {
        let b = bindings(&[("splat", "/evil.com")]);
        assert_eq!(render_url("/:splat", &b, None), "/evil.com");
        let b = bindings(&[("splat", "\\evil.com")]);
        assert_eq!(render_url("/:splat", &b, None), "/%5Cevil.com");
        assert_eq!(
            render_url("/\\\\//evil.com", &bindings(&[]), None),
            "/evil.com"
        );
        assert_eq!(render_path("//evil.com", &bindings(&[])), "/evil.com");
    }

    #[test]
    fn path_targets_are_decoded_and_lose_query_and_fragment() {
        let b = bindings(&[("name", "100%")]);
        assert_eq!(
            render_path("/caf%C3%A9/:name.html?x=1#top", &b),
            "/café/100%.html"
        );
    }
}
