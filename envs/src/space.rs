//! Spaces and their elements, after Gymnasium's `gymnasium.spaces`.

use hale_sim::rng::Stream;
use serde::{Deserialize, Serialize};

/// An element of a space: an observation or an action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// An element of [`Space::Discrete`].
    Discrete(i64),
    /// An element of [`Space::MultiDiscrete`] (or a flat vector of integers).
    MultiDiscrete(Vec<i64>),
    /// An element of [`Space::Box`], flattened in row-major order.
    Box(Vec<f32>),
    /// An element of [`Space::Graph`].
    Graph(GraphValue),
}

impl Value {
    /// The flat float features of a box value (empty for other kinds).
    pub fn as_box(&self) -> &[f32] {
        match self {
            Value::Box(v) => v,
            _ => &[],
        }
    }

    /// How many floats the value takes in a flat buffer (a graph: none).
    pub fn flat_len(&self) -> usize {
        match self {
            Value::Box(v) => v.len(),
            Value::Discrete(_) => 1,
            Value::MultiDiscrete(a) => a.len(),
            Value::Graph(_) => 0,
        }
    }
}

/// A graph: node features `[nodes × node_features]`, edge features
/// `[edges × edge_features]` and edge links `[edges]` of (source, target) node indices,
/// as Gymnasium's `GraphInstance`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GraphValue {
    /// Node features, row-major.
    pub nodes: Vec<f32>,
    /// Edge features, row-major.
    pub edges: Vec<f32>,
    /// (source, target) of each edge.
    pub links: Vec<[u32; 2]>,
}

/// A set of values, with membership and sampling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Space {
    /// `{0, 1, …, n − 1}`.
    Discrete {
        /// Number of elements.
        n: u64,
    },
    /// A vector of independent discrete choices, the i-th in `0..nvec[i]`.
    MultiDiscrete {
        /// Choices per dimension.
        nvec: Vec<u64>,
    },
    /// A box of floats: `low ≤ x ≤ high` elementwise, of the given shape.
    Box {
        /// Lower bounds, flattened.
        low: Vec<f32>,
        /// Upper bounds, flattened.
        high: Vec<f32>,
        /// Shape (its product is the length of `low`).
        shape: Vec<usize>,
    },
    /// Graphs with fixed feature sizes and any number of nodes and edges.
    Graph {
        /// Features per node.
        node_features: usize,
        /// Features per edge.
        edge_features: usize,
    },
}

impl Space {
    /// A box of the given shape with the same bounds everywhere.
    pub fn uniform_box(shape: Vec<usize>, low: f32, high: f32) -> Space {
        let n = shape.iter().product();
        Space::Box {
            low: vec![low; n],
            high: vec![high; n],
            shape,
        }
    }

    /// Length of a flat float observation of this space (Box), or of the action
    /// vector (Discrete 1, MultiDiscrete its dimensions). Graphs have none.
    pub fn flat_dim(&self) -> Option<usize> {
        match self {
            Space::Discrete { .. } => Some(1),
            Space::MultiDiscrete { nvec } => Some(nvec.len()),
            Space::Box { low, .. } => Some(low.len()),
            Space::Graph { .. } => None,
        }
    }

    /// Length of an action mask for this space: `n` for Discrete, `Σ nvec` for
    /// MultiDiscrete (one block per dimension).
    pub fn mask_len(&self) -> Option<usize> {
        match self {
            Space::Discrete { n } => Some(*n as usize),
            Space::MultiDiscrete { nvec } => Some(nvec.iter().sum::<u64>() as usize),
            _ => None,
        }
    }

    /// Whether `v` is an element of this space.
    pub fn contains(&self, v: &Value) -> bool {
        match (self, v) {
            (Space::Discrete { n }, Value::Discrete(a)) => *a >= 0 && (*a as u64) < *n,
            (Space::MultiDiscrete { nvec }, Value::MultiDiscrete(a)) => {
                a.len() == nvec.len() && a.iter().zip(nvec).all(|(&x, &n)| x >= 0 && (x as u64) < n)
            }
            (Space::Box { low, high, .. }, Value::Box(x)) => {
                x.len() == low.len()
                    && x.iter()
                        .zip(low.iter().zip(high))
                        .all(|(v, (l, h))| v >= l && v <= h)
            }
            (
                Space::Graph {
                    node_features,
                    edge_features,
                },
                Value::Graph(g),
            ) => {
                let n = if *node_features == 0 {
                    0
                } else {
                    g.nodes.len() / node_features
                };
                g.nodes.len() == n * node_features
                    && g.edges.len() == g.links.len() * edge_features
                    && g.links
                        .iter()
                        .all(|&[a, b]| (a as usize) < n && (b as usize) < n)
                    && g.nodes.iter().chain(&g.edges).all(|x| x.is_finite())
            }
            _ => false,
        }
    }

