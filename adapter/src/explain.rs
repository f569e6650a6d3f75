//! Why a decision was taken, in terms an operator can check: the observed features
//! that went into it, how the policy scored the alternatives (a learned policy's
//! action probabilities; rules have none), and the change's expected effect.

use crate::observe::Replicas;
use hale_envs::encoding::{ScalingActions, ServiceReading};
use serde::Serialize;

/// One observed feature, in the units of the `[observation.queries]` it came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Feature {
    /// The feature's name (`request_rate`, `p95_ms`, …).
    pub name: &'static str,
    /// Its value.
    pub value: f64,
}

/// An action the policy could have taken, with its preference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alternative {
    /// The action, in words.
    pub action: String,
    /// The policy's probability for it (softmax of its scores).
    pub probability: f64,
}

/// The explanation attached to every decision and proposal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    /// The policy that decided.
    pub policy: String,
    /// What was observed of the service.
    pub features: Vec<Feature>,
    /// The policy's alternatives, most preferred first (empty for a rule-based policy).
    pub alternatives: Vec<Alternative>,
    /// What the change should do.
    pub expected_effect: String,
}

impl Explanation {
    /// One line for the terminal: the top alternatives and the expected effect.
    pub fn summary(&self) -> String {
        let mut s = self.expected_effect.clone();
        if !self.alternatives.is_empty() {
            let top: Vec<String> = self
                .alternatives
                .iter()
                .take(3)
                .map(|a| format!("{} {:.0} %", a.action, 100.0 * a.probability))
                .collect();
            s.push_str(&format!("; {} preferred {}", self.policy, top.join(", ")));
        }
        s
    }
}

/// The features of a Scaling-v0 service reading.
pub fn scaling_features(r: &ServiceReading, replicas: Replicas) -> Vec<Feature> {
    vec![
        Feature {
            name: "request_rate",
            value: r.request_rate,
        },
        Feature {
            name: "p50_ms",
            value: r.p50_ms,
        },
        Feature {
            name: "p95_ms",
            value: r.p95_ms,
        },
        Feature {
            name: "p99_ms",
            value: r.p99_ms,
        },
        Feature {
            name: "error_rate",
            value: r.error_rate,
        },
        Feature {
            name: "cpu_utilization",
            value: r.cpu_utilization,
        },
        Feature {
            name: "ready_replicas",
            value: f64::from(replicas.ready),
        },
        Feature {
            name: "desired_replicas",
            value: f64::from(replicas.desired),
        },
    ]
}

