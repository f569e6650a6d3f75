//! Wrappers: each changes one thing about an env and passes the rest through.

use crate::env::{Env, EnvError, Info, ObsSlot, Step, StepInto};
use crate::space::{Space, Value};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Truncates an episode after `max_steps` steps (Gymnasium's `TimeLimit`).
pub struct TimeLimit<E: Env> {
    inner: E,
    max_steps: u64,
    elapsed: u64,
}

impl<E: Env> TimeLimit<E> {
    /// Wraps `inner`.
    pub fn new(inner: E, max_steps: u64) -> Self {
        TimeLimit {
            inner,
            max_steps,
            elapsed: 0,
        }
    }
}

impl<E: Env> Env for TimeLimit<E> {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }
    fn reset(
        &mut self,
        seed: Option<u64>,
        options: Option<&Json>,
    ) -> Result<(Value, Info), EnvError> {
        self.elapsed = 0;
        self.inner.reset(seed, options)
    }
    fn step(&mut self, action: &Value) -> Result<Step, EnvError> {
        let mut s = self.inner.step(action)?;
        self.elapsed += 1;
        s.truncated |= self.elapsed >= self.max_steps;
        Ok(s)
    }
    fn step_into(&mut self, action: &Value, obs: ObsSlot<'_>) -> Result<StepInto, EnvError> {
        let mut s = self.inner.step_into(action, obs)?;
        self.elapsed += 1;
        s.truncated |= self.elapsed >= self.max_steps;
        Ok(s)
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: ObsSlot<'_>) -> Result<Info, EnvError> {
        self.elapsed = 0;
        self.inner.reset_into(seed, obs)
    }
    fn action_mask(&self) -> Option<&[bool]> {
        self.inner.action_mask()
    }
    fn close(&mut self) {
        self.inner.close()
    }
}

/// Adds `info["episode"] = {"r": return, "l": length}` at the end of each episode
/// (Gymnasium's `RecordEpisodeStatistics`, without wall time so runs stay
/// deterministic).
pub struct EpisodeStatistics<E: Env> {
    inner: E,
    episode_return: f64,
    episode_length: u64,
}

impl<E: Env> EpisodeStatistics<E> {
    /// Wraps `inner`.
    pub fn new(inner: E) -> Self {
        EpisodeStatistics {
            inner,
            episode_return: 0.0,
            episode_length: 0,
        }
    }

    /// Counts a step; the episode's totals if it ended.
    fn record(&mut self, reward: f64, ended: bool) -> Option<crate::env::EpisodeInfo> {
        self.episode_return += reward;
        self.episode_length += 1;
        ended.then_some(crate::env::EpisodeInfo {
            r: self.episode_return,
            l: self.episode_length,
        })
    }
}

impl<E: Env> Env for EpisodeStatistics<E> {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }
    fn reset(
        &mut self,
        seed: Option<u64>,
        options: Option<&Json>,
    ) -> Result<(Value, Info), EnvError> {
        self.episode_return = 0.0;
        self.episode_length = 0;
        self.inner.reset(seed, options)
    }
    fn step(&mut self, action: &Value) -> Result<Step, EnvError> {
        let mut s = self.inner.step(action)?;
        s.info.episode = self.record(s.reward, s.terminated || s.truncated);
        Ok(s)
    }
    fn step_into(&mut self, action: &Value, obs: ObsSlot<'_>) -> Result<StepInto, EnvError> {
        let mut s = self.inner.step_into(action, obs)?;
        s.info.episode = self.record(s.reward, s.terminated || s.truncated);
        Ok(s)
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: ObsSlot<'_>) -> Result<Info, EnvError> {
        self.episode_return = 0.0;
        self.episode_length = 0;
        self.inner.reset_into(seed, obs)
    }
    fn action_mask(&self) -> Option<&[bool]> {
        self.inner.action_mask()
    }
    fn close(&mut self) {
        self.inner.close()
    }
}

