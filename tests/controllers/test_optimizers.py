"""Sampling optimisers: they find a known optimum, respect bounds, survive hostile objectives."""

from __future__ import annotations

import math

import pytest
import torch

from robot_rl.controllers import CEM, ICEM, MPPI, RandomShooting, colored_noise

H, A = 6, 2
LOWER, UPPER = torch.tensor([-1.0, -2.0]), torch.tensor([1.0, 2.0])
TARGET = torch.stack([torch.linspace(-0.8, 0.8, H), torch.linspace(1.5, -1.5, H)], dim=1)


def quadratic(actions: torch.Tensor) -> torch.Tensor:
    """Peak 0 at TARGET."""
    return -((actions - TARGET) ** 2).sum(dim=(1, 2))


def build(kind: str, seed: int = 0, **kwargs):
    g = torch.Generator().manual_seed(seed)
    if kind == "cem":
        return CEM(H, LOWER, UPPER, population=200, elites=20, iterations=8, generator=g, **kwargs)
    if kind == "icem":
        return ICEM(
            H,
            LOWER,
            UPPER,
            population=200,
            elites=20,
            iterations=15,
            noise_beta=1.0,
            generator=g,
            **kwargs,
        )
    if kind == "mppi":
        return MPPI(
            H,
            LOWER,
            UPPER,
            population=200,
            iterations=10,
            temperature=0.3,
            noise_std=0.1,
            generator=g,
            **kwargs,
        )
    return RandomShooting(H, LOWER, UPPER, population=20000, generator=g, **kwargs)


TOLERANCE = {"cem": 0.05, "icem": 0.1, "mppi": 0.15, "random": 1.0}


@pytest.mark.parametrize("kind", ["cem", "icem", "mppi", "random"])
def test_finds_the_optimum_of_a_known_cost(kind):
    solution = build(kind).optimize(quadratic, torch.zeros(H, A))
    error = (solution.actions - TARGET).abs().max()
    assert error < TOLERANCE[kind], error
    assert solution.value <= 0.0
    assert solution.evaluations > 0
    if kind != "random":  # random shooting is a baseline, far worse at equal budgets
        assert float(quadratic(solution.actions[None])) > -0.05


@pytest.mark.parametrize("kind", ["cem", "icem", "mppi", "random"])
def test_optimum_outside_the_box_lands_on_the_bound(kind):
    def linear(actions: torch.Tensor) -> torch.Tensor:
        """Push the first action up, the second down: the optimum is the corner, value 18."""
        return actions[:, :, 0].sum(1) - actions[:, :, 1].sum(1)

    solution = build(kind).optimize(linear, torch.zeros(H, A))
    assert (solution.actions >= LOWER).all()
    assert (solution.actions <= UPPER).all()
    share = float(linear(solution.actions[None])) / 18.0
    assert share > (0.6 if kind == "random" else 0.85)


@pytest.mark.parametrize("kind", ["cem", "icem", "mppi", "random"])
def test_non_finite_values_count_as_worst(kind):
    def hostile(actions: torch.Tensor) -> torch.Tensor:
        values = quadratic(actions)
        # Any candidate near the true optimum's first action "crashes" the model.
        bad = (actions[:, 0, 0] - TARGET[0, 0]).abs() < 0.3
        return torch.where(bad, torch.full_like(values, math.nan), values)

    solution = build(kind).optimize(hostile, torch.zeros(H, A))
    assert torch.isfinite(solution.actions).all()
    assert math.isfinite(solution.value)
    if kind in ("icem", "random"):  # these return the best sequence evaluated: a finite one
        assert (solution.actions[0, 0] - TARGET[0, 0]).abs() >= 0.3


@pytest.mark.parametrize("kind", ["cem", "icem", "mppi", "random"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_all_failing_candidates_return_the_finite_initial_sequence(kind, bad):
    initial = torch.full((H, A), 0.3)
    initial[2, 1] = math.nan  # a non-finite warm start is repaired too
    solution = build(kind).optimize(lambda a: torch.full((len(a),), bad), initial)
    assert torch.isfinite(solution.actions).all()
    assert solution.value == -math.inf
    assert (solution.actions >= LOWER).all()
    assert (solution.actions <= UPPER).all()


@pytest.mark.parametrize("kind", ["cem", "icem", "mppi", "random"])
def test_same_seed_same_answer(kind):
    a = build(kind, seed=3).optimize(quadratic, torch.zeros(H, A))
    b = build(kind, seed=3).optimize(quadratic, torch.zeros(H, A))
    c = build(kind, seed=4).optimize(quadratic, torch.zeros(H, A))
    assert torch.equal(a.actions, b.actions)
    assert not torch.equal(a.actions, c.actions)


def test_icem_population_shrinks_and_elites_carry_over_shifted():
    opt = ICEM(
        H,
        LOWER,
        UPPER,
        population=100,
        elites=10,
        iterations=4,
        population_decay=2.0,
        keep_elites=0.5,
    )
    assert [opt.population_at(i) for i in range(4)] == [100, 50, 25, 20]
    seen: list[int] = []

    def counting(actions: torch.Tensor) -> torch.Tensor:
        seen.append(len(actions))
        return quadratic(actions)

    opt.optimize(counting, torch.zeros(H, A))
    # Kept elites join from the second iteration, the mean in the last.
    assert seen == [100, 55, 30, 26]
    kept = opt._kept.clone()
    opt.advance(1)
    torch.testing.assert_close(opt._kept[:, :-1], kept[:, 1:])
    torch.testing.assert_close(opt._kept[:, -1], opt.centre.expand(len(kept), -1))
    opt.reset()
    seen.clear()
    opt.optimize(counting, torch.zeros(H, A))
    assert seen[0] == 100


def test_colored_noise_has_unit_variance_and_beta_sets_smoothness():
    g = torch.Generator().manual_seed(0)
    for h in (15, 16):
        white, pink, red = (colored_noise(beta, (4000, h, 2), g) for beta in (0.0, 1.0, 2.0))
        for noise in (white, pink, red):
            assert noise.shape == (4000, h, 2)
            assert abs(float(noise.var()) - 1.0) < 0.05

        def lag1(x: torch.Tensor) -> float:
            return float((x[:, 1:] * x[:, :-1]).mean())

        assert abs(lag1(white)) < 0.05
        assert lag1(white) < lag1(pink) < lag1(red)


def test_bad_configuration_raises():
    with pytest.raises(ValueError, match="below upper"):
        CEM(H, UPPER, LOWER)
    with pytest.raises(ValueError, match="elites"):
        ICEM(H, LOWER, UPPER, population=10, elites=20)
    with pytest.raises(ValueError, match="initial must have shape"):
        build("cem").optimize(quadratic, torch.zeros(H + 1, A))
