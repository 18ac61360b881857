//! Durations in settings: a bare number is seconds (what every variable has always
//! taken), and a unit may be given for readability (`500ms`, `10s`, `5m`, `1h`, `30d`,
//! or combined: `1h30m`).

use std::time::Duration;

/// Parses a duration setting (the clap value parser of every duration).
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let invalid =
        || format!("{text:?} is not a duration (seconds, or a number with ms, s, m, h or d)");
    let mut rest = text;
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(24 * 3600),
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        let part = u32::try_from(number)
            .ok()
            .and_then(|n| unit.checked_mul(n))
            .ok_or_else(invalid)?;
        total = total.checked_add(part).ok_or_else(invalid)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_numbers_are_seconds_and_units_are_optional() {
        assert_eq!(parse("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("30d"), Ok(Duration::from_secs(30 * 24 * 3600)));
    }

    #[test]
    fn anything_else_is_refused() {
        for text in ["", "s", "ten", "10 minutes", "1.5h", "-1", "10x", "5m3"] {
            assert!(parse(text).is_err(), "{text:?} accepted");
        }
    }
}
