"""Reset-free SAC: learning without episodic resets, counting every human intervention.

On a real robot nobody is there to put it back after every episode. Following Leave No Trace
(Eysenbach et al., 2018), a *forward* agent learns the task and a *reset* agent learns to
bring the robot back to the initial-state distribution; they alternate. While the forward
agent acts, the reset agent's value V_reset(s) = min_e Q_reset(s, π_reset(s)) is checked
every step; when it falls below a threshold, the state is about to become one the reset
agent cannot come back from, and the forward phase is *aborted early*. When the reset agent
fails to return within its attempts (or the env reports a terminal state), a *hard reset*
is made: the env's episodic ``reset()``, which on hardware is a person walking over. The
``ResetFreeEnv`` wrapper is the only way the loop resets the env, and counts every call.
Where every state is recoverable (an arm under velocity control), a failed return need not
call anyone: with ``reset_attempts=None`` the forward agent goes on from wherever the robot
is, as in EARL, and only terminal states are hard-reset.

The reset reward is either a distance to a handful of demonstration initial states or, as in
MEDAL (Sharma et al., 2022), a classifier trained to tell those states from the states the
robot visits. Evaluation reports both views of the EARL benchmark (Sharma et al., 2021):
*deployed* (episodic returns and success of the forward policy from the initial
distribution, in a separate env) and *continuing* (reward accumulated over the whole
non-episodic run).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from robot_rl.agents.sac import SAC, TrainConfig, Trainer
from robot_rl.checkpoint import CheckpointError, pack_state, sub_tensors, unpack_state
from robot_rl.evaluation import Evaluation
from robot_rl.logger import Logger
from robot_rl.nn import mlp
from robot_rl.types import Batch


class ResetFreeEnv(gym.Wrapper):
    """A non-episodic view of an env: every ``reset()`` is a counted hard reset.

    Build the wrapped env without a time limit (``max_episode_steps=None``). The first
    ``reset()`` places the robot and is not counted as an intervention.

    Attributes:
        hard_resets: ``reset()`` calls after the first (interventions).
        steps: env steps taken.
        total_reward: reward summed over every step (continuing evaluation).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.resets = 0
        self.steps = 0
        self.total_reward = 0.0

    @property
    def hard_resets(self) -> int:
        return max(0, self.resets - 1)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self.resets += 1
        return self.env.reset(seed=seed, options=options)

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        self.total_reward += float(reward)
        return obs, reward, terminated, truncated, info

    def resample_task(self, rng: np.random.Generator) -> np.ndarray | None:
        """Draw a new goal without moving the robot (robot_rl envs with a task state).

        Returns:
            The observation with the new goal, or None when the env has no task state.
        """
        unwrapped = self.env.unwrapped
        task = getattr(unwrapped, "task", None)
        if task is None or not getattr(task, "task_state_size", 0):
            return None
        goal = task.sample_task_state(rng)
        state = unwrapped.get_state()
        obs = task.observe(unwrapped.physics.measure(), goal)
        unwrapped.set_state(dataclasses.replace(state, task_state=goal, obs=obs))
        return np.asarray(obs, dtype=np.float32)


class ResetReward(enum.Enum):
    """What the reset agent is rewarded for."""

    DISTANCE = "distance"
    """-d / σ with d the distance to the nearest demonstration initial state."""
    CLASSIFIER = "classifier"
    """MEDAL: a classifier's probability that the state is a demonstration initial state."""


class Phase(enum.Enum):
    FORWARD = "forward"
    RESET = "reset"


@dataclass(frozen=True)
class ResetFreeConfig:
    """Settings of reset-free learning."""

    forward_steps: int = 100
    """Longest forward phase, env steps."""
    reset_steps: int = 100
    """Longest reset attempt, env steps."""
    reset_attempts: int | None = 2
    """Failed reset attempts in a row before a hard reset. None: a failed attempt calls no
    one; the next forward phase starts wherever the robot is (EARL-style), and only
    terminal states are hard-reset."""
    reset_reward: ResetReward = ResetReward.DISTANCE
    """Reward of the reset agent."""
    reset_dims: tuple[int, ...] | None = None
    """Observation indices the reset reward looks at (None: all), e.g. the joint angles."""
    reset_radius: float = 0.3
    """Distance to the nearest demonstration state that counts as reset (DISTANCE), obs units."""
    abort_reward: float = -10.0
    """Abort a forward phase when V_reset < abort_reward / (1 - γ), i.e. when the reset agent
    expects to earn less than this per step forever (Leave No Trace's Q_min). In the reset
    reward's units: DISTANCE rewards are -d/σ (-10: ten radii from home for good),
    CLASSIFIER rewards are probabilities in [0, 1]."""
    abort_after: int = 5_000
    """Env steps before early aborts are enabled (the reset critic must learn first)."""
    classifier_hidden: tuple[int, ...] = (64, 64)
    """Hidden widths of the MEDAL classifier."""
    classifier_every: int = 10
    """Env steps between classifier gradient steps (CLASSIFIER)."""

    def __post_init__(self) -> None:
        attempts = 1 if self.reset_attempts is None else self.reset_attempts
        if min(self.forward_steps, self.reset_steps, attempts) < 1:
            raise ValueError("forward_steps, reset_steps and reset_attempts must be >= 1")
        if self.reset_radius <= 0 or not math.isfinite(self.abort_reward):
            raise ValueError("reset_radius must be > 0 and abort_reward finite")
        if self.abort_after < 0 or self.classifier_every < 1:
            raise ValueError("abort_after must be >= 0 and classifier_every >= 1")