    /// Why `v` is not an element, for error messages; `None` if it is one.
    pub fn explain(&self, v: &Value) -> Option<String> {
        if self.contains(v) {
            return None;
        }
        Some(match (self, v) {
            (Space::Discrete { n }, Value::Discrete(a)) => {
                format!("action {a} is outside Discrete({n})")
            }
            (Space::MultiDiscrete { nvec }, Value::MultiDiscrete(a)) if a.len() != nvec.len() => {
                format!(
                    "action has {} dimensions, MultiDiscrete has {}",
                    a.len(),
                    nvec.len()
                )
            }
            (Space::MultiDiscrete { nvec }, Value::MultiDiscrete(a)) => {
                let i = a
                    .iter()
                    .zip(nvec)
                    .position(|(&x, &n)| x < 0 || x as u64 >= n)
                    .unwrap_or(0);
                format!("action[{i}] = {} is outside 0..{}", a[i], nvec[i])
            }
            (s, v) => format!("{v:?} is not an element of {s:?}"),
        })
    }

    /// A uniform random element; with a mask, a uniform element among the allowed
    /// ones (per dimension for MultiDiscrete). A dimension with nothing allowed
    /// gives 0, as Gymnasium does.
    pub fn sample(&self, rng: &mut Stream, mask: Option<&[bool]>) -> Value {
        fn pick(rng: &mut Stream, n: usize, mask: Option<&[bool]>) -> i64 {
            match mask {
                None => rng.below(n) as i64,
                Some(m) => {
                    let allowed: Vec<usize> = (0..n).filter(|&i| m[i]).collect();
                    if allowed.is_empty() {
                        0
                    } else {
                        allowed[rng.below(allowed.len())] as i64
                    }
                }
            }
        }
        match self {
            Space::Discrete { n } => Value::Discrete(pick(rng, *n as usize, mask)),
            Space::MultiDiscrete { nvec } => {
                let mut offset = 0;
                Value::MultiDiscrete(
                    nvec.iter()
                        .map(|&n| {
                            let m = mask.map(|m| &m[offset..offset + n as usize]);
                            offset += n as usize;
                            pick(rng, n as usize, m)
                        })
                        .collect(),
                )
            }
            Space::Box { low, high, .. } => Value::Box(
                low.iter()
                    .zip(high)
                    .map(|(&l, &h)| {
                        // Unbounded sides sample from a normal, as Gymnasium does.
                        match (l.is_finite() && l > f32::MIN, h.is_finite() && h < f32::MAX) {
                            (true, true) => l + (h - l) * rng.unit() as f32,
                            (true, false) => l + rng.exp(1.0) as f32,
                            (false, true) => h - rng.exp(1.0) as f32,
                            (false, false) => rng.normal() as f32,
                        }
                    })
                    .collect(),
            ),
            Space::Graph {
                node_features,
                edge_features,
            } => {
                let n = 1 + rng.below(8);
                let e = rng.below(2 * n);
                Value::Graph(GraphValue {
                    nodes: (0..n * node_features)
                        .map(|_| rng.normal() as f32)
                        .collect(),
                    edges: (0..e * edge_features)
                        .map(|_| rng.normal() as f32)
                        .collect(),
                    links: (0..e)
                        .map(|_| [rng.below(n) as u32, rng.below(n) as u32])
                        .collect(),
                })
            }
        }
    }
}

