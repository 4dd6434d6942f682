"""SAC's whole gradient step as a compiled graph, alone and fused with the training loop's
batch gather and next-action sampling.

The eager update (``SAC.update``) runs autograd three times and three Adam steps, a few hundred
small operations each dispatched from Python; at small networks (hidden 64, batch 256) that
dispatch, not arithmetic, is most of the time. ``CompiledSAC`` expresses the same step as
one pure function of the batch, the policy noise and the learner's tensors: gradients of the
learner's own ``critic_loss`` / ``actor_loss`` (so the variants' loss terms are included) by
``torch.func.grad_and_value`` over ``torch.func.functional_call``, Adam on the optimisers'
own state tensors, and Polyak averaging. The training loop's call (``SAC.update_and_act``)
also gathers the batch from the replay buffer and samples the next env step's actions inside
the graph: one call from Python per env step.

How it is compiled: the step is traced once on fake tensors (``make_fx``), with every tensor
the learner (and the replay buffer) holds swapped for a graph input, and the graph goes to
Inductor (``compile_fx``, C++ wrapper). The result is called directly with the learner's
tensors, which it updates in place. This skips ``torch.compile``'s front end, which before
every call re-checks ~1400 facts about the learner (its guards) and then applies some of
the step's in-place updates from Python; without it a Pendulum training step at hidden 64 went
from 1.06 to 0.80 CPU-ms. So the checks are the caller's:

- The graph reads the learner's tensors (network parameters and buffers, log α, safe SAC's
  λ, optimiser state, the buffer's storage) by identity, so writing into them (a checkpoint
  load, ``fill_``) is seen by the next call. The step is traced again when one of the
  learner's or the buffer's attributes was set to another tensor, list or module, or an
  optimiser's state was replaced (``load_state_dict``) or a setting other than its learning
  rate changed (the learning rate is an input); replacing a parameter inside a module is not
  noticed. A tensor the step would read as a constant (one
  the learner holds where this module does not look) is refused at trace time.
- Python numbers the losses read (the frozen config, the target entropy) are taken as they
  are when the step is traced.

The result equals the eager step's to float rounding (``tests/agents/test_sac_compiled.py``);
optimisers and checkpoints are the eager learner's, so a run can be compiled, saved and
resumed eagerly. Compiling needs a C++ compiler; the first trace of each shape compiles
(seconds of CPU, mostly the C++ compiler's), and Inductor caches the generated code on disk,
so later processes load it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, NamedTuple

import torch
from torch import nn
from torch._guards import TracingContext, tracing
from torch._inductor import config as inductor_config
from torch._inductor.compile_fx import compile_fx
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.func import functional_call, grad_and_value
from torch.fx.experimental.proxy_tensor import make_fx
from torch.fx.experimental.symbolic_shapes import ShapeEnv
from torch.utils._pytree import TreeSpec, tree_flatten, tree_unflatten

from robot_rl.agents.buffers import ReplayBuffer
from robot_rl.agents.sac import SAC, sum_terms, update_metrics
from robot_rl.types import Batch


def _check_compiler() -> None:
    """Raise a clear error, before any tracing, where Inductor could not build the graphs."""
    try:  # Inductor's own compiler lookup (torch internals: tested with torch 2.13)
        from torch._inductor.cpp_builder import get_cpp_compiler
        from torch._inductor.exc import InvalidCxxCompiler
    except ImportError:
        raise RuntimeError(
            f"SAC.compile needs a newer torch than {torch.__version__} (tested with 2.13)"
        ) from None
    try:
        get_cpp_compiler()
    except InvalidCxxCompiler as err:
        raise RuntimeError(
            f"compiling SAC needs a C++ compiler (g++ on PATH, or $CXX): {err}"
        ) from None


class _Objective(nn.Module):
    """``loss(*args)`` with the parameters of ``modules`` swappable by ``functional_call``."""

    def __init__(self, modules: nn.Module, loss: Callable[..., Any]) -> None:
        super().__init__()
        self.modules_ = modules
        self.loss = loss

    def forward(self, *args: Any) -> Any:
        return self.loss(*args)


def _gradient(objective: _Objective, *args: Any) -> tuple[list[torch.Tensor], Any]:
    """d loss / d (parameters of ``objective.modules_``) in their order, and the loss's aux.

    ``objective(*args)`` returns (scalar loss, aux) and reads its modules as usual; their
    parameters are swapped for differentiable copies while it runs, so nothing else is
    differentiated.
    """
    named = dict(objective.named_parameters())

    def of_parameters(values: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Any]:
        return functional_call(objective, values, args)

    grads, (_, aux) = grad_and_value(of_parameters, has_aux=True)(named)
    return [grads[name] for name in named], aux


def _check_plain_adam(optimizer: torch.optim.Optimizer) -> None:
    """Refuse an optimiser the compiled step would not follow: only ``torch.optim.Adam`` with
    one parameter group, no weight decay, AMSGrad or maximisation."""
    groups = optimizer.param_groups
    if (
        not isinstance(optimizer, torch.optim.Adam)
        or len(groups) != 1
        or any(groups[0].get(k) for k in ("weight_decay", "amsgrad", "maximize"))
    ):
        raise ValueError(
            "the compiled update implements plain Adam only (one parameter group, no weight "
            f"decay, AMSGrad or maximize); got {type(optimizer).__name__} with "
            f"{[{k: v for k, v in g.items() if k != 'params'} for g in groups]}"
        )


def _init_adam_state(optimizer: torch.optim.Adam) -> None:
    """Give every parameter the state ``torch.optim.Adam`` creates at its first step."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p not in optimizer.state or not optimizer.state[p]:
                optimizer.state[p] = {
                    "step": torch.zeros((), dtype=torch.float32),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }


_ADAM_INPUTS = ("params", "lr")
"""Adam's group entries the compiled step takes as inputs, not constants."""


class AdamView(NamedTuple):
    """One ``torch.optim.Adam``'s parameters, state and settings, as the compiled step takes
    them: explicit arguments, whose tensors become inputs of the traced graph."""

    params: list[torch.Tensor]
    exp_avgs: list[torch.Tensor]
    exp_avg_sqs: list[torch.Tensor]
    steps: list[torch.Tensor]
    lr: torch.Tensor
    """The learning rate, a 0-d tensor (an input, so a schedule needs no new trace)."""
    betas: tuple[float, float]
    eps: float

    @classmethod
    def of(cls, optimizer: torch.optim.Adam) -> AdamView:
        (group,) = optimizer.param_groups
        params = list(group["params"])
        states = [optimizer.state[p] for p in params]
        return cls(
            params,
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [s["step"] for s in states],
            torch.tensor(float(group["lr"])),
            group["betas"],
            group["eps"],
        )

    def substituted(self, replacement: dict[int, torch.Tensor]) -> AdamView:
        """This view with each tensor whose ``id`` is a key of ``replacement`` replaced."""

        def swap(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
            return [replacement.get(id(t), t) for t in tensors]

        return self._replace(
            params=swap(self.params),
            exp_avgs=swap(self.exp_avgs),
            exp_avg_sqs=swap(self.exp_avg_sqs),
            steps=swap(self.steps),
            lr=replacement.get(id(self.lr), self.lr),
        )


def adam_step(adam: AdamView, grads: Sequence[torch.Tensor]) -> None:
    """One step of Adam (no weight decay, no AMSGrad) on the optimiser's own state, in place.

    The update of ``torch.optim.Adam``:
    p <- p - lr / (1 - β1^t) · m / (sqrt(v) / sqrt(1 - β2^t) + eps), written with foreach ops
    that trace into the graph (the optimiser's own ``step`` does not trace).
    """
    beta1, beta2 = adam.betas
    torch._foreach_add_(adam.steps, 1.0)
    step = adam.steps[0]
    torch._foreach_lerp_(adam.exp_avgs, grads, 1.0 - beta1)
    torch._foreach_mul_(adam.exp_avg_sqs, beta2)
    torch._foreach_addcmul_(adam.exp_avg_sqs, grads, grads, 1.0 - beta2)
    bias_correction2_sqrt = (1.0 - beta2**step).sqrt()
    denominators = torch._foreach_div(torch._foreach_sqrt(adam.exp_avg_sqs), bias_correction2_sqrt)
    torch._foreach_add_(denominators, adam.eps)
    updates = torch._foreach_div(adam.exp_avgs, denominators)
    torch._foreach_mul_(updates, adam.lr / (1.0 - beta1**step))
    torch._foreach_sub_(adam.params, updates)


def _tensor_holders(*objects: object) -> list[dict[str, Any]]:
    """The dicts through which ``objects`` hold their tensors: each object's attributes and,
    for every module among them, each submodule's parameters and buffers."""
    holders: list[dict[str, Any]] = []
    for obj in objects:
        holders.append(vars(obj))
        for value in vars(obj).values():
            if isinstance(value, nn.Module):
                for module in value.modules():
                    holders += [module._parameters, module._buffers]
    return holders


def _held_tensors(value: Any) -> list[torch.Tensor]:
    """The tensors of one holder entry: a tensor, or a list or tuple of tensors; else none."""
    if isinstance(value, torch.Tensor):
        return [value]
    if (
        isinstance(value, list | tuple)
        and value
        and all(isinstance(v, torch.Tensor) for v in value)
    ):
        return list(value)
    return []


@contextmanager
def _substituted(
    holders: Sequence[dict[str, Any]], replacement: dict[int, torch.Tensor]
) -> Iterator[None]:
    """Within the block, every tensor in ``holders`` whose ``id`` is a key of ``replacement``
    (directly or in a list or tuple) is replaced by its value; restored on exit."""
    saved = [dict(holder) for holder in holders]
    try:
        for holder in holders:
            for key, value in holder.items():
                held = _held_tensors(value)
                if not any(id(t) in replacement for t in held):
                    continue
                swapped = [replacement.get(id(t), t) for t in held]
                holder[key] = (
                    swapped[0] if isinstance(value, torch.Tensor) else type(value)(swapped)
                )
        yield
    finally:
        for holder, old in zip(holders, saved, strict=True):
            holder.update(old)


class _TracedStep:
    """``function(*inputs, *adams)``, traced once for these inputs' shapes with the tensors
    of ``owners`` and ``adams`` as graph inputs, and compiled by Inductor.

    Calling it runs the compiled graph on new ``inputs`` of the same shapes and the owners'
    tensors as they are now (updating them in place as ``function`` does); it returns what
    ``function`` returns.

    Args:
        function: the step; tensors it reads from ``owners`` or ``adams`` become inputs.
        inputs: the per-call tensors, as examples of their shapes and dtypes.
        owners: the objects whose tensors ``function`` reads (the learner, the buffer).
        adams: the optimisers, as ``function`` takes them.
    """

    def __init__(
        self,
        function: Callable[..., Any],
        inputs: Sequence[torch.Tensor],
        owners: Sequence[object],
        adams: Sequence[AdamView],
    ) -> None:
        holders = _tensor_holders(*owners)
        unique = {
            id(t): t
            for t in (
                *(t for holder in holders for v in holder.values() for t in _held_tensors(v)),
                *(t for a in adams for t in (*a.params, *a.exp_avgs, *a.exp_avg_sqs, *a.steps)),
                *(a.lr for a in adams),
            )
        }
        self._state = list(unique.values())
        self._owners = owners  # keeps them, and so their ids, alive for as long as the graph
        self._attributes = [
            (vars(owner), name, value)
            for owner in owners
            for name, value in vars(owner).items()
            if isinstance(value, nn.Module) or _held_tensors(value)
        ]
        self._output_spec: TreeSpec | None = None
        n_inputs = len(inputs)

        def pure(*flat: torch.Tensor) -> list[torch.Tensor]:
            replacement = dict(zip(unique, flat[n_inputs:], strict=True))
            views = [a.substituted(replacement) for a in adams]
            with _substituted(holders, replacement):
                out = function(*flat[:n_inputs], *views)
            leaves, self._output_spec = tree_flatten(out)
            return leaves

        fake_mode = FakeTensorMode(shape_env=ShapeEnv(), allow_non_fake_inputs=True)
        fakes = [fake_mode.from_tensor(t, static_shapes=True) for t in (*inputs, *self._state)]
        with torch.no_grad(), fake_mode:
            graph = make_fx(pure)(*fakes)
        # a tensor made in the step from a literal is copied in (lift_fresh_copy); one from
        # outside that is not an input would be frozen into the graph
        frozen = [
            tuple(getattr(graph, node.target).shape)
            for node in graph.graph.nodes
            if node.op == "get_attr"
            and any(
                user.target is not torch.ops.aten.lift_fresh_copy.default for user in node.users
            )
        ]
        if frozen:
            raise RuntimeError(
                "the compiled SAC step reads tensors (of shapes "
                f"{frozen}) that are not held by the learner's attributes, modules or optimisers "
                "or by the replay buffer, so it would freeze their current values; keep learner "
                "state in an attribute (a tensor or a list of tensors), a parameter or a buffer"
            )
        with (
            torch.no_grad(),
            tracing(TracingContext(fake_mode)),
            inductor_config.patch(cpp_wrapper=True),
        ):
            self._compiled = compile_fx(graph, fakes)

    def current(self) -> bool:
        """Whether the owners' attributes that hold tensors or modules are still the ones
        traced (an attribute set to a new tensor needs a new trace)."""
        return all(attributes.get(name) is value for attributes, name, value in self._attributes)

    def __call__(self, *inputs: torch.Tensor) -> Any:
        with torch.no_grad():
            leaves = self._compiled(*inputs, *self._state)
        return tree_unflatten(list(leaves), self._output_spec)


class CompiledSAC:
    """``agent``'s gradient step (critics, actor, temperature, then Polyak) as one compiled
    graph; and, for the training loop, that step with its batch's gather and the next actions'
    sampling as another.

    Both draw the policy noise from the agent's generator as the eager learner does, so a
    compiled and an eager run of the same seed take the same steps. Each graph is traced at its
    first call with new input shapes (another batch size, number of envs or replay buffer), and
    again when the learner's tensors were replaced or an optimiser's state or a setting other
    than its learning rate changed (see the module's notes).

    Args:
        agent: the learner; its losses, optimisers and networks are used as they are.
    """

    def __init__(self, agent: SAC) -> None:
        _check_compiler()
        self.agent = agent
        self._critic_objective = _Objective(agent.critics, self._critic_loss)
        self._actor_objective = _Objective(agent.actor, self._actor_loss)
        self._adams: tuple[AdamView, ...] = ()
        self._adams_of: list[tuple[Any, dict[str, Any]]] = []
        self._lrs: list[float] = []
        self._steps: dict[tuple[Any, ...], _TracedStep] = {}
        self._adam_views()  # refuses an optimiser the step would not follow now, not later

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient step on ``batch``; the metrics ``SAC.update`` returns."""
        next_noise, noise = self._update_noise(batch.obs.shape[0])
        return self._run("update", self._update_batch, (*batch, next_noise, noise), (self.agent,))

    def update_and_act(
        self, buffer: ReplayBuffer, obs: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """``SAC.update_and_act`` in one call: the batch's gather, the step and the sampling of
        actions (N, act_dim) for ``obs`` (N, obs_dim) by the updated policy."""
        index = buffer.sample_index(self.agent.config.batch_size)
        next_noise, noise = self._update_noise(len(index))
        act_noise = torch.randn((obs.shape[0], self.agent.act_dim), generator=self.agent.generator)
        inputs = (index, next_noise, noise, obs, act_noise)
        owners = (self.agent, buffer)
        return self._run("update_and_act", partial(self._update_and_act, buffer), inputs, owners)

    def _run(
        self,
        name: str,
        function: Callable[..., Any],
        inputs: tuple[torch.Tensor, ...],
        owners: tuple[object, ...],
    ) -> Any:
        """``function(*inputs, *adams)``, by the step traced for ``name``, these input shapes
        and these owners of tensors."""
        adams = self._adam_views()
        key = (name, *map(id, owners), *((t.shape, t.stride(), t.dtype, t.device) for t in inputs))
        step = self._steps.get(key)
        if step is None or not step.current():
            step = self._steps[key] = _TracedStep(function, inputs, owners, adams)
        return step(*inputs)

    def _update_noise(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The noise (B, act_dim) of the next-action and the actor-loss samples, drawn as
        ``SAC.update`` draws them."""
        shape = (batch_size, self.agent.act_dim)
        return (
            torch.randn(shape, generator=self.agent.generator),
            torch.randn(shape, generator=self.agent.generator),
        )

    def _adam_views(self) -> tuple[AdamView, ...]:
        """The optimisers as the graphs take them, rebuilt (and checked again, and the graphs
        traced again) when an optimiser's state was replaced (a checkpoint was loaded) or a
        setting other than the learning rate changed; a new learning rate (a schedule) is
        written into the view's."""
        optimizers = (
            self.agent.critic_optimizer,
            self.agent.actor_optimizer,
            self.agent.temperature_optimizer,
        )
        now = [
            (o.state, {k: v for g in o.param_groups for k, v in g.items() if k not in _ADAM_INPUTS})
            for o in optimizers
        ]
        if len(now) != len(self._adams_of) or any(
            state is not old_state or settings != old_settings
            for (state, settings), (old_state, old_settings) in zip(
                now, self._adams_of, strict=True
            )
        ):
            for optimizer in optimizers:
                _check_plain_adam(optimizer)
                _init_adam_state(optimizer)
            self._adams = tuple(map(AdamView.of, optimizers))
            self._adams_of = now
            self._lrs = [float(o.param_groups[0]["lr"]) for o in optimizers]
            self._steps.clear()
        for i, optimizer in enumerate(optimizers):
            lr = float(optimizer.param_groups[0]["lr"])
            if lr != self._lrs[i]:
                self._adams[i].lr.fill_(lr)
                self._lrs[i] = lr
        return self._adams

    def _critic_loss(
        self,
        batch: Batch,
        next_action: torch.Tensor,
        next_log_prob: torch.Tensor,
        alpha: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms = self.agent.critic_loss(batch, next_action, next_log_prob, alpha)
        return sum_terms(terms), terms

    def _actor_loss(
        self, batch: Batch, noise: torch.Tensor, alpha: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[dict[str, torch.Tensor], torch.Tensor]]:
        action, log_prob = self.agent.actor.reparameterise(batch.obs, noise)
        terms = self.agent.actor_loss(batch, action, log_prob, alpha)
        return sum_terms(terms), (terms, log_prob)

    def _update_batch(self, *inputs: Any) -> dict[str, torch.Tensor]:
        """``_update`` on a batch given as its fields, then its two noises and the optimisers."""
        fields = len(Batch._fields)
        return self._update(Batch(*inputs[:fields]), *inputs[fields:])

    def _update(
        self,
        batch: Batch,
        next_noise: torch.Tensor,
        noise: torch.Tensor,
        critic_adam: AdamView,
        actor_adam: AdamView,
        temperature_adam: AdamView,
    ) -> dict[str, torch.Tensor]:
        agent = self.agent
        alpha = agent.log_temperature.exp()
        next_action, next_log_prob = agent.actor.reparameterise(batch.next_obs, next_noise)
        grads, critic_terms = _gradient(
            self._critic_objective, batch, next_action, next_log_prob, alpha
        )
        adam_step(critic_adam, grads)
        grads, (actor_terms, log_prob) = _gradient(self._actor_objective, batch, noise, alpha)
        adam_step(actor_adam, grads)
        # d/d log α of SAC's temperature loss, -log α · (mean log π + target entropy)
        temperature_grad = -(log_prob.mean() + agent.target_entropy)
        adam_step(temperature_adam, [temperature_grad])
        torch._foreach_lerp_(agent._target_params, agent._critic_params, agent.config.tau)

        return update_metrics(critic_terms | actor_terms, alpha, log_prob)

    def _update_and_act(
        self,
        buffer: ReplayBuffer,
        index: torch.Tensor,
        next_noise: torch.Tensor,
        noise: torch.Tensor,
        obs: torch.Tensor,
        act_noise: torch.Tensor,
        *adams: AdamView,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        metrics = self._update(buffer.gather(index), next_noise, noise, *adams)
        return metrics, self.agent.actor.reparameterise(obs, act_noise)[0]