class InitialStateReward(nn.Module):
    """-d / σ, d the distance (over ``dims``) to the nearest demonstration state.

    Dense and on the scale of a reaching task's reward (the arm's own is -distance / 0.1 m),
    so the reset agent is paid for every step towards home from wherever the forward agent
    left the robot. A bounded bump such as exp(-d²/2σ²) is flat zero a few σ out, and any
    reward whose spread is small next to SAC's entropy bonus keeps the reset policy near
    random: on the iiwa arm both left the reset agent wandering ever further from home.

    Args:
        demos: (K, obs_dim) demonstration initial states.
        dims: observation indices compared (None: all).
        radius: σ, obs units; d ≤ σ counts as reset.
    """

    def __init__(self, demos: np.ndarray, dims: Sequence[int] | None, radius: float) -> None:
        super().__init__()
        index = torch.arange(demos.shape[1]) if dims is None else torch.as_tensor(list(dims))
        self.register_buffer("index", index)
        self.register_buffer("demos", torch.as_tensor(demos, dtype=torch.float32)[:, index])
        self.radius = radius

    def distance(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, obs_dim) -> (B,) distance to the nearest demonstration state, obs units."""
        return torch.cdist(obs[:, self.index], self.demos).amin(-1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return -self.distance(obs) / self.radius

    def is_reset(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, obs_dim) -> (B,) bool: within ``radius`` of a demonstration state."""
        return self.distance(obs) <= self.radius


