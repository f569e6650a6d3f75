//! `hale.evaluate`: policies run on the same seeds and compared, paired, with the
//! bookkeeping of `hale eval` (`hale_policies::eval`), so the figures are the same.

use crate::convert::{action_from_py, obs_to_py};
use crate::{env_err, parse_config};
use hale_envs::Env;
use hale_policies::eval::{COLUMNS, Episode, config_for, play, resolve_config, summarise};
use hale_policies::{Policy, PolicyContext, PolicySource, PolicySpec};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rayon::prelude::*;

/// A policy to evaluate: hale's (a baseline or a bundle) or a Python callable
/// `f(obs, mask) -> action`.
enum Kind {
    Native(PolicySpec),
    Python(Py<PyAny>),
}

/// Makes hale's policy `spec` for `env`.
fn native_policy(
    env_id: &str,
    config: &serde_json::Value,
    spec: &PolicySpec,
    env: &dyn Env,
) -> Result<Box<dyn Policy>, String> {
    let ctx = PolicyContext::new(env_id, config, env).map_err(|e| e.to_string())?;
    match &spec.source {
        PolicySource::Baseline(name) => hale_policies::make_policy(name, &ctx)
            .map_err(|e| e.to_string())
            .map(|mut p| {
                p.reset();
                p
            }),
        #[cfg(feature = "bundles")]
        PolicySource::Bundle(_) => {
            hale_policies::load_policy(spec, &ctx, &burn::prelude::Device::flex())
                .map_err(|e| e.to_string())
        }
        #[cfg(not(feature = "bundles"))]
        PolicySource::Bundle(dir) => Err(format!(
            "{}: this build of hale has no policy bundles (build the package with the \
             `bundles` feature, or export the bundle with --onnx and wrap it as a callable)",
            dir.display()
        )),
    }
}

/// One episode of hale's policy `spec` on `seed`.
fn native_episode(
    env_id: &str,
    config: &serde_json::Value,
    spec: &PolicySpec,
    (episode, seed): (usize, u64),
) -> Result<Episode, String> {
    let mut env = hale_envs::make(env_id, config).map_err(|e| e.to_string())?;
    let mut pi = native_policy(env_id, config, spec, env.as_ref())?;
    play(env.as_mut(), &spec.label, (episode, seed), |obs, mask| {
        pi.act(obs, mask).map_err(|e| e.to_string())
    })
    .map_err(|e| e.to_string())
}

