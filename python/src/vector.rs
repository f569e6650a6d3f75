//! hale's rayon vector env for Python: N sub-envs stepped in parallel with the GIL
//! released, results copied into fresh NumPy arrays.

use crate::convert::{
    PER_SERVICE, actions_from_py, box_shape, graph_to_py, json_floats, json_ints, json_to_py,
};
use crate::{env_err, parse_config, space_json};
use hale_envs::{AutoReset, Info, Space, VectorEnv};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::IntoPyObjectExt;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rayon::prelude::*;
use serde_json::Value as Json;
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

    /// Infos in Gymnasium's vector form (see [`vector_infos`]), or `None` where every
    /// sub-env's is empty (CartPole). With same-step autoreset, a sub-env whose episode
    /// just ended has its step's info under `final_info` (its reset's info is dropped).
    fn infos<'py>(
        &self,
        py: Python<'py>,
        infos: &[Info],
        ended: Option<&[bool]>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if infos.iter().all(|i| *i == Info::default()) && ended.is_none() {
            return Ok(py.None().into_bound(py));
        }
        // Serialising the infos is pure Rust: done in parallel, without the GIL.
        let json: Vec<Json> = py.detach(|| {
            infos
                .par_iter()
                .enumerate()
                .map(|(i, info)| {
                    let j = if *info == Info::default() {
                        Json::Object(Default::default())
                    } else {
                        info.to_json()
                    };
                    match ended {
                        Some(e) if e[i] => serde_json::json!({ "final_info": j }),
                        _ => j,
                    }
                })
                .collect()
        });
        let refs: Vec<Option<&Json>> = json.iter().map(Some).collect();
        Ok(vector_infos(py, &refs)?.into_any())
    }

    fn batch<'py>(&self, py: Python<'py>, v: &VectorEnv, stepped: bool) -> PyResult<Batch<'py>> {
        let same_step_final = stepped
            && v.mode() == AutoReset::SameStep
            && v.terminated.iter().zip(&v.truncated).any(|(a, b)| *a || *b);
        let ended: Option<Vec<bool>> = same_step_final.then(|| {
            v.terminated
                .iter()
                .zip(&v.truncated)
                .map(|(a, b)| *a || *b)
                .collect()
        });
        Ok((
            self.batch_obs(py, v, false)?,
            PyArray1::from_slice(py, &v.rewards),
            PyArray1::from_slice(py, &v.terminated),
            PyArray1::from_slice(py, &v.truncated),
            self.infos(py, &v.infos, ended.as_deref())?,
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

/// Per-sub-env infos (JSON objects, one per sub-env) in Gymnasium's vector form, as
/// `VectorEnv._add_info` builds it: each key maps to an array over the sub-envs and
/// `_key` to a bool array saying which sub-envs have it; a nested dict is the same form
/// again. The array's type follows the first sub-env that has the key: `bool`, `int64`
/// for integers, `float64` for other numbers, `[n, services]` for a [`PER_SERVICE`]
/// array, else objects (lists, strings, `None`). Built in Rust, it costs a fraction of assembling it in Python.
fn vector_infos<'py>(py: Python<'py>, infos: &[Option<&Json>]) -> PyResult<Bound<'py, PyDict>> {
    use numpy::PyArray1;
    let out = PyDict::new(py);
    let mut keys: Vec<&String> = vec![];
    for m in infos.iter().flatten().filter_map(|i| i.as_object()) {
        for k in m.keys() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    for key in keys {
        let values: Vec<Option<&Json>> = infos.iter().map(|i| i.and_then(|i| i.get(key))).collect();
        let mask: Vec<bool> = values.iter().map(Option::is_some).collect();
        let first = values.iter().flatten().next();
        let array = match first {
            Some(Json::Object(_)) => {
                let nested: Vec<Option<&Json>> =
                    values.iter().map(|v| v.filter(|j| j.is_object())).collect();
                vector_infos(py, &nested)?.into_any()
            }
            Some(Json::Array(a)) if PER_SERVICE.contains(&key.as_str()) => {
                per_service_rows(py, key, a, &values)?
            }
            Some(Json::Bool(_)) => {
                let a: Vec<bool> = values
                    .iter()
                    .map(|v| v.and_then(Json::as_bool).unwrap_or(false))
                    .collect();
                PyArray1::from_vec(py, a).into_any()
            }
            Some(Json::Number(x)) if x.is_i64() || x.is_u64() => {
                let a: Vec<i64> = values
                    .iter()
                    .map(|v| v.and_then(Json::as_f64).map_or(0, |f| f as i64))
                    .collect();
                PyArray1::from_vec(py, a).into_any()
            }
            Some(Json::Number(_)) => {
                let a: Vec<f64> = values
                    .iter()
                    .map(|v| v.and_then(Json::as_f64).unwrap_or(0.0))
                    .collect();
                PyArray1::from_vec(py, a).into_any()
            }
            _ => {
                let items = values
                    .iter()
                    .map(|v| match v {
                        Some(j) => Ok(json_to_py(py, j)?.unbind()),
                        None => Ok(py.None()),
                    })
                    .collect::<PyResult<Vec<Py<PyAny>>>>()?;
                PyArray1::from_vec(py, items).into_any()
            }
        };
        out.set_item(key, array)?;
        out.set_item(format!("_{key}"), PyArray1::from_vec(py, mask))?;
    }
    Ok(out)
}

/// A [`PER_SERVICE`] key's values over the sub-envs as one `[n, services]` array, as
/// Gymnasium stacks the single env's arrays (its dtype the first sub-env's; a sub-env
/// without the key a row of zeros).
fn per_service_rows<'py>(
    py: Python<'py>,
    key: &str,
    first: &[Json],
    values: &[Option<&Json>],
) -> PyResult<Bound<'py, PyAny>> {
    let width = first.len();
    let rows = values.iter().map(|v| match v.and_then(|j| j.as_array()) {
        Some(a) if a.len() == width => Ok(Some(a)),
        Some(a) => Err(PyValueError::new_err(format!(
            "info {key:?}: {} entries in one sub-env and {width} in another",
            a.len()
        ))),
        None => Ok(None),
    });
    let rows = rows.collect::<PyResult<Vec<_>>>()?;
    let shape = [values.len(), width];
    if json_ints(first).is_some() {
        let flat: Vec<i64> = rows
            .iter()
            .flat_map(|r| match r {
                Some(a) => json_ints(a).unwrap_or_else(|| vec![0; width]),
                None => vec![0; width],
            })
            .collect();
        return Ok(PyArray1::from_vec(py, flat).reshape(shape)?.into_any());
    }
    let flat: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.map_or_else(|| vec![0.0; width], |a| json_floats(a)))
        .collect();
    Ok(PyArray1::from_vec(py, flat).reshape(shape)?.into_any())
}

