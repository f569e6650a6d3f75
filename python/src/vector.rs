//! hale's rayon vector env for Python: N sub-envs stepped in parallel with the GIL
//! released, results copied into fresh NumPy arrays.

use crate::convert::{actions_from_py, box_shape, graph_to_py, info_to_py};
use crate::{env_err, parse_config, space_json};
use hale_envs::{AutoReset, Info, Space, VectorEnv};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::IntoPyObjectExt;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::sync::Mutex;

/// `num_envs` copies of one registered env.
#[pyclass(name = "VectorEnv", module = "hale._hale")]
pub(crate) struct PyVectorEnv {
    inner: Mutex<VectorEnv>,
    id: String,
    observation_space: Space,
    action_space: Space,
    num_envs: usize,
    has_mask: bool,
}

/// What a step or reset returns besides the observations.
type Batch<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<bool>>,
    Bound<'py, PyArray1<bool>>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
);

impl PyVectorEnv {
    fn inner(&self) -> std::sync::MutexGuard<'_, VectorEnv> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Observations `[n, *shape]` from `flat` (a box env), or a list of graph triples.
    fn batch_obs<'py>(
        &self,
        py: Python<'py>,
        v: &VectorEnv,
        final_obs: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        if v.graph_observations() {
            let graphs = if final_obs {
                &v.final_graphs
            } else {
                &v.graphs
            };
            let items = graphs
                .iter()
                .map(|g| graph_to_py(py, &self.observation_space, g))
                .collect::<PyResult<Vec<_>>>()?;
            return Ok(PyList::new(py, items)?.into_any());
        }
        let flat = if final_obs { &v.final_obs } else { &v.obs };
        let mut shape = vec![self.num_envs];
        shape.extend(box_shape(&self.observation_space, v.obs_dim()));
        Ok(PyArray1::from_slice(py, flat).reshape(shape)?.into_any())
    }

    /// Infos as a list of dicts, or `None` where every sub-env's is empty (CartPole).
    fn infos<'py>(&self, py: Python<'py>, infos: &[Info]) -> PyResult<Bound<'py, PyAny>> {
        if infos.iter().all(|i| *i == Info::default()) {
            return Ok(py.None().into_bound(py));
        }
        let items = infos
            .iter()
            .map(|i| info_to_py(py, i))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(PyList::new(py, items)?.into_any())
    }

    fn batch<'py>(&self, py: Python<'py>, v: &VectorEnv, stepped: bool) -> PyResult<Batch<'py>> {
        let same_step_final = stepped
            && v.mode() == AutoReset::SameStep
            && v.terminated.iter().zip(&v.truncated).any(|(a, b)| *a || *b);
        Ok((
            self.batch_obs(py, v, false)?,
            PyArray1::from_slice(py, &v.rewards),
            PyArray1::from_slice(py, &v.terminated),
            PyArray1::from_slice(py, &v.truncated),
            self.infos(py, &v.infos)?,
            if same_step_final {
                self.batch_obs(py, v, true)?
            } else {
                py.None().into_bound(py)
            },
        ))
    }
}

#[pymethods]
impl PyVectorEnv {
    /// `num_envs` copies of env `id` made with `config_json`; `autoreset` is
    /// `next-step` (Gymnasium's default) or `same-step`; `masked_fallback` as `Env`'s.
    #[new]
    fn new(
        id: &str,
        config_json: &str,
        num_envs: usize,
        autoreset: &str,
        masked_fallback: bool,
    ) -> PyResult<Self> {
        let mode = match autoreset {
            "next-step" => AutoReset::NextStep,
            "same-step" => AutoReset::SameStep,
            other => {
                return Err(PyValueError::new_err(format!(
                    "autoreset: {other:?} is not a mode hale has (next-step, same-step)"
                )));
            }
        };
        let mut v =
            VectorEnv::make(id, &parse_config(config_json)?, num_envs, mode).map_err(env_err)?;
        if masked_fallback {
            v.fall_back_on_masked_actions();
        }
        Ok(PyVectorEnv {
            has_mask: v.single_env().action_mask().is_some(),
            id: id.into(),
            observation_space: v.single_env().observation_space().clone(),
            action_space: v.single_env().action_space().clone(),
            num_envs,
            inner: Mutex::new(v),
        })
    }

    /// One sub-env's observation space, as JSON.
    #[getter]
    fn observation_space_json(&self) -> String {
        space_json(&self.observation_space)
    }

    /// One sub-env's action space, as JSON.
    #[getter]
    fn action_space_json(&self) -> String {
        space_json(&self.action_space)
    }

    /// Resets every sub-env (sub-env i with `seed + i`): `(obs, rewards, terminated,
    /// truncated, infos, None)`, the last five as a step's.
    #[pyo3(signature = (seed=None))]
    fn reset<'py>(&self, py: Python<'py>, seed: Option<u64>) -> PyResult<Batch<'py>> {
        let mut guard = self.inner();
        let v: &mut VectorEnv = &mut guard;
        py.detach(|| v.reset(seed)).map_err(env_err)?;
        self.batch(py, v, false)
    }

    /// Steps every sub-env with its row of `actions`: `(obs, rewards, terminated,
    /// truncated, infos, final_obs)`; `infos` is a list of dicts or `None` where all
    /// are empty; `final_obs` (same-step autoreset, where an episode ended) holds the
    /// episodes' last observations in the rows that ended, else `None`.
    fn step<'py>(&self, py: Python<'py>, actions: &Bound<'py, PyAny>) -> PyResult<Batch<'py>> {
        let actions = actions_from_py(&self.id, &self.action_space, self.num_envs, actions)?;
        let mut guard = self.inner();
        let v: &mut VectorEnv = &mut guard;
        py.detach(|| v.step(&actions)).map_err(env_err)?;
        self.batch(py, v, true)
    }

    /// The sub-envs' action masks `[num_envs, mask_len]`, or `None` where the env has
    /// none.
    fn action_masks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = self.inner();
        if !self.has_mask || v.masks.is_empty() {
            return Ok(py.None().into_bound(py));
        }
        let width = v.masks.len() / self.num_envs;
        PyArray1::from_slice(py, &v.masks)
            .reshape([self.num_envs, width])?
            .into_bound_py_any(py)
    }
}
