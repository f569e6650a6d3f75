//! # hale-py: hale's environments for Python
//!
//! The native module `hale._hale` (PyO3): hale's registered environments, its rayon
//! vector env and its paired evaluation, at Rust speed. It is private: the pure-Python
//! package `hale` (in `python/hale/`) wraps it as `gymnasium.Env`s and
//! `gymnasium.vector.VectorEnv`s and shapes what it returns the way Gymnasium, SB3 and
//! PettingZoo expect. What crosses the boundary:
//!
//! - spaces as JSON (hale's own serde form; Python builds the Gymnasium spaces);
//! - observations as fresh NumPy arrays on every call (`float32`, shaped as the space
//!   says), graphs as `(nodes, edges, edge_links)`;
//! - infos as dicts of Python floats, ints, bools and lists, per-service figures as
//!   NumPy arrays;
//! - multi-agent envs' per-agent values as dicts keyed by agent (PettingZoo's form);
//! - errors as `ValueError` (a bad action or config) or `RuntimeError` (a step out of
//!   order), with hale's message, which names the env and the field.
//!
//! The GIL is released while envs step, so a Python thread pool or another
//! interpreter thread runs beside them.
#![warn(missing_docs)]

mod convert;
mod evaluate;
mod parallel;
mod vector;

use convert::{action_from_py, info_to_py, obs_to_py};
use hale_envs::{Env, EnvError, Space};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::sync::Mutex;

/// hale's error as the Python exception that fits it.
pub(crate) fn env_err(e: EnvError) -> PyErr {
    match e {
        EnvError::NeedsReset(_) | EnvError::EpisodeOver(_) => {
            PyRuntimeError::new_err(e.to_string())
        }
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// Parses the JSON config the Python layer passes (`null` for the defaults).
pub(crate) fn parse_config(config_json: &str) -> PyResult<serde_json::Value> {
    serde_json::from_str(config_json)
        .map_err(|e| PyValueError::new_err(format!("config is not JSON ({e}): {config_json}")))
}

/// A space as JSON, for the Python layer to build the Gymnasium space from.
pub(crate) fn space_json(space: &Space) -> String {
    serde_json::to_string(space).unwrap_or_else(|_| "null".into())
}

/// One environment (`hale_envs::make(id, config)`).
#[pyclass(name = "Env", module = "hale._hale")]
struct PyEnv {
    env: Mutex<Box<dyn Env>>,
    id: String,
    observation_space: Space,
    action_space: Space,
}

impl PyEnv {
    fn env(&self) -> std::sync::MutexGuard<'_, Box<dyn Env>> {
        // A panic inside a step poisons the lock; the env is still the last state.
        self.env.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl PyEnv {
    /// Makes env `id` with `config_json` (a JSON object, or `null` for the defaults).
    /// `masked_fallback`: a masked-out action becomes the first allowed one (Gymnasium's
    /// contract: every element of the action space can be taken) instead of an error.
    #[new]
    fn new(id: &str, config_json: &str, masked_fallback: bool) -> PyResult<PyEnv> {
        let mut env = hale_envs::make(id, &parse_config(config_json)?).map_err(env_err)?;
        if masked_fallback {
            env = Box::new(hale_envs::wrappers::MaskedFallback::new(env));
        }
        Ok(PyEnv {
            id: id.into(),
            observation_space: env.observation_space().clone(),
            action_space: env.action_space().clone(),
            env: Mutex::new(env),
        })
    }

    /// The env's id.
    #[getter]
    fn id(&self) -> &str {
        &self.id
    }

    /// The observation space, as JSON.
    #[getter]
    fn observation_space_json(&self) -> String {
        space_json(&self.observation_space)
    }

    /// The action space, as JSON.
    #[getter]
    fn action_space_json(&self) -> String {
        space_json(&self.action_space)
    }

    /// Starts an episode: `(obs, info)`. `seed` rebuilds the env's randomness; `None`
    /// keeps it going. `options_json`: the env's reset options as a JSON object.
    #[pyo3(signature = (seed=None, options_json=None))]
    fn reset<'py>(
        &self,
        py: Python<'py>,
        seed: Option<u64>,
        options_json: Option<&str>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let options = options_json.map(parse_config).transpose()?;
        let (obs, info) = py
            .detach(|| self.env().reset(seed, options.as_ref()))
            .map_err(env_err)?;
        Ok((
            obs_to_py(py, &self.observation_space, &obs)?,
            info_to_py(py, &info)?,
        ))
    }

    /// Advances one step: `(obs, reward, terminated, truncated, info)`.
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &self,
        py: Python<'py>,
        action: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, f64, bool, bool, Bound<'py, PyAny>)> {
        let action = action_from_py(&self.id, &self.action_space, action)?;
        let s = py.detach(|| self.env().step(&action)).map_err(env_err)?;
        Ok((
            obs_to_py(py, &self.observation_space, &s.obs)?,
            s.reward,
            s.terminated,
            s.truncated,
            info_to_py(py, &s.info)?,
        ))
    }

    /// The actions allowed now as a flat bool array (Discrete: one flag per action;
    /// MultiDiscrete: one block per dimension), or `None` when all are.
    fn action_mask<'py>(&self, py: Python<'py>) -> Option<Bound<'py, numpy::PyArray1<bool>>> {
        self.env()
            .action_mask()
            .map(|m| numpy::PyArray1::from_slice(py, m))
    }

    /// Releases the env's resources; harmless twice.
    fn close(&self) {
        self.env().close()
    }
}

/// Every registered env: `[(id, description)]`.
#[pyfunction]
fn registry() -> Vec<(&'static str, &'static str)> {
    hale_envs::registry()
        .iter()
        .map(|s| (s.id, s.description))
        .collect()
}

/// The native module.
#[pymodule]
fn _hale(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEnv>()?;
    m.add_class::<vector::PyVectorEnv>()?;
    m.add_class::<parallel::PyParallelEnv>()?;
    m.add_function(wrap_pyfunction!(parallel::parallel_registry, m)?)?;
    m.add_function(wrap_pyfunction!(registry, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate::baselines, m)?)?;
    m.add_function(wrap_pyfunction!(vector::bench_rust, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("BUNDLES", cfg!(feature = "bundles"))?;
    Ok(())
}
