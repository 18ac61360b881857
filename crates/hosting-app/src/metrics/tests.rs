//! The declarations against the exporter, the call sites and the queries in `deploy/`.

use super::*;
use metrics_exporter_prometheus::PrometheusBuilder;

/// Records one series of `metric` (each label at its first declared value), so the
/// exporter renders it.
fn record_one(metric: &Metric) {
    let labels: Vec<::metrics::Label> = metric
        .labels
        .iter()
        .map(|label| ::metrics::Label::new(label.name, label.values[0]))
        .collect();
    match metric.kind {
        Kind::Counter => ::metrics::counter!(metric.name, labels).increment(1),
        Kind::Gauge => ::metrics::gauge!(metric.name, labels).set(1.0),
        Kind::Histogram => ::metrics::histogram!(metric.name, labels).record(0.001),
    }
}

#[test]
fn every_recorded_metric_is_scraped_with_its_help_text_and_type() {
    // Buckets as in production (telemetry.rs): without them the exporter renders a
    // histogram as a summary.
    let recorder = PrometheusBuilder::new()
        .set_buckets(&[0.001, 1.0])
        .expect("buckets are not empty")
        .build_recorder();
    let handle = recorder.handle();
    ::metrics::with_local_recorder(&recorder, || {
        describe();
        RECORDED.iter().for_each(record_one);
    });
    let scraped = handle.render();
    for metric in RECORDED {
        let help = format!("# HELP {} {}\n", metric.name, metric.help);
        let kind = format!("# TYPE {} {}\n", metric.name, metric.kind.as_str());
        assert!(
            scraped.contains(&help),
            "no HELP for {}:\n{scraped}",
            metric.name
        );
        assert!(
            scraped.contains(&kind),
            "no TYPE for {}:\n{scraped}",
            metric.name
        );
    }
}

#[test]
fn declarations_are_unique_described_and_bounded() {
    let all: Vec<&Metric> = RECORDED
        .iter()
        .chain([&CERTIFICATE_EXPIRY, &CERTIFICATES])
        .collect();
    let mut names: Vec<&str> = all.iter().map(|m| m.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "a metric is declared twice");
    for metric in &all {
        assert!(metric.name.starts_with("hosting_"), "{}", metric.name);
        assert!(
            !metric.help.trim().is_empty(),
            "{} has no help",
            metric.name
        );
        assert_eq!(
            metric.kind == Kind::Counter,
            metric.name.ends_with("_total"),
            "{}: counters and only counters end in _total",
            metric.name
        );
    }
    // Only the self-rendered expiry series has a label bounded by count, not by value.
    for metric in RECORDED.iter().chain([&CERTIFICATES]) {
        for label in metric.labels {
            assert!(
                !label.values.is_empty(),
                "{}{{{}}}",
                metric.name,
                label.name
            );
        }
    }
}

#[test]
fn self_rendered_series_keep_their_exposition_header() {
    assert_eq!(
        CERTIFICATES.exposition_header(),
        "# HELP hosting_certificates Custom-domain certificates by status.\n\
         # TYPE hosting_certificates gauge\n"
    );
}

/// The point of this module: no other file names a metric with a string literal.
#[test]
fn no_metric_is_named_by_a_literal_outside_this_module() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut folders = vec![src.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            if path.starts_with(src.join("metrics")) || path.extension() != Some("rs".as_ref()) {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a source file");
            let compact: String = text.split_whitespace().collect();
            for macro_name in ["counter!(\"", "gauge!(\"", "histogram!(\""] {
                if compact.contains(macro_name) {
                    offenders.push(format!("{} ({macro_name}...)", path.display()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "metric names as literals: {offenders:?}"
    );
}

/// Alert rules and dashboards name metrics and label values as text: a rename here
/// would silence an alert without failing anything else.
#[test]
fn the_alert_rules_and_dashboards_query_only_declared_metrics_and_label_values() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut text = String::new();
    for folder in ["deploy/prometheus/rules", "deploy/grafana/dashboards"] {
        for entry in std::fs::read_dir(repo.join(folder)).expect("the folder exists") {
            let path = entry.expect("a directory entry").path();
            text += &std::fs::read_to_string(&path).expect("a readable file");
        }
    }
    // Dashboards are JSON: their queries' quotes are escaped.
    let text = text.replace("\\\"", "\"");
    let declared: Vec<&Metric> = RECORDED
        .iter()
        .chain([&CERTIFICATE_EXPIRY, &CERTIFICATES])
        .collect();
    let (mut queried, mut values_checked) = (0, 0);
    for (start, _) in text.match_indices("hosting_") {
        let name: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        // Written by the backup jobs (deploy/backup, deploy/backup/pitr), not by the app.
        if name.starts_with("hosting_backup_") || name.starts_with("hosting_pitr_backup_") {
            continue;
        }
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| {
                declared
                    .iter()
                    .any(|m| m.name == *base && m.kind == Kind::Histogram)
            })
            .unwrap_or(&name);
        let Some(metric) = declared.iter().find(|m| m.name == base) else {
            panic!("{name} is queried in deploy/ but not declared in src/metrics/mod.rs");
        };
        queried += 1;
        let rest = &text[start + name.len()..];
        let Some(matchers) = rest.strip_prefix('{').and_then(|r| r.split_once('}')) else {
            continue;
        };
        for matcher in matchers.0.split(',') {
            let Some((label, value)) = matcher.trim().split_once("=\"") else {
                continue; // a regex or negative matcher
            };
            let value = value.trim_end_matches('"');
            // `!=` matchers and dashboard variables (`$route`) name no fixed value.
            if label.ends_with('!') || value.contains('$') {
                continue;
            }
            let Some(declared_label) = metric.labels.iter().find(|l| l.name == label) else {
                panic!("{base} has no label {label} (queried in deploy/)");
            };
            assert!(
                declared_label.values.is_empty() || declared_label.values.contains(&value),
                "{base}{{{label}=\"{value}\"}} is queried in deploy/ but {value:?} is not a declared value"
            );
            values_checked += 1;
        }
    }
    assert!(
        queried > 0,
        "no hosting_ metric found in deploy/: wrong folders?"
    );
    assert!(
        values_checked > 0,
        "no label value compared: is the matcher parsing right?"
    );
}
