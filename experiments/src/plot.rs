//! Figures drawn once and written twice, as SVG (for pages) and PNG (for READMEs,
//! notebooks and chat): a figure is a grid of panels, each lines with optional bands
//! and marks, or bars with 95 % CI whiskers. Text is set in DejaVu Sans, embedded in
//! the binary, so a PNG looks the same on a machine without fonts.

use anyhow::{Result, anyhow};
use hale_policies::bundle::write_atomic;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// The palette (matplotlib's tab10), cycled.
pub const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The `i`-th colour of the palette.
pub fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

/// A line: (x, y) points (a non-finite y is a gap), and an optional band of
/// (x, low, high) drawn under it.
pub struct Series {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
    pub band: Vec<(f64, f64, f64)>,
    pub dashed: bool,
}

impl Series {
    pub fn new(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Self {
        Series {
            label: label.into(),
            color,
            points,
            band: Vec::new(),
            dashed: false,
        }
    }
}

/// A vertical mark across a panel at `x` (an event: a fault, a remedy); marks that
/// share a label share one legend entry.
pub struct Mark {
    pub x: f64,
    pub label: String,
    pub color: RGBColor,
}

/// A panel of lines.
#[derive(Default)]
pub struct Lines {
    pub title: String,
    pub x_desc: String,
    pub series: Vec<Series>,
    pub marks: Vec<Mark>,
    /// The x range; `None`: the data's.
    pub x_range: Option<(f64, f64)>,
    /// Start the y axis at 0 (counts, rates) rather than at the data's low.
    pub from_zero: bool,
    /// Values above this are drawn at it (a spike that would flatten the rest).
    pub y_cap: Option<f64>,
}

/// A panel of bars, one per category, each a value with a 95 % CI half-width, and
/// a line at 0 when values have both signs.
pub struct Bars {
    pub title: String,
    pub bars: Vec<(String, f64, f64)>,
    /// Bar `i` takes colour `i + offset` (a category keeps its colour across figures).
    pub offset: usize,
}

pub enum Panel {
    Lines(Lines),
    Bars(Bars),
}

/// Panels in a grid of `columns`, each `panel` pixels.
pub struct Figure {
    pub panels: Vec<Panel>,
    pub columns: usize,
    pub panel: (u32, u32),
}

impl Figure {
    fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().div_ceil(self.columns.max(1)).max(1);
        (
            self.panel.0 * self.columns.max(1) as u32,
            self.panel.1 * rows as u32,
        )
    }

    /// Writes `STEM.svg` and `STEM.png` (each atomically).
    pub fn save(&self, stem: &Path) -> Result<()> {
        register_font();
        let (w, h) = self.size();
        let mut svg = String::new();
        self.draw(&SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area())?;
        write_atomic(&stem.with_extension("svg"), svg.as_bytes())?;
        let mut rgb = vec![0u8; w as usize * h as usize * 3];
        self.draw(&BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area())?;
        let mut png = Vec::new();
        image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new(&mut png),
            &rgb,
            w,
            h,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| anyhow!("encoding {}.png: {e}", stem.display()))?;
        write_atomic(&stem.with_extension("png"), &png)?;
        Ok(())
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(err)?;
        let rows = self.panels.len().div_ceil(self.columns.max(1)).max(1);
        let areas = root.split_evenly((rows, self.columns.max(1)));
        for (area, panel) in areas.iter().zip(&self.panels) {
            match panel {
                Panel::Lines(p) => draw_lines(area, p)?,
                Panel::Bars(p) => draw_bars(area, p)?,
            }
        }
        root.present().map_err(err)
    }
}

fn err(e: impl std::fmt::Debug) -> anyhow::Error {
    anyhow!("drawing a figure: {e:?}")
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is DejaVu Sans, compiled in: registering cannot fail on it.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// The range of finite values, widened a little (and to a unit when flat).
fn span(values: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if from_zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.06
    } else {
        hi.abs().max(1.0) * 0.5
    };
    (
        if from_zero && lo >= 0.0 {
            0.0
        } else {
            lo - pad
        },
        hi + pad,
    )
}

