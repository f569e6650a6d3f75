//! An episode's timeline, policy beside policy on the same seed: the load, the
//! replicas and cores each policy ran, the hosts it paid for and the latency users saw
//! (`timeline.csv` and `timeline.svg`).

use crate::eval::{Episode, Point};
use anyhow::{Result, anyhow};
use hale_policies::bundle::write_atomic;
use plotters::prelude::*;
use std::path::Path;

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// Writes episode `episode`'s timeline of every policy to `dir`; nothing when the
/// env has no cloud (no points).
pub fn write(dir: &Path, episodes: &[Episode], episode: usize) -> Result<bool> {
    let chosen: Vec<&Episode> = episodes
        .iter()
        .filter(|e| e.episode == episode && !e.timeline.is_empty())
        .collect();
    if chosen.is_empty() {
        return Ok(false);
    }
    let mut csv = String::from(
        "policy,episode,seed,t_s,load_rps,replicas,cores,hosts,p95_ms,slo_violation_s,faults_open,acted\n",
    );
    for e in &chosen {
        for p in &e.timeline {
            csv += &format!(
                "{},{},{},{},{},{},{},{},{},{},{},{}\n",
                e.policy,
                e.episode,
                e.seed,
                p.t_s,
                p.load_rps,
                p.replicas,
                p.cores,
                p.hosts,
                p.p95_ms,
                p.slo_violation_s,
                p.faults_open,
                u8::from(p.acted)
            );
        }
    }
    write_atomic(&dir.join("timeline.csv"), csv.as_bytes())?;
    let svg = plot(&chosen)?;
    write_atomic(&dir.join("timeline.svg"), svg.as_bytes())?;
    Ok(true)
}

/// One panel: a title and, per policy, (minutes, value) points.
struct Panel {
    title: String,
    series: Vec<(String, Vec<(f64, f64)>)>,
}

fn panel(title: &str, chosen: &[&Episode], get: fn(&Point) -> f64) -> Panel {
    Panel {
        title: title.into(),
        series: chosen
            .iter()
            .map(|e| {
                let pts = e.timeline.iter().map(|p| (p.t_s / 60.0, get(p))).collect();
                (e.policy.clone(), pts)
            })
            .collect(),
    }
}

/// SLO-violation minutes so far, per policy.
fn cumulative_slo(chosen: &[&Episode]) -> Panel {
    Panel {
        title: "SLO-violation minutes so far (summed over SLOs)".into(),
        series: chosen
            .iter()
            .map(|e| {
                let mut total = 0.0;
                let pts = e
                    .timeline
                    .iter()
                    .map(|p| {
                        total += p.slo_violation_s / 60.0;
                        (p.t_s / 60.0, total)
                    })
                    .collect();
                (e.policy.clone(), pts)
            })
            .collect(),
    }
}

fn plot(chosen: &[&Episode]) -> Result<String> {
    let first = chosen[0];
    let load = Panel {
        title: format!(
            "load: external requests per second (episode {}, seed {})",
            first.episode, first.seed
        ),
        series: vec![(
            "load".into(),
            first
                .timeline
                .iter()
                .map(|p| (p.t_s / 60.0, p.load_rps))
                .collect(),
        )],
    };
    let panels = [
        load,
        panel("replicas (desired, all services)", chosen, |p| {
            f64::from(p.replicas)
        }),
        panel("cores requested", chosen, |p| p.cores),
        panel("hosts billed", chosen, |p| f64::from(p.hosts)),
        // A scrape window in which nothing was answered has no percentile: a gap.
        panel(
            "user-facing p95, ms (gaps: nothing answered)",
            chosen,
            |p| {
                if p.p95_ms > 0.0 { p.p95_ms } else { f64::NAN }
            },
        ),
        cumulative_slo(chosen),
    ];
    let t_max = chosen
        .iter()
        .flat_map(|e| e.timeline.last().map(|p| p.t_s / 60.0))
        .fold(0.0, f64::max)
        .max(1e-9);
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (960, 220 * panels.len() as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("timeline: {e}"))?;
        for (area, p) in root.split_evenly((panels.len(), 1)).iter().zip(&panels) {
            let y_max = p
                .series
                .iter()
                .flat_map(|(_, pts)| pts.iter().map(|&(_, y)| y))
                .filter(|y| y.is_finite())
                .fold(0.0, f64::max)
                * 1.1;
            let mut chart = ChartBuilder::on(area)
                .caption(&p.title, ("sans-serif", 15))
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..t_max, 0.0..y_max.max(1e-9))
                .map_err(|e| anyhow!("timeline: {e}"))?;
            chart
                .configure_mesh()
                .x_desc("minutes")
                .light_line_style(WHITE)
                .draw()
                .map_err(|e| anyhow!("timeline: {e}"))?;
            for (i, (label, pts)) in p.series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                // Each run of finite values is its own line, so gaps stay gaps.
                let runs: Vec<&[(f64, f64)]> = pts
                    .split(|(_, y)| !y.is_finite())
                    .filter(|r| !r.is_empty())
                    .collect();
                chart
                    .draw_series(
                        runs.iter()
                            .map(|r| PathElement::new(r.to_vec(), color.stroke_width(2))),
                    )
                    .map_err(|e| anyhow!("timeline: {e}"))?
                    .label(label.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(|e| anyhow!("timeline: {e}"))?;
        }
        root.present().map_err(|e| anyhow!("timeline: {e}"))?;
    }
    Ok(svg)
}
