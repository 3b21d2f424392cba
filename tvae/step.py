"""The training step's loss function: eager, or compiled with ``torch.compile``.

One training step is ``loss = -mean(elbo)`` of :meth:`tvae.models.VAE.forward` on a batch and
its reparametrisation noise (drawn outside, from the run's own generator, so the compiled
graph holds no random-number generator), then backward and the optimiser's update.

Whether the step is compiled (:func:`use_compile`): the ``compile`` argument of
:func:`tvae.train.train`, else ``$TVAE_COMPILE`` (``1`` on, ``0`` off, ``auto``), else
``auto``: on for CUDA, off for the CPU (see :data:`CPU_COMPILE_DEFAULT` for the measured
reason). Compiled and eager steps round differently, so their weights are not bitwise equal;
a checkpoint records per epoch which one ran (``step_modes``).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable

import torch
from torch import Tensor

from .errors import ConfigError
from .models import VAE, batch_loss

log = logging.getLogger("tvae.train")

CPU_COMPILE_DEFAULT = False
"""Compile the step on the CPU by default? No. Measured on the project's 2-vCPU VM (one thread,
``benchmarks/bench_epoch.py --compile``, three runs at load1 6.5-10.7; benchmarks/README.md):
the compiled step took 0.75-1.08 x the eager one's time (VAE 0.82-0.92, TPS-TVAE 0.75-1.04,
Affine-DTVAE 0.79-1.08), but compiling cost 37-82 s per model shape and process with a cold
inductor cache (7-21 s warm), which pays only after ~15,000 steps, while the tests and the
smoke and quick profiles train hundreds of short runs of distinct shapes; and the eager CPU
step reproduces the pre-compile package's weights bit for bit. Long CPU runs (the paper
profile: 30,000 steps a model) can opt in with ``TVAE_COMPILE=1``."""

COMPILE_ENV = "TVAE_COMPILE"


def use_compile(device: torch.device, compile: bool | None = None) -> bool:
    """Whether the step on ``device`` is compiled: ``compile`` if given, else ``$TVAE_COMPILE``
    (``0``/``1``/``auto``), else auto (CUDA: yes; CPU: :data:`CPU_COMPILE_DEFAULT`; MPS: no).
    A compile that is asked for but unavailable here falls back to eager with a log warning."""
    if compile is None:
        env = os.environ.get(COMPILE_ENV, "auto").strip().lower()
        if env not in ("0", "1", "auto", ""):
            raise ConfigError(f"{COMPILE_ENV} must be 0, 1 or auto, got {env!r}; unset it or set "
                              f"{COMPILE_ENV}=auto")
        compile = None if env in ("auto", "") else env == "1"
    if compile is None:
        compile = device.type == "cuda" or (device.type == "cpu" and CPU_COMPILE_DEFAULT)
    if not compile:
        return False
    why = compile_unavailable(device)
    if why:
        log.warning("torch.compile unavailable (%s): training with the eager step", why)
        return False
    return True


def compile_unavailable(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot run on ``device`` here, or ``None`` when it can."""
    if not hasattr(torch, "compile"):
        return "this torch has no torch.compile"
    if device.type not in ("cpu", "cuda"):
        return f"no inductor backend for {device.type}"
    if device.type == "cpu" and not (shutil.which(os.environ.get("CXX", "")) or shutil.which("g++")
                                     or shutil.which("clang++") or shutil.which("c++")):
        return "no C++ compiler found (install g++ or set CXX)"
    try:
        from torch import _dynamo

        if not _dynamo.is_dynamo_supported():
            return "dynamo does not support this Python"
    except Exception as e:  # noqa: BLE001 - any import failure means no compile
        return f"{type(e).__name__}: {e}"
    return None


def eager_loss(model: VAE) -> Callable[[Tensor, Tensor, Tensor | None], Tensor]:
    """``(x, eps_z, eps_u) -> loss`` of ``model``, eager."""
    return lambda x, eps_z, eps_u: batch_loss(model(x, eps_z, eps_u))


def _loss(model: VAE, x: Tensor, eps_z: Tensor, eps_u: Tensor | None) -> Tensor:
    return batch_loss(model(x, eps_z, eps_u))


_COMPILED: dict[tuple, Callable] = {}
"""Compiled loss functions of this process, one per (model class, parameter shapes, batch
shapes, device, mode); a new model of a known shape reuses the compiled code (its parameters
are graph inputs), so compile time is paid once per shape and process."""

COMPILE_MODE = {"cuda": "reduce-overhead", "cpu": "default"}
"""``torch.compile`` mode per device: CUDA graphs on CUDA (one launch per step instead of
~100 small kernels), inductor's default on the CPU."""

RECOMPILE_LIMIT = 256
"""Dynamo's per-function recompile limit, raised from its default 8: a book build compiles
one graph per model shape, and past the limit dynamo silently falls back to eager."""


def compiled_loss(model: VAE) -> Callable[[Tensor, Tensor, Tensor | None], Tensor]:
    """``(x, eps_z, eps_u) -> loss`` of ``model`` through ``torch.compile`` (compiled on first
    call per new shape). Falls back to :func:`eager_loss`, with a log warning, if compiling
    fails; the returned callable's ``compiled`` attribute says which ran last."""
    from torch import _dynamo

    for name in ("recompile_limit", "cache_size_limit"):
        if getattr(_dynamo.config, name, RECOMPILE_LIMIT) < RECOMPILE_LIMIT:
            setattr(_dynamo.config, name, RECOMPILE_LIMIT)
    dev = next(model.parameters()).device
    mode = COMPILE_MODE.get(dev.type, "default")
    key = (type(model).__name__, str(dev), mode)
    if key not in _COMPILED:
        _COMPILED[key] = torch.compile(_loss, mode=mode, dynamic=False)
    fn = _COMPILED[key]
    eager = eager_loss(model)

    graphs = mode == "reduce-overhead"

    def step(x: Tensor, eps_z: Tensor, eps_u: Tensor | None) -> Tensor:
        if step.compiled:
            try:
                if graphs:   # a new training iteration: the last step's graph outputs are dead
                    torch.compiler.cudagraph_mark_step_begin()
                return fn(model, x, eps_z, eps_u)
            except Exception as e:  # noqa: BLE001 - inductor/dynamo failures: fall back
                log.warning("torch.compile failed (%s: %s); training with the eager step",
                            type(e).__name__, str(e).splitlines()[0] if str(e) else "")
                step.compiled = False
        return eager(x, eps_z, eps_u)

    step.compiled = True
    return step


__all__ = ["COMPILE_ENV", "CPU_COMPILE_DEFAULT", "compile_unavailable", "compiled_loss",
           "eager_loss", "use_compile"]