/// One episode of a Python callable on `seed` (the GIL held: it calls Python).
fn python_episode(
    py: Python<'_>,
    env_id: &str,
    config: &serde_json::Value,
    (label, f): (&str, &Py<PyAny>),
    (episode, seed): (usize, u64),
) -> PyResult<Episode> {
    let mut env = hale_envs::make(env_id, config).map_err(env_err)?;
    let (obs_space, act_space) = (env.observation_space().clone(), env.action_space().clone());
    let act = |obs: &hale_envs::Value, mask: Option<&[bool]>| -> PyResult<hale_envs::Value> {
        let mask = mask
            .map(|m| numpy::PyArray1::from_slice(py, m).into_any())
            .unwrap_or_else(|| py.None().into_bound(py));
        let action = f.bind(py).call1((obs_to_py(py, &obs_space, obs)?, mask))?;
        action_from_py(env_id, &act_space, &action)
    };
    play(env.as_mut(), label, (episode, seed), |obs, mask| {
        act(obs, mask).map_err(|e| e.to_string())
    })
    .map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// Runs `episodes` episodes of every policy on seeds `seed`, `seed + 1`, … (the same
/// seeds for all, as `hale eval`) and compares them, paired against the first.
/// `policies`: `[(label, spec)]`, `spec` a baseline name, a bundle folder or a callable
/// `f(obs, mask) -> action`; an empty label takes hale's (the baseline's name, the
/// bundle's algorithm). Returns `(config_json, summary_json, episodes, notes)`:
/// the resolved env config, the summary as `hale eval` writes it, one dict per
/// episode (episodes.csv's columns), and notes for the user.
#[pyfunction]
#[pyo3(signature = (env_id, config_json, policies, episodes, seed))]
#[allow(clippy::type_complexity)]
pub(crate) fn evaluate<'py>(
    py: Python<'py>,
    env_id: &str,
    config_json: &str,
    policies: Vec<(String, Bound<'py, PyAny>)>,
    episodes: usize,
    seed: u64,
) -> PyResult<(String, String, Vec<Bound<'py, PyDict>>, Vec<String>)> {
    if policies.is_empty() {
        return Err(PyValueError::new_err("policies: give at least one"));
    }
    if episodes < 2 {
        return Err(PyValueError::new_err(
            "episodes must be at least 2 for confidence intervals",
        ));
    }
    if seed.checked_add(episodes as u64).is_none() {
        return Err(PyValueError::new_err(format!(
            "seed {seed} + {episodes} episodes overflows a 64-bit seed"
        )));
    }
    let mut kinds = vec![];
    for (label, p) in &policies {
        let (label, kind) = if let Ok(text) = p.extract::<String>() {
            let mut spec = PolicySpec::parse(&text);
            if !label.is_empty() {
                spec.label = label.clone();
            }
            (spec.label.clone(), Kind::Native(spec))
        } else if p.is_callable() {
            (label.clone(), Kind::Python(p.clone().unbind()))
        } else {
            return Err(PyValueError::new_err(format!(
                "policy {label}: {} is neither a baseline name, a bundle folder nor a callable",
                p.repr()?
            )));
        };
        if kinds.iter().any(|(l, _): &(String, Kind)| *l == label) {
            return Err(PyValueError::new_err(format!(
                "two policies are labelled {label:?}: give them distinct labels ({{label: policy}})"
            )));
        }
        kinds.push((label, kind));
    }
    let specs: Vec<PolicySpec> = kinds
        .iter()
        .filter_map(|(_, k)| match k {
            Kind::Native(s) => Some(s.clone()),
            Kind::Python(_) => None,
        })
        .collect();
    let requested = parse_config(config_json)?;
    let (config, notes) = resolve_config(env_id, requested, "the config given", &specs)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let configs: Vec<serde_json::Value> = kinds
        .iter()
        .map(|(_, k)| match k {
            Kind::Native(s) => config_for(&config, s),
            Kind::Python(_) => config.clone(),
        })
        .collect();
    // Every policy must fit before anything runs.
    for ((_, kind), cfg) in kinds.iter().zip(&configs) {
        let probe = hale_envs::make(env_id, cfg).map_err(env_err)?;
        if let Kind::Native(spec) = kind {
            native_policy(env_id, cfg, spec, probe.as_ref()).map_err(PyValueError::new_err)?;
        }
    }
    // hale's policies run in parallel without the GIL; Python's one after another.
    let native_jobs: Vec<(usize, usize)> = kinds
        .iter()
        .enumerate()
        .filter(|(_, (_, k))| matches!(k, Kind::Native(_)))
        .flat_map(|(p, _)| (0..episodes).map(move |e| (p, e)))
        .collect();
    let native: Vec<(usize, Episode)> = py
        .detach(|| {
            native_jobs
                .par_iter()
                .map(|&(p, e)| {
                    let Kind::Native(spec) = &kinds[p].1 else {
                        unreachable!("native jobs hold native policies")
                    };
                    native_episode(env_id, &configs[p], spec, (e, seed + e as u64))
                        .map(|ep| (p, ep))
                })
                .collect::<Result<Vec<_>, String>>()
        })
        .map_err(PyRuntimeError::new_err)?;
    let mut by_policy: Vec<Vec<Episode>> = vec![vec![]; kinds.len()];
    for (p, ep) in native {
        by_policy[p].push(ep);
    }
    for (p, (label, kind)) in kinds.iter().enumerate() {
        if let Kind::Python(f) = kind {
            for e in 0..episodes {
                by_policy[p].push(python_episode(
                    py,
                    env_id,
                    &configs[p],
                    (label, f),
                    (e, seed + e as u64),
                )?);
            }
        }
    }
    let labels: Vec<String> = kinds.iter().map(|(l, _)| l.clone()).collect();
    let refs: Vec<Vec<&Episode>> = by_policy.iter().map(|v| v.iter().collect()).collect();
    let services = hale_policies::eval::service_names(env_id, &config).map_err(env_err)?;
    let summary = summarise(env_id, &labels, &refs, &services);
    let mut rows = vec![];
    for ep in by_policy.iter().flatten() {
        let d = PyDict::new(py);
        d.set_item("policy", &ep.policy)?;
        for c in COLUMNS {
            let v = (c.get)(ep);
            if c.count {
                d.set_item(c.name, v as u64)?;
            } else {
                d.set_item(c.name, v)?;
            }
        }
        rows.push(d);
    }
    Ok((config.to_string(), summary.to_string(), rows, notes))
}

/// hale's baseline names.
#[pyfunction]
pub(crate) fn baselines() -> Vec<&'static str> {
    hale_policies::BASELINES.to_vec()
}
