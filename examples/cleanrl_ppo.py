"""CleanRL-style single-file PPO with an LSTM on the native batched vector env.

Read it top to bottom: the config, the agent, the rollout, the advantages, the PPO update,
the evaluation on split="test". It follows CleanRL's ``ppo_atari_lstm.py`` (an LSTM core
whose state is replayed from the start of the rollout in the update, minibatches made of
whole sub-envs) on Gymnasium 1.x's vector API:

* ``gym.make_vec(env_id, num_envs=N)`` gives the project's batched ``GlimpseVectorEnv``,
  whose observation is the env's ``Dict`` (glimpse + location) with a batch axis.
* NEXT_STEP autoreset (Gymnasium 1.x's default, asked for explicitly here): the step that
  ends an episode returns its last observation; the *next* step resets that sub-env,
  ignores its action and returns the new episode's first observation with reward 0. That
  reset step is no transition of the task: its row is kept in the rollout (so rows stay
  aligned in time) but masked out of every loss term and of the advantage statistics.
* The policy has a Gaussian head over the next glimpse location and a categorical head over
  the 10 classes, sent to the env as scores (+1 for the chosen class, -1 for the others).
  The env reads the location at steps 1..T-1 and the scores at step T only, so a step's
  log-probability (and entropy) is that of the part the env reads.

Run (reads MNIST from ``$GLIMPSE_ENV_DATA`` if set)::

    python examples/cleanrl_ppo.py --total-timesteps 500000
    python examples/cleanrl_ppo.py --help
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from torch import nn
from torch.distributions import Categorical, Normal

import glimpse_env  # noqa: F401  (registers the Glimpse* ids)


@dataclass
class Args:
    env_id: str = "GlimpseMNIST-v0"
    """the id of the glimpse env"""
    n_glimpses: int = 0
    """glimpses per episode (0: the env's default)"""
    glimpse_size: int = 0
    """side of each glimpse scale in pixels (0: the env's default)"""
    start: str = "random"
    """where the first glimpse is: 'random' or 'center'"""
    seed: int = 1
    """seed of the experiment"""
    torch_threads: int = 1
    """torch threads (small networks run fastest on one)"""
    total_timesteps: int = 500_000
    """total env steps (reset steps included), rounded down to whole iterations"""
    learning_rate: float = 1e-3
    """the learning rate of the optimizer"""
    num_envs: int = 128
    """the number of sub-envs of the vector env"""
    num_steps: int = 16
    """the number of steps of each sub-env per rollout"""
    anneal_lr: bool = True
    """anneal the learning rate linearly to 0"""
    gamma: float = 0.99
    """the discount factor gamma"""
    gae_lambda: float = 0.95
    """the lambda of the general advantage estimation"""
    num_minibatches: int = 4
    """the number of minibatches (each made of num_envs / num_minibatches whole sub-envs)"""
    update_epochs: int = 8
    """the number of passes over the rollout per update"""
    norm_adv: bool = True
    """normalize the advantages (over the minibatch's real transitions)"""
    clip_coef: float = 0.2
    """the surrogate clipping coefficient"""
    clip_vloss: bool = True
    """clip the value loss as in the PPO paper's implementation"""
    ent_coef: float = 0.0
    """the coefficient of the entropy bonus"""
    vf_coef: float = 0.5
    """the coefficient of the value loss"""
    max_grad_norm: float = 0.5
    """the maximum norm of the gradient"""
    hidden_size: int = 256
    """the width of the encoder and of the LSTM"""
    eval_episodes: int = 1000
    """test episodes at the end (the first test digits, deterministic actions)"""
    log_every: int = 10
    """print a progress line every this many iterations"""


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """Parse ``Args`` from the command line; each field's docstring is its ``--help``."""
    docs: dict[str, str] = {}  # field name -> the string literal that follows it
    tree = ast.parse(Path(__file__).read_text())
    body = next(n.body for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Args")
    for node, nxt in itertools.pairwise(body):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr):
            docs[node.target.id] = nxt.value.value  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in dataclasses.fields(Args):
        flag, kind = "--" + f.name.replace("_", "-"), type(f.default)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            parser.add_argument(flag, type=kind, default=f.default, help=docs.get(f.name))
    return Args(**vars(parser.parse_args(argv)))


def make_envs(args: Args, num_envs: int, **env_kwargs: Any) -> gym.vector.VectorEnv:
    """The native batched vector env, with NEXT_STEP autoreset and episode statistics."""
    env_kwargs["start"] = args.start
    if args.glimpse_size:
        env_kwargs["glimpse_size"] = args.glimpse_size
    if args.n_glimpses:
        env_kwargs["n_glimpses"] = args.n_glimpses
    envs = gym.make_vec(
        args.env_id, num_envs=num_envs, autoreset_mode=AutoresetMode.NEXT_STEP, **env_kwargs
    )
    # The masking below is written for NEXT_STEP; fail loudly on any other mode.
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    return gym.wrappers.vector.RecordEpisodeStatistics(envs)


def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    """Orthogonal weights, constant bias (CleanRL's initialisation)."""
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Step(NamedTuple):
    """What the agent outputs for a batch of observations."""

    location: torch.Tensor  # (B, 2) next glimpse location (unclipped Gaussian sample)
    label: torch.Tensor  # (B,) class, int64
    location_logprob: torch.Tensor  # (B,)
    label_logprob: torch.Tensor  # (B,)
    location_entropy: torch.Tensor  # (B,)
    label_entropy: torch.Tensor  # (B,)
    value: torch.Tensor  # (B,)


class Agent(nn.Module):
    """Encoder of (flat glimpse, location) -> LSTM -> location, class and value heads."""

    def __init__(self, envs: gym.vector.VectorEnv, hidden: int) -> None:
        super().__init__()
        obs_space = envs.single_observation_space
        n_pixels = int(np.prod(obs_space["glimpse"].shape))
        self.n_classes = envs.single_action_space.shape[0] - 2
        # RAM's glimpse network: "what" (pixels) and "where" (location) apart, then mixed.
        self.what = nn.Sequential(layer_init(nn.Linear(n_pixels, hidden // 2)), nn.ReLU())
        self.where = nn.Sequential(layer_init(nn.Linear(2, hidden // 2)), nn.ReLU())
        self.encoder = nn.Sequential(layer_init(nn.Linear(hidden, hidden)), nn.ReLU())
        self.lstm = nn.LSTM(hidden, hidden)
        for name, param in self.lstm.named_parameters():
            if "bias" in name:
                nn.init.constant_(param, 0)
            elif "weight" in name:
                nn.init.orthogonal_(param, 1.0)
        # Heads: a Gaussian over the 2 location components, a categorical over the classes.
        # (A Gaussian over all 12 components would be simpler but learns the class only
        # through the argmax of noisy scores, much more slowly.)
        self.location_mean = layer_init(nn.Linear(hidden, 2), std=0.01)
        self.location_logstd = nn.Parameter(torch.full((1, 2), -0.5))
        self.label_logits = layer_init(nn.Linear(hidden, self.n_classes), std=0.01)
        self.critic = layer_init(nn.Linear(hidden, 1), std=1.0)

    def initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A zero LSTM state for ``batch`` sub-envs."""
        zeros = torch.zeros(self.lstm.num_layers, batch, self.lstm.hidden_size)
        return zeros, zeros.clone()

    def get_states(
        self,
        obs: dict[str, torch.Tensor],
        lstm_state: tuple[torch.Tensor, torch.Tensor],
        first: torch.Tensor,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Run the LSTM over ``T * B`` rows (time-major), zeroing the state where ``first``.

        ``first[t]`` marks an observation that starts an episode: the state carried in from
        the previous episode is dropped there.
        """
        what, where = self.what(obs["glimpse"].flatten(1)), self.where(obs["location"])
        x = self.encoder(torch.cat([what, where], dim=1))
        batch = lstm_state[0].shape[1]
        x, first = x.reshape(-1, batch, x.shape[-1]), first.reshape(-1, batch)
        hidden = []
        for x_t, first_t in zip(x, first):
            keep = (1.0 - first_t).view(1, -1, 1)
            h_t, lstm_state = self.lstm(
                x_t.unsqueeze(0), (keep * lstm_state[0], keep * lstm_state[1])
            )
            hidden.append(h_t)
        return torch.cat(hidden).flatten(0, 1), lstm_state

    def get_value(self, obs: dict, lstm_state: tuple, first: torch.Tensor) -> torch.Tensor:
        """V(obs) for one row per sub-env."""
        hidden, _ = self.get_states(obs, lstm_state, first)
        return self.critic(hidden).flatten()

    def get_action_and_value(
        self,
        obs: dict[str, torch.Tensor],
        lstm_state: tuple[torch.Tensor, torch.Tensor],
        first: torch.Tensor,
        location: torch.Tensor | None = None,
        label: torch.Tensor | None = None,
        deterministic: bool = False,
    ) -> tuple[Step, tuple[torch.Tensor, torch.Tensor]]:
        """Sample (or, given ``location`` and ``label``, score) actions; also V(obs)."""
        hidden, lstm_state = self.get_states(obs, lstm_state, first)
        mean = self.location_mean(hidden)
        location_dist = Normal(mean, self.location_logstd.expand_as(mean).exp())
        label_dist = Categorical(logits=self.label_logits(hidden))
        if location is None:
            location = mean if deterministic else location_dist.sample()
        if label is None:
            label = label_dist.probs.argmax(dim=1) if deterministic else label_dist.sample()
        step = Step(
            location=location,
            label=label,
            location_logprob=location_dist.log_prob(location).sum(1),
            label_logprob=label_dist.log_prob(label),
            location_entropy=location_dist.entropy().sum(1),
            label_entropy=label_dist.entropy(),
            value=self.critic(hidden).flatten(),
        )
        return step, lstm_state


def env_action(location: torch.Tensor, label: torch.Tensor, n_classes: int) -> np.ndarray:
    """The env's ``(B, 12)`` float32 action: clipped location, then +1/-1 class scores."""
    scores = 2.0 * nn.functional.one_hot(label, n_classes).float() - 1.0
    return torch.cat([location.clamp(-1.0, 1.0), scores], dim=1).numpy()


def to_torch(obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The vector env's Dict observation as float tensors."""
    return {key: torch.as_tensor(value, dtype=torch.float32) for key, value in obs.items()}


def compute_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    terminated: torch.Tensor,
    dones: torch.Tensor,
    next_value: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> torch.Tensor:
    """GAE over a ``(T, N)`` NEXT_STEP rollout.

    Row ``t`` holds ``obs[t]``, the action taken on it and what ``step`` returned
    (``rewards[t]``, ``terminated[t]``, ``dones[t] = terminated | truncated``). Under
    NEXT_STEP the observation that follows row ``t`` is ``obs[t + 1]`` even at an episode's
    end (the reset row holds the episode's last observation), so ``values[t + 1]`` is the
    right bootstrap unless the episode terminated; ``next_value`` is V of the observation
    after the last row. The advantage does not run past an episode's end. Values on reset
    rows are garbage; they only reach reset rows, which the losses mask out.
    """
    advantages = torch.zeros_like(rewards)
    last_gae = torch.zeros_like(next_value)
    for t in reversed(range(len(rewards))):
        next_values = next_value if t == len(rewards) - 1 else values[t + 1]
        delta = rewards[t] + gamma * next_values * (1.0 - terminated[t]) - values[t]
        last_gae = delta + gamma * gae_lambda * (1.0 - dones[t]) * last_gae
        advantages[t] = last_gae
    return advantages


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over the rows where ``mask`` is 1."""
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def train(args: Args) -> tuple[Agent, dict[str, list]]:
    """PPO on ``args.env_id`` (split "train"); returns the agent and per-iteration stats."""
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.torch_threads)
    envs = make_envs(args, args.num_envs, split="train")
    agent = Agent(envs, args.hidden_size)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
    n_classes = agent.n_classes
    batch_size = args.num_envs * args.num_steps
    num_iterations = args.total_timesteps // batch_size
    envs_per_batch = args.num_envs // args.num_minibatches
    assert args.num_envs % args.num_minibatches == 0, "num_envs must split into minibatches"

    # Rollout storage, one row per (step, sub-env).
    T, N = args.num_steps, args.num_envs
    obs_space = envs.single_observation_space
    obs = {k: torch.zeros((T, N, *space.shape)) for k, space in obs_space.items()}
    locations = torch.zeros((T, N, 2))
    labels = torch.zeros((T, N), dtype=torch.long)
    location_logprobs, label_logprobs = torch.zeros((T, N)), torch.zeros((T, N))
    rewards, values = torch.zeros((T, N)), torch.zeros((T, N))
    terminated, dones = torch.zeros((T, N)), torch.zeros((T, N))
    firsts = torch.zeros((T, N))  # obs[t] starts an episode (LSTM state is zeroed)
    real = torch.zeros((T, N))  # 1: a real transition; 0: a NEXT_STEP reset step (masked)

    stats: dict[str, list] = {k: [] for k in ("episode_lengths", "accuracy", "loss")}
    stats.update(loss_transitions=[], reset_steps=[], env_steps=[])
    global_step = 0
    start_time = time.time()
    next_obs = to_torch(envs.reset(seed=args.seed)[0])
    next_first = torch.ones(N)  # reset() returned first observations
    next_is_reset_step = torch.zeros(N)  # will the coming step be an autoreset step?
    lstm_state = agent.initial_state(N)

    for iteration in range(1, num_iterations + 1):
        initial_lstm_state = (lstm_state[0].clone(), lstm_state[1].clone())
        if args.anneal_lr:
            frac = 1.0 - (iteration - 1.0) / num_iterations
            optimizer.param_groups[0]["lr"] = frac * args.learning_rate
        successes: list[bool] = []

        for step in range(T):
            global_step += N
            for key in obs:
                obs[key][step] = next_obs[key]
            firsts[step] = next_first
            real[step] = 1.0 - next_is_reset_step
            with torch.no_grad():
                out, lstm_state = agent.get_action_and_value(next_obs, lstm_state, next_first)
            locations[step], labels[step], values[step] = out.location, out.label, out.value
            location_logprobs[step], label_logprobs[step] = out.location_logprob, out.label_logprob

            raw_obs, reward, term, trunc, info = envs.step(
                env_action(out.location, out.label, n_classes)
            )
            rewards[step] = torch.as_tensor(reward, dtype=torch.float32)
            terminated[step] = torch.as_tensor(term, dtype=torch.float32)
            dones[step] = torch.as_tensor(term | trunc, dtype=torch.float32)
            # NEXT_STEP: a step taken as a reset step returned a first observation, and
            # a step that ended an episode makes the next step a reset step.
            next_first = next_is_reset_step
            next_is_reset_step = dones[step].clone()
            next_obs = to_torch(raw_obs)
            if "episode" in info:
                stats["episode_lengths"].extend(info["episode"]["l"][info["_episode"]].tolist())
            successes.extend(info["is_success"][info["_is_success"]].tolist())

        # Advantages and returns (reset rows get garbage that the mask drops).
        with torch.no_grad():
            next_value = agent.get_value(next_obs, lstm_state, next_first)
            advantages = compute_advantages(
                rewards, values, terminated, dones, next_value, args.gamma, args.gae_lambda
            )
            returns = advantages + values
        # The env reads the class scores only on the step that ends the episode (terminated)
        # and the location on the others: each row's log-probability is that of what is read.
        reads_label = terminated.bool()
        logprobs = torch.where(reads_label, label_logprobs, location_logprobs)

        # Flatten (T, N) -> (T * N,), time-major, so that env n of step t is row t * N + n.
        b_obs = {k: v.reshape(-1, *v.shape[2:]) for k, v in obs.items()}
        b_locations, b_labels = locations.reshape(-1, 2), labels.reshape(-1)
        b_logprobs, b_reads_label = logprobs.reshape(-1), reads_label.reshape(-1)
        b_advantages, b_returns, b_values = (x.reshape(-1) for x in (advantages, returns, values))
        b_firsts, b_real = firsts.reshape(-1), real.reshape(-1)

        # PPO update: minibatches of whole sub-envs, so the LSTM replays their sequences.
        env_inds = np.arange(N)
        flat_inds = np.arange(batch_size).reshape(T, N)
        loss_transitions = 0
        for epoch in range(args.update_epochs):
            rng.shuffle(env_inds)
            for start in range(0, N, envs_per_batch):
                mb_envs = env_inds[start : start + envs_per_batch]
                mb = flat_inds[:, mb_envs].ravel()  # time-major rows of these sub-envs
                new, _ = agent.get_action_and_value(
                    {k: v[mb] for k, v in b_obs.items()},
                    (initial_lstm_state[0][:, mb_envs], initial_lstm_state[1][:, mb_envs]),
                    b_firsts[mb],
                    b_locations[mb],
                    b_labels[mb],
                )
                mask = b_real[mb]  # 0 on reset steps: they enter no loss term
                if epoch == 0:
                    loss_transitions += int(mask.sum())
                reads = b_reads_label[mb]
                new_logprob = torch.where(reads, new.label_logprob, new.location_logprob)
                entropy = torch.where(reads, new.label_entropy, new.location_entropy)
                log_ratio = new_logprob - b_logprobs[mb]
                ratio = log_ratio.exp()

                mb_adv = b_advantages[mb]
                if args.norm_adv:
                    real_adv = mb_adv[mask.bool()]
                    mb_adv = (mb_adv - real_adv.mean()) / (real_adv.std() + 1e-8)
                pg_loss1 = -mb_adv * ratio
                pg_loss2 = -mb_adv * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
                pg_loss = masked_mean(torch.max(pg_loss1, pg_loss2), mask)

                v_loss_unclipped = (new.value - b_returns[mb]) ** 2
                if args.clip_vloss:
                    v_clipped = b_values[mb] + torch.clamp(
                        new.value - b_values[mb], -args.clip_coef, args.clip_coef
                    )
                    v_loss_clipped = (v_clipped - b_returns[mb]) ** 2
                    v_loss = 0.5 * masked_mean(torch.max(v_loss_unclipped, v_loss_clipped), mask)
                else:
                    v_loss = 0.5 * masked_mean(v_loss_unclipped, mask)
                entropy_loss = masked_mean(entropy, mask)
                loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef

                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

        stats["loss"].append(loss.item())
        stats["loss_transitions"].append(loss_transitions)
        stats["reset_steps"].append(int((1.0 - real).sum()))
        stats["env_steps"].append(global_step)
        stats["accuracy"].append(float(np.mean(successes)) if successes else float("nan"))
        if iteration % args.log_every == 0 or iteration == num_iterations:
            sps = int(global_step / (time.time() - start_time))
            print(
                f"iteration {iteration}/{num_iterations} env steps {global_step} "
                f"train accuracy {stats['accuracy'][-1]:.3f} loss {stats['loss'][-1]:.4f} SPS {sps}"
            )
    envs.close()
    return agent, stats


def evaluate(agent: Agent, args: Args) -> float:
    """Accuracy on the first ``args.eval_episodes`` test digits, deterministic actions."""
    num_envs = min(args.eval_episodes, 1000)
    rounds = -(-args.eval_episodes // num_envs)
    # sequential=True: sub-env i shows test digits i, i + num_envs, i + 2 * num_envs, ...
    envs = make_envs(args, num_envs, split="test", sequential=True)
    next_obs = to_torch(envs.reset(seed=args.seed)[0])
    first, is_reset_step = torch.ones(num_envs), torch.zeros(num_envs)
    lstm_state = agent.initial_state(num_envs)
    results: list[list[bool]] = [[] for _ in range(num_envs)]
    while min(len(r) for r in results) < rounds:
        with torch.no_grad():
            out, lstm_state = agent.get_action_and_value(
                next_obs, lstm_state, first, deterministic=True
            )
        raw_obs, _, term, trunc, info = envs.step(
            env_action(out.location, out.label, agent.n_classes)
        )
        for i in np.flatnonzero(term | trunc):  # a truncated episode reports no success
            results[i].append(bool(info["_is_success"][i] and info["is_success"][i]))
        first, is_reset_step = is_reset_step, torch.as_tensor(term | trunc, dtype=torch.float32)
        next_obs = to_torch(raw_obs)
    envs.close()
    in_digit_order = [results[i][r] for r in range(rounds) for i in range(num_envs)]
    return float(np.mean(in_digit_order[: args.eval_episodes]))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train, evaluate on the test split, print and return the results."""
    args = parse_args(argv)
    start = time.time()
    agent, stats = train(args)
    accuracy = evaluate(agent, args)
    print(
        f"trained {stats['env_steps'][-1] if stats['env_steps'] else 0} env steps in "
        f"{time.time() - start:.0f} s; test accuracy {accuracy:.3f} over "
        f"{args.eval_episodes} episodes (chance 0.1)"
    )
    return {"agent": agent, "stats": stats, "accuracy": accuracy, "args": args}


if __name__ == "__main__":
    main()
