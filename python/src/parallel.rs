//! A multi-agent env (`hale_envs::make_parallel`), for PettingZoo's `ParallelEnv`.

use crate::convert::{action_from_py, info_to_py, obs_to_py};
use crate::{env_err, parse_config, space_json};
use hale_envs::{AgentMap, ParallelEnv, Space, Value};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::sync::Mutex;

/// One multi-agent environment.
#[pyclass(name = "ParallelEnv", module = "hale._hale")]
pub(crate) struct PyParallelEnv {
    env: Mutex<Box<dyn ParallelEnv>>,
    id: String,
    possible: Vec<String>,
    obs_spaces: Vec<Space>,
    act_spaces: Vec<Space>,
    state_space: Space,
    masked_fallback: bool,
}

impl PyParallelEnv {
    fn env(&self) -> std::sync::MutexGuard<'_, Box<dyn ParallelEnv>> {
        self.env.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn index(&self, agent: &str) -> PyResult<usize> {
        self.possible
            .iter()
            .position(|a| a == agent)
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "{}: no agent {agent:?} (possible agents: {})",
                    self.id,
                    self.possible.join(", ")
                ))
            })
    }
}

/// A dict of per-agent values.
fn dict<'py, T>(
    py: Python<'py>,
    m: &AgentMap<T>,
    f: impl Fn(&str, &T) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in m {
        d.set_item(k, f(k, v)?)?;
    }
    Ok(d)
}

#[pymethods]
impl PyParallelEnv {
    /// Makes multi-agent env `id` with `config_json`. `masked_fallback`: a masked-out
    /// action becomes the agent's first allowed one instead of an error.
    #[new]
    fn new(id: &str, config_json: &str, masked_fallback: bool) -> PyResult<PyParallelEnv> {
        let env = hale_envs::make_parallel(id, &parse_config(config_json)?).map_err(env_err)?;
        let possible = env.possible_agents().to_vec();
        let obs_spaces = possible
            .iter()
            .map(|a| env.observation_space(a).cloned())
            .collect::<Result<_, _>>()
            .map_err(env_err)?;
        let act_spaces = possible
            .iter()
            .map(|a| env.action_space(a).cloned())
            .collect::<Result<_, _>>()
            .map_err(env_err)?;
        Ok(PyParallelEnv {
            id: id.into(),
            state_space: env.state_space().clone(),
            possible,
            obs_spaces,
            act_spaces,
            masked_fallback,
            env: Mutex::new(env),
        })
    }

    /// The env's id.
    #[getter]
    fn id(&self) -> &str {
        &self.id
    }

    /// Every agent that may act.
    #[getter]
    fn possible_agents(&self) -> Vec<String> {
        self.possible.clone()
    }

    /// The agents alive now.
    #[getter]
    fn agents(&self) -> Vec<String> {
        self.env().agents().to_vec()
    }

    /// `agent`'s observation space, as JSON.
    fn observation_space_json(&self, agent: &str) -> PyResult<String> {
        Ok(space_json(&self.obs_spaces[self.index(agent)?]))
    }

    /// `agent`'s action space, as JSON.
    fn action_space_json(&self, agent: &str) -> PyResult<String> {
        Ok(space_json(&self.act_spaces[self.index(agent)?]))
    }

    /// The state space, as JSON.
    #[getter]
    fn state_space_json(&self) -> String {
        space_json(&self.state_space)
    }

    /// The global state, a fresh array.
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.env().state().map_err(env_err)?;
        obs_to_py(py, &self.state_space, &s)
    }

    /// Starts an episode: `(observations, infos)`, dicts keyed by agent.
    #[pyo3(signature = (seed=None, options_json=None))]
    fn reset<'py>(
        &self,
        py: Python<'py>,
        seed: Option<u64>,
        options_json: Option<&str>,
    ) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
        let options = options_json.map(parse_config).transpose()?;
        let (obs, infos) = py
            .detach(|| self.env().reset(seed, options.as_ref()))
            .map_err(env_err)?;
        Ok((
            dict(py, &obs, |a, o| {
                obs_to_py(py, &self.obs_spaces[self.index(a)?], o)
            })?,
            dict(py, &infos, |_, i| info_to_py(py, i))?,
        ))
    }

    /// Advances one step with `actions` (a dict keyed by agent):
    /// `(observations, rewards, terminations, truncations, infos)`.
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &self,
        py: Python<'py>,
        actions: &Bound<'py, PyDict>,
    ) -> PyResult<(
        Bound<'py, PyDict>,
        Bound<'py, PyDict>,
        Bound<'py, PyDict>,
        Bound<'py, PyDict>,
        Bound<'py, PyDict>,
    )> {
        let mut joint = AgentMap::new();
        for (k, v) in actions.iter() {
            let agent: String = k.extract().map_err(|_| {
                PyValueError::new_err(format!(
                    "{}: action keys are agent names, got {}",
                    self.id,
                    k.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            })?;
            let i = self.index(&agent)?;
            let id = format!("{} ({agent})", self.id);
            joint.insert(agent, action_from_py(&id, &self.act_spaces[i], &v)?);
        }
        let s = py
            .detach(|| {
                let mut env = self.env();
                if self.masked_fallback {
                    for (agent, a) in joint.iter_mut() {
                        if let (Value::Discrete(x), Some(mask)) = (&*a, env.action_mask(agent))
                            && usize::try_from(*x).is_ok_and(|x| x < mask.len() && !mask[x])
                            && let Some(first) = mask.iter().position(|&m| m)
                        {
                            *a = Value::Discrete(first as i64);
                        }
                    }
                }
                env.step(&joint)
            })
            .map_err(env_err)?;
        Ok((
            dict(py, &s.obs, |a, o| {
                obs_to_py(py, &self.obs_spaces[self.index(a)?], o)
            })?,
            dict(py, &s.rewards, |_, r| Ok(r.into_pyobject(py)?.into_any()))?,
            dict(py, &s.terminations, |_, t| {
                Ok(pyo3::types::PyBool::new(py, *t).to_owned().into_any())
            })?,
            dict(py, &s.truncations, |_, t| {
                Ok(pyo3::types::PyBool::new(py, *t).to_owned().into_any())
            })?,
            dict(py, &s.infos, |_, i| info_to_py(py, i))?,
        ))
    }

    /// `agent`'s allowed actions now, a flat bool array, or `None` when all are.
    fn action_mask<'py>(
        &self,
        py: Python<'py>,
        agent: &str,
    ) -> PyResult<Option<Bound<'py, numpy::PyArray1<bool>>>> {
        self.index(agent)?;
        Ok(self
            .env()
            .action_mask(agent)
            .map(|m| numpy::PyArray1::from_slice(py, m)))
    }

    /// Releases the env's resources; harmless twice.
    fn close(&self) {
        self.env().close()
    }
}

/// Every registered multi-agent env: `[(id, description)]`.
#[pyfunction]
pub(crate) fn parallel_registry() -> Vec<(&'static str, &'static str)> {
    hale_envs::parallel_registry()
        .iter()
        .map(|s| (s.id, s.description))
        .collect()
}
