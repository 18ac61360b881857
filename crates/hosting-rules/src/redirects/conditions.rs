//! `Country=` and `Language=` conditions of a `_redirects` rule, and the facts about
//! a visitor they are checked against.
//!
//! Netlify's syntax: `/ /fr/ 302 Language=fr`, `/ /china 302 Country=cn,hk`, a
//! comma-separated list per key, the rule applying when every key written matches one
//! of its values. `Role=`, `Cookie=` and `Sign=` need features the platform does not
//! have (identity, signed proxies), so rules using them are still skipped whole:
//! applying them unconditionally would send every visitor where only some should go.

/// Why a condition token was refused. The message is shown to site owners.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum ConditionError {
    #[error(
        "condition '{0}' is not supported (only Country= and Language=); the rule was skipped"
    )]
    Unsupported(String),
    #[error("condition '{0}' has an empty value")]
    Empty(String),
    #[error("'{0}' is not a two-letter country code")]
    BadCountry(String),
    #[error("'{0}' is not a language tag")]
    BadLanguage(String),
}

/// What a request tells about its visitor, as far as conditions need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Visitor {
    /// The visitor's preferred language tag, lower-case (`en-us`), see
    /// [`Visitor::preferred_language`].
    pub language: Option<String>,
    /// ISO 3166-1 alpha-2 country of the client address, upper-case (`DE`).
    pub country: Option<String>,
}

impl Visitor {
    /// The language a visitor prefers: the `Accept-Language` entry with the highest
    /// q-value (the first of equals; `q=0` means "not acceptable" and `*` names no
    /// language), lower-cased. `None` when the header names no language.
    pub fn preferred_language(accept_language: &str) -> Option<String> {
        let mut best: Option<(u16, &str)> = None;
        for entry in accept_language.split(',') {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or("").trim();
            if tag.is_empty() || tag == "*" || !is_language_tag(tag) {
                continue;
            }
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .map_or(Some(1000), parse_quality);
            let Some(quality) = quality.filter(|q| *q > 0) else {
                continue;
            };
            if best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, tag));
            }
        }
        best.map(|(_, tag)| tag.to_ascii_lowercase())
    }
}

/// An RFC 9110 qvalue in thousandths (`0.8` -> 800); `None` when malformed.
fn parse_quality(text: &str) -> Option<u16> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Letters, digits and `-`, starting with a letter (BCP 47, loosely).
fn is_language_tag(tag: &str) -> bool {
    tag.starts_with(|c: char| c.is_ascii_alphabetic())
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The conditions of one rule; an empty list means "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Conditions {
    countries: Vec<String>,
    languages: Vec<String>,
}

impl Conditions {
    /// Parses the `Key=value` tokens after a rule's status (keys case-insensitive).
    pub(crate) fn parse(tokens: &[&str]) -> Result<Conditions, ConditionError> {
        let mut conditions = Conditions::default();
        for token in tokens {
            let (key, value) = token.split_once('=').unwrap_or((token, ""));
            let values = value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .collect::<Vec<_>>();
            let list = match key.to_ascii_lowercase().as_str() {
                "country" => &mut conditions.countries,
                "language" => &mut conditions.languages,
                _ => return Err(ConditionError::Unsupported((*token).to_owned())),
            };
            if values.is_empty() {
                return Err(ConditionError::Empty(key.to_owned()));
            }
            for value in values {
                if key.eq_ignore_ascii_case("country") {
                    if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_alphabetic()) {
                        return Err(ConditionError::BadCountry(value.to_owned()));
                    }
                    list.push(value.to_ascii_uppercase());
                } else {
                    if !is_language_tag(value) {
                        return Err(ConditionError::BadLanguage(value.to_owned()));
                    }
                    list.push(value.to_ascii_lowercase());
                }
            }
        }
        Ok(conditions)
    }

    /// Whether the rule has no condition at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.countries.is_empty() && self.languages.is_empty()
    }

    pub(crate) fn uses_country(&self) -> bool {
        !self.countries.is_empty()
    }

    pub(crate) fn uses_language(&self) -> bool {
        !self.languages.is_empty()
    }

    /// Whether `visitor` meets every condition. An unknown fact meets none: a
    /// `Country=` rule never applies to a visitor whose country is not known.
    pub(crate) fn admit(&self, visitor: &Visitor) -> bool {
        let country = self.countries.is_empty()
            || visitor
                .country
                .as_deref()
                .is_some_and(|c| self.countries.iter().any(|want| want == c));
        let language = self.languages.is_empty()
            || visitor
                .language
                .as_deref()
                .is_some_and(|l| self.languages.iter().any(|want| language_matches(want, l)));
        country && language
    }
}

