//! An episode's timeline, policy beside policy on the same seed: the load, the
//! replicas of every service, the cores and hosts each policy ran, the latency users
//! saw against the SLO, the bill, and the faults and remedies (`timeline.csv`).
//!
//! The figures are drawn from the CSV, so `hale report` can draw them again from an
//! evaluation folder: `timeline.svg`/`.png` compares the policies, and
//! `timeline-POLICY.svg`/`.png` follows one policy service by service.

use crate::plot::{Figure, Lines, Mark, Panel, Series, color};
use crate::table::Csv;
use anyhow::Result;
use hale_policies::bundle::write_atomic;
use hale_policies::eval::Episode;
use plotters::style::RGBColor;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the timeline needs of a cloud env's scenario: its services (in order) and
/// the user-facing latency SLO (the first workload's entry service, p95).
#[derive(Clone, Debug, Default)]
pub struct Cloud {
    pub services: Vec<String>,
    pub slo_ms: Option<f64>,
}

impl Cloud {
    /// The scenario `config` names (or the env's default); empty for other envs.
    pub fn of(env: &str, config: &Json) -> Cloud {
        let scenario = match env {
            "Scaling-v0" => serde_json::from_value::<hale_envs::ScalingConfig>(config.clone())
                .map(|c| c.scenario)
                .ok(),
            "Healing-v0" => serde_json::from_value::<hale_envs::HealingConfig>(config.clone())
                .map(|c| c.scenario)
                .ok(),
            _ => None,
        };
        let Some(sc) = scenario.and_then(|s| hale_envs::load_topology(env, &s).ok()) else {
            return Cloud::default();
        };
        let entry = sc.spec.workload.first().map(|w| w.service.clone());
        Cloud {
            services: sc.spec.services.iter().map(|s| s.name.clone()).collect(),
            slo_ms: sc
                .spec
                .slos
                .iter()
                .find(|s| Some(&s.service) == entry.as_ref() && (s.percentile - 95.0).abs() < 1e-9)
                .map(|s| s.latency_ms),
        }
    }
}

/// Writes episode `episode`'s timeline of every policy to `dir` (timeline.csv and
/// its figures); nothing when the env has no cloud (no points).
pub fn write(dir: &Path, episodes: &[Episode], episode: usize, cloud: &Cloud) -> Result<bool> {
    let chosen: Vec<&Episode> = episodes
        .iter()
        .filter(|e| e.episode == episode && !e.timeline.is_empty())
        .collect();
    if chosen.is_empty() {
        return Ok(false);
    }
    let width = chosen[0].timeline[0].desired.len();
    let services: Vec<String> = if cloud.services.len() == width {
        cloud.services.clone()
    } else {
        (0..width).map(|i| format!("service{i}")).collect()
    };
    let mut csv = String::from(
        "policy,episode,seed,t_s,load_rps,replicas,cores,hosts,p95_ms,slo_ms,bill,\
         slo_violation_s,faults_open,faults_started,faults_resolved,acted,remedy",
    );
    for s in &services {
        csv += &format!(",replicas/{s}");
    }
    csv.push('\n');
    let slo = cloud.slo_ms.map(|v| v.to_string()).unwrap_or_default();
    for e in &chosen {
        for p in &e.timeline {
            csv += &format!(
                "{},{},{},{},{},{},{},{},{},{slo},{},{},{},{},{},{},{}",
                e.policy,
                e.episode,
                e.seed,
                p.t_s,
                p.load_rps,
                p.replicas,
                p.cores,
                p.hosts,
                p.p95_ms,
                p.bill,
                p.slo_violation_s,
                p.faults_open,
                p.faults_started,
                p.faults_resolved,
                u8::from(p.acted),
                p.remedy.unwrap_or("")
            );
            for r in &p.desired {
                csv += &format!(",{r}");
            }
            csv.push('\n');
        }
    }
    let path = dir.join("timeline.csv");
    write_atomic(&path, csv.as_bytes())?;
    figures(&path, dir)?;
    Ok(true)
}

/// One policy's rows of timeline.csv.
struct Track {
    policy: String,
    episode: String,
    seed: String,
    minutes: Vec<f64>,
    col: BTreeMap<String, Vec<f64>>,
    remedy: Vec<String>,
}

impl Track {
    fn get(&self, name: &str) -> &[f64] {
        self.col.get(name).map_or(&[], Vec::as_slice)
    }