/// Running mean and variance (Chan et al.'s parallel update, as Gymnasium's
/// `RunningMeanStd`, starting from a count of 1e-4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunningMeanStd {
    /// Mean per dimension.
    pub mean: Vec<f64>,
    /// Variance per dimension.
    pub var: Vec<f64>,
    /// Weight of what has been seen.
    pub count: f64,
}

impl RunningMeanStd {
    /// Statistics of `dim` dimensions, before any data.
    pub fn new(dim: usize) -> Self {
        RunningMeanStd {
            mean: vec![0.0; dim],
            var: vec![1.0; dim],
            count: 1e-4,
        }
    }

    /// Folds in one sample.
    pub fn update(&mut self, x: &[f64]) {
        let total = self.count + 1.0;
        for (i, &xi) in x.iter().enumerate() {
            let delta = xi - self.mean[i];
            let m2 = self.var[i] * self.count + delta * delta * self.count / total;
            self.mean[i] += delta / total;
            self.var[i] = m2 / total;
        }
        self.count = total;
    }
}

/// Normalises Box observations to zero mean and unit variance with running
/// statistics; `update = false` freezes them (for evaluation). Statistics are saved
/// with a policy and restored with [`NormalizeObservation::with_stats`].
pub struct NormalizeObservation<E: Env> {
    inner: E,
    /// The statistics.
    pub stats: RunningMeanStd,
    /// Whether to keep updating them.
    pub update: bool,
    scratch: Vec<f64>,
}

impl<E: Env> NormalizeObservation<E> {
    /// Wraps `inner` with fresh statistics.
    pub fn new(inner: E) -> Self {
        let dim = inner.observation_space().flat_dim().unwrap_or(0);
        Self::with_stats(inner, RunningMeanStd::new(dim), true)
    }

    /// Wraps `inner` with given statistics.
    pub fn with_stats(inner: E, stats: RunningMeanStd, update: bool) -> Self {
        NormalizeObservation {
            inner,
            stats,
            update,
            scratch: vec![],
        }
    }

    fn normalise(&mut self, obs: &mut [f32]) {
        if self.update {
            self.scratch.clear();
            self.scratch.extend(obs.iter().map(|&x| x as f64));
            self.stats.update(&self.scratch);
        }
        for (i, o) in obs.iter_mut().enumerate() {
            *o = ((*o as f64 - self.stats.mean[i]) / (self.stats.var[i] + 1e-8).sqrt()) as f32;
        }
    }
}

impl<E: Env> Env for NormalizeObservation<E> {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }
    fn reset(
        &mut self,
        seed: Option<u64>,
        options: Option<&Json>,
    ) -> Result<(Value, Info), EnvError> {
        let (mut obs, info) = self.inner.reset(seed, options)?;
        if let Value::Box(x) = &mut obs {
            self.normalise(x);
        }
        Ok((obs, info))
    }
    fn step(&mut self, action: &Value) -> Result<Step, EnvError> {
        let mut s = self.inner.step(action)?;
        if let Value::Box(x) = &mut s.obs {
            self.normalise(x);
        }
        Ok(s)
    }
    fn action_mask(&self) -> Option<&[bool]> {
        self.inner.action_mask()
    }
    fn close(&mut self) {
        self.inner.close()
    }
}

/// Scales rewards by the running standard deviation of the discounted return
/// (Gymnasium's `NormalizeReward`).
pub struct NormalizeReward<E: Env> {
    inner: E,
    /// The normaliser (one env).
    pub normalizer: RewardNormalizer,
}

impl<E: Env> NormalizeReward<E> {
    /// Wraps `inner` with discount `gamma`.
    pub fn new(inner: E, gamma: f64) -> Self {
        NormalizeReward {
            inner,
            normalizer: RewardNormalizer::new(1, gamma),
        }
    }
}

