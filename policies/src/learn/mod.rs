//! Learning with burn (the `learn` feature): networks and algorithms, each algorithm
//! in one file that reads top to bottom (CleanRL style). Library code takes a
//! [`burn::prelude::Device`]; the binary chooses the backend.

pub mod ppo;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::{Device, Tensor};
use std::sync::Mutex;

/// The backend's random generator is one per process: seeding it and drawing the
/// initial weights happen under this lock, so runs in parallel threads (tests, sweeps)
/// still get the weights their seed gives. Nothing else here draws from the backend's
/// generator (actions and minibatches come from our own seeded streams).
static BACKEND_RNG: Mutex<()> = Mutex::new(());

/// Builds a module with the backend seeded with `seed`, under the backend-RNG lock, and
/// materialises its lazily initialised parameters before the lock is released.
pub fn seeded<M: Module>(device: &Device, seed: u64, init: impl FnOnce(&Device) -> M) -> M {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let _ = p.val();
        }
    }
    let _guard = BACKEND_RNG.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    let module = init(device);
    module.visit(&mut Touch);
    module
}