    fn xy(&self, name: &str) -> Vec<(f64, f64)> {
        self.minutes
            .iter()
            .copied()
            .zip(self.get(name).iter().copied())
            .collect()
    }

    /// The running sum of a column, scaled.
    fn cumulative(&self, name: &str, scale: f64) -> Vec<(f64, f64)> {
        let mut total = 0.0;
        self.minutes
            .iter()
            .zip(self.get(name))
            .map(|(&t, &v)| {
                total += v * scale;
                (t, total)
            })
            .collect()
    }

    /// The p95, with a gap where a scrape answered nothing.
    fn p95(&self) -> Vec<(f64, f64)> {
        self.xy("p95_ms")
            .into_iter()
            .map(|(t, v)| (t, if v > 0.0 { v } else { f64::NAN }))
            .collect()
    }

    /// Faults begun and resolved, and remedies, as marks.
    fn marks(&self) -> Vec<Mark> {
        let mut marks = Vec::new();
        let at = |name: &str| {
            self.minutes
                .iter()
                .zip(self.get(name))
                .filter(|(_, v)| **v > 0.0)
                .map(|(&t, _)| t)
                .collect::<Vec<_>>()
        };
        for x in at("faults_started") {
            marks.push(Mark {
                x,
                label: "fault".into(),
                color: RGBColor(214, 39, 40),
            });
        }
        for x in at("faults_resolved") {
            marks.push(Mark {
                x,
                label: "fault resolved".into(),
                color: RGBColor(44, 160, 44),
            });
        }
        for (&x, r) in self.minutes.iter().zip(&self.remedy) {
            if !r.is_empty() {
                marks.push(Mark {
                    x,
                    label: format!("remedy: {r}"),
                    color: RGBColor(148, 103, 189),
                });
            }
        }
        marks
    }
}

/// Reads timeline.csv into one track per policy, in the file's order.
fn tracks(csv: &Csv) -> Result<Vec<Track>> {
    let policy = csv.text("policy")?;
    let (episode, seed, remedy) = (csv.text("episode")?, csv.text("seed")?, csv.text("remedy")?);
    let t_s = csv.numbers("t_s")?;
    let mut out: Vec<Track> = Vec::new();
    for (row, name) in policy.iter().enumerate() {
        if out.last().is_none_or(|t| &t.policy != name) {
            out.push(Track {
                policy: name.clone(),
                episode: episode[row].clone(),
                seed: seed[row].clone(),
                minutes: Vec::new(),
                col: BTreeMap::new(),
                remedy: Vec::new(),
            });
        }
        let track = out.last_mut().expect("pushed above");
        track.minutes.push(t_s[row] / 60.0);
        track.remedy.push(remedy[row].clone());
        for (i, name) in csv.header.iter().enumerate() {
            let v = csv.rows[row][i].parse::<f64>().unwrap_or(f64::NAN);
            track.col.entry(name.clone()).or_default().push(v);
        }
    }
    Ok(out)
}

