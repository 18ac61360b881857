//! End-to-end tests of `_redirects` parsing and matching through the public API.

use super::*;

fn parse_ok(text: &str) -> Redirects {
    let (redirects, warnings) = Redirects::parse(text);
    assert_eq!(warnings, vec![], "unexpected warnings");
    redirects
}

fn no_files(_: &str) -> bool {
    false
}

fn hit(status: u16, target: &str, kind: MatchKind, force: bool) -> Option<RuleMatch> {
    Some(RuleMatch {
        status,
        target: target.to_owned(),
        kind,
        force,
    })
}

#[test]
fn comments_and_blank_lines_are_ignored() {
    let r = parse_ok("# header\n\n/a /b # old link\n   # indented\n/c /d 302\n");
    assert_eq!(r.len(), 2);
    assert_eq!(r.rules()[1].line(), 5);
}

#[test]
fn an_empty_file_has_no_rules() {
    let r = parse_ok("");
    assert!(r.is_empty());
    assert_eq!(r.find("/", None, no_files), None);
}

#[test]
fn a_plain_rule_redirects_with_301_by_default() {
    let r = parse_ok("/old /new");
    assert_eq!(
        r.find("/old", None, no_files),
        hit(301, "/new", MatchKind::Redirect, false)
    );
    assert_eq!(r.find("/other", None, no_files), None);
}

#[test]
fn the_first_matching_rule_wins() {
    let r = parse_ok("/a /first 302\n/a /second 301\n/* /fallback 200");
    assert_eq!(
        r.find("/a", None, no_files),
        hit(302, "/first", MatchKind::Redirect, false)
    );
    assert_eq!(
        r.find("/b", None, no_files),
        hit(200, "/fallback", MatchKind::Rewrite, false)
    );
}

#[test]
fn an_existing_file_shadows_a_non_forced_rule() {
    let r = parse_ok("/* /index.html 200");
    assert_eq!(r.find("/app.js", None, |p| p == "/app.js"), None);
    assert_eq!(
        r.find("/route", None, |p| p == "/app.js"),
        hit(200, "/index.html", MatchKind::Rewrite, false)
    );
}

#[test]
fn forced_rule_applies_even_when_file_exists() {
    let r = parse_ok("/app.js /v2/app.js 302!");
    assert_eq!(
        r.find("/app.js", None, |_| true),
        hit(302, "/v2/app.js", MatchKind::Redirect, true)
    );
}

#[test]
fn order_still_holds_between_forced_and_shadowed_rules() {
    let r = parse_ok("/page /soft 302\n/page /hard 302!\n/page /later 302!");
    assert_eq!(
        r.find("/page", None, |_| true).map(|m| m.target),
        Some("/hard".into())
    );
    assert_eq!(
        r.find("/page", None, no_files).map(|m| m.target),
        Some("/soft".into())
    );
}

#[test]
fn file_existence_is_checked_at_most_once_per_request() {
    let r = parse_ok("/a /b 302\n/a /c 302\n/a /d 302");
    let calls = std::cell::Cell::new(0);
    let found = r.find("/a", None, |_| {
        calls.set(calls.get() + 1);
        true
    });
    assert_eq!(found, None);
    assert_eq!(calls.get(), 1);
}

#[test]
fn splat_is_substituted_into_the_target() {
    let r = parse_ok("/blog/* /news/:splat 301");
    assert_eq!(
        r.find("/blog/2024/post", None, no_files).map(|m| m.target),
        Some("/news/2024/post".into())
    );
}

#[test]
fn an_empty_splat_matches_the_bare_prefix() {
    let r = parse_ok("/blog/* /news/:splat 301");
    assert_eq!(
        r.find("/blog", None, no_files).map(|m| m.target),
        Some("/news/".into())
    );
    assert_eq!(
        r.find("/blog/", None, no_files).map(|m| m.target),
        Some("/news/".into())
    );
}

