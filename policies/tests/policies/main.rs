//! hale-policies with the `learn` feature: PPO and GNN smoke tests (learning claims come from
//! benchmark runs, see the README).

mod defence;
mod gnn;
mod ippo;
mod ppo;
mod team;