/// Draws timeline.csv's figures into `out`; returns the files' stems.
pub fn figures(csv_path: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let csv = Csv::read(csv_path)?;
    let tracks = tracks(&csv)?;
    let Some(first) = tracks.first() else {
        return Ok(Vec::new());
    };
    let slo = first
        .get("slo_ms")
        .first()
        .copied()
        .filter(|v| v.is_finite());
    let t_max = tracks
        .iter()
        .filter_map(|t| t.minutes.last().copied())
        .fold(0.0, f64::max);
    let x_range = Some((0.0, t_max.max(1e-9)));
    let lines_of = |title: &str, series: Vec<Series>, marks: Vec<Mark>| Lines {
        title: title.into(),
        x_desc: "minutes".into(),
        series,
        marks,
        x_range,
        from_zero: true,
        y_cap: None,
    };
    let lines = |title: &str, series: Vec<Series>, marks: Vec<Mark>| {
        Panel::Lines(lines_of(title, series, marks))
    };
    // The p95 against the SLO, spikes above 5 × the SLO drawn at that height.
    let capped = |title: &str, series: Vec<Series>, marks: Vec<Mark>| {
        let cap = slo.map(|v| 5.0 * v);
        let clipped = cap.is_some_and(|c| series.iter().any(|s| s.points.iter().any(|p| p.1 > c)));
        let title = if clipped {
            format!("{title} (clipped at 5 × the SLO)")
        } else {
            title.to_string()
        };
        Panel::Lines(Lines {
            y_cap: cap,
            ..lines_of(&title, series, marks)
        })
    };
    let each = |f: &dyn Fn(&Track) -> Vec<(f64, f64)>| -> Vec<Series> {
        tracks
            .iter()
            .enumerate()
            .map(|(i, t)| Series::new(t.policy.clone(), color(i), f(t)))
            .collect()
    };
    let slo_line = |series: &mut Vec<Series>| {
        if let Some(v) = slo {
            let mut s = Series::new(
                format!("SLO {v} ms"),
                RGBColor(0, 0, 0),
                vec![(0.0, v), (t_max, v)],
            );
            s.dashed = true;
            series.push(s);
        }
    };
    let ep = format!("episode {}, seed {}", first.episode, first.seed);
    let mut stems = Vec::new();

    // The policies side by side.
    let mut p95 = each(&Track::p95);
    slo_line(&mut p95);
    let compare = Figure {
        panels: vec![
            lines(
                &format!("load: external requests per second ({ep})"),
                vec![Series::new(
                    "load",
                    RGBColor(90, 90, 90),
                    first.xy("load_rps"),
                )],
                first.marks(),
            ),
            lines(
                "replicas (desired, all services)",
                each(&|t| t.xy("replicas")),
                vec![],
            ),
            lines("cores requested", each(&|t| t.xy("cores")), vec![]),
            lines("hosts billed", each(&|t| t.xy("hosts")), vec![]),
            capped("user-facing p95, ms (gaps: nothing answered)", p95, vec![]),
            lines(
                "the bill so far, $",
                each(&|t| t.cumulative("bill", 1.0)),
                vec![],
            ),
            lines(
                "SLO-violation minutes so far (summed over SLOs)",
                each(&|t| t.cumulative("slo_violation_s", 1.0 / 60.0)),
                vec![],
            ),
        ],
        columns: 1,
        panel: (960, 220),
    };
    let stem = out.join("timeline");
    compare.save(&stem)?;
    stems.push(stem);

    // Each policy alone, service by service.
    let services: Vec<String> = csv
        .header
        .iter()
        .filter_map(|h| h.strip_prefix("replicas/").map(str::to_string))
        .collect();
    for t in &tracks {
        let marks = Track::marks;
        let mut per_service: Vec<(String, Vec<(f64, f64)>)> = services
            .iter()
            .map(|s| (s.clone(), t.xy(&format!("replicas/{s}"))))
            .collect();
        // Many services: the busiest keep a colour and a label, the others are grey.
        per_service.sort_by(|a, b| {
            let peak = |v: &[(f64, f64)]| v.iter().map(|p| p.1).fold(0.0, f64::max);
            peak(&b.1).total_cmp(&peak(&a.1))
        });
        const LABELLED: usize = 7;
        let many = per_service.len() > LABELLED + 1;
        let replica_series = per_service
            .into_iter()
            .enumerate()
            .map(|(i, (name, pts))| {
                if many && i >= LABELLED {
                    let label = if i == LABELLED { "other services" } else { "" };
                    Series::new(label, RGBColor(170, 170, 170), pts)
                } else {
                    Series::new(name, color(i), pts)
                }
            })
            .collect();
        let mut p95 = vec![Series::new("p95", color(0), t.p95())];
        slo_line(&mut p95);
        let figure = Figure {
            panels: vec![
                lines(
                    &format!("{}: load, requests per second ({ep})", t.policy),
                    vec![Series::new("load", RGBColor(90, 90, 90), t.xy("load_rps"))],
                    marks(t),
                ),
                lines("replicas per service (desired)", replica_series, marks(t)),
                capped("user-facing p95 against the SLO, ms", p95, marks(t)),
                lines(
                    "the bill so far, $ (and hosts billed ÷ 10)",
                    vec![
                        Series::new("bill, $", color(2), t.cumulative("bill", 1.0)),
                        Series::new(
                            "hosts ÷ 10",
                            color(7),
                            t.xy("hosts")
                                .into_iter()
                                .map(|(x, y)| (x, y / 10.0))
                                .collect(),
                        ),
                    ],
                    vec![],
                ),
                lines(
                    "faults open",
                    vec![Series::new("open faults", color(3), t.xy("faults_open"))],
                    marks(t),
                ),
            ],
            columns: 1,
            panel: (960, 230),
        };
        let stem = out.join(format!("timeline-{}", file_safe(&t.policy)));
        figure.save(&stem)?;
        stems.push(stem);
    }
    Ok(stems)
}

/// A policy label as part of a file name.
pub fn file_safe(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
