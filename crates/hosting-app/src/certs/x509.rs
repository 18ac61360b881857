//! What the platform needs to know about an issued certificate chain: the leaf's serial,
//! issuer, validity and names.

use chrono::{DateTime, TimeZone, Utc};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

#[derive(Debug, Clone, PartialEq)]
pub struct LeafInfo {
    /// Upper-case hex without separators or leading zeros (HAProxy's `Serial:` form).
    pub serial: String,
    pub issuer: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// DNS names of the subject alternative name extension.
    pub dns_names: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("the certificate chain is not usable: {0}")]
pub struct ChainError(String);

/// Parses the first certificate of a PEM chain (the leaf).
pub fn leaf_info(chain_pem: &str) -> Result<LeafInfo, ChainError> {
    let pem = Pem::iter_from_buffer(chain_pem.as_bytes())
        .next()
        .ok_or_else(|| ChainError("no PEM certificate in it".into()))?
        .map_err(|e| ChainError(e.to_string()))?;
    let cert = pem.parse_x509().map_err(|e| ChainError(e.to_string()))?;
    let time = |t: x509_parser::time::ASN1Time| {
        Utc.timestamp_opt(t.timestamp(), 0)
            .single()
            .ok_or_else(|| ChainError("a validity time is out of range".into()))
    };
    let dns_names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(LeafInfo {
        serial: normalize_serial(&hex::encode_upper(cert.raw_serial())),
        issuer: cert.issuer().to_string(),
        not_before: time(cert.validity().not_before)?,
        not_after: time(cert.validity().not_after)?,
        dns_names,
    })
}

/// Upper-case hex with separators and leading zeros removed, so serials printed by
/// different tools compare equal.
pub fn normalize_serial(raw: &str) -> String {
    let digits: String = raw
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// When to renew a certificate valid from `not_before` to `not_after`: `renew_before`
/// ahead of expiry, but never later than two thirds into its lifetime (short-lived
/// certificates renew in time, not in a loop). Whole seconds.
pub fn renewal_time(
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    renew_before: std::time::Duration,
) -> DateTime<Utc> {
    let lifetime = (not_after - not_before).num_seconds().max(0);
    let ahead = i64::try_from(renew_before.as_secs())
        .unwrap_or(i64::MAX)
        .min(lifetime / 3);
    not_after - chrono::Duration::seconds(ahead)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_compare_equal_across_spellings() {
        assert_eq!(normalize_serial("00:a1:B2"), "A1B2");
        assert_eq!(normalize_serial("0A1B2"), "A1B2");
        assert_eq!(normalize_serial("00"), "0");
    }

    #[test]
    fn the_leaf_of_a_chain_is_read() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["shop.example.test".to_owned()]).expect("params");
        params.serial_number = Some(rcgen::SerialNumber::from(vec![0x00, 0x9a, 0xbc]));
        let cert = params.self_signed(&key).expect("self-signed");
        let chain = format!("{}{}", cert.pem(), cert.pem());
        let leaf = leaf_info(&chain).expect("parse");
        assert_eq!(leaf.serial, "9ABC");
        assert_eq!(leaf.dns_names, vec!["shop.example.test".to_owned()]);
        assert!(leaf.not_after > leaf.not_before);
        assert!(leaf_info("not a certificate").is_err());
    }

    #[test]
    fn renewal_is_thirty_days_ahead_or_at_two_thirds_of_a_short_lifetime() {
        let start = Utc::now();
        let day = chrono::Duration::days(1);
        let thirty_days = std::time::Duration::from_secs(30 * 86_400);
        assert_eq!(
            renewal_time(start, start + day * 90, thirty_days),
            start + day * 60
        );
        assert_eq!(
            renewal_time(start, start + day * 365, thirty_days),
            start + day * 335
        );
        let minute = chrono::Duration::seconds(60);
        assert_eq!(
            renewal_time(start, start + minute, thirty_days),
            start + chrono::Duration::seconds(40)
        );
    }
}
