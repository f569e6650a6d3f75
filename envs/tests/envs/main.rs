//! Integration tests of hale-envs (one test binary; one module per concern).

mod cartpole;
mod checker;
mod cloud;
mod cloudops;
mod cost;
mod golden;
mod lockstep;
mod reward_weights;
mod security;
#[cfg(feature = "traces")]
mod traces;
mod vector;
mod wrappers;