/// Steps per second of `num_envs` copies of env `id` stepped `steps` times from Rust
/// alone, actions drawn before the clock starts: the figure that
/// `benches/scripts/python_vector.py` sets the Python one beside, from the same build.
#[pyfunction]
#[pyo3(signature = (id, config_json, num_envs, steps, seed=0))]
pub(crate) fn bench_rust(
    py: Python<'_>,
    id: &str,
    config_json: &str,
    num_envs: usize,
    steps: usize,
    seed: u64,
) -> PyResult<f64> {
    let mut v = VectorEnv::make(
        id,
        &parse_config(config_json)?,
        num_envs,
        AutoReset::NextStep,
    )
    .map_err(env_err)?;
    v.fall_back_on_masked_actions();
    let space = v.single_env().action_space().clone();
    let mut rng = hale_sim::rng::Stream::new(seed, hale_sim::rng::StreamId::Policy);
    let actions: Vec<Vec<hale_envs::Value>> = (0..steps)
        .map(|_| {
            (0..num_envs)
                .map(|_| space.sample(&mut rng, None))
                .collect()
        })
        .collect();
    py.detach(|| {
        v.reset(Some(seed))?;
        let start = std::time::Instant::now();
        for a in &actions {
            v.step(a)?;
        }
        Ok((num_envs * steps) as f64 / start.elapsed().as_secs_f64())
    })
    .map_err(env_err)
}