#[test]
fn multiple_placeholders_are_substituted() {
    let r = parse_ok("/news/:year/:month/:slug /blog-:year-:month/:slug.html 301");
    assert_eq!(
        r.find("/news/2024/05/hello", None, no_files)
            .map(|m| m.target),
        Some("/blog-2024-05/hello.html".into())
    );
    assert_eq!(r.find("/news/2024/05", None, no_files), None);
}

#[test]
fn unbound_placeholders_stay_in_the_target() {
    let r = parse_ok("/a/:id /b/:id/:missing 302");
    assert_eq!(
        r.find("/a/7", None, no_files).map(|m| m.target),
        Some("/b/7/:missing".into())
    );
}

#[test]
fn required_query_params_must_be_present() {
    let r = parse_ok("/store id=42 /item-42 301\n/store /shop 301");
    assert_eq!(
        r.find("/store", Some("id=42"), no_files).map(|m| m.target),
        Some("/item-42?id=42".into())
    );
    assert_eq!(
        r.find("/store", Some("id=7"), no_files).map(|m| m.target),
        Some("/shop?id=7".into())
    );
    assert_eq!(
        r.find("/store", None, no_files).map(|m| m.target),
        Some("/shop".into())
    );
}

#[test]
fn query_placeholders_are_bound_into_the_target() {
    let r = parse_ok("/blog post=:post_id /posts/:post_id 301");
    assert_eq!(
        r.find("/blog", Some("post=hello%20world&x=1"), no_files)
            .map(|m| m.target),
        Some("/posts/hello%20world?post=hello%20world&x=1".into())
    );
    assert_eq!(r.find("/blog", Some("x=1"), no_files), None);
}

#[test]
fn a_target_with_its_own_query_does_not_get_the_request_query() {
    let r = parse_ok("/search /find?engine=local 302");
    assert_eq!(
        r.find("/search", Some("q=rust"), no_files)
            .map(|m| m.target),
        Some("/find?engine=local".into())
    );
}

#[test]
fn rewrites_do_not_carry_the_query_string() {
    let r = parse_ok("/app/* /index.html 200");
    assert_eq!(
        r.find("/app/x", Some("tab=2"), no_files),
        hit(200, "/index.html", MatchKind::Rewrite, false)
    );
}

#[test]
fn a_forward_rule_rewrites_to_the_same_path() {
    let r = parse_ok("/docs/* 200");
    assert_eq!(
        r.find("/docs/guide/intro", None, no_files),
        hit(200, "/docs/guide/intro", MatchKind::Rewrite, false)
    );
}

#[test]
fn a_404_rule_serves_custom_content() {
    let r = parse_ok("/ecommerce/* /store-closed.html 404");
    assert_eq!(
        r.find("/ecommerce/cart", None, no_files),
        hit(404, "/store-closed.html", MatchKind::Custom, false)
    );
}

#[test]
fn proxy_rules_are_parsed_and_reported_as_proxy() {
    let r = parse_ok("/api/* https://api.example.com/:splat 200");
    assert_eq!(
        r.find("/api/users/1", Some("full=1"), no_files),
        hit(
            200,
            "https://api.example.com/users/1?full=1",
            MatchKind::Proxy,
            false
        )
    );
}

#[test]
fn redirects_may_target_absolute_urls() {
    let r = parse_ok("/old/* https://new.example.com/:splat 308!");
    assert_eq!(
        r.find("/old/a b", None, no_files),
        hit(
            308,
            "https://new.example.com/a%20b",
            MatchKind::Redirect,
            true
        )
    );
}