/// One line for people: `Discrete(5)`, `MultiDiscrete(20 × 20, 6 × 20)` (runs of
/// equal sizes), `Box([20, 9] in 0..inf)` (or `per-element bounds`), `Graph(9 node
/// features, 2 edge features)`. `{:?}` prints every bound.
impl std::fmt::Display for Space {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Space::Discrete { n } => write!(f, "Discrete({n})"),
            Space::MultiDiscrete { nvec } => {
                let mut runs: Vec<(u64, usize)> = Vec::new();
                for &n in nvec {
                    match runs.last_mut() {
                        Some((m, count)) if *m == n => *count += 1,
                        _ => runs.push((n, 1)),
                    }
                }
                let runs: Vec<String> = runs
                    .iter()
                    .map(|&(n, c)| {
                        if c == 1 {
                            n.to_string()
                        } else {
                            format!("{n} × {c}")
                        }
                    })
                    .collect();
                write!(f, "MultiDiscrete({})", runs.join(", "))
            }
            Space::Box { low, high, shape } => {
                let bound = |v: &[f32]| match v.first() {
                    Some(&b) if v.iter().all(|&x| x == b) => Some(if b.abs() >= f32::MAX {
                        format!("{}inf", if b < 0.0 { "-" } else { "" })
                    } else {
                        b.to_string()
                    }),
                    _ => None,
                };
                match (bound(low), bound(high)) {
                    (Some(l), Some(h)) => write!(f, "Box({shape:?} in {l}..{h})"),
                    _ => write!(f, "Box({shape:?}, per-element bounds)"),
                }
            }
            Space::Graph {
                node_features,
                edge_features,
            } => write!(
                f,
                "Graph({node_features} node features, {edge_features} edge features)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_print_in_one_short_line() {
        let md = Space::MultiDiscrete {
            nvec: [vec![20; 20], vec![6; 20], vec![3]].concat(),
        };
        assert_eq!(md.to_string(), "MultiDiscrete(20 × 20, 6 × 20, 3)");
        let b = Space::uniform_box(vec![20, 9], 0.0, f32::MAX);
        assert_eq!(b.to_string(), "Box([20, 9] in 0..inf)");
        let mixed = Space::Box {
            low: vec![0.0, -1.0],
            high: vec![1.0, 1.0],
            shape: vec![2],
        };
        assert_eq!(mixed.to_string(), "Box([2], per-element bounds)");
        assert_eq!(Space::Discrete { n: 5 }.to_string(), "Discrete(5)");
    }

    use hale_sim::rng::StreamId;

    #[test]
    fn samples_are_contained_and_respect_masks() {
        let mut rng = Stream::new(1, StreamId::Policy);
        let spaces = [
            Space::Discrete { n: 3 },
            Space::MultiDiscrete {
                nvec: vec![2, 5, 1],
            },
            Space::uniform_box(vec![2, 3], -1.0, 1.0),
            Space::Box {
                low: vec![f32::MIN, 0.0],
                high: vec![f32::MAX, f32::MAX],
                shape: vec![2],
            },
            Space::Graph {
                node_features: 3,
                edge_features: 1,
            },
        ];
        for s in &spaces {
            for _ in 0..100 {
                let v = s.sample(&mut rng, None);
                assert!(s.contains(&v), "{s:?} {v:?}");
            }
        }
        let d = Space::Discrete { n: 4 };
        for _ in 0..100 {
            assert_eq!(
                d.sample(&mut rng, Some(&[false, false, true, false])),
                Value::Discrete(2)
            );
        }
        let md = Space::MultiDiscrete { nvec: vec![2, 3] };
        let mask = [true, false, false, false, true];
        for _ in 0..100 {
            assert_eq!(
                md.sample(&mut rng, Some(&mask)),
                Value::MultiDiscrete(vec![0, 2])
            );
        }
    }

    #[test]
    fn contains_rejects_what_it_should() {
        assert!(!Space::Discrete { n: 2 }.contains(&Value::Discrete(2)));
        assert!(!Space::Discrete { n: 2 }.contains(&Value::Discrete(-1)));
        assert!(
            !Space::MultiDiscrete { nvec: vec![2] }.contains(&Value::MultiDiscrete(vec![0, 0]))
        );
        assert!(!Space::uniform_box(vec![1], 0.0, 1.0).contains(&Value::Box(vec![1.5])));
        let g = Space::Graph {
            node_features: 1,
            edge_features: 0,
        };
        let bad = GraphValue {
            nodes: vec![0.0],
            edges: vec![],
            links: vec![[0, 1]],
        };
        assert!(!g.contains(&Value::Graph(bad)));
        assert_eq!(
            Space::MultiDiscrete { nvec: vec![5, 5] }
                .explain(&Value::MultiDiscrete(vec![1, 7]))
                .unwrap(),
            "action[1] = 7 is outside 0..5"
        );
    }
}