fn draw_lines<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Lines) -> Result<()> {
    let xs = p.series.iter().flat_map(|s| {
        s.points
            .iter()
            .map(|q| q.0)
            .chain(s.band.iter().map(|b| b.0))
    });
    let (x0, x1) = p.x_range.unwrap_or_else(|| span(xs, false));
    let ys = p.series.iter().flat_map(|s| {
        s.points
            .iter()
            .map(|q| q.1)
            .chain(s.band.iter().flat_map(|b| [b.1, b.2]))
    });
    let cap = p.y_cap.unwrap_or(f64::INFINITY);
    let (y0, y1) = span(ys.map(|y| y.min(cap)), p.from_zero);
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 15))
        .margin(10)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1.max(x0 + 1e-9), y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(p.x_desc.as_str())
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(215, 215, 215))
        .x_labels(8)
        .y_labels(6)
        .x_label_formatter(&|v| short(*v))
        .y_label_formatter(&|v| short(*v))
        .draw()
        .map_err(err)?;
    let mut legend = false;
    for s in &p.series {
        if s.band.len() > 1 {
            let mut poly: Vec<(f64, f64)> = s.band.iter().map(|b| (b.0, b.2)).collect();
            poly.extend(s.band.iter().rev().map(|b| (b.0, b.1)));
            chart
                .draw_series(std::iter::once(Polygon::new(poly, s.color.mix(0.18))))
                .map_err(err)?;
        }
    }
    for s in &p.series {
        let color = s.color;
        let style = color.stroke_width(2);
        let runs: Vec<Vec<(f64, f64)>> = s
            .points
            .split(|q| !q.1.is_finite())
            .filter(|r| !r.is_empty())
            .map(|r| r.iter().map(|&(x, y)| (x, y.min(cap))).collect())
            .collect();
        let runs = if s.dashed {
            runs.iter().flat_map(|r| dashes(r)).collect()
        } else {
            runs
        };
        let drawn = chart
            .draw_series(runs.into_iter().map(|r| PathElement::new(r, style)))
            .map_err(err)?;
        if !s.label.is_empty() {
            legend = true;
            drawn.label(s.label.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for m in &p.marks {
        let color = m.color;
        let drawn = chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(m.x, y0), (m.x, y1)],
                color.mix(0.55).stroke_width(1),
            )))
            .map_err(err)?;
        if !seen.contains(&m.label.as_str()) {
            seen.push(&m.label);
            legend = true;
            drawn.label(m.label.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x + 8, y - 6), (x + 8, y + 6)], color.stroke_width(2))
            });
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 11))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(190, 190, 190))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// A line cut in dashes: each segment in 80 pieces, every other one kept.
fn dashes(line: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    const PIECES: usize = 80;
    line.windows(2)
        .flat_map(|w| {
            let (a, b) = (w[0], w[1]);
            let at = move |k: usize| {
                let f = k as f64 / PIECES as f64;
                (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f)
            };
            (0..PIECES).step_by(2).map(move |k| vec![at(k), at(k + 1)])
        })
        .collect()
}

