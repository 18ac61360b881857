//! Charts of the analytics page, drawn on the server as inline SVG: no script, no
//! library, nothing fetched. Colours are fixed mid tones that read on the light and the
//! dark theme; text and grid take the page's text colour (`currentColor`), so the
//! strict `Content-Security-Policy` (no inline styles) needs no exception.

use maud::{html, Markup, PreEscaped};

/// The drawing area, in SVG units (the `<svg>` scales to the page width).
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
/// Room for the y labels on the left and the x labels below.
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;
const RIGHT: f64 = 8.0;

/// Requests, and anything drawn as bars.
pub const BAR_COLOUR: &str = "#818cf8";
/// Visitors, and anything drawn as a line.
pub const LINE_COLOUR: &str = "#0d9488";

/// One series over the chart's slots (one value per slot, oldest first).
pub struct Series<'a> {
    pub label: &'a str,
    pub values: &'a [u64],
    pub colour: &'a str,
    pub style: Style,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Bars,
    Line,
}

/// A time chart: `slots` x labels (one per slot, shown thinned out), the series sharing
/// one y axis whose labels `format` writes; `title` and `summary` are what a screen
/// reader says.
pub fn time_chart(
    id: &str,
    title: &str,
    summary: &str,
    slots: &[String],
    series: &[Series<'_>],
    format: fn(u64) -> String,
) -> Markup {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0);
    let top = nice_ceiling(max);
    let n = slots.len().max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot_w = plot_w / n as f64;
    let y = |v: u64| TOP + plot_h - plot_h * (v as f64 / top as f64);
    let x_mid = |i: usize| LEFT + slot_w * (i as f64 + 0.5);
    let label_every = n.div_ceil(6).max(1);
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    html! {
        figure.chart #(id) {
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } width="100%" role="img"
                aria-labelledby={ (title_id) " " (desc_id) } font-size="11" fill="currentColor" {
                title #(title_id) { (title) }
                desc #(desc_id) { (summary) }
                @for step in 0..=4u64 {
                    @let value = top / 4 * step;
                    @let at = y(value);
                    line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(fmt(at)) y2=(fmt(at))
                        stroke="currentColor" stroke-opacity="0.15" {}
                    text x=(LEFT - 6.0) y=(fmt(at + 4.0)) text-anchor="end" fill-opacity="0.7" { (format(value)) }
                }
                @for s in series.iter().filter(|s| s.style == Style::Bars) {
                    @for (i, v) in s.values.iter().enumerate() {
                        @if *v > 0 {
                            rect x=(fmt(LEFT + slot_w * i as f64 + slot_w * 0.1)) y=(fmt(y(*v)))
                                width=(fmt((slot_w * 0.8).max(1.0))) height=(fmt(TOP + plot_h - y(*v)))
                                fill=(s.colour) {
                                title { (slots.get(i).map_or("", String::as_str)) ": " (format(*v)) " " (s.label) }
                            }
                        }
                    }
                }
                @for s in series.iter().filter(|s| s.style == Style::Line) {
                    polyline fill="none" stroke=(s.colour) stroke-width="2" stroke-linejoin="round"
                        points=(PreEscaped(points(s.values, &x_mid, &y))) {}
                }
                @for (i, slot) in slots.iter().enumerate() {
                    @if i % label_every == 0 {
                        text x=(fmt(x_mid(i))) y=(fmt(HEIGHT - 6.0)) text-anchor="middle" fill-opacity="0.7" { (slot) }
                    }
                }
            }
            figcaption.legend {
                @for s in series {
                    span.legend-item {
                        svg width="12" height="12" aria-hidden="true" {
                            rect width="12" height="12" rx="2" fill=(s.colour) {}
                        }
                        " " (s.label)
                    }
                    " "
                }
            }
        }
    }
}

/// A horizontal bar for a top-list row: `value` against the list's largest.
pub fn share_bar(value: u64, largest: u64) -> Markup {
    let width = if largest == 0 {
        0.0
    } else {
        100.0 * value as f64 / largest as f64
    };
    html! {
        svg.share width="120" height="10" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true" {
            rect width="100" height="10" rx="2" fill="currentColor" fill-opacity="0.1" {}
            rect width=(fmt(width)) height="10" rx="2" fill=(BAR_COLOUR) {}
        }
    }
}

/// `x,y x,y ...` of a line through every slot.
fn points(values: &[u64], x: &dyn Fn(usize) -> f64, y: &dyn Fn(u64) -> f64) -> String {
    let mut out = String::with_capacity(values.len() * 12);
    for (i, v) in values.iter().enumerate() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&fmt(x(i)));
        out.push(',');
        out.push_str(&fmt(y(*v)));
    }
    out
}

/// The top of the y axis: 1, 2 or 5 times a power of ten, at least `max`, divisible
/// into four labelled steps.
pub fn nice_ceiling(max: u64) -> u64 {
    if max <= 4 {
        return 4;
    }
    let mut unit = 1u64;
    loop {
        for factor in [1u64, 2, 5] {
            let top = unit.saturating_mul(factor).saturating_mul(4);
            if top >= max || top == u64::MAX {
                return top;
            }
        }
        unit = unit.saturating_mul(10);
    }
}

/// SVG numbers with one decimal: shorter pages, and stable output for tests.
fn fmt(v: f64) -> String {
    let rounded = (v * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_ends_on_a_round_number_above_the_largest_value() {
        assert_eq!(nice_ceiling(0), 4);
        assert_eq!(nice_ceiling(7), 8);
        assert_eq!(nice_ceiling(41), 80);
        assert_eq!(nice_ceiling(100), 200);
        assert_eq!(nice_ceiling(1_999), 2_000);
        assert_eq!(nice_ceiling(u64::MAX), u64::MAX);
    }

    #[test]
    fn a_chart_draws_one_bar_per_non_empty_slot_and_a_line_through_every_slot() {
        let slots: Vec<String> = (0..4).map(|h| format!("{h:02}:00")).collect();
        let chart = time_chart(
            "traffic",
            "Requests and visitors",
            "10 requests",
            &slots,
            &[
                Series {
                    label: "requests",
                    values: &[4, 0, 6, 0],
                    colour: BAR_COLOUR,
                    style: Style::Bars,
                },
                Series {
                    label: "visitors",
                    values: &[1, 0, 2, 0],
                    colour: LINE_COLOUR,
                    style: Style::Line,
                },
            ],
            |v| v.to_string(),
        )
        .into_string();

        assert_eq!(chart.matches("<rect x=").count(), 2, "{chart}");
        let line = chart
            .split("points=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("line");
        assert_eq!(line.split(' ').count(), 4);
        // The axis tops at 8: a bar of 4 is half the plot height (186 units) high.
        assert!(chart.contains("height=\"93\""), "{chart}");
        assert!(chart.contains("<title id=\"traffic-title\">Requests and visitors</title>"));
    }

    #[test]
    fn a_share_bar_is_proportional_to_the_largest_entry() {
        assert!(share_bar(5, 20).into_string().contains("width=\"25\""));
        assert!(share_bar(0, 0).into_string().contains("width=\"0\""));
    }
}