class StateClassifier(nn.Module):
    """MEDAL's reset reward: D(s) = P(s is a demonstration initial state), (B, obs) -> (B,).

    Trained with logistic loss on demonstration states (label 1) against states from the
    replay buffer (label 0); 0.5 counts as reset.
    """

    def __init__(
        self, demos: np.ndarray, dims: Sequence[int] | None, hidden: Sequence[int], seed: int
    ) -> None:
        super().__init__()
        index = torch.arange(demos.shape[1]) if dims is None else torch.as_tensor(list(dims))
        self.register_buffer("index", index)
        self.register_buffer("demos", torch.as_tensor(demos, dtype=torch.float32))
        with torch.random.fork_rng(devices=()):
            torch.manual_seed(seed)
            self.net = mlp(len(index), 1, hidden)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(obs[:, self.index]).squeeze(-1))

    def is_reset(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, obs_dim) -> (B,) bool: classified as a demonstration state."""
        return self(obs) >= 0.5

    def train_step(self, visited: torch.Tensor) -> float:
        """One logistic-regression step: demonstrations vs ``visited`` (B, obs_dim)."""
        x = torch.cat((self.demos, visited))[:, self.index]
        y = torch.cat((torch.ones(len(self.demos)), torch.zeros(len(visited))))
        logits = self.net(x).squeeze(-1)
        weight = torch.where(y > 0, len(visited) / len(self.demos), 1.0)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, y, weight=weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


class ResetFreeTrainer(Trainer):
    """The reset-free loop: forward and reset phases, early aborts, counted hard resets.

    Both agents learn off-policy from one shared replay buffer: the forward agent from the
    task reward, the reset agent from the same transitions relabelled with the reset reward.

    Args:
        agent: the forward agent (the deployed policy).
        reset_agent: the reset agent (same spaces).
        env: the training env, wrapped in ``ResetFreeEnv`` (one env).
        demos: (K, obs_dim) demonstration initial states (e.g. observations after resets of
            a separate env instance; on hardware, states a person recorded once).
        config: loop settings (``num_envs`` must be 1).
        reset_free: reset-free settings.
        env_id: stored in checkpoints.
        eval_env: an ordinary episodic env for deployed evaluation.
        logger: metric sink.
        checkpoint_path: where the checkpoint goes.
    """

    def __init__(
        self,
        agent: SAC,
        reset_agent: SAC,
        env: ResetFreeEnv,
        demos: np.ndarray,
        config: TrainConfig,
        reset_free: ResetFreeConfig,
        env_id: str,
        eval_env: gym.Env | None = None,
        logger: Logger | None = None,
        checkpoint_path: str | None = None,
    ) -> None:
        if not isinstance(env, ResetFreeEnv):
            raise TypeError("the reset-free loop needs its env wrapped in ResetFreeEnv")
        if config.num_envs != 1:
            raise ValueError("the reset-free loop runs one env (num_envs=1)")
        if (reset_agent.obs_dim, reset_agent.act_dim) != (agent.obs_dim, agent.act_dim):
            raise ValueError("the forward and reset agents must have the same spaces")
        demos = np.asarray(demos, dtype=np.float32)
        if demos.ndim != 2 or demos.shape[1] != agent.obs_dim or not np.isfinite(demos).all():
            raise ValueError(f"demos must be finite (K, {agent.obs_dim}), got {demos.shape}")
        self.reset_agent = reset_agent
        self.reset_free = reset_free
        self.reset_reward: InitialStateReward | StateClassifier
        if reset_free.reset_reward is ResetReward.DISTANCE:
            self.reset_reward = InitialStateReward(
                demos, reset_free.reset_dims, reset_free.reset_radius
            )
        else:
            self.reset_reward = StateClassifier(
                demos, reset_free.reset_dims, reset_free.classifier_hidden, config.seed
            )
        self.phase = Phase.FORWARD
        self.phase_steps = 0
        self.failed_attempts = 0
        self.early_aborts = 0
        self.reset_successes = 0
        self.hard_resets = 0
        self._abort_value = reset_free.abort_reward / (1.0 - reset_agent.config.gamma)
        super().__init__(agent, [env], config, env_id, eval_env, logger, checkpoint_path)
        self.env = env
        self._new_task()

    @property
    def algorithm(self) -> str:
        return "reset-free"

    def compile(self) -> ResetFreeTrainer:
        """Compile both learners' gradient steps (``SAC.compile``); returns the trainer."""
        super().compile()
        self.reset_agent.compile()
        return self

    # -- the loop --------------------------------------------------------------------------------
    def collect(self) -> None:
        c, rf = self.config, self.reset_free
        acting = self.agent if self.phase is Phase.FORWARD else self.reset_agent
        if self.counters.env_steps < c.learning_starts:
            action = self.rng.uniform(-1.0, 1.0, (1, self.agent.act_dim)).astype(np.float32)
        else:
            action = acting.act(self._obs)
        obs_before = self._obs.copy()
        next_obs, reward, terminated, _, info = self.env.step(action[0])
        cost = float(info.get("cost", 0.0))
        self._check_finite(0, next_obs, reward, cost)
        self.buffer.add(obs_before, action, [reward], next_obs[None], [float(terminated)], [cost])
        self.counters.env_steps += 1
        self.counters.violations += cost > 0.0
        self._episode_return[0] += reward
        self._episode_cost[0] += cost
        self._episode_length[0] += 1
        self._obs[0] = next_obs
        self.phase_steps += 1

        if terminated:  # stuck: only a person can help
            self.counters.terminations += 1
            self._hard_reset()
        elif self.phase is Phase.FORWARD:
            aborting = (
                self.counters.env_steps >= rf.abort_after
                and self._reset_value() < self._abort_value
            )
            if aborting:
                self.early_aborts += 1
            if aborting or self.phase_steps >= rf.forward_steps:
                self._end_forward_phase()
                self._start(Phase.RESET)
        elif self._is_reset(self._obs):
            self.reset_successes += 1
            self.failed_attempts = 0
            self._start(Phase.FORWARD)
        elif self.phase_steps >= rf.reset_steps:
            self.failed_attempts += 1
            if rf.reset_attempts is None:
                self._start(Phase.FORWARD)
            elif self.failed_attempts >= rf.reset_attempts:
                self._hard_reset()
            else:
                self._start(Phase.RESET)
        if (
            isinstance(self.reset_reward, StateClassifier)
            and self.counters.env_steps % rf.classifier_every == 0
            and len(self.buffer) >= self.agent.config.batch_size
        ):
            visited = self.buffer.sample(self.agent.config.batch_size).next_obs
            self.reset_reward.train_step(visited)

    def update_agents(self) -> None:
        c = self.config
        if self.counters.env_steps <= c.learning_starts:
            return
        self.counters.update_debt += c.updates_per_step
        while self.counters.update_debt >= 1.0:
            batch = self.buffer.sample(self.agent.config.batch_size)
            self._metrics = self.agent.update(batch)
            reset_metrics = self.reset_agent.update(self._relabel(batch))
            self._metrics |= {
                k.replace("train/", "reset_train/"): v for k, v in reset_metrics.items()
            }
            self.counters.update_debt -= 1.0

    def _relabel(self, batch: Batch) -> Batch:
        with torch.no_grad():
            reward = self.reset_reward(batch.next_obs)
        return batch._replace(reward=reward, terminated=torch.zeros_like(batch.terminated))

    @torch.inference_mode()
    def _reset_value(self) -> float:
        obs = torch.from_numpy(self._obs)
        action = self.reset_agent.actor(obs)
        return float(self.reset_agent.critics["reward"](obs, action).amin(0)[0])

    @torch.inference_mode()
    def _is_reset(self, obs: np.ndarray) -> bool:
        return bool(self.reset_reward.is_reset(torch.from_numpy(obs))[0])

    def _start(self, phase: Phase) -> None:
        self.phase, self.phase_steps = phase, 0
        if phase is Phase.FORWARD:
            self._new_task()

    def _end_forward_phase(self) -> None:
        """A forward phase is the reset-free analogue of an episode: record it."""
        ret, cost, length = (
            float(self._episode_return[0]),
            float(self._episode_cost[0]),
            int(self._episode_length[0]),
        )
        self.counters.episodes += 1
        self._recent.append((ret, cost, length))
        self.agent.on_episodes([ret], [cost])
        self._episode_return[0] = self._episode_cost[0] = self._episode_length[0] = 0

    def _hard_reset(self) -> None:
        if self.phase is Phase.FORWARD:
            self._end_forward_phase()
        self.hard_resets += 1
        self.failed_attempts = 0
        self._obs[0] = self._reset(0)
        self._start(Phase.FORWARD)

    def _new_task(self) -> None:
        obs = self.env.resample_task(self.rng)
        if obs is not None:
            self._obs[0] = obs

    # -- evaluation and metrics --------------------------------------------------------------------
    def evaluate(self) -> Evaluation:
        """Deployed evaluation (episodic, forward policy) and continuing evaluation."""
        result = super().evaluate()
        self.logger.record_many(self.extra_metrics())
        return result

    def extra_metrics(self) -> dict[str, float]:
        return {
            "reset_free/hard_resets": self.hard_resets,
            "reset_free/early_aborts": self.early_aborts,
            "reset_free/reset_successes": self.reset_successes,
            "continuing/average_reward": self.env.total_reward / max(self.env.steps, 1),
            "continuing/total_reward": self.env.total_reward,
        }

    # -- checkpointing -----------------------------------------------------------------------------
    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, metadata = super().state_dict()
        reset_tensors, reset_meta = self.reset_agent.state_dict()
        tensors.update({f"reset_agent.{k}": v for k, v in reset_tensors.items()})
        reward_tree, reward_tensors = pack_state(
            {
                "module": self.reset_reward.state_dict(),
                "optimizer": getattr(self.reset_reward, "optimizer", None)
                and self.reset_reward.optimizer.state_dict(),
            },
            "reset_reward",
        )
        tensors.update(reward_tensors)
        metadata["reset_free"] = {
            "reset_agent": reset_meta,
            "reset_reward": reward_tree,
            "phase": self.phase.value,
            "phase_steps": self.phase_steps,
            "failed_attempts": self.failed_attempts,
            "early_aborts": self.early_aborts,
            "reset_successes": self.reset_successes,
            "hard_resets": self.hard_resets,
            "env": {
                "resets": self.env.resets,
                "steps": self.env.steps,
                "total_reward": self.env.total_reward,
            },
        }
        return tensors, metadata

    def load_state_dict(self, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
        try:
            state = metadata["reset_free"]
            env_resets = self.env.resets
            super().load_state_dict(tensors, metadata)
            self.reset_agent.load_state_dict(
                sub_tensors(tensors, "reset_agent."), state["reset_agent"]
            )
            reward_state = unpack_state(state["reset_reward"], tensors)
            self.reset_reward.load_state_dict(reward_state["module"])
            if isinstance(self.reset_reward, StateClassifier):
                self.reset_reward.optimizer.load_state_dict(reward_state["optimizer"])
            self.phase = Phase(state["phase"])
            for key in (
                "phase_steps",
                "failed_attempts",
                "early_aborts",
                "reset_successes",
                "hard_resets",
            ):
                setattr(self, key, int(state[key]))
            self.env.resets = int(state["env"]["resets"]) + (self.env.resets - env_resets)
            self.env.steps = int(state["env"]["steps"])
            self.env.total_reward = float(state["env"]["total_reward"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"reset-free state does not fit this run: {err!r}") from err