/// Gymnasium's reward normalisation (`NormalizeReward`, scalar and vector forms),
/// written once for the wrapper and for learners that step a vector env: each
/// env's discounted return `G ← γ·G·(1 − terminated) + r` feeds one shared
/// [`RunningMeanStd`], and the reward is divided by its standard deviation.
///
/// The return is cut on termination only: a truncated episode's return runs on into
/// the next one, as in Gymnasium (truncation is an outside limit, not the end of the
/// MDP's discounting).
#[derive(Clone, Debug, PartialEq)]
pub struct RewardNormalizer {
    /// Statistics of the discounted return, over all envs.
    pub stats: RunningMeanStd,
    gamma: f64,
    discounted: Vec<f64>,
}

impl RewardNormalizer {
    /// A normaliser for `num_envs` envs with discount `gamma`.
    pub fn new(num_envs: usize, gamma: f64) -> Self {
        RewardNormalizer {
            stats: RunningMeanStd::new(1),
            gamma,
            discounted: vec![0.0; num_envs],
        }
    }

    /// The normalised reward of env `i`'s step.
    pub fn normalize(&mut self, i: usize, reward: f64, terminated: bool) -> f64 {
        let keep = if terminated { 0.0 } else { 1.0 };
        self.discounted[i] = self.discounted[i] * self.gamma * keep + reward;
        self.stats.update(&[self.discounted[i]]);
        reward / (self.stats.var[0] + 1e-8).sqrt()
    }

    /// Forgets the envs' running returns (not the statistics), for a learner that
    /// resets all its envs.
    pub fn forget_returns(&mut self) {
        self.discounted.fill(0.0);
    }
}

impl<E: Env> Env for NormalizeReward<E> {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }
    fn reset(
        &mut self,
        seed: Option<u64>,
        options: Option<&Json>,
    ) -> Result<(Value, Info), EnvError> {
        self.inner.reset(seed, options)
    }
    fn step(&mut self, action: &Value) -> Result<Step, EnvError> {
        let mut s = self.inner.step(action)?;
        s.reward = self.normalizer.normalize(0, s.reward, s.terminated);
        Ok(s)
    }
    fn action_mask(&self) -> Option<&[bool]> {
        self.inner.action_mask()
    }
    fn close(&mut self) {
        self.inner.close()
    }
}

/// Lets every element of the action space be taken, as Gymnasium's contract has it
/// (masks are advice to learners such as sb3-contrib's MaskablePPO): a choice the mask
/// rules out becomes the first allowed choice of its dimension (Healing-v0: the
/// no-op). Without it a masked action is an error ([`EnvError::MaskedAction`]), which
/// is what hale's own learners and evaluation want.
pub struct MaskedFallback<E: Env> {
    inner: E,
}

impl<E: Env> MaskedFallback<E> {
    /// Wraps `inner`.
    pub fn new(inner: E) -> Self {
        MaskedFallback { inner }
    }

    /// `action` with every masked-out choice replaced by the first allowed one.
    fn allowed(&self, action: &Value) -> Option<Value> {
        let mask = self.inner.action_mask()?;
        let first = |m: &[bool]| m.iter().position(|&ok| ok).unwrap_or(0) as i64;
        let ok = |m: &[bool], a: i64| usize::try_from(a).ok().and_then(|a| m.get(a)) == Some(&true);
        match (self.inner.action_space(), action) {
            (Space::Discrete { .. }, Value::Discrete(a)) if !ok(mask, *a) => {
                Some(Value::Discrete(first(mask)))
            }
            (Space::MultiDiscrete { nvec }, Value::MultiDiscrete(a)) if a.len() == nvec.len() => {
                let mut offset = 0;
                let mut changed = false;
                let fixed = a
                    .iter()
                    .zip(nvec)
                    .map(|(&x, &n)| {
                        let m = &mask[offset..offset + n as usize];
                        offset += n as usize;
                        if ok(m, x) {
                            x
                        } else {
                            changed = true;
                            first(m)
                        }
                    })
                    .collect();
                changed.then_some(Value::MultiDiscrete(fixed))
            }
            _ => None,
        }
    }
}

