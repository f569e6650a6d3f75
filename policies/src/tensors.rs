//! Tensor helpers the networks and algorithms share: tensors from and to row-major
//! values, and seeded module construction.

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::prelude::*;
use burn::tensor::TensorData;
use std::sync::Mutex;

/// A `[rows, cols]` float tensor from row-major values.
pub fn tensor2(values: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

/// A `[n]` float tensor.
pub fn tensor1(values: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// The values of a float tensor, row-major.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().expect("float tensor")
}

/// The backend's random generator is one per process: seeding it and drawing
/// initial weights happen under this lock, so runs in parallel threads (tests, sweeps)
/// still get the weights their seed gives. Every module built here is built under it
/// (bundles too: their fresh weights are overwritten, but drawing them unlocked would
/// shift another thread's seeded draw). Nothing else draws from the backend's
/// generator (actions and minibatches come from our own seeded streams).
static BACKEND_RNG: Mutex<()> = Mutex::new(());

/// Builds a module with the backend seeded with `seed`, under the backend-RNG lock,
/// materialises its lazily initialised parameters before the lock is released, and
/// numbers its parameters 1, 2, … in visiting order.
///
/// burn draws each parameter's id at random, and ids are written with the weights: with
/// them numbered, a run's bundle and checkpoints are the same bytes every time the run
/// is repeated (and the `weights_sha256` in `policy.json` with them). Ids only need to
/// be unique within one module, which the numbering keeps: they key the optimiser's
/// state and the gradients of that module.
pub fn seeded<M: Module>(device: &Device, seed: u64, init: impl FnOnce(&Device) -> M) -> M {
    struct Number(u64);
    impl ModuleMapper for Number {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (_, value, mapper) = p.consume();
            self.0 += 1;
            Param::from_mapped_value(ParamId::from(self.0), value, mapper)
        }
    }
    let _guard = BACKEND_RNG.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    // `consume` reads each parameter, which materialises it under the lock.
    init(device).map(&mut Number(0))
}

/// A dense layer's weight (`[d_in, d_out]`, row-major), its bias (`None` without one)
/// and its shape, for the fused CPU updates.
#[cfg(feature = "learn")]
pub(crate) fn linear_values(l: &burn::nn::Linear) -> (Vec<f32>, Option<Vec<f32>>, [usize; 2]) {
    let w = l.weight.val();
    let dims = w.dims();
    let b = l.bias.as_ref().map(|b| to_vec(b.val()));
    (to_vec(w), b, dims)
}

/// `l` with weight `w` and bias `b` (shapes as [`linear_values`] gives them), its
/// parameters keeping their ids, devices and gradient settings.
#[cfg(feature = "learn")]
pub(crate) fn linear_with(l: &burn::nn::Linear, w: &[f32], b: Option<&[f32]>) -> burn::nn::Linear {
    fn with_values<const D: usize>(t: Tensor<D>, values: &[f32]) -> Tensor<D> {
        let grad = t.is_require_grad();
        Tensor::<D>::from_data(TensorData::new(values.to_vec(), t.dims()), &t.device())
            .set_require_grad(grad)
    }
    let mut out = l.clone();
    out.weight = out.weight.map(|t| with_values(t, w));
    if let Some(b) = b {
        out.bias = out.bias.map(|p| p.map(|t| with_values(t, b)));
    }
    out
}
