"""Chapter 02 (background): the numerical checks the chapter makes of what it explains (the grey
levels of MNIST, the Gaussian KL, the reparametrisation gradient), the warps it draws, and the
sentences it prints about them.

Conventions, stated once: every random draw comes from a CPU ``torch.Generator`` seeded with the
profile's seed (``P.seed``), one generator per check, so that a check gives the same numbers
whatever ran before it. KL divergences are in nats. Warp parameters follow :mod:`tvae.warps`
(``u`` maps an output pixel to the input point it reads; chapter 03, "Which way the warp goes").
"""

from __future__ import annotations

import math

import torch
from matplotlib.figure import Figure

from .. import figures as tf
from ..priors import kl_std_normal, log_normal
from ..warps import affine_from_pose5, control_grid

KL_DIM = 20
"""Dimension of the random Gaussian whose KL from N(0, I) is checked: the book's main dim z."""

MC_DRAWS = 200_000
"""Monte Carlo draws of the KL and gradient checks: a standard error of about 0.01 nats or
0.01 in a gradient, small beside the quantities checked (several nats, gradients of 1-3)."""

REPARAM_MU, REPARAM_SIGMA = 0.7, 1.3
"""The Gaussian N(mu, sigma^2) of the reparametrisation check (any values away from 0 and 1, so
that the exact gradients 2 mu and 2 sigma are not trivially 0, 1 or 2)."""

TPS_DEMO_SD = 0.15
"""Standard deviation of the random control-point displacements of the TPS demo (normalised
units): a visible bend that keeps the digit readable."""

TPS_CENTRE_SHIFT = (0.35, 0.25)
"""How far the TPS demo moves the centre control point alone (x, y; normalised units)."""


def ink_shares(x: torch.Tensor) -> tuple[float, float]:
    """Of the images ``x`` (grey levels in [0, 1], any shape): the percentage of pixels that carry
    some ink (> 0), and among those the percentage strictly between 0 and 1 (grey, not white)."""
    inked = float((x > 0).float().mean()) * 100
    grey = float(((x > 0) & (x < 1)).float().sum() / (x > 0).float().sum()) * 100
    return inked, grey


def ink_sentence(x: torch.Tensor) -> str:
    """The chapter's sentence on the grey levels of the test digits ``x`` ``(N, 784)``
    (:func:`ink_shares`)."""
    inked, grey = ink_shares(x)
    return (f"Over the {len(x):,} test digits, {inked:.1f}% of the pixels carry some ink, and of "
            f"those {grey:.1f}% are strictly between 0 and 1 (grey, not white).")


def kl_check(seed: int, dim: int = KL_DIM, n: int = MC_DRAWS) -> dict[str, float]:
    """The closed-form KL(N(mu, diag sigma^2) || N(0, I)) (:func:`tvae.priors.kl_std_normal`) of a
    random ``dim``-dimensional Gaussian (``mu ~ N(0, 1)``, ``log sigma ~ N(-0.5, 0.5^2)`` per
    entry) against a Monte Carlo average of ``log q(z) - log p(z)`` over ``n`` draws of ``z ~ q``.

    Returns ``{"closed": nats, "mc": nats, "se": standard error of "mc"}``."""
    g = torch.Generator().manual_seed(seed)
    mu, logsigma = torch.randn(1, dim, generator=g), 0.5 * torch.randn(1, dim, generator=g) - 0.5
    z = mu + logsigma.exp() * torch.randn(n, dim, generator=g)
    mc = log_normal(z, mu, logsigma) - log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
    return {"closed": float(kl_std_normal(mu, logsigma)), "mc": float(mc.mean()),
            "se": float(mc.std() / len(mc) ** 0.5)}


def kl_sentence(check: dict[str, float]) -> str:
    """The chapter's sentence on :func:`kl_check`'s result."""
    return (f"Closed form: **{check['closed']:.3f}** nats; Monte Carlo: "
            f"**{check['mc']:.3f}** ± {check['se']:.3f} (one standard error).")


