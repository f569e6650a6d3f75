//! The MLP actor-critic: separate actor and critic MLPs over a flat observation, the
//! network PPO trains by default and DQN reads Q-values from. (The GNN is in
//! [`crate::gnn`]; [`crate::network::Network`] is either.)

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::TensorData;

/// Separate actor and critic MLPs with tanh activations, initialised as CleanRL's PPO
/// does (orthogonal, gain √2 for hidden layers, 0.01 for the policy head, 1 for the
/// value head, zero biases).
#[derive(Module, Debug)]
pub struct ActorCritic {
    actor: Vec<Linear>,
    critic: Vec<Linear>,
    policy_head: Linear,
    value_head: Linear,
    /// The actor reads the first `actor_dim` features of an observation, the critic
    /// all of them: less than the observation for a centralised critic (MAPPO), whose
    /// observation is the agent's followed by the global state.
    #[module(skip)]
    actor_dim: usize,
}

fn layer(d_in: usize, d_out: usize, gain: f64, device: &Device) -> Linear {
    let mut l = LinearConfig::new(d_in, d_out).init(device);
    l.weight =
        Initializer::Orthogonal { gain }.init_with([d_in, d_out], Some(d_in), Some(d_out), device);
    l.bias = Some(Initializer::Zeros.init([d_out], device));
    l
}

/// tanh as `2·σ(2x) − 1`: the same function (within 1.2e-7 absolute), and on the
/// flex CPU backend three times faster than its `tanh` (a scalar libm call per
/// element, 60 % of a CartPole PPO run's time before this).
pub fn tanh(x: Tensor<2>) -> Tensor<2> {
    burn::tensor::activation::sigmoid(x * 2.0) * 2.0 - 1.0
}

impl ActorCritic {
    /// An actor-critic for observations of `obs_dim` floats and `logits` action logits
    /// (the sum of the categorical heads' sizes), with `hidden` layer widths.
    pub fn new(obs_dim: usize, logits: usize, hidden: &[usize], device: &Device) -> ActorCritic {
        ActorCritic::centralised(obs_dim, obs_dim, logits, hidden, device)
    }

    /// An actor-critic whose actor reads the first `actor_dim` of `obs_dim` features
    /// and whose critic reads all of them (the actor's layers are drawn first, so with
    /// `actor_dim == obs_dim` this is [`ActorCritic::new`]).
    pub fn centralised(
        actor_dim: usize,
        obs_dim: usize,
        logits: usize,
        hidden: &[usize],
        device: &Device,
    ) -> ActorCritic {
        let gain = std::f64::consts::SQRT_2;
        let mut actor = Vec::new();
        let mut critic = Vec::new();
        let (mut a, mut c) = (actor_dim, obs_dim);
        for &h in hidden {
            actor.push(layer(a, h, gain, device));
            critic.push(layer(c, h, gain, device));
            (a, c) = (h, h);
        }
        ActorCritic {
            actor,
            critic,
            policy_head: layer(a, logits, 0.01, device),
            value_head: layer(c, 1, 1.0, device),
            actor_dim,
        }
    }

    /// The actor alone, for an agent that acts on its own observation: a centralised
    /// critic cannot go where the global state is not seen, so its place is taken by a
    /// critic over the actor's input whose weights are zero (every value 0). Without
    /// a centralised critic, the network as it is.
    pub fn decentralised(&self, device: &Device) -> ActorCritic {
        let critic_dim = self
            .critic
            .first()
            .map_or_else(|| self.value_head.weight.dims()[0], |l| l.weight.dims()[0]);
        if critic_dim == self.actor_dim {
            return self.clone();
        }
        let zero = |d_in: usize, d_out: usize| {
            let mut l = LinearConfig::new(d_in, d_out).init(device);
            l.weight = Initializer::Zeros.init([d_in, d_out], device);
            l.bias = Some(Initializer::Zeros.init([d_out], device));
            l
        };
        let mut critic = Vec::new();
        let mut d = self.actor_dim;
        for l in &self.critic {
            let h = l.weight.dims()[1];
            critic.push(zero(d, h));
            d = h;
        }
        ActorCritic {
            actor: self.actor.clone(),
            critic,
            policy_head: self.policy_head.clone(),
            value_head: zero(d, 1),
            actor_dim: self.actor_dim,
        }
    }

