"""PPO on hale's Scaling-v0, in one file (CleanRL's ppo.py, for MultiDiscrete actions
over hale's vector env).

    python python/examples/ppo_scaling.py --total-timesteps 200000

Writes RUN/metrics.csv (charts/…, losses/…, per update) and RUN/model.pt.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.distributions.categorical import Categorical

import hale


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="three-tier", help="hale scenario (builtin name or file)")
    p.add_argument("--seed", type=int, default=1, help="seed of the envs and of torch")
    p.add_argument("--total-timesteps", type=int, default=200_000, help="env steps in all")
    p.add_argument("--learning-rate", type=float, default=2.5e-4, help="Adam's step size")
    p.add_argument("--num-envs", type=int, default=8, help="sub-envs of the vector env")
    p.add_argument("--num-steps", type=int, default=128, help="steps per sub-env per rollout")
    p.add_argument("--gamma", type=float, default=0.99, help="discount")
    p.add_argument("--gae-lambda", type=float, default=0.95, help="GAE's lambda")
    p.add_argument("--num-minibatches", type=int, default=4, help="minibatches per epoch")
    p.add_argument("--update-epochs", type=int, default=4, help="epochs per update")
    p.add_argument("--clip-coef", type=float, default=0.2, help="PPO's clip")
    p.add_argument("--ent-coef", type=float, default=0.01, help="entropy bonus")
    p.add_argument("--vf-coef", type=float, default=0.5, help="value loss weight")
    p.add_argument("--max-grad-norm", type=float, default=0.5, help="gradient clipping")
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/NAME)")
    return p.parse_args()


def layer(n_in: int, n_out: int, std: float = np.sqrt(2)) -> nn.Linear:
    lin = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(lin.weight, std)
    nn.init.constant_(lin.bias, 0.0)
    return lin


class Agent(nn.Module):
    def __init__(self, obs_dim: int, nvec: np.ndarray) -> None:
        super().__init__()
        self.nvec = [int(n) for n in nvec]
        self.critic = nn.Sequential(layer(obs_dim, 64), nn.Tanh(), layer(64, 64), nn.Tanh(), layer(64, 1, 1.0))
        self.actor = nn.Sequential(
            layer(obs_dim, 64), nn.Tanh(), layer(64, 64), nn.Tanh(), layer(64, sum(self.nvec), 0.01)
        )

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    def get_action_and_value(self, x: torch.Tensor, action: torch.Tensor | None = None):
        # One categorical per service: [batch, Σ nvec] logits split by dimension.
        dists = [Categorical(logits=l) for l in torch.split(self.actor(x), self.nvec, dim=1)]
        if action is None:
            action = torch.stack([d.sample() for d in dists], dim=1)
        logprob = torch.stack([d.log_prob(a) for d, a in zip(dists, action.T)], dim=1).sum(1)
        entropy = torch.stack([d.entropy() for d in dists], dim=1).sum(1)
        return action, logprob, entropy, self.critic(x)


def main() -> None:
    args = parse_args()
    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = args.total_timesteps // batch_size
    run_name = f"Scaling-v0__ppo_scaling__{args.seed}__{int(time.time())}"
    out = args.out or Path("runs") / run_name
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)

    envs = hale.vector.make("Scaling-v0", args.num_envs, scenario=args.scenario, action="target")
    obs_dim = int(np.prod(envs.single_observation_space.shape))
    agent = Agent(obs_dim, envs.single_action_space.nvec)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    n_dims = len(envs.single_action_space.nvec)
    obs = torch.zeros((args.num_steps, args.num_envs, obs_dim))
    actions = torch.zeros((args.num_steps, args.num_envs, n_dims), dtype=torch.long)
    logprobs = torch.zeros((args.num_steps, args.num_envs))
    rewards = torch.zeros((args.num_steps, args.num_envs))
    dones = torch.zeros((args.num_steps, args.num_envs))
    values = torch.zeros((args.num_steps, args.num_envs))

    global_step, start = 0, time.time()
    next_obs_np, _ = envs.reset(seed=args.seed)
    next_obs = torch.tensor(next_obs_np.reshape(args.num_envs, -1))
    next_done = torch.zeros(args.num_envs)
    episode_returns = np.zeros(args.num_envs)
    finished: list[float] = []
    with (out / "metrics.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["global_step", "charts/episodic_return", "charts/SPS", "losses/value_loss",
                         "losses/policy_loss", "losses/entropy", "losses/approx_kl"])
        for iteration in range(1, num_iterations + 1):
            optimizer.param_groups[0]["lr"] = (1.0 - (iteration - 1.0) / num_iterations) * args.learning_rate
            for step in range(args.num_steps):
                global_step += args.num_envs
                obs[step], dones[step] = next_obs, next_done
                with torch.no_grad():
                    action, logprob, _, value = agent.get_action_and_value(next_obs)
                values[step], actions[step], logprobs[step] = value.flatten(), action, logprob
                next_obs_np, reward, terminated, truncated, _ = envs.step(action.numpy())
                # Next-step autoreset: a sub-env that just ended resets on the next step.
                rewards[step] = torch.tensor(reward, dtype=torch.float32)
                episode_returns += reward
                ended = np.logical_or(terminated, truncated)
                finished.extend(episode_returns[ended].tolist())
                episode_returns[ended] = 0.0
                next_obs = torch.tensor(next_obs_np.reshape(args.num_envs, -1))
                next_done = torch.tensor(ended, dtype=torch.float32)

            # Generalised advantage estimation.
            with torch.no_grad():
                next_value = agent.get_value(next_obs).reshape(1, -1)
                advantages = torch.zeros_like(rewards)
                lastgaelam = 0
                for t in reversed(range(args.num_steps)):
                    nextnonterminal = 1.0 - (next_done if t == args.num_steps - 1 else dones[t + 1])
                    nextvalues = next_value if t == args.num_steps - 1 else values[t + 1]
                    delta = rewards[t] + args.gamma * nextvalues * nextnonterminal - values[t]
                    lastgaelam = delta + args.gamma * args.gae_lambda * nextnonterminal * lastgaelam
                    advantages[t] = lastgaelam
                returns = advantages + values

            b_obs, b_actions = obs.reshape(-1, obs_dim), actions.reshape(-1, n_dims)
            b_logprobs, b_advantages = logprobs.reshape(-1), advantages.reshape(-1)
            b_returns, b_values = returns.reshape(-1), values.reshape(-1)
            b_inds = np.arange(batch_size)
            for _ in range(args.update_epochs):
                np.random.shuffle(b_inds)
                for lo in range(0, batch_size, minibatch_size):
                    mb = b_inds[lo : lo + minibatch_size]
                    _, newlogprob, entropy, newvalue = agent.get_action_and_value(b_obs[mb], b_actions[mb])
                    logratio = newlogprob - b_logprobs[mb]
                    ratio = logratio.exp()
                    with torch.no_grad():
                        approx_kl = ((ratio - 1) - logratio).mean()
                    mb_adv = b_advantages[mb]
                    mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                    pg_loss = torch.max(
                        -mb_adv * ratio, -mb_adv * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
                    ).mean()
                    v_loss = 0.5 * ((newvalue.view(-1) - b_returns[mb]) ** 2).mean()
                    entropy_loss = entropy.mean()
                    loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef
                    optimizer.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                    optimizer.step()

            sps = int(global_step / (time.time() - start))
            recent = float(np.mean(finished[-20:])) if finished else float("nan")
            writer.writerow([global_step, recent, sps, v_loss.item(), pg_loss.item(),
                             entropy_loss.item(), approx_kl.item()])
            f.flush()
            print(f"step {global_step}: episodic return {recent:.3f}, {sps} steps/s")
    torch.save(agent.state_dict(), out / "model.pt")
    envs.close()


if __name__ == "__main__":
    main()
