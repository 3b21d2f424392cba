"""The optimiser's memory layout: every parameter a view into one flat buffer, every gradient a
view into another, and Adadelta (Lasagne's settings) as one pass over them.

Why: PyTorch's CPU ``torch.optim.Adadelta`` loops over the parameters and runs about ten
elementwise operations on each (ten passes over memory and ~100 operator dispatches per step
for a 2 x 256 VAE: 1.4 ms of an ~8 ms step on the project's CPU). With one flat buffer the
same arithmetic is a handful of operations in eager mode, and one fused loop when compiled;
the non-finite check reads one buffer once (:meth:`FlatParameters.grad_sum`).

Conventions: :func:`flatten_parameters` must run after the model has reached its device
(``model.to(dev)`` replaces parameter storage and would break the views). Backward passes
accumulate into the flat gradient in place (autograd adds into an existing ``.grad``), so the
gradient must be zeroed with :meth:`FlatParameters.zero_grad` before each backward, never set
to ``None``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

ADADELTA_RHO = 0.95
ADADELTA_EPS = 1e-6
"""Lasagne's Adadelta defaults (the paper's optimiser: ``rho`` 0.95, ``epsilon`` 1e-6, learning
rate 1.0). Same update rule as ``torch.optim.Adadelta`` without weight decay."""


class FlatParameters:
    """The trainable parameters of ``model`` re-seated as views into one flat tensor
    ``param`` (float32, on the parameters' device), their gradients as views into ``grad``.

    The values are copied, so the model computes exactly what it computed before."""

    def __init__(self, model: nn.Module):
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters")
        dev, dtype = params[0].device, params[0].dtype
        if any(p.device != dev or p.dtype != dtype for p in params):
            raise ValueError("all parameters must share one device and dtype to be flattened")
        n = sum(p.numel() for p in params)
        self.param = torch.empty(n, device=dev, dtype=dtype)
        self.grad = torch.zeros(n, device=dev, dtype=dtype)
        self.params = params
        offset = 0
        with torch.no_grad():
            for p in params:
                k = p.numel()
                self.param[offset:offset + k].copy_(p.reshape(-1))
                p.data = self.param[offset:offset + k].view_as(p)
                p.grad = self.grad[offset:offset + k].view_as(p)
                offset += k

    def zero_grad(self) -> None:
        """Zero the flat gradient (keeping the views that backward accumulates into)."""
        self.grad.zero_()

    def grad_sum(self) -> Tensor:
        """Sum of the whole gradient, a 0-d tensor on the device: non-finite exactly when some
        gradient is (or, for gradients near 1e38, when they overflow together). One pass."""
        return self.grad.sum()

    def check_views(self) -> None:
        """Raise if a parameter or gradient no longer lives in the flat buffers (something
        replaced it: ``zero_grad(set_to_none=True)``, ``model.to(...)``)."""
        for p in self.params:
            if p.grad is None or p.untyped_storage().data_ptr() != self.param.untyped_storage().data_ptr() \
                    or p.grad.untyped_storage().data_ptr() != self.grad.untyped_storage().data_ptr():
                raise RuntimeError("a parameter or its gradient left the flat buffer; zero the "
                                   "gradient with FlatParameters.zero_grad and move the model "
                                   "before flattening it")


def adadelta_update(param: Tensor, grad: Tensor, square_avg: Tensor, acc_delta: Tensor,
                    lr: float, rho: float, eps: float) -> None:
    """One Adadelta step in place, the operations of ``torch.optim.Adadelta``'s single-tensor
    loop in the same order (so the eager result is the same to the last bit on the CPU):

    ``E[g^2] <- rho E[g^2] + (1 - rho) g^2``;
    ``d <- g sqrt(E[d^2] + eps) / sqrt(E[g^2] + eps)``;
    ``E[d^2] <- rho E[d^2] + (1 - rho) d^2``; ``param <- param - lr d``.
    """
    square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
    std = square_avg.add(eps).sqrt_()
    delta = acc_delta.add(eps).sqrt_()
    delta.div_(std).mul_(grad)
    acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
    param.add_(delta, alpha=-lr)


_COMPILED_UPDATE: dict[str, Callable] = {}
"""``torch.compile``d :func:`adadelta_update` per device type, compiled once per process (with
a symbolic length, so one compilation serves every model size)."""


def compiled_adadelta_update(device_type: str) -> Callable:
    """:func:`adadelta_update` compiled into one fused loop (inductor); cached per device type.
    Its rounding differs from the eager update's (fused multiply-adds, one sqrt ratio), by
    about 1e-7 relative per step."""
    if device_type not in _COMPILED_UPDATE:
        _COMPILED_UPDATE[device_type] = torch.compile(adadelta_update, dynamic=True, fullgraph=True)
    return _COMPILED_UPDATE[device_type]


EAGER_CHUNK = 32768
"""Elements per chunk of the eager update: its eleven elementwise operations run chunk by chunk
(128 KB per buffer, so the running averages, the gradient and the temporaries stay in the
core's L2 cache between operations) instead of buffer by buffer. Same numbers to the last bit
(elementwise operations); measured on the project's CPU for the VAE's 0.55 M parameters
(one thread, load ~2.4, 4 x 5 x 30 updates): 5.1 ms a step over the whole buffer, 3.1 ms in
chunks of 32,768, 3.3 ms in chunks of 65,536."""


def adadelta_update_chunked(param: Tensor, grad: Tensor, square_avg: Tensor, acc_delta: Tensor,
                            lr: float, rho: float, eps: float, chunk: int = EAGER_CHUNK) -> None:
    """:func:`adadelta_update` over consecutive chunks of the flat buffers (see
    :data:`EAGER_CHUNK`)."""
    for i in range(0, param.numel(), chunk):
        s = slice(i, i + chunk)
        adadelta_update(param[s], grad[s], square_avg[s], acc_delta[s], lr, rho, eps)


class FlatAdadelta:
    """Adadelta over :class:`FlatParameters`, eager (``compiled=False``: the same numbers as
    ``torch.optim.Adadelta``; on the CPU chunk by chunk, :data:`EAGER_CHUNK`) or compiled into
    one fused pass (``compiled=True``).

    ``state_dict()`` / ``load_state_dict()`` carry the two running averages and the step count,
    so a resumed run continues exactly."""

    kind = "flat-adadelta"

    def __init__(self, flat: FlatParameters, lr: float = 1.0, rho: float = ADADELTA_RHO,
                 eps: float = ADADELTA_EPS, compiled: bool = False):
        self.flat, self.lr, self.rho, self.eps = flat, float(lr), float(rho), float(eps)
        self.square_avg = torch.zeros_like(flat.param)
        self.acc_delta = torch.zeros_like(flat.param)
        self.steps = 0
        self.compiled = compiled
        eager = adadelta_update_chunked if flat.param.device.type == "cpu" else adadelta_update
        self._update = compiled_adadelta_update(flat.param.device.type) if compiled else eager

    @torch.no_grad()
    def step(self) -> None:
        self._update(self.flat.param, self.flat.grad, self.square_avg, self.acc_delta,
                     self.lr, self.rho, self.eps)
        self.steps += 1

    def state_dict(self) -> dict:
        return {"kind": self.kind, "lr": self.lr, "rho": self.rho, "eps": self.eps,
                "steps": self.steps,
                "state": {"square_avg": self.square_avg.clone(), "acc_delta": self.acc_delta.clone()}}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != self.kind:
            raise ValueError(f"optimizer state of kind {state.get('kind')!r}, expected {self.kind!r}")
        for name in ("square_avg", "acc_delta"):
            src = state["state"][name]
            if src.shape != self.square_avg.shape:
                raise ValueError(f"optimizer state {name} has shape {tuple(src.shape)}, the model "
                                 f"has {self.square_avg.numel()} parameters")
            getattr(self, name).copy_(src)
        self.lr, self.rho, self.eps = state["lr"], state["rho"], state["eps"]
        self.steps = int(state["steps"])


class TorchOptimizer:
    """A ``torch.optim`` optimiser (Adam) over :class:`FlatParameters`, with the interface of
    :class:`FlatAdadelta` (its gradients stay views into the flat buffer)."""

    def __init__(self, flat: FlatParameters, opt: torch.optim.Optimizer):
        self.flat, self.opt, self.compiled = flat, opt, False

    def step(self) -> None:
        self.opt.step()

    def state_dict(self) -> dict:
        return self.opt.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state)


__all__ = ["ADADELTA_EPS", "ADADELTA_RHO", "EAGER_CHUNK", "FlatAdadelta", "FlatParameters",
           "TorchOptimizer", "adadelta_update", "adadelta_update_chunked", "compiled_adadelta_update"]