def reparam_gradient(seed: int, mu: float = REPARAM_MU, sigma: float = REPARAM_SIGMA,
                     n: int = MC_DRAWS) -> dict[str, float]:
    """The reparametrised gradient of ``E[z^2]``, ``z = mu + sigma * eps``, ``eps ~ N(0, 1)``,
    averaged over ``n`` draws, by back-propagation: ``{"d_mu", "d_sigma"}``, beside the exact
    ``{"exact_mu": 2 mu, "exact_sigma": 2 sigma}``."""
    m_, s_ = torch.tensor(mu, requires_grad=True), torch.tensor(sigma, requires_grad=True)
    eps = torch.randn(n, generator=torch.Generator().manual_seed(seed))
    ((m_ + s_ * eps) ** 2).mean().backward()
    return {"d_mu": float(m_.grad), "d_sigma": float(s_.grad), "exact_mu": 2 * mu,
            "exact_sigma": 2 * sigma}


def reparam_sentence(grad: dict[str, float]) -> str:
    """The chapter's sentence on :func:`reparam_gradient`'s result."""
    return (f"Reparametrised gradient: d/dmu = **{grad['d_mu']:.3f}** (exact {grad['exact_mu']:.3f}), "
            f"d/dsigma = **{grad['d_sigma']:.3f}** (exact {grad['exact_sigma']:.3f}).")


def pose(psi_deg: float = 0.0, log_sx: float = 0.0, log_sy: float = 0.0, tx: float = 0.0,
         ty: float = 0.0) -> torch.Tensor:
    """The 6 affine numbers ``(6,)`` of the paper's 5-parameter pose (rotation in degrees,
    log-scales, translation; :func:`tvae.warps.affine_from_pose5`)."""
    p = torch.tensor([[math.radians(psi_deg), log_sx, log_sy, tx, ty]])
    return affine_from_pose5(p).reshape(6)


def affine_demo() -> dict[str, torch.Tensor]:
    """The affine warps the chapter draws, ``{label: u (6,)}``: the identity, a rotation, a
    zoom-out, a shear and a translation."""
    return {"identity": pose(), "rotation 30 deg": pose(psi_deg=30),
            "scale 1.4 (zoom out)": pose(log_sx=math.log(1.4), log_sy=math.log(1.4)),
            "shear a12 = 0.4": torch.tensor([1.0, 0.4, 0.0, 0.0, 1.0, 0.0]),
            "translation tx = 0.3": pose(tx=0.3)}


def affine_demo_figure(digit: torch.Tensor) -> Figure:
    """:func:`tvae.figures.warp_demo` of :func:`affine_demo` on one digit ``(784,)``."""
    demo = affine_demo()
    return tf.warp_demo(digit, "affine", list(demo.values()), list(demo),
                        title="Affine warps of a test digit: sampling lattice on the input (top), "
                              "output (bottom)")


def tps_demo(seed: int) -> dict[str, torch.Tensor]:
    """The TPS warps the chapter draws, ``{label: control points (9, 2)}``: the regular grid
    (identity), every point displaced at random (:data:`TPS_DEMO_SD`, seeded) and only the
    centre point moved (:data:`TPS_CENTRE_SHIFT`)."""
    grid = control_grid(3)
    g = torch.Generator().manual_seed(seed)
    random_pts = grid + TPS_DEMO_SD * torch.randn(grid.shape, generator=g)
    centre = grid.clone()
    centre[4] += torch.tensor(TPS_CENTRE_SHIFT)
    return {"identity": grid, f"random (sd {TPS_DEMO_SD:g})": random_pts, "centre moved": centre}


def tps_demo_figure(digit: torch.Tensor, demo: dict[str, torch.Tensor]) -> Figure:
    """:func:`tvae.figures.warp_demo` of the TPS warps ``demo`` (:func:`tps_demo`) on one digit."""
    return tf.warp_demo(digit, "tps", [p.reshape(-1) for p in demo.values()], list(demo),
                        title="TPS warps: control points (red) and sampling lattice on the input, "
                              "output below")


__all__ = ["KL_DIM", "MC_DRAWS", "REPARAM_MU", "REPARAM_SIGMA", "TPS_DEMO_SD", "TPS_CENTRE_SHIFT",
           "ink_shares", "ink_sentence", "kl_check", "kl_sentence", "reparam_gradient",
           "reparam_sentence", "pose", "affine_demo", "affine_demo_figure", "tps_demo",
           "tps_demo_figure"]