/// `en` matches `en` and any `en-...`; `en-us` matches only `en-us` (both lower-case).
fn language_matches(wanted: &str, preferred: &str) -> bool {
    preferred == wanted
        || preferred
            .strip_prefix(wanted)
            .is_some_and(|rest| rest.starts_with('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preferred_language_is_the_highest_q_value() {
        let pick = Visitor::preferred_language;
        assert_eq!(pick("fr-CH, fr;q=0.9, en;q=0.8"), Some("fr-ch".into()));
        assert_eq!(pick("en;q=0.5, de;q=0.9, fr"), Some("fr".into()));
        assert_eq!(pick("en;q=0.5, de;q=0.9"), Some("de".into()));
        assert_eq!(pick("de;q=0.7, en;q=0.7"), Some("de".into()));
        assert_eq!(pick("*, es;q=0.1"), Some("es".into()));
        assert_eq!(pick("en;q=0, fr;q=0.001"), Some("fr".into()));
        assert_eq!(pick("en;q=0"), None);
        assert_eq!(pick(""), None);
        assert_eq!(pick("en;q=2, nl;q=0.2"), Some("nl".into()));
    }

    #[test]
    fn conditions_parse_lists_and_normalise_case() {
        let c = Conditions::parse(&["country=us,CA", "Language=EN,fr-ch"]).expect("parses");
        assert_eq!(c.countries, vec!["US", "CA"]);
        assert_eq!(c.languages, vec!["en", "fr-ch"]);
    }

    #[test]
    fn unsupported_or_malformed_conditions_are_refused() {
        assert!(matches!(
            Conditions::parse(&["Role=admin"]),
            Err(ConditionError::Unsupported(_))
        ));
        assert!(matches!(
            Conditions::parse(&["Country="]),
            Err(ConditionError::Empty(_))
        ));
        assert!(matches!(
            Conditions::parse(&["Country=usa"]),
            Err(ConditionError::BadCountry(_))
        ));
        assert!(matches!(
            Conditions::parse(&["Language=e n"]),
            Err(ConditionError::BadLanguage(_))
        ));
    }

    #[test]
    fn a_visitor_must_meet_every_condition() {
        let c = Conditions::parse(&["Country=de,at", "Language=de"]).expect("parses");
        let visitor = |country: Option<&str>, language: Option<&str>| Visitor {
            country: country.map(str::to_owned),
            language: language.map(str::to_owned),
        };
        assert!(c.admit(&visitor(Some("DE"), Some("de"))));
        assert!(c.admit(&visitor(Some("AT"), Some("de-at"))));
        assert!(!c.admit(&visitor(Some("CH"), Some("de"))));
        assert!(!c.admit(&visitor(Some("DE"), Some("dea"))));
        assert!(!c.admit(&visitor(None, Some("de"))));
        assert!(Conditions::default().admit(&Visitor::default()));
    }

    #[test]
    fn a_regional_language_condition_wants_that_region() {
        let c = Conditions::parse(&["Language=en-gb"]).expect("parses");
        let speaks = |l: &str| Visitor {
            language: Some(l.into()),
            country: None,
        };
        assert!(c.admit(&speaks("en-gb")));
        assert!(!c.admit(&speaks("en-us")));
        assert!(!c.admit(&speaks("en")));
    }
}