/// A scaling head's alternatives: each choice as the replica count it leads to from
/// `current`, with the softmax of `scores`; choices that lead to the same count are
/// merged.
pub fn scaling_alternatives(
    scores: &[f32],
    actions: &ScalingActions,
    current: u32,
) -> Vec<Alternative> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = scores.iter().map(|&s| f64::from(s - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut by_count: Vec<(u32, f64)> = Vec::new();
    for (choice, w) in weights.iter().enumerate() {
        let n = actions.replicas(choice as i64, current);
        match by_count.iter_mut().find(|(c, _)| *c == n) {
            Some((_, p)) => *p += w / total,
            None => by_count.push((n, w / total)),
        }
    }
    by_count.sort_by(|a, b| b.1.total_cmp(&a.1));
    by_count
        .into_iter()
        .map(|(n, probability)| Alternative {
            action: if n == current {
                format!("keep {n}")
            } else {
                format!("scale to {n}")
            },
            probability,
        })
        .collect()
}

/// The expected effect of moving a service from `from` to `to` replicas: the same
/// load over more or fewer replicas changes each one's CPU utilisation in
/// proportion (the utilisation law, ρ = λ / (n μ)).
pub fn scaling_effect(cpu_utilization: f64, from: u32, to: u32) -> String {
    if from == 0 || to == from {
        return format!("{from} → {to} replicas");
    }
    let after = cpu_utilization * f64::from(from) / f64::from(to);
    let mut s = format!(
        "{from} → {to} replicas: CPU per replica {:.0} % → about {:.0} % at the same load",
        100.0 * cpu_utilization,
        100.0 * after
    );
    if to > from {
        s.push_str(&format!(
            ", costs {} more replica{}",
            to - from,
            if to - from == 1 { "" } else { "s" }
        ));
        if cpu_utilization > 0.8 {
            s.push_str(", should bring queueing latency down");
        }
    } else {
        s.push_str(&format!(
            ", saves {} replica{}",
            from - to,
            if from - to == 1 { "" } else { "s" }
        ));
        if after > 0.8 {
            s.push_str(" but risks saturation (above 80 %)");
        }
    }
    s
}

/// What a change of the CPU request per replica from `from` to `to` millicores
/// should do: utilisation is busy over requested CPU, so at the same load it moves
/// by `from / to`.
pub fn resize_effect(cpu_utilization: f64, from: u32, to: u32) -> String {
    if from == 0 || to == from {
        return format!("CPU request {from}m → {to}m per replica");
    }
    let after = cpu_utilization * f64::from(from) / f64::from(to);
    let mut s = format!(
        "CPU request {from}m → {to}m per replica: utilisation of the request {:.0} % → \
         about {:.0} % at the same load",
        100.0 * cpu_utilization,
        100.0 * after
    );
    if to < from {
        s.push_str(&format!(", frees {}m per replica", from - to));
        if after > 0.8 {
            s.push_str(", but risks throttling (above 80 %)");
        }
    } else {
        s.push_str(&format!(", costs {}m more per replica", to - from));
    }
    s
}

/// Features of a Healing-v0 replica and its service.
pub fn healing_features(
    replica: &hale_envs::encoding::ReplicaReading,
    service: &ServiceReading,
    replicas: Replicas,
) -> Vec<Feature> {
    let f = |name, value| Feature { name, value };
    vec![
        f("probe_failures", f64::from(replica.probe_failures)),
        f("restarts", f64::from(replica.restarts)),
        f("memory_fraction", replica.memory_fraction),
        f("mean_latency_ms", replica.mean_latency_ms),
        f("error_rate", replica.error_rate),
        f("service_error_rate", service.error_rate),
        f("service_p95_ms", service.p95_ms),
        f("ready_replicas", f64::from(replicas.ready)),
        f("desired_replicas", f64::from(replicas.desired)),
    ]
}

/// Features of a Healing-v0 host.
pub fn host_features(
    host: &hale_envs::encoding::HostReading,
    replicas_on_it: usize,
) -> Vec<Feature> {
    vec![
        Feature {
            name: "up",
            value: f64::from(u8::from(host.up)),
        },
        Feature {
            name: "cordoned",
            value: f64::from(u8::from(host.cordoned)),
        },
        Feature {
            name: "cpu_allocation",
            value: host.cpu_allocation,
        },
        Feature {
            name: "replicas_on_it",
            value: replicas_on_it as f64,
        },
    ]
}

/// A discrete head's alternatives among the actions `allowed`, named by `name`, most
/// probable first, at most `top` of them (softmax over the allowed actions' scores).
pub fn discrete_alternatives(
    scores: &[f32],
    allowed: &[bool],
    top: usize,
    name: impl Fn(usize) -> String,
) -> Vec<Alternative> {
    let open: Vec<usize> = (0..scores.len())
        .filter(|&a| allowed.get(a).copied().unwrap_or(false))
        .collect();
    let max = open
        .iter()
        .map(|&a| scores[a])
        .fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<(usize, f64)> = open
        .iter()
        .map(|&a| (a, f64::from(scores[a] - max).exp()))
        .collect();
    let total: f64 = weights.iter().map(|(_, w)| w).sum();
    let mut alts: Vec<Alternative> = weights
        .into_iter()
        .map(|(a, w)| Alternative {
            action: name(a),
            probability: w / total,
        })
        .collect();
    alts.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    alts.truncate(top);
    alts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternatives_are_probabilities_merged_by_count() {
        let actions = ScalingActions {
            delta: true,
            min_replicas: 1,
            max_replicas: 10,
            cpu_levels: Vec::new(),
        };
        // From 1 replica, −2 and −1 and 0 all mean "keep 1".
        let alts = scaling_alternatives(&[0.0, 0.0, 0.0, 1.0, -1.0], &actions, 1);
        let total: f64 = alts.iter().map(|a| a.probability).sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert_eq!(alts[0].action, "keep 1");
        assert_eq!(alts.len(), 3);
        assert!(
            alts.windows(2)
                .all(|w| w[0].probability >= w[1].probability)
        );
    }

    #[test]
    fn discrete_alternatives_leave_out_what_the_mask_forbids() {
        let alts =
            discrete_alternatives(&[5.0, 1.0, 1.0, 0.0], &[false, true, true, true], 2, |a| {
                format!("a{a}")
            });
        assert_eq!(alts.len(), 2);
        assert!(alts.iter().all(|a| a.action != "a0"));
        let p: f64 = alts.iter().map(|a| a.probability).sum();
        // e / (e + e + 1) each for a1 and a2.
        let e = 1f64.exp();
        assert!((p - 2.0 * e / (2.0 * e + 1.0)).abs() < 1e-6, "{p}");
    }

    #[test]
    fn a_resize_effect_divides_utilisation_by_the_request() {
        let down = resize_effect(0.3, 500, 175);
        assert!(down.contains("30 % → about 86 %"), "{down}");
        assert!(down.contains("frees 325m"), "{down}");
        assert!(down.contains("risks throttling"), "{down}");
        let up = resize_effect(0.9, 100, 200);
        assert!(up.contains("90 % → about 45 %"), "{up}");
    }

    #[test]
    fn the_effect_follows_the_utilisation_law() {
        let up = scaling_effect(0.9, 2, 3);
        assert!(up.contains("90 % → about 60 %"), "{up}");
        assert!(up.contains("1 more replica"), "{up}");
        let down = scaling_effect(0.6, 2, 1);
        assert!(down.contains("risks saturation"), "{down}");
    }
}
