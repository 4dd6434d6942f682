"""SAC's whole gradient step as a compiled graph, alone and fused with the training loop's
batch gather and next-action sampling.

The eager update (``SAC.update``) runs autograd three times and three Adam steps, a few hundred
small operations each dispatched from Python; at small networks (hidden 64, batch 256) that
dispatch, not arithmetic, is most of the time. ``CompiledSAC`` expresses the same step as
one pure function of the batch, the policy noise and the optimisers' state: gradients of the
learner's own ``critic_loss`` / ``actor_loss`` (so the variants' loss terms are included) by
``torch.func.grad_and_value`` over ``torch.func.functional_call``, Adam on the optimisers'
own state tensors, and Polyak averaging, and compiles it with ``torch.compile``
(``fullgraph``; Inductor's C++ wrapper, so no Python runs between the kernels). The training
loop's call (``SAC.update_and_act``) also gathers the batch from the replay buffer and samples
the next env step's actions inside the graph: one call from Python per env step, as each
call costs tens of microseconds before its first kernel runs. The result equals the eager
step's to float rounding (``tests/agents/test_sac_compiled.py``); optimisers and checkpoints
are the eager learner's, so a run can be compiled, saved and resumed eagerly.

Compiling needs a C++ compiler (Inductor generates C++). The first call of each graph
compiles (seconds of CPU, mostly the C++ compiler's; Inductor caches the generated code on disk
across processes, so later runs of the same shapes load it); learners of the same shapes share
the graphs, learners of other shapes compile their own (torch allows 8 per process).
Any learner state the losses read must be a tensor: a Python number is baked into the graph
as a constant and recompiles the step whenever it changes (safe SAC's λ is a tensor).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.func import functional_call, grad_and_value

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


class AdamView(NamedTuple):
    """One ``torch.optim.Adam``'s parameters, state and settings, as the compiled step takes
    them: explicit arguments, so one graph serves every learner of the same shapes."""

    params: list[torch.Tensor]
    exp_avgs: list[torch.Tensor]
    exp_avg_sqs: list[torch.Tensor]
    steps: list[torch.Tensor]
    lr: float
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
            group["lr"],
            group["betas"],
            group["eps"],
        )


def adam_step(adam: AdamView, grads: Sequence[torch.Tensor]) -> None:
    """One step of Adam (no weight decay, no AMSGrad) on the optimiser's own state, in place.

    The update of ``torch.optim.Adam``:
    p <- p - lr / (1 - β1^t) · m / (sqrt(v) / sqrt(1 - β2^t) + eps), written with foreach ops
    that Dynamo traces into the graph (the optimiser's ``step`` breaks the graph).
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


class CompiledSAC:
    """``agent``'s gradient step (critics, actor, temperature, then Polyak) as one graph; and,
    for the training loop, that step with its batch's gather and the next actions' sampling
    as another.

    Both draw the policy noise from the agent's generator as the eager learner does, so a
    compiled and an eager run of the same seed take the same steps.

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
        self._adam_views()  # refuses an optimiser the step would not follow now, not later
        options = {"cpp_wrapper": True}
        self._step = torch.compile(self._update, fullgraph=True, dynamic=False, options=options)
        self._step_and_act = torch.compile(
            self._update_and_act, fullgraph=True, dynamic=False, options=options
        )

    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient step on ``batch``; the metrics ``SAC.update`` returns."""
        next_noise, noise = self._update_noise(batch.obs.shape[0])
        with torch.no_grad():
            return self._step(batch, next_noise, noise, *self._adam_views())

    def update_and_act(
        self, buffer: ReplayBuffer, obs: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """``SAC.update_and_act`` in one call: the batch's gather, the step and the sampling of
        actions (N, act_dim) for ``obs`` (N, obs_dim) by the updated policy."""
        index = buffer.sample_index(self.agent.config.batch_size)
        next_noise, noise = self._update_noise(len(index))
        act_noise = torch.randn((obs.shape[0], self.agent.act_dim), generator=self.agent.generator)
        with torch.no_grad():
            return self._step_and_act(
                buffer, index, next_noise, noise, obs, act_noise, *self._adam_views()
            )

    def _update_noise(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The noise (B, act_dim) of the next-action and the actor-loss samples, drawn as
        ``SAC.update`` draws them."""
        shape = (batch_size, self.agent.act_dim)
        return (
            torch.randn(shape, generator=self.agent.generator),
            torch.randn(shape, generator=self.agent.generator),
        )

    def _adam_views(self) -> tuple[AdamView, ...]:
        """The optimisers as the graphs take them, rebuilt (and checked again) when an
        optimiser's state was replaced (a checkpoint was loaded) or a setting changed (a
        learning-rate schedule)."""
        optimizers = (
            self.agent.critic_optimizer,
            self.agent.actor_optimizer,
            self.agent.temperature_optimizer,
        )
        now = [
            (o.state, {k: v for g in o.param_groups for k, v in g.items() if k != "params"})
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
