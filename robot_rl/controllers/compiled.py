"""CasADi Functions evaluated on bound NumPy buffers, JIT-compiled to C when a compiler exists.

A trajectory optimiser calls a few CasADi Functions (Jacobians over the horizon, a batched
rollout, cost derivatives) hundreds of times per solve. Calling them the usual way converts
every argument to a ``DM`` and every result back (tens of microseconds each); here the
arguments and results are NumPy arrays bound once through CasADi's buffer interface, so a
call costs what the arithmetic costs. The Functions are JIT-compiled with the system C
compiler (``cc``) once per process, which is 5-10x faster than CasADi's virtual machine; set
``ROBOT_RL_CASADI_JIT=0`` to use the virtual machine instead (nothing else changes).

Layout: CasADi matrices are column-major, so a dense (r, c) CasADi matrix is the same memory
as a C-ordered NumPy array of shape (c, r). A Function mapped over T steps whose per-step
output is ``Eᵀ`` therefore fills a NumPy (T, a, b) array with ``E`` at each step.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import tempfile
from collections.abc import Sequence

import casadi as ca
import numpy as np


@functools.cache
def jit_available() -> bool:
    """True when CasADi can JIT-compile here (the shell compiler plugin and a C compiler)."""
    if os.environ.get("ROBOT_RL_CASADI_JIT", "1") == "0":
        return False
    return ca.Importer.has_plugin("shell") and shutil.which("cc") is not None


@functools.cache
def _jit_directory() -> str:
    """The folder for generated C files: one shared folder, since CasADi gives each file a
    unique name and deletes it with its Function (``jit_cleanup``)."""
    path = os.path.join(tempfile.gettempdir(), "robot_rl_casadi_jit")
    os.makedirs(path, exist_ok=True)
    return path


def jit_options() -> dict:
    """Options for ``casadi.Function`` that compile it to C (empty when JIT is unavailable)."""
    if not jit_available():
        return {}
    return {
        "jit": True,
        "compiler": "shell",
        "jit_cleanup": True,
        "jit_options": {"compiler": "cc", "flags": ["-O2", "-w"], "directory": _jit_directory()},
    }


def dense_function(
    name: str, inputs: Sequence[ca.SX | ca.MX], outputs: Sequence[ca.SX | ca.MX]
) -> ca.Function:
    """A Function with dense outputs (the buffer interface writes nonzeros only)."""
    return ca.Function(name, list(inputs), [ca.densify(o) for o in outputs])


class CompiledFunction:
    """A CasADi Function called on NumPy arrays through bound buffers.

    Args:
        fn: the Function; its inputs and outputs must be dense.
        in_shapes: NumPy shape of each input (same number of elements as the input).
        out_shapes: NumPy shape of each output.
        jit: compile it to C (when available).

    Calling it copies the arguments into the bound input arrays and returns the bound output
    arrays, which the next call overwrites: copy them to keep them.
    """

    def __init__(
        self,
        fn: ca.Function,
        in_shapes: Sequence[tuple[int, ...]],
        out_shapes: Sequence[tuple[int, ...]],
        jit: bool = True,
    ) -> None:
        if len(in_shapes) != fn.n_in() or len(out_shapes) != fn.n_out():
            raise ValueError(
                f"{fn.name()} has {fn.n_in()} inputs and {fn.n_out()} outputs; got "
                f"{len(in_shapes)} input and {len(out_shapes)} output shapes"
            )
        for kind, shapes, count, sparsity in (
            ("input", in_shapes, fn.n_in(), fn.sparsity_in),
            ("output", out_shapes, fn.n_out(), fn.sparsity_out),
        ):
            for i in range(count):
                sp = sparsity(i)
                if not sp.is_dense() or sp.numel() != math.prod(shapes[i]):
                    raise ValueError(
                        f"{fn.name()} {kind} {i} is {sp.size1()}x{sp.size2()} "
                        f"({'dense' if sp.is_dense() else 'sparse'}); cannot bind {shapes[i]}"
                    )
        if jit and jit_available():
            sym = [fn.mx_in(i) for i in range(fn.n_in())]
            fn = ca.Function(fn.name(), sym, fn.call(sym), jit_options())
        self.fn = fn
        self.inputs = [np.zeros(s) for s in in_shapes]
        self.outputs = [np.zeros(s) for s in out_shapes]
        self._buffer, self._eval = fn.buffer()
        for i, a in enumerate(self.inputs):
            self._buffer.set_arg(i, memoryview(a))
        for i, a in enumerate(self.outputs):
            self._buffer.set_res(i, memoryview(a))

    def __call__(self, *args: np.ndarray | float) -> list[np.ndarray]:
        for dst, src in zip(self.inputs, args, strict=True):
            np.copyto(dst, src)
        self._eval()
        return self.outputs
