//! Values across the boundary: observations to NumPy, actions from Python, infos to
//! dicts.

use hale_envs::{GraphValue, Info, Space, Value};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::IntoPyObjectExt;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::Value as Json;

/// A box's shape, or `[len]` where the space is not a box.
pub(crate) fn box_shape(space: &Space, len: usize) -> Vec<usize> {
    match space {
        Space::Box { shape, .. } => shape.clone(),
        _ => vec![len],
    }
}

/// A graph as `(nodes [n, F] float32, edges [e, Fe] float32 or None, edge_links [e, 2]
/// int64)`, Gymnasium's `GraphInstance` fields.
pub(crate) fn graph_to_py<'py>(
    py: Python<'py>,
    space: &Space,
    g: &GraphValue,
) -> PyResult<Bound<'py, PyAny>> {
    let Space::Graph {
        node_features,
        edge_features,
    } = space
    else {
        return Err(PyValueError::new_err("a graph value outside a Graph space"));
    };
    let nodes = PyArray1::from_slice(py, &g.nodes)
        .reshape([g.nodes.len() / (*node_features).max(1), *node_features])?;
    let edges = if *edge_features == 0 {
        py.None().into_bound(py)
    } else {
        PyArray1::from_slice(py, &g.edges)
            .reshape([g.links.len(), *edge_features])?
            .into_any()
    };
    let links: Vec<i64> = g.links.iter().flat_map(|l| l.map(i64::from)).collect();
    let links = PyArray1::from_vec(py, links).reshape([g.links.len(), 2])?;
    (nodes, edges, links).into_bound_py_any(py)
}

/// An observation as a fresh NumPy array (a graph as [`graph_to_py`]'s triple).
pub(crate) fn obs_to_py<'py>(
    py: Python<'py>,
    space: &Space,
    obs: &Value,
) -> PyResult<Bound<'py, PyAny>> {
    match obs {
        Value::Box(x) => Ok(PyArray1::from_slice(py, x)
            .reshape(box_shape(space, x.len()))?
            .into_any()),
        Value::Discrete(a) => a.into_bound_py_any(py),
        Value::MultiDiscrete(a) => Ok(PyArray1::from_slice(py, a).into_any()),
        Value::Graph(g) => graph_to_py(py, space, g),
    }
}

/// A Python action (an int or NumPy integer for Discrete, a sequence or array of ints
/// for MultiDiscrete, of floats for Box) as hale's [`Value`]. Whether it lies in the
/// space is the env's to say, with its own message.
pub(crate) fn action_from_py(id: &str, space: &Space, a: &Bound<'_, PyAny>) -> PyResult<Value> {
    let bad = |e: PyErr| {
        PyValueError::new_err(format!(
            "{id}: invalid action: {} is not an action of {space} ({e})",
            a.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    };
    Ok(match space {
        Space::Discrete { .. } => Value::Discrete(a.extract::<i64>().map_err(bad)?),
        Space::MultiDiscrete { .. } => {
            if let Ok(arr) = a.extract::<PyReadonlyArray1<'_, i64>>() {
                Value::MultiDiscrete(arr.as_slice().map_err(|e| bad(e.into()))?.to_vec())
            } else {
                Value::MultiDiscrete(a.extract::<Vec<i64>>().map_err(bad)?)
            }
        }
        Space::Box { .. } => {
            if let Ok(arr) = a.extract::<numpy::PyReadonlyArrayDyn<'_, f32>>() {
                Value::Box(arr.as_array().iter().copied().collect())
            } else {
                Value::Box(a.extract::<Vec<f32>>().map_err(bad)?)
            }
        }
        Space::Graph { .. } => {
            return Err(PyValueError::new_err(format!(
                "{id}: graph actions are not supported"
            )));
        }
    })
}