fn draw_bars<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Bars) -> Result<()> {
    let n = p.bars.len().max(1);
    let vals = p
        .bars
        .iter()
        .flat_map(|&(_, v, ci)| [v - ci.max(0.0), v + ci.max(0.0), v]);
    let (y0, y1) = span(vals, true);
    // Labels that would not fit side by side (about 7 px a character at 12 px) are
    // turned upright, in a taller label area, and cut with an ellipsis past
    // `LABEL_CHARS` (in the middle).
    const LABEL_CHARS: usize = 24;
    let labels: Vec<String> = p
        .bars
        .iter()
        .map(|b| {
            let chars: Vec<char> = b.0.chars().collect();
            if chars.len() > LABEL_CHARS {
                // The middle goes: names differ at either end (a prefix, a seed).
                let keep = (LABEL_CHARS - 1) / 2;
                let head: String = chars[..keep].iter().collect();
                let tail: String = chars[chars.len() - keep..].iter().collect();
                format!("{head}…{tail}")
            } else {
                b.0.clone()
            }
        })
        .collect();
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let slot = f64::from(area.dim_in_pixel().0.saturating_sub(84)) / n as f64;
    let upright = longest as f64 * 7.0 > slot;
    let label_area = if upright {
        (longest as u32 * 7 + 12).clamp(36, 190)
    } else {
        36
    };
    let label_style = if upright {
        TextStyle::from(
            ("sans-serif", 12)
                .into_font()
                .transform(FontTransform::Rotate90),
        )
        .pos(Pos::new(HPos::Left, VPos::Top))
    } else {
        TextStyle::from(("sans-serif", 12).into_font())
    };
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 15))
        .margin(10)
        .x_label_area_size(label_area)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(215, 215, 215))
        .x_labels(n)
        .x_label_style(label_style.clone())
        .y_labels(6)
        .x_label_formatter(&|x| {
            let i = x.round();
            // Upright labels are drawn below, each from the axis down.
            if (x - i).abs() < 1e-6 && i >= 0.0 && !upright {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| short(*v))
        .draw()
        .map_err(err)?;
    for (i, &(_, v, ci)) in p.bars.iter().enumerate() {
        let x = i as f64;
        let c = color(i + p.offset);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x - 0.32, 0.0), (x + 0.32, v)],
                c.mix(0.75).filled(),
            )))
            .map_err(err)?;
        if ci.is_finite() && ci > 0.0 {
            let whisker = BLACK.stroke_width(2);
            chart
                .draw_series([
                    PathElement::new(vec![(x, v - ci), (x, v + ci)], whisker),
                    PathElement::new(vec![(x - 0.1, v - ci), (x + 0.1, v - ci)], whisker),
                    PathElement::new(vec![(x - 0.1, v + ci), (x + 0.1, v + ci)], whisker),
                ])
                .map_err(err)?;
        }
    }
    if upright {
        let (base_x, base_y) = area.get_base_pixel();
        for (i, label) in labels.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64, y0));
            area.draw(&Text::new(
                label.clone(),
                (x - base_x - 6, y - base_y + 6),
                label_style.clone(),
            ))
            .map_err(err)?;
        }
    }
    if y0 < 0.0 && y1 > 0.0 {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(-0.5, 0.0), (n as f64 - 0.5, 0.0)],
                BLACK.stroke_width(1),
            )))
            .map_err(err)?;
    }
    Ok(())
}

/// A tick label: three significant digits, thousands as k and millions as M.
pub fn short(v: f64) -> String {
    let a = v.abs();
    let (x, suffix) = if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let ax = x.abs();
    if ax < 1e-12 {
        return "0".into();
    }
    if ax < 0.01 {
        return format!("{x:.1e}");
    }
    let digits = if ax == 0.0 || ax >= 100.0 {
        0
    } else if ax >= 10.0 {
        1
    } else if ax >= 1.0 {
        2
    } else {
        3
    };
    let mut s = format!("{x:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    if s == "-0" {
        s = "0".into();
    }
    s + suffix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_long_bar_labels_are_drawn_upright() {
        let dir = tempfile::tempdir().unwrap();
        let bars = (0..8)
            .map(|i| {
                (
                    format!("policy-with-a-long-name-{i}+and-more"),
                    i as f64,
                    0.5,
                )
            })
            .collect();
        let figure = Figure {
            panels: vec![Panel::Bars(Bars {
                title: "return".into(),
                bars,
                offset: 0,
            })],
            columns: 1,
            panel: (640, 420),
        };
        figure.save(&dir.path().join("bars")).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("bars.svg")).unwrap();
        assert!(svg.contains("rotate(90"), "labels turned upright");
        assert!(svg.contains("policy-with…-3+and-more"), "cut in the middle");
        if let Ok(keep) = std::env::var("HALE_KEEP_PLOT") {
            std::fs::copy(dir.path().join("bars.png"), keep).unwrap();
        }
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(short(0.0), "0");
        assert_eq!(short(0.0004), "4.0e-4");
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(3.5), "3.5");
        assert_eq!(short(120.0), "120");
        assert_eq!(short(15_000.0), "15k");
        assert_eq!(short(2_500_000.0), "2.5M");
        assert_eq!(short(-3.0), "-3");
    }
}
