//! Small server-rendered SVG line charts for the console's health section: one
//! series over time, its axis labelled with the first and last times and the
//! range of values. Hand-written rather than plotters: plotters' text needs a font
//! backend, and the adapter's build stays free of font and image crates.

use std::fmt::Write;

/// Width and height of a chart, in CSS pixels.
const W: f64 = 280.0;
const H: f64 = 90.0;
/// Room for the value labels on the left and the time labels below.
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 16.0;

/// One chart of `points` (Unix seconds, value), titled `title` with `unit`; an
/// empty series draws the reason instead.
pub fn line(title: &str, unit: &str, points: &[(f64, f64)], empty_reason: &str) -> String {
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = super::esc(title)
    );
    let finite: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(t, v)| t.is_finite() && v.is_finite())
        .collect();
    if finite.is_empty() {
        let _ = write!(
            svg,
            r#"<text x="4" y="14" class="title">{}</text><text x="4" y="44" class="none">{}</text></svg>"#,
            super::esc(title),
            super::esc(empty_reason)
        );
        return svg;
    }
    let (t0, t1) = (finite[0].0, finite[finite.len() - 1].0);
    let lo = finite
        .iter()
        .map(|p| p.1)
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let mut hi = finite.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    if hi <= lo {
        hi = lo + 1.0;
    }
    let x = |t: f64| LEFT + (W - LEFT - 4.0) * if t1 > t0 { (t - t0) / (t1 - t0) } else { 1.0 };
    let y = |v: f64| 18.0 + (H - BOTTOM - 18.0) * (1.0 - (v - lo) / (hi - lo));
    let path: Vec<String> = finite
        .iter()
        .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
        .collect();
    let last = finite[finite.len() - 1].1;
    let _ = write!(
        svg,
        r#"<text x="4" y="12" class="title">{title} <tspan class="now">{now}</tspan></text>
<line x1="{LEFT}" y1="{yb:.1}" x2="{xr}" y2="{yb:.1}" class="axis"/>
<text x="{lx}" y="{yt:.1}" class="tick" text-anchor="end">{hi}</text>
<text x="{lx}" y="{yb:.1}" class="tick" text-anchor="end">{lo}</text>
<text x="{LEFT}" y="{H}" class="tick">{from}</text>
<text x="{xr}" y="{H}" class="tick" text-anchor="end">{to}</text>
<polyline points="{points}" class="series"/></svg>"#,
        title = super::esc(title),
        now = super::esc(&format!("{} {unit}", short(last))),
        yb = y(lo),
        yt = y(hi) + 4.0,
        xr = W - 4.0,
        lx = LEFT - 4.0,
        hi = short(hi),
        lo = short(lo),
        from = clock(t0),
        to = clock(t1),
        points = path.join(" "),
    );
    svg
}

/// A value in three significant figures or so.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// `HH:MM` (UTC) of a Unix time.
pub fn clock(unix: f64) -> String {
    let s = unix.rem_euclid(86_400.0) as u64;
    format!("{:02}:{:02}", s / 3600, (s / 60) % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_becomes_a_polyline_within_the_box() {
        let svg = line("p95", "ms", &[(0.0, 10.0), (60.0, 30.0), (120.0, 20.0)], "");
        let points = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let xy: Vec<(f64, f64)> = points
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert_eq!(xy.len(), 3);
        assert!(
            xy.windows(2).all(|w| w[0].0 < w[1].0),
            "time runs left to right"
        );
        // Higher values are drawn higher (smaller y); all inside the box.
        assert!(xy[1].1 < xy[2].1 && xy[2].1 < xy[0].1);
        assert!(
            xy.iter()
                .all(|&(x, y)| (0.0..=W).contains(&x) && (0.0..=H).contains(&y))
        );
        assert!(svg.contains("20.0 ms"), "the latest value is shown: {svg}");
    }

    #[test]
    fn no_data_says_why_and_escapes_it() {
        let svg = line("cpu", "%", &[(0.0, f64::NAN)], "absent <series>");
        assert!(svg.contains("absent &lt;series&gt;"));
        assert!(!svg.contains("polyline"));
    }
}
