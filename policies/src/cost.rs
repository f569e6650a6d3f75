//! Baselines of `Cost-v0`: the cluster autoscaler alone on on-demand capacity, and a
//! Karpenter-like consolidator on spot.

use crate::{ActError, Policy, PolicyContext, Unfit};
use hale_envs::Value;
use hale_envs::cost::{COST_HOST_FEATURES, CostLayout, host_feature as f};

/// All on-demand: new capacity on demand, no consolidation beyond the cluster
/// autoscaler's, requests as the scenario sets them. The bill the issue's "≥ 40 %
/// cheaper" is measured against.
pub struct OnDemand {
    layout: CostLayout,
}

impl OnDemand {
    /// For `Cost-v0` with the context's config.
    pub fn new(ctx: &PolicyContext) -> Result<OnDemand, Unfit> {
        Ok(OnDemand {
            layout: layout(ctx)?,
        })
    }
}

impl Policy for OnDemand {
    fn name(&self) -> &str {
        "on-demand"
    }
    fn act(&mut self, _obs: &Value, _mask: Option<&[bool]>) -> Result<Value, ActError> {
        Ok(Value::MultiDiscrete(self.layout.action(false, None)))
    }
    fn reset(&mut self) {}
}

/// A Karpenter-like consolidator: it provisions spot, and at each decision it
/// disrupts at most one host, while fewer than `budget` × the live hosts (rounded up)
/// are being disrupted (Karpenter's default disruption budget, `nodes: 10%`). A host
/// whose replicas fit on the others is deleted (saving its price); an on-demand host
/// whose replicas do not fit is replaced by spot capacity (saving the difference). It
/// picks the host with the most saved per evicted replica, and acts only when that is
/// at least `threshold` (a share of an on-demand host's price per hour, per replica).
/// Requests stay the scenario's: Karpenter sizes nodes, not pods.
pub struct Karpenter {
    layout: CostLayout,
    /// Most hosts disrupted at once, as a share of live hosts (rounded up).
    pub budget: f64,
    /// Least saving per evicted replica, as a share of an on-demand host's price.
    pub threshold: f64,
}

impl Karpenter {
    /// For `Cost-v0` with the context's config: a 10 % budget and a threshold of 1 %
    /// of an on-demand host's price per evicted replica.
    pub fn new(ctx: &PolicyContext) -> Result<Karpenter, Unfit> {
        Ok(Karpenter {
            layout: layout(ctx)?,
            budget: 0.10,
            threshold: 0.01,
        })
    }

    /// The host slot to consolidate now, if any.
    pub fn choose(&self, obs: &[f32]) -> Option<usize> {
        let l = &self.layout;
        let host = |k: usize| &obs[l.host(k)..l.host(k) + COST_HOST_FEATURES];
        let present: Vec<usize> = (0..l.host_slots)
            .filter(|&k| host(k)[f::PRESENT] > 0.5)
            .collect();
        let disrupted = present
            .iter()
            .filter(|&&k| host(k)[f::DISRUPTED] > 0.5)
            .count();
        let budget = (self.budget * present.len() as f64).ceil() as usize;
        if disrupted >= budget {
            return None;
        }
        let mut best: Option<(f64, usize)> = None;
        for &k in &present {
            let x = host(k);
            if x[f::READY] < 0.5 || x[f::DISRUPTED] > 0.5 || x[f::NOTICE] > 0.5 {
                continue;
            }
            let saving = if x[f::FITS_ELSEWHERE] > 0.5 {
                f64::from(x[f::PRICE])
            } else if x[f::SPOT] < 0.5 {
                f64::from(x[f::PRICE]) - l.spot_price
            } else {
                continue;
            };
            let evicted = (f64::from(x[f::REPLICAS]) * 32.0).round().max(1.0);
            let per = saving / evicted;
            if per >= self.threshold && best.is_none_or(|(b, _)| per > b) {
                best = Some((per, k));
            }
        }
        best.map(|(_, k)| k)
    }
}

impl Policy for Karpenter {
    fn name(&self) -> &str {
        "karpenter"
    }
    fn act(&mut self, obs: &Value, _mask: Option<&[bool]>) -> Result<Value, ActError> {
        let Value::Box(x) = obs else {
            return Err(ActError {
                policy: "karpenter".into(),
                reason: "expected Cost-v0's flat observation".into(),
            });
        };
        if x.len() != self.layout.obs_len() {
            return Err(ActError {
                policy: "karpenter".into(),
                reason: format!(
                    "observation of {} floats, Cost-v0's layout has {}",
                    x.len(),
                    self.layout.obs_len()
                ),
            });
        }
        Ok(Value::MultiDiscrete(
            self.layout.action(true, self.choose(x)),
        ))
    }
    fn reset(&mut self) {}
}

fn layout(ctx: &PolicyContext) -> Result<CostLayout, Unfit> {
    if ctx.env_id != "Cost-v0" {
        return Err(Unfit("it drives Cost-v0 only"));
    }
    let l = CostLayout::from_config(&ctx.config)
        .map_err(|_| Unfit("Cost-v0's config does not load"))?;
    if ctx.observation_space.flat_dim() != Some(l.obs_len()) {
        return Err(Unfit("the observation does not have Cost-v0's layout"));
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn karpenter(slots: usize) -> Karpenter {
        Karpenter {
            layout: CostLayout {
                services: 1,
                host_slots: slots,
                memory_levels: vec![1.0],
                cpu_levels: vec![],
                spot_price: 0.35,
            },
            budget: 0.10,
            threshold: 0.01,
        }
    }

    /// A ready host in slot `k`: spot or not, its replicas, whether they fit elsewhere.
    fn host(k: &Karpenter, obs: &mut [f32], slot: usize, spot: bool, replicas: f32, fits: bool) {
        let o = k.layout.host(slot);
        let x = &mut obs[o..o + COST_HOST_FEATURES];
        x[f::PRESENT] = 1.0;
        x[f::READY] = 1.0;
        x[f::SPOT] = f32::from(spot);
        x[f::REPLICAS] = replicas / 32.0;
        x[f::FITS_ELSEWHERE] = f32::from(fits);
        x[f::PRICE] = if spot { 0.35 } else { 1.0 };
    }

    #[test]
    fn it_takes_the_most_saved_per_eviction_within_its_budget_and_threshold() {
        let k = karpenter(12);
        let mut obs = vec![0.0; k.layout.obs_len()];
        host(&k, &mut obs, 0, false, 10.0, false); // replace: 0.65 / 10
        host(&k, &mut obs, 1, false, 20.0, true); // delete: 1.0 / 20
        host(&k, &mut obs, 2, true, 3.0, false); // spot, no room: nothing to gain
        host(&k, &mut obs, 3, true, 5.0, true); // delete: 0.35 / 5
        assert_eq!(k.choose(&obs), Some(3));
        // Above the threshold only: 0.35 / 5 = 0.07 per eviction.
        let strict = Karpenter {
            threshold: 0.08,
            ..karpenter(12)
        };
        assert_eq!(strict.choose(&obs), None);
        // Four live hosts: a budget of one (10 %, rounded up), already taken.
        obs[k.layout.host(1) + f::DISRUPTED] = 1.0;
        assert_eq!(k.choose(&obs), None);
        // Eleven live hosts: a budget of two.
        for slot in 4..11 {
            host(&k, &mut obs, slot, true, 30.0, false);
        }
        assert_eq!(k.choose(&obs), Some(3));
    }
}
