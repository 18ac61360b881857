//! `hostctl audit`: the audit log, newest first, following the server's cursor until
//! `--limit` entries are shown.

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::Context;
use crate::cli::AuditArgs;
use crate::output::{self, outln};

/// Entries asked for per request (the server's largest page).
const PAGE: u32 = 200;

/// Runs `hostctl audit`.
pub async fn run(ctx: &Context, args: AuditArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let mut filters: Vec<(&str, String)> = Vec::new();
    for (name, value) in [
        ("actor", &args.actor),
        ("site", &args.site),
        ("action", &args.action),
    ] {
        if let Some(value) = value {
            filters.push((name, value.clone()));
        }
    }
    for (name, value) in [("since", &args.since), ("until", &args.until)] {
        if let Some(value) = value {
            let at = when(value).with_context(|| format!("--{name} {value:?}"))?;
            filters.push((name, at.to_rfc3339()));
        }
    }
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    while entries.len() < args.limit as usize {
        let left = args.limit - u32::try_from(entries.len()).unwrap_or(args.limit);
        let mut query = filters.clone();
        query.push(("limit", left.min(PAGE).to_string()));
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor.clone()));
        }
        let page = client.audit(&query).await?;
        entries.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if ctx.json {
        return output::print_json(&entries);
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                output::timestamp(&e.at),
                e.actor.clone(),
                e.client_address.clone().unwrap_or_else(|| "-".into()),
                e.action.clone(),
                e.target.clone(),
                e.outcome.clone(),
                e.detail.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::print_table(
        &[
            "TIME", "ACTOR", "ADDRESS", "ACTION", "TARGET", "OUTCOME", "DETAIL",
        ],
        &rows,
        "No audit entries",
    )?;
    if cursor.is_some() && entries.len() >= args.limit as usize {
        outln!("(older entries exist: raise --limit or narrow with --since)");
    }
    Ok(())
}

/// An RFC 3339 time, or an age before now (`7d`, `12h`, `30m`, `45s`).
fn when(text: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let number: i64 = number
        .parse()
        .map_err(|_| anyhow::anyhow!("expected an RFC 3339 time or an age like 7d, 12h, 30m"))?;
    let age = match unit {
        "d" => chrono::Duration::days(number),
        "h" => chrono::Duration::hours(number),
        "m" => chrono::Duration::minutes(number),
        "s" => chrono::Duration::seconds(number),
        _ => anyhow::bail!("expected an RFC 3339 time or an age like 7d, 12h, 30m"),
    };
    Ok(Utc::now() - age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc_3339_or_an_age() {
        let at = when("2026-01-31T12:00:00Z").expect("rfc 3339");
        assert_eq!(at.to_rfc3339(), "2026-01-31T12:00:00+00:00");
        let week = Utc::now() - when("7d").expect("age");
        assert!((week - chrono::Duration::days(7)).num_seconds().abs() < 5);
        for bad in ["", "7", "7w", "d", "yesterday"] {
            assert!(when(bad).is_err(), "{bad:?}");
        }
    }
}