#[test]
fn invalid_lines_are_reported_with_their_line_number_and_parsing_continues() {
    let text = "/ok /fine\n\n/bad\n/worse /x 999\n# c\n/role /x 302 Role=admin\nhttp://a.test/* /b\n/last /end";
    let (r, warnings) = Redirects::parse(text);
    assert_eq!(r.len(), 2);
    let lines: Vec<usize> = warnings.iter().map(|w| w.line).collect();
    assert_eq!(lines, vec![3, 4, 6, 7]);
    assert_eq!(warnings[0].message, "missing destination path/URL");
    assert!(warnings[2].message.contains("not supported"));
    assert_eq!(warnings[3].message, "domain-level rules are not supported");
    assert_eq!(r.rules()[1].source(), "/last");
}

#[test]
fn protocol_relative_open_redirects_are_collapsed() {
    let r = parse_ok("/go/* /:splat 301");
    assert_eq!(
        r.find("/go//evil.com", None, no_files).map(|m| m.target),
        Some("/evil.com".into())
    );
    assert_eq!(
        r.find("/go/\\evil.com", None, no_files).map(|m| m.target),
        Some("/%5Cevil.com".into())
    );
    assert_eq!(
        r.find("/go/%2F%2Fevil.com", None, no_files)
            .map(|m| m.target),
        Some("/%252F%252Fevil.com".into())
    );
}

#[test]
fn a_trailing_slash_on_the_request_is_ignored() {
    let r = parse_ok("/about /about-us 301");
    assert_eq!(
        r.find("/about/", None, no_files).map(|m| m.target),
        Some("/about-us".into())
    );
}

#[test]
fn redirect_matching_is_case_sensitive() {
    let r = parse_ok("/About /team 301");
    assert_eq!(r.find("/about", None, no_files), None);
}

#[test]
fn percent_encoded_rules_match_decoded_paths_and_stay_encoded_in_urls() {
    let r = parse_ok("/caf%C3%A9 /men%C3%BC 302\n/r%C3%A9sum%C3%A9 /cv%20page.html 200");
    assert_eq!(
        r.find("/café", None, no_files).map(|m| m.target),
        Some("/men%C3%BC".into())
    );
    assert_eq!(
        r.find("/résumé", None, no_files).map(|m| m.target),
        Some("/cv page.html".into())
    );
}

#[test]
fn rules_past_the_cap_are_reported_once_and_ignored() {
    let mut text: String = (0..MAX_RULES).map(|i| format!("/r{i} /t\n")).collect();
    text.push_str("/extra /t\n/more /t\n");
    let (r, warnings) = Redirects::parse(&text);
    assert_eq!(r.len(), MAX_RULES);
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].line, MAX_RULES + 1);
    assert_eq!(r.find("/extra", None, no_files), None);
}

#[test]
fn rule_accessors_expose_the_parsed_fields() {
    let r = parse_ok("/x/* 200!");
    let rule = &r.rules()[0];
    assert_eq!(
        (
            rule.source(),
            rule.destination(),
            rule.status(),
            rule.force(),
            rule.kind()
        ),
        ("/x/*", "/x/:splat", 200, true, MatchKind::Rewrite)
    );
}

#[test]
fn conditional_rules_apply_only_to_visitors_meeting_them_and_beat_files() {
    let r = parse_ok("/ /fr/ 302 Language=fr\n/ /de/ 302 Country=de\n/ /fallback 302\n");
    let visitor = |language: Option<&str>, country: Option<&str>| Visitor {
        language: language.map(str::to_owned),
        country: country.map(str::to_owned),
    };
    let existing = |_: &str| true;
    let target = |v: &Visitor| r.find_for("/", None, v, existing).map(|m| m.target);
    assert_eq!(target(&visitor(Some("fr-ca"), None)), Some("/fr/".into()));
    assert_eq!(
        target(&visitor(Some("en"), Some("DE"))),
        Some("/de/".into())
    );
    assert_eq!(target(&visitor(Some("en"), Some("US"))), None);
    assert_eq!(
        r.find("/", None, no_files).map(|m| m.target),
        Some("/fallback".into())
    );
    assert!(r.uses_country() && r.uses_language());
    assert!(!parse_ok("/a /b").uses_country());
}
