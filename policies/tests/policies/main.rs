//! hale-policies with the `learn` feature: PPO smoke tests (learning claims come from
//! benchmark runs, see the README).

mod ppo;
