"""Analytic CasADi models of the swing-up robots, and their discretisations.

A ``MechanicalModel`` gives the joint accelerations of a robot with generalised coordinates
``q`` (n_q,) and velocities ``v`` (n_q,) under an actuator input ``u`` (n_u,) in physical
units (N, N·m), as CasADi expressions; the state is ``x = (q, v)``. Two discretisations turn
it into ``x_{k+1} = F(x_k, u_k)`` with ``u`` held over the interval (zero-order hold):

- ``rk4``: one classical Runge-Kutta step of ``dt`` (the benchmark reference problem);
- ``semi_implicit_euler``: ``substeps`` steps of MuJoCo's Euler integrator (velocity first,
  joint damping implicit), which reproduces the simulated envs step for step.

``rk4_quadrature`` integrates a running-cost rate with the same Runge-Kutta stages.

Parameters default to the robots the envs simulate (see ``robot_rl.envs.robots``); the
benchmark's reference cart-pole is ``CartpoleParams(pole_inertia=0.0, force_limit=5.0)``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

import casadi as ca
import numpy as np

SymbolicCost = Callable[[ca.SX, ca.SX], ca.SX]
"""A running-cost rate ℓ(x, u) as a CasADi expression."""


def _check_positive(params: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(params, name)
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{type(params).__name__}.{name} must be finite and > 0, got {value}")


def _check_non_negative(params: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(params, name)
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{type(params).__name__}.{name} must be finite and >= 0, got {value}")


class MechanicalModel(abc.ABC):
    """A rigid-body robot as CasADi expressions: ``M(q) a = τ(u) - b(q, v) - D v``.

    Subclasses implement ``mass_matrix``, ``bias`` and ``actuation`` and set the attributes.

    Attributes:
        n_q: number of generalised coordinates (and velocities).
        n_u: number of actuator inputs.
        damping: (n_q,) viscous joint damping D, N·s/m or N·m·s/rad.
        control_limit: (n_u,) symmetric actuator limit, N or N·m (|u| <= limit).
        name: short model name.
    """

    n_q: int
    n_u: int
    damping: np.ndarray
    control_limit: np.ndarray
    name: str

    @property
    def state_size(self) -> int:
        return 2 * self.n_q

    @abc.abstractmethod
    def mass_matrix(self, q: ca.SX) -> ca.SX:
        """M(q), (n_q, n_q)."""

    @abc.abstractmethod
    def bias(self, q: ca.SX, v: ca.SX) -> ca.SX:
        """Coriolis, centrifugal and gravity forces b(q, v), (n_q,)."""

    @abc.abstractmethod
    def actuation(self, u: ca.SX) -> ca.SX:
        """Generalised forces τ(u) of the actuator inputs, (n_q,)."""

    def acceleration(self, q: ca.SX, v: ca.SX, u: ca.SX, implicit_dt: float = 0.0) -> ca.SX:
        """Joint accelerations, (n_q,); with ``implicit_dt`` = h > 0 the damping is treated
        implicitly as MuJoCo's Euler integrator does: ``(M + hD) a = τ - b - D v``."""
        M = self.mass_matrix(q) + implicit_dt * ca.diag(ca.DM(self.damping))
        rhs = self.actuation(u) - self.bias(q, v) - ca.DM(self.damping) * v
        return ca.solve(M, rhs)

    def ode(self, x: ca.SX, u: ca.SX) -> ca.SX:
        """Continuous-time dynamics ẋ = (v, a), (2 n_q,)."""
        q, v = x[: self.n_q], x[self.n_q :]
        return ca.vertcat(v, self.acceleration(q, v, u))

    def symbols(self) -> tuple[ca.SX, ca.SX]:
        """Fresh symbols for the state (2 n_q,) and the input (n_u,)."""
        return ca.SX.sym("x", self.state_size), ca.SX.sym("u", self.n_u)


@dataclass(frozen=True)
class CartpoleParams:
    """A cart on a rail carrying a pole with a point mass, θ = 0 hanging down, π upright.

    The sign conventions are MuJoCo's for ``robot_rl/CartpoleSwingup-v0``: the slider moves
    the cart along +x and positive θ swings the mass towards -x.

    Attributes:
        cart_mass: kg. pole_mass: kg, at ``pole_length`` m from the hinge.
        pole_inertia: rotational inertia of the pole about its centre of mass, kg·m².
        gravity: m/s². cart_damping: N·s/m. pole_damping: N·m·s/rad.
        force_limit: |force on the cart| <= this, N.
    """

    cart_mass: float = 1.0
    pole_mass: float = 0.1
    pole_length: float = 0.5
    pole_inertia: float = 1e-5
    gravity: float = 9.81
    cart_damping: float = 0.0
    pole_damping: float = 0.0
    force_limit: float = 10.0

    def __post_init__(self) -> None:
        _check_positive(self, ("cart_mass", "pole_mass", "pole_length", "force_limit"))
        _check_non_negative(self, ("pole_inertia", "gravity", "cart_damping", "pole_damping"))


REFERENCE_CARTPOLE = CartpoleParams(pole_inertia=0.0, force_limit=5.0)
"""The benchmark reference problem's cart-pole (point-mass pole, |u| <= 5 N)."""


