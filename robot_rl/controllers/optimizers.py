"""Sampling-based optimisers of action sequences: CEM, iCEM, MPPI and random shooting.

Each optimiser maximises an ``Objective`` that scores a population of candidate action
sequences at once, (B, H, A) -> (B,), within box bounds on the actions; it starts from an
initial mean sequence (the controller's shifted warm start) and returns the sequence it
settles on. Objectives that return NaN or ±inf for a candidate are treated as returning
-inf (the worst), and the returned sequence is always finite and within the bounds: when
every candidate fails, the optimiser returns its (clipped) initial sequence.

All randomness comes from the optimiser's ``torch.Generator``.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

Objective = Callable[[torch.Tensor], torch.Tensor]
"""Scores candidates: (B, H, A) action sequences -> (B,) values to maximise."""


@dataclass(frozen=True)
class Solution:
    """An optimiser's answer.

    Attributes:
        actions: (H, A) the chosen action sequence, finite and within the bounds.
        value: the objective's value of the best candidate evaluated (-inf if none was finite).
        evaluations: candidate sequences scored.
    """

    actions: torch.Tensor
    value: float
    evaluations: int


class Optimizer(abc.ABC):
    """A sampling-based optimiser over (batch, horizon, action) tensors.

    Subclasses implement ``optimize``; those that carry samples from one call to the next
    (iCEM's elites) override ``reset`` and ``advance``.

    Args:
        horizon: H, steps per action sequence.
        lower: (A,) lower action bounds.
        upper: (A,) upper action bounds.
        generator: source of all samples.
    """

    def __init__(
        self,
        horizon: int,
        lower: torch.Tensor,
        upper: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        lower = torch.as_tensor(lower, dtype=torch.float32).reshape(-1)
        upper = torch.as_tensor(upper, dtype=torch.float32).reshape(-1)
        if lower.shape != upper.shape or not (
            torch.isfinite(lower).all() and torch.isfinite(upper).all()
        ):
            raise ValueError("lower and upper must be finite (A,) bounds of the same shape")
        if not (lower < upper).all():
            raise ValueError(f"lower {lower.tolist()} must be below upper {upper.tolist()}")
        self.horizon = int(horizon)
        self.lower, self.upper = lower, upper
        self.action_dim = len(lower)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    @abc.abstractmethod
    def optimize(self, objective: Objective, initial: torch.Tensor) -> Solution:
        """Maximise ``objective`` starting from the (H, A) sequence ``initial``."""

    def reset(self) -> None:
        """Forget anything carried between calls (a new episode)."""

    def advance(self, steps: int = 1) -> None:
        """The controller has executed ``steps`` actions; shift anything carried in time."""

    @property
    def centre(self) -> torch.Tensor:
        """(A,) the middle of the action box."""
        return 0.5 * (self.lower + self.upper)

    def _clip(self, x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(x, self.upper), self.lower)

    def _check_initial(self, initial: torch.Tensor) -> torch.Tensor:
        initial = torch.as_tensor(initial, dtype=torch.float32)
        if initial.shape != (self.horizon, self.action_dim):
            raise ValueError(
                f"initial must have shape ({self.horizon}, {self.action_dim}), got {tuple(initial.shape)}"
            )
        initial = torch.where(torch.isfinite(initial), initial, self.centre)
        return self._clip(initial)


def _score(objective: Objective, candidates: torch.Tensor) -> torch.Tensor:
    """``objective`` on (B, H, A) candidates with non-finite values replaced by -inf."""
    values = torch.as_tensor(objective(candidates)).to(torch.float32).reshape(-1)
    if values.shape != (len(candidates),):
        raise ValueError(
            f"objective returned {values.numel()} values for {len(candidates)} candidates"
        )
    return torch.where(torch.isfinite(values), values, torch.full_like(values, -math.inf))


def colored_noise(
    beta: float, shape: tuple[int, int, int], generator: torch.Generator
) -> torch.Tensor:
    """Gaussian noise (B, H, A) with power spectral density ∝ 1/f^beta along H, unit variance.

    beta = 0 is white noise; larger beta gives smoother, more correlated sequences (iCEM uses
    2-4 for low-frequency control).
    """
    b, h, a = shape
    if beta == 0:
        return torch.randn(shape, generator=generator)
    freqs = torch.fft.rfftfreq(h)
    freqs[0] = freqs[1] if h > 1 else 1.0
    scale = freqs ** (-beta / 2.0)
    real = torch.randn(b, a, len(freqs), generator=generator)
    imag = torch.randn(b, a, len(freqs), generator=generator)
    if h % 2 == 0:
        imag[..., -1] = 0.0  # the Nyquist component of a real signal is real
        real[..., -1] *= math.sqrt(2.0)
    imag[..., 0] = 0.0
    real[..., 0] *= math.sqrt(2.0)
    signal = torch.fft.irfft(torch.complex(real * scale, imag * scale), n=h)
    # Normalise to unit variance: the expected power of the filtered signal.
    weights = torch.full((len(freqs),), 2.0)
    weights[0] = 1.0
    if h % 2 == 0:
        weights[-1] = 1.0
    sigma = torch.sqrt((weights * scale**2).sum()) / h * math.sqrt(2.0)
    return (signal / sigma).transpose(1, 2).contiguous()


class RandomShooting(Optimizer):
    """Uniform random sequences in the bounds (plus the initial one); the best is returned.

    Args:
        population: candidates per call.
    """

    def __init__(
        self,
        horizon: int,
        lower: torch.Tensor,
        upper: torch.Tensor,
        population: int = 1000,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(horizon, lower, upper, generator)
        if population < 1:
            raise ValueError(f"population must be >= 1, got {population}")
        self.population = population

    def optimize(self, objective: Objective, initial: torch.Tensor) -> Solution:
        initial = self._check_initial(initial)
        u = torch.rand(self.population, self.horizon, self.action_dim, generator=self.generator)
        candidates = torch.cat([initial[None], self.lower + u * (self.upper - self.lower)])
        values = _score(objective, candidates)
        best = int(values.argmax())
        return Solution(candidates[best].clone(), float(values[best]), len(candidates))


class CEM(Optimizer):
    """The cross-entropy method with smoothing (PETS' optimiser).

    Each iteration samples ``population`` sequences from a Gaussian (clipped to the bounds),
    refits the mean and standard deviation to the ``elites`` best and mixes them with the
    previous ones: new = ``alpha`` · old + (1 - ``alpha``) · fitted. Returns the final mean.

    Args:
        population: samples per iteration.
        elites: best samples the distribution is refitted to.
        iterations: refits per call.
        alpha: smoothing of the mean and std (0: no memory).
        init_std: initial std as a fraction of the action range (upper - lower).
    """

    def __init__(
        self,
        horizon: int,
        lower: torch.Tensor,
        upper: torch.Tensor,
        population: int = 350,
        elites: int = 35,
        iterations: int = 5,
        alpha: float = 0.1,
        init_std: float = 0.25,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(horizon, lower, upper, generator)
        if not 1 <= elites <= population:
            raise ValueError(f"elites must be in [1, population={population}], got {elites}")
        if iterations < 1 or not 0.0 <= alpha < 1.0 or init_std <= 0:
            raise ValueError("need iterations >= 1, alpha in [0, 1) and init_std > 0")
        self.population, self.elites, self.iterations = population, elites, iterations
        self.alpha, self.init_std = alpha, init_std

    def optimize(self, objective: Objective, initial: torch.Tensor) -> Solution:
        mean = self._check_initial(initial)
        std = (self.init_std * (self.upper - self.lower)).expand(self.horizon, -1).clone()
        best_value = -math.inf
        shape = (self.population, self.horizon, self.action_dim)
        for _ in range(self.iterations):
            noise = torch.randn(shape, generator=self.generator)
            candidates = self._clip(mean + std * noise)
            values = _score(objective, candidates)
            top = values.topk(self.elites).indices
            best_value = max(best_value, float(values[top[0]]))
            if not torch.isfinite(values[top]).all():
                continue  # too few usable samples to refit; sample again around the same mean
            elite = candidates[top]
            mean = self.alpha * mean + (1 - self.alpha) * elite.mean(0)
            std = self.alpha * std + (1 - self.alpha) * elite.std(0, unbiased=False)
        return Solution(self._clip(mean), best_value, self.iterations * self.population)


class ICEM(Optimizer):
    """The improved cross-entropy method (Pinneri et al., 2020).

    Differences from CEM: coloured noise (``noise_beta``), a population that shrinks by
    ``population_decay`` each iteration (down to 2 · elites), a fraction ``keep_elites`` of
    the previous iteration's elites carried into the next (and, shifted by one step, into the
    next call), and the mean itself evaluated in the last iteration.

    What it returns: with ``return_best`` the best sequence ever evaluated, as published;
    that suits a deterministic objective, but when returns are noisy estimates (sampled
    particles on a learned model) the best is partly the luckiest, and acting on it jitters.
    By default it returns the final mean of the sampling distribution, which averages the
    elites (on the learned cart-pole this holds the pole within 3 degrees where the best
    sample wobbles by 10).

    Args:
        population: samples in the first iteration.
        elites: best samples the distribution is refitted to.
        iterations: refits per call.
        alpha: smoothing of the mean and std.
        init_std: initial std as a fraction of the action range.
        noise_beta: colour of the sampling noise (0 white, 2-4 smooth).
        population_decay: population divisor per iteration (>= 1).
        keep_elites: fraction of elites carried over.
        return_best: return the best sequence evaluated instead of the final mean.
    """

    def __init__(
        self,
        horizon: int,
        lower: torch.Tensor,
        upper: torch.Tensor,
        population: int = 100,
        elites: int = 10,
        iterations: int = 3,
        alpha: float = 0.1,
        init_std: float = 0.5,
        noise_beta: float = 2.0,
        population_decay: float = 1.25,
        keep_elites: float = 0.3,
        return_best: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(horizon, lower, upper, generator)
        if not 1 <= elites <= population:
            raise ValueError(f"elites must be in [1, population={population}], got {elites}")
        if iterations < 1 or not 0.0 <= alpha < 1.0 or init_std <= 0:
            raise ValueError("need iterations >= 1, alpha in [0, 1) and init_std > 0")
        if population_decay < 1.0 or not 0.0 <= keep_elites <= 1.0 or noise_beta < 0:
            raise ValueError("need population_decay >= 1, keep_elites in [0, 1], noise_beta >= 0")
        self.population, self.elites, self.iterations = population, elites, iterations
        self.alpha, self.init_std, self.noise_beta = alpha, init_std, noise_beta
        self.population_decay, self.keep_elites = population_decay, keep_elites
        self.return_best = return_best
        self._kept: torch.Tensor | None = None

    def reset(self) -> None:
        self._kept = None

    def advance(self, steps: int = 1) -> None:
        if self._kept is None:
            return
        if steps >= self.horizon:
            self._kept = None
            return
        tail = self.centre.expand(len(self._kept), steps, -1)
        self._kept = torch.cat([self._kept[:, steps:], tail], dim=1)

    def population_at(self, iteration: int) -> int:
        """Samples drawn in ``iteration`` (0-based)."""
        shrunk = round(self.population * self.population_decay**-iteration)
        return max(shrunk, 2 * self.elites)

    def optimize(self, objective: Objective, initial: torch.Tensor) -> Solution:
        mean = self._check_initial(initial)
        std = (self.init_std * (self.upper - self.lower)).expand(self.horizon, -1).clone()
        n_keep = round(self.keep_elites * self.elites)
        best_value, best = -math.inf, mean
        evaluations = 0
        kept = self._kept
        for i in range(self.iterations):
            n = self.population_at(i)
            noise = colored_noise(
                self.noise_beta, (n, self.horizon, self.action_dim), self.generator
            )
            parts = [self._clip(mean + std * noise)]
            if kept is not None and n_keep:
                parts.append(kept[:n_keep])
            if i == self.iterations - 1:
                parts.append(mean[None])
            candidates = torch.cat(parts)
            values = _score(objective, candidates)
            evaluations += len(candidates)
            top = values.topk(min(self.elites, len(values))).indices
            if values[top[0]] > best_value:
                best_value, best = float(values[top[0]]), candidates[top[0]].clone()
            usable = top[torch.isfinite(values[top])]
            if len(usable) == 0:
                continue
            elite = candidates[usable]
            kept = elite
            mean = self.alpha * mean + (1 - self.alpha) * elite.mean(0)
            std = self.alpha * std + (1 - self.alpha) * elite.std(0, unbiased=False)
        self._kept = kept
        return Solution(best if self.return_best else self._clip(mean), best_value, evaluations)


class MPPI(Optimizer):
    """Model predictive path integral control (Williams et al., 2017).

    Each iteration perturbs the mean with (optionally coloured) Gaussian noise, weights the
    samples by exp((value - best) / ``temperature``) and moves the mean to the weighted
    average (smoothed by ``alpha``). Returns the final mean.

    Args:
        population: samples per iteration.
        iterations: updates per call.
        temperature: λ, how sharply the best samples dominate (in objective units).
        noise_std: exploration std as a fraction of the action range.
        noise_beta: colour of the noise along the horizon (0 white).
        alpha: smoothing of the mean update.
    """

    def __init__(
        self,
        horizon: int,
        lower: torch.Tensor,
        upper: torch.Tensor,
        population: int = 500,
        iterations: int = 3,
        temperature: float = 1.0,
        noise_std: float = 0.3,
        noise_beta: float = 0.0,
        alpha: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(horizon, lower, upper, generator)
        if population < 1 or iterations < 1 or temperature <= 0 or noise_std <= 0:
            raise ValueError("need population, iterations >= 1 and temperature, noise_std > 0")
        if not 0.0 <= alpha < 1.0 or noise_beta < 0:
            raise ValueError("need alpha in [0, 1) and noise_beta >= 0")
        self.population, self.iterations = population, iterations
        self.temperature, self.noise_std, self.noise_beta = temperature, noise_std, noise_beta
        self.alpha = alpha

    def optimize(self, objective: Objective, initial: torch.Tensor) -> Solution:
        mean = self._check_initial(initial)
        std = self.noise_std * (self.upper - self.lower)
        best_value = -math.inf
        shape = (self.population, self.horizon, self.action_dim)
        for _ in range(self.iterations):
            noise = colored_noise(self.noise_beta, shape, self.generator)
            candidates = torch.cat([mean[None], self._clip(mean + std * noise)])
            values = _score(objective, candidates)
            top = float(values.max())
            best_value = max(best_value, top)
            if not math.isfinite(top):
                continue
            weights = torch.softmax((values - top) / self.temperature, dim=0)
            update = (weights[:, None, None] * candidates).sum(0)
            mean = self.alpha * mean + (1 - self.alpha) * update
        return Solution(self._clip(mean), best_value, self.iterations * (self.population + 1))