    /// The same function on a narrower input and fewer logits, for one agent of a
    /// shared network ([`hale_envs::sharing`]): inputs past the first `keep_inputs`
    /// are known — zero, except `one` which is 1 (the agent's indicator, folded into
    /// the first layers' biases) — and the policy head keeps the logits `logits`, in
    /// that order. For the kept logits and the values, the result equals this
    /// network on the padded input (up to float rounding in the folded sums).
    pub fn specialised(&self, keep_inputs: usize, one: usize, logits: &[usize]) -> ActorCritic {
        // A first layer reads the input: keep its first rows, fold row `one` into the
        // bias.
        let narrow = |l: &Linear| -> Linear {
            let [_, d_out] = l.weight.dims();
            let w = l.weight.val();
            let indicator = w.clone().slice([one..one + 1, 0..d_out]).reshape([d_out]);
            let mut out = l.clone();
            out.weight = Param::from_tensor(w.slice([0..keep_inputs, 0..d_out]));
            out.bias = Some(Param::from_tensor(match &l.bias {
                Some(b) => b.val() + indicator,
                None => indicator,
            }));
            out
        };
        let first = |layers: &[Linear], head: &Linear| -> (Vec<Linear>, Linear) {
            match layers.split_first() {
                Some((l, rest)) => {
                    let mut v = vec![narrow(l)];
                    v.extend(rest.iter().cloned());
                    (v, head.clone())
                }
                None => (vec![], narrow(head)),
            }
        };
        let (actor, policy_head) = first(&self.actor, &self.policy_head);
        let (critic, value_head) = first(&self.critic, &self.value_head);
        let device = policy_head.weight.device();
        let keep = Tensor::<1, Int>::from_data(
            TensorData::new(
                logits.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                [logits.len()],
            ),
            &device,
        );
        let mut policy = policy_head.clone();
        policy.weight = Param::from_tensor(policy_head.weight.val().select(1, keep.clone()));
        policy.bias = policy_head
            .bias
            .as_ref()
            .map(|b| Param::from_tensor(b.val().select(0, keep)));
        ActorCritic {
            actor,
            critic,
            policy_head: policy,
            value_head,
            actor_dim: keep_inputs,
        }
    }

    /// Action logits, from the first `actor_dim` features.
    ///
    /// # Shapes
    /// `obs` `[batch, obs_dim]` → `[batch, logits]`
    pub fn logits(&self, obs: Tensor<2>) -> Tensor<2> {
        let [rows, d] = obs.dims();
        let mut x = if d > self.actor_dim {
            obs.slice([0..rows, 0..self.actor_dim])
        } else {
            obs
        };
        for l in &self.actor {
            x = tanh(l.forward(x));
        }
        self.policy_head.forward(x)
    }

    /// State values.
    ///
    /// # Shapes
    /// `obs` `[batch, obs_dim]` → `[batch]`
    pub fn value(&self, obs: Tensor<2>) -> Tensor<1> {
        let mut x = obs;
        for l in &self.critic {
            x = tanh(l.forward(x));
        }
        self.value_head.forward(x).squeeze_dim(1)
    }

    /// Every layer's weight (`[d_in, d_out]`, row-major), bias and shape: the actor's
    /// hidden layers and the policy head, then the critic's and the value head.
    /// `None` when a layer has no bias (none built here lacks one).
    #[cfg(feature = "learn")]
    #[allow(clippy::type_complexity)]
    pub(crate) fn dense_layers(
        &self,
    ) -> Option<(
        Vec<(Vec<f32>, Vec<f32>, [usize; 2])>,
        Vec<(Vec<f32>, Vec<f32>, [usize; 2])>,
    )> {
        let read = |l: &Linear| {
            let (w, b, dims) = crate::tensors::linear_values(l);
            Some((w, b?, dims))
        };
        let tower = |layers: &[Linear], head: &Linear| {
            layers
                .iter()
                .chain(std::iter::once(head))
                .map(read)
                .collect::<Option<Vec<_>>>()
        };
        Some((
            tower(&self.actor, &self.policy_head)?,
            tower(&self.critic, &self.value_head)?,
        ))
    }

    /// This network with the weights and biases `actor` and `critic` (in the order and
    /// shapes of [`ActorCritic::dense_layers`]), its parameters keeping their ids.
    #[cfg(feature = "learn")]
    pub(crate) fn with_dense_layers(
        &self,
        actor: &[(&[f32], &[f32])],
        critic: &[(&[f32], &[f32])],
    ) -> ActorCritic {
        let set =
            |l: &Linear, &(w, b): &(&[f32], &[f32])| crate::tensors::linear_with(l, w, Some(b));
        let (a_hidden, a_head) = actor.split_at(self.actor.len());
        let (c_hidden, c_head) = critic.split_at(self.critic.len());
        ActorCritic {
            actor: self
                .actor
                .iter()
                .zip(a_hidden)
                .map(|(l, p)| set(l, p))
                .collect(),
            critic: self
                .critic
                .iter()
                .zip(c_hidden)
                .map(|(l, p)| set(l, p))
                .collect(),
            policy_head: set(&self.policy_head, &a_head[0]),
            value_head: set(&self.value_head, &c_head[0]),
            actor_dim: self.actor_dim,
        }
    }

    /// The gradients in `grads` of every layer's weight and bias, in the order of
    /// [`ActorCritic::dense_layers`] (weight, bias, next layer …); zeros where none.
    #[cfg(all(test, feature = "learn"))]
    pub(crate) fn dense_gradients(&self, grads: &burn::optim::GradientsParams) -> Vec<Vec<f32>> {
        let layers = self
            .actor
            .iter()
            .chain(std::iter::once(&self.policy_head))
            .chain(&self.critic)
            .chain(std::iter::once(&self.value_head));
        let mut out = Vec::new();
        for l in layers {
            let w = grads
                .get::<2>(l.weight.id)
                .map(|g| g.into_data().try_to_vec::<f32>().unwrap());
            out.push(w.unwrap_or_else(|| vec![0.0; l.weight.val().dims().iter().product()]));
            let b = l.bias.as_ref().expect("a bias");
            let g = grads
                .get::<1>(b.id)
                .map(|g| g.into_data().try_to_vec::<f32>().unwrap());
            out.push(g.unwrap_or_else(|| vec![0.0; b.val().dims()[0]]));
        }
        out
    }
}