impl<E: Env> Env for MaskedFallback<E> {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn observation_space(&self) -> &Space {
        self.inner.observation_space()
    }
    fn action_space(&self) -> &Space {
        self.inner.action_space()
    }
    fn reset(
        &mut self,
        seed: Option<u64>,
        options: Option<&Json>,
    ) -> Result<(Value, Info), EnvError> {
        self.inner.reset(seed, options)
    }
    fn step(&mut self, action: &Value) -> Result<Step, EnvError> {
        match self.allowed(action) {
            Some(a) => self.inner.step(&a),
            None => self.inner.step(action),
        }
    }
    fn step_into(&mut self, action: &Value, obs: ObsSlot<'_>) -> Result<StepInto, EnvError> {
        match self.allowed(action) {
            Some(a) => self.inner.step_into(&a, obs),
            None => self.inner.step_into(action, obs),
        }
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: ObsSlot<'_>) -> Result<Info, EnvError> {
        self.inner.reset_into(seed, obs)
    }
    fn action_mask(&self) -> Option<&[bool]> {
        self.inner.action_mask()
    }
    fn close(&mut self) {
        self.inner.close()
    }
}

impl Env for Box<dyn Env> {
    fn id(&self) -> &str {
        (**self).id()
    }
    fn observation_space(&self) -> &Space {
        (**self).observation_space()
    }
    fn action_space(&self) -> &Space {
        (**self).action_space()
    }
    fn reset(
        &mut self,
        seed: Option<u64>,
        options: Option<&Json>,
    ) -> Result<(Value, Info), EnvError> {
        (**self).reset(seed, options)
    }
    fn step(&mut self, action: &Value) -> Result<Step, EnvError> {
        (**self).step(action)
    }
    fn action_mask(&self) -> Option<&[bool]> {
        (**self).action_mask()
    }
    fn close(&mut self) {
        (**self).close()
    }
    fn step_into(&mut self, action: &Value, obs: ObsSlot<'_>) -> Result<StepInto, EnvError> {
        (**self).step_into(action, obs)
    }
    fn reset_into(&mut self, seed: Option<u64>, obs: ObsSlot<'_>) -> Result<Info, EnvError> {
        (**self).reset_into(seed, obs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Healing-v0 refuses a masked-out remedy; under `MaskedFallback` the same action
    /// is the no-op, step for step (the same observation and reward as taking it).
    #[test]
    fn masked_fallback_turns_a_masked_action_into_the_first_allowed_one() {
        let config = serde_json::json!({"scenario": "three-tier", "episode_s": 120});
        let mut plain = crate::make("Healing-v0", &config).unwrap();
        let mut wrapped = MaskedFallback::new(crate::make("Healing-v0", &config).unwrap());
        plain.reset(Some(3), None).unwrap();
        wrapped.reset(Some(3), None).unwrap();
        let mask = plain.action_mask().unwrap().to_vec();
        let masked = mask
            .iter()
            .position(|&ok| !ok)
            .expect("an empty slot is masked") as i64;
        let first = mask.iter().position(|&ok| ok).unwrap() as i64;
        assert!(matches!(
            plain.step(&Value::Discrete(masked)),
            Err(EnvError::MaskedAction { .. })
        ));
        let fell_back = wrapped.step(&Value::Discrete(masked)).unwrap();
        let taken = plain.step(&Value::Discrete(first)).unwrap();
        assert_eq!(fell_back, taken);
    }

    #[test]
    fn running_stats_match_the_batch_mean_and_variance() {
        let xs = [1.0, 4.0, -2.0, 8.0, 0.5];
        let mut s = RunningMeanStd::new(1);
        for x in xs {
            s.update(&[x]);
        }
        let mean = xs.iter().sum::<f64>() / 5.0;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 5.0;
        // The 1e-4 prior count shifts the figures by about 1e-4 relative.
        assert!(
            (s.mean[0] - mean).abs() < 1e-3 && (s.var[0] - var).abs() < 1e-2,
            "{s:?}"
        );
    }
}