/// Actions of a vector env as values: `actions` is an array of `n` rows.
pub(crate) fn actions_from_py(
    id: &str,
    space: &Space,
    n: usize,
    actions: &Bound<'_, PyAny>,
) -> PyResult<Vec<Value>> {
    let wrong = |got: String| {
        PyValueError::new_err(format!(
            "{id}: invalid actions: expected {n} actions of {space}, got {got}"
        ))
    };
    match space {
        Space::Discrete { .. } => {
            let arr = actions
                .extract::<PyReadonlyArray1<'_, i64>>()
                .map_err(|e| wrong(e.to_string()))?;
            let a = arr.as_array();
            if a.len() != n {
                return Err(wrong(format!("an array of shape {:?}", arr.shape())));
            }
            Ok(a.iter().map(|&x| Value::Discrete(x)).collect())
        }
        Space::MultiDiscrete { nvec } => {
            let arr = actions
                .extract::<numpy::PyReadonlyArray2<'_, i64>>()
                .map_err(|e| wrong(e.to_string()))?;
            if arr.shape() != [n, nvec.len()] {
                return Err(wrong(format!("an array of shape {:?}", arr.shape())));
            }
            Ok(arr
                .as_array()
                .rows()
                .into_iter()
                .map(|r| Value::MultiDiscrete(r.to_vec()))
                .collect())
        }
        Space::Box { low, .. } => {
            let arr = actions
                .extract::<numpy::PyReadonlyArrayDyn<'_, f32>>()
                .map_err(|e| wrong(e.to_string()))?;
            let flat: Vec<f32> = arr.as_array().iter().copied().collect();
            if arr.shape().first() != Some(&n) || flat.len() != n * low.len() {
                return Err(wrong(format!("an array of shape {:?}", arr.shape())));
            }
            Ok(flat
                .chunks(low.len().max(1))
                .map(|c| Value::Box(c.to_vec()))
                .collect())
        }
        Space::Graph { .. } => Err(PyValueError::new_err(format!(
            "{id}: graph actions are not supported"
        ))),
    }
}

/// A JSON value as Python: objects as dicts, arrays as lists, integers as ints, other
/// numbers as floats.
pub(crate) fn json_to_py<'py>(py: Python<'py>, v: &Json) -> PyResult<Bound<'py, PyAny>> {
    match v {
        Json::Null => Ok(py.None().into_bound(py)),
        Json::Bool(b) => b.into_bound_py_any(py),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_bound_py_any(py),
            (None, Some(u)) => u.into_bound_py_any(py),
            _ => n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py),
        },
        Json::String(s) => s.into_bound_py_any(py),
        Json::Array(a) => {
            let items = a
                .iter()
                .map(|x| json_to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyList::new(py, items)?.into_any())
        }
        Json::Object(m) => {
            let d = PyDict::new(py);
            for (k, x) in m {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            Ok(d.into_any())
        }
    }
}

/// Info keys (at any depth) whose values hold one number per service, in scenario
/// order: a fixed length over an env's life, so they cross as NumPy arrays (`int64`
/// where every entry is an integer, else `float64`), which Gymnasium's vector form
/// stacks into `[num_envs, services]`. The other lists (`ttr_s`, `ttr_kinds`: one entry
/// per fault resolved in the step) stay lists.
pub(crate) const PER_SERVICE: [&str; 5] = [
    "desired",
    "cpu_used_core_s",
    "cpu_requested_core_s",
    "memory_used_mib_s",
    "memory_requested_mib_s",
];

/// The numbers of a JSON array as integers, where every one is an integer.
pub(crate) fn json_ints(a: &[Json]) -> Option<Vec<i64>> {
    a.iter().map(Json::as_i64).collect()
}

/// The numbers of a JSON array as floats (a non-number as NaN).
pub(crate) fn json_floats(a: &[Json]) -> Vec<f64> {
    a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()
}

/// An info's JSON object as a dict, [`PER_SERVICE`] arrays as NumPy arrays.
fn info_object_to_py<'py>(
    py: Python<'py>,
    m: &serde_json::Map<String, Json>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, x) in m {
        let value = match x {
            Json::Object(inner) => info_object_to_py(py, inner)?.into_any(),
            Json::Array(a) if PER_SERVICE.contains(&k.as_str()) => match json_ints(a) {
                Some(ints) => PyArray1::from_vec(py, ints).into_any(),
                None => PyArray1::from_vec(py, json_floats(a)).into_any(),
            },
            _ => json_to_py(py, x)?,
        };
        d.set_item(k, value)?;
    }
    Ok(d)
}

/// An info as a dict: Gymnasium's `info`, one key per field that is set (the
/// `episode` statistics under `"episode"`, as `RecordEpisodeStatistics` puts them).
pub(crate) fn info_to_py<'py>(py: Python<'py>, info: &Info) -> PyResult<Bound<'py, PyAny>> {
    match info.to_json() {
        Json::Object(m) if *info != Info::default() => Ok(info_object_to_py(py, &m)?.into_any()),
        _ => Ok(PyDict::new(py).into_any()),
    }
}