class Cartpole(MechanicalModel):
    """Cart-pole: q = (p, θ), u = (force on the cart,)."""

    n_q = 2
    n_u = 1
    name = "cartpole"

    def __init__(self, params: CartpoleParams = CartpoleParams()) -> None:
        self.params = params
        self.damping = np.array([params.cart_damping, params.pole_damping])
        self.control_limit = np.array([params.force_limit])

    def mass_matrix(self, q: ca.SX) -> ca.SX:
        p = self.params
        c = ca.cos(q[1])
        ml = p.pole_mass * p.pole_length
        return ca.blockcat(
            [
                [p.cart_mass + p.pole_mass, -ml * c],
                [-ml * c, p.pole_mass * p.pole_length**2 + p.pole_inertia],
            ]
        )

    def bias(self, q: ca.SX, v: ca.SX) -> ca.SX:
        p = self.params
        s = ca.sin(q[1])
        ml = p.pole_mass * p.pole_length
        return ca.vertcat(ml * s * v[1] ** 2, ml * p.gravity * s)

    def actuation(self, u: ca.SX) -> ca.SX:
        return ca.vertcat(u[0], 0)


@dataclass(frozen=True)
class PendulumParams:
    """A point mass on a light rod about a horizontal hinge, θ = 0 hanging down.

    Attributes:
        mass: kg, at ``length`` m from the hinge. inertia: about the mass's centre, kg·m².
        gravity: m/s². damping: N·m·s/rad. torque_limit: |torque| <= this, N·m.
    """

    mass: float = 1.0
    length: float = 0.5
    inertia: float = 1e-4
    gravity: float = 9.81
    damping: float = 0.05
    torque_limit: float = 2.0

    def __post_init__(self) -> None:
        _check_positive(self, ("mass", "length", "torque_limit"))
        _check_non_negative(self, ("inertia", "gravity", "damping"))


class Pendulum(MechanicalModel):
    """Torque-driven pendulum: q = (θ,), u = (torque,)."""

    n_q = 1
    n_u = 1
    name = "pendulum"

    def __init__(self, params: PendulumParams = PendulumParams()) -> None:
        self.params = params
        self.damping = np.array([params.damping])
        self.control_limit = np.array([params.torque_limit])

    def mass_matrix(self, q: ca.SX) -> ca.SX:
        p = self.params
        return ca.SX(p.mass * p.length**2 + p.inertia)

    def bias(self, q: ca.SX, v: ca.SX) -> ca.SX:
        p = self.params
        return p.mass * p.gravity * p.length * ca.sin(q[0])

    def actuation(self, u: ca.SX) -> ca.SX:
        return u[0]


# -- discretisations --------------------------------------------------------------------------
def _rk4_stages(model: MechanicalModel, x: ca.SX, u: ca.SX, dt: float) -> list[ca.SX]:
    """The four RK4 stage states x, x + dt/2 k1, x + dt/2 k2, x + dt k3 and the next state."""
    k1 = model.ode(x, u)
    x2 = x + 0.5 * dt * k1
    k2 = model.ode(x2, u)
    x3 = x + 0.5 * dt * k2
    k3 = model.ode(x3, u)
    x4 = x + dt * k3
    k4 = model.ode(x4, u)
    return [x, x2, x3, x4, x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)]


def rk4(model: MechanicalModel, dt: float) -> ca.Function:
    """``F(x, u) -> x_next``: one RK4 step of ``dt`` seconds with ``u`` held."""
    _check_dt(dt, 1)
    x, u = model.symbols()
    return ca.Function(f"{model.name}_rk4", [x, u], [_rk4_stages(model, x, u, dt)[-1]])


def rk4_quadrature(model: MechanicalModel, cost_rate: SymbolicCost, dt: float) -> ca.Function:
    """``L(x, u)``: ∫ℓ dt over one step by the RK4 stage weights, dt/6 (ℓ₁ + 2ℓ₂ + 2ℓ₃ + ℓ₄),
    with ℓ evaluated at the RK4 stage states (as if ℓ were integrated as an extra state)."""
    _check_dt(dt, 1)
    x, u = model.symbols()
    s = _rk4_stages(model, x, u, dt)
    total = cost_rate(s[0], u) + 2 * cost_rate(s[1], u) + 2 * cost_rate(s[2], u)
    total = total + cost_rate(s[3], u)
    return ca.Function(f"{model.name}_rk4_cost", [x, u], [dt / 6.0 * total])


def semi_implicit_euler(model: MechanicalModel, dt: float, substeps: int) -> ca.Function:
    """``F(x, u) -> x_next``: ``substeps`` steps of ``dt / substeps`` with MuJoCo's Euler
    integrator (``v += h a`` with implicit damping, then ``q += h v``)."""
    _check_dt(dt, substeps)
    h = dt / substeps
    x, u = model.symbols()
    q, v = x[: model.n_q], x[model.n_q :]
    for _ in range(substeps):
        v = v + h * model.acceleration(q, v, u, implicit_dt=h)
        q = q + h * v
    return ca.Function(f"{model.name}_euler", [x, u], [ca.vertcat(q, v)])


def _check_dt(dt: float, substeps: int) -> None:
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be finite and > 0 s, got {dt}")
    if substeps < 1:
        raise ValueError(f"substeps must be >= 1, got {substeps}")
