"""Pose heads and pose priors: how an encoder's features become the warp parameters ``u``.

A pose head maps trunk features ``h`` ``(B, H)`` to the posterior over a pose code ``u'``
and maps codes to warp parameters ``u`` ``(B, warp.dim)``. The paper's priors:

- ``flat``: no prior. ``u = base + tanh(A h + c)`` is a deterministic function of ``x`` (a
  point-mass posterior, no KL term); the tanh bounds every parameter within 1 of the identity,
  so a TPS cannot fold the grid arbitrarily far.
- Gaussian priors through ``u = W u' + b`` with ``u' ~ N(0, I)`` and
  ``q(u'|x) = N(mu(h), diag sigma(h)^2)``, so ``u ~ N(b, W W^T)`` and ``KL(q(u'|x) || N(0, I))``
  joins the loss:

  - ``identity-diag``: ``b`` fixed at the identity, ``W`` diagonal and learned;
  - ``mean-diag``: ``b`` (initialised at the identity) and diagonal ``W`` learned;
  - ``reparam5-diag`` (affine only): the same on the 5-d.o.f. pose
    ``(psi, log S_x, log S_y, T_x, T_y)``, mapped to the matrix by
    :func:`tvae.warps.affine_from_pose5`;
  - ``lowrank``: ``b`` and a full ``dim u x rank`` matrix ``W`` learned, ``rank = dim u'``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import PRIORS
from .warps import Warp, affine_from_pose5

LOGSIGMA_FLOOR = -6.0
"""Encoder log-sigmas (of ``z`` and of the pose code ``u'``) are bounded below,
``relu(a + 6) - 6``, as the original code did (its ``relu_shift = 6``; the text's "sigma more
than 1e-6" is not what ran)."""

INIT_POSE_SCALE = 0.1
"""Initial diagonal of ``W`` for the Gaussian priors: small, so training starts near the identity."""


def bounded_logsigma(a: Tensor) -> Tensor:
    """``relu(a - floor) + floor``: a log standard deviation bounded below by ``LOGSIGMA_FLOOR``."""
    return torch.relu(a - LOGSIGMA_FLOOR) + LOGSIGMA_FLOOR


def kl_std_normal(mu: Tensor, logsigma: Tensor) -> Tensor:
    """``KL(N(mu, diag sigma^2) || N(0, I))`` per sample, in nats: ``(B, D) -> (B,)``.

    The closed form ``1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)`` of Kingma & Welling,
    *Auto-Encoding Variational Bayes* (ICLR 2014), appendix B (there written as the negative KL,
    ``1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)``). Per dimension: pass ``(B, D, 1)``."""
    return 0.5 * (mu.pow(2) + (2 * logsigma).exp() - 1 - 2 * logsigma).sum(-1)


def log_normal(x: Tensor, mu: Tensor, logsigma: Tensor) -> Tensor:
    """Log density of a diagonal Gaussian, summed over the last axis: ``(..., D) -> (...)``."""
    return (-0.5 * ((x - mu) * torch.exp(-logsigma)).pow(2) - logsigma
            - 0.5 * torch.log(torch.tensor(2 * torch.pi, dtype=x.dtype))).sum(-1)


class PoseHead(nn.Module):
    """Base class. ``forward(h) -> (mu, logsigma)``; ``logsigma`` is ``None`` for a point mass."""

    stochastic: bool = False
    code_dim: int

    def to_warp(self, code: Tensor) -> Tensor:
        """Pose codes ``(B, code_dim)`` -> warp parameters ``(B, warp.dim)``."""
        raise NotImplementedError


class FlatPose(PoseHead):
    """Point-mass pose: ``u = base + tanh(A h + c)``. Zero-initialised here, so it starts at
    ``base``; under ``Config.init='glorot'`` (the default, the original's) :func:`tvae.models.init_weights`
    then gives ``A`` Glorot weights, so it starts near ``base`` (within the tanh's bound).

    ``base`` is the identity; ``start='double'`` (TPS only) adds the grid twice, as the
    original Lasagne code did, so the initial warp is a 2x zoom-out.
    """

    stochastic = False

    def __init__(self, in_features: int, warp: Warp, start: str = "identity"):
        super().__init__()
        self.code_dim = warp.dim
        self.linear = nn.Linear(in_features, warp.dim)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        base = warp.identity()
        if start == "double":
            base = 2 * base
        self.register_buffer("base", base)

    def forward(self, h: Tensor) -> tuple[Tensor, None]:
        return self.base + torch.tanh(self.linear(h)), None

    def to_warp(self, code: Tensor) -> Tensor:
        return code


class GaussianPose(PoseHead):
    """Gaussian pose prior ``u = W u' + b``, ``u' ~ N(0, I)``; see the module docstring."""

    stochastic = True

    def __init__(self, in_features: int, warp: Warp, prior: str, rank: int | None = None):
        super().__init__()
        self.prior = prior
        if prior == "reparam5-diag":
            if warp.name != "affine":
                raise ValueError("the reparam5-diag prior exists only for the affine warp")
            out_dim, b0 = 5, torch.zeros(5)
        else:
            out_dim, b0 = warp.dim, warp.identity()
        self.code_dim = rank if prior == "lowrank" else out_dim
        self.mu = nn.Linear(in_features, self.code_dim)
        self.logsigma = nn.Linear(in_features, self.code_dim)
        nn.init.zeros_(self.mu.weight)
        nn.init.zeros_(self.mu.bias)
        if prior == "identity-diag":
            self.register_buffer("b", b0)
        else:
            self.b = nn.Parameter(b0)
        if prior == "lowrank":
            w0 = torch.randn(out_dim, self.code_dim) * INIT_POSE_SCALE / self.code_dim ** 0.5
            self.w = nn.Parameter(w0)
        else:
            self.w = nn.Parameter(torch.full((out_dim,), INIT_POSE_SCALE))

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.mu(h), bounded_logsigma(self.logsigma(h))

    def linear_map(self, code: Tensor) -> Tensor:
        """``W u' + b``: ``(B, code_dim) -> (B, out_dim)``."""
        if self.w.dim() == 1:
            return code * self.w + self.b
        return code @ self.w.T + self.b

    def to_warp(self, code: Tensor) -> Tensor:
        v = self.linear_map(code)
        if self.prior == "reparam5-diag":
            return affine_from_pose5(v).reshape(-1, 6)
        return v

    def covariance(self) -> Tensor:
        """Prior covariance ``W W^T`` of ``u`` (or of the 5-d.o.f. pose), ``(out_dim, out_dim)``."""
        w = torch.diag(self.w) if self.w.dim() == 1 else self.w
        return w @ w.T


def make_pose_head(prior: str, in_features: int, warp: Warp, rank: int | None = None,
                   start: str = "identity") -> PoseHead:
    """Build the pose head of ``prior`` (one of :data:`PRIORS`) for ``warp``."""
    if prior == "flat":
        return FlatPose(in_features, warp, start)
    if prior in PRIORS:
        return GaussianPose(in_features, warp, prior, rank)
    raise ValueError(f"unknown pose prior {prior!r}; choose one of {', '.join(PRIORS)}")
