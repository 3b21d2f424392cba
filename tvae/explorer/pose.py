"""The explorer's models and their pose sliders: what each slider means, and ``z, u`` decoded.

Pose sliders are in meaningful terms:

- affine warps: the *visible* map from ``y'`` to ``x'`` (``p -> M p + t`` on the image, in the
  normalised coordinates of :mod:`tvae.warps`, x right, y down), written
  ``M = R(rotation) diag(exp(log_scale_x), exp(log_scale_y)) [[1, shear], [0, 1]]`` with
  ``R(a) = [[cos a, sin a], [-sin a, cos a]]`` (a counter-clockwise turn on the screen for
  ``a > 0``, in degrees) and the shift ``t`` in pixels (13.5 pixels = one normalised unit
  under the default ``lasagne`` sampling, 14 under ``torch``: :func:`pixels_per_unit`).
  A TVAE samples ``y'`` through ``u``, so its visible map is ``u^{-1}``; a DTVAE samples
  through ``u^{-1}``, so its visible map is ``u`` itself. The sliders start at the
  decomposition of the model's training-mean pose ``u_mean``.
- TPS warps: the principal modes of the posterior-mode poses ``u`` of training digits
  (PCA of ``u - u_mean``), each slider in standard deviations along its mode (+-3). Poses off
  the span of the modes (an encoded digit) keep their remainder in a ``residual`` so that
  ``to_u(from_u(u)) == u`` exactly.

:class:`PoseSpec` holds one model's sliders, :class:`ExplorerModel` a model with its
:class:`PoseSpec` (:func:`prepare` wraps trained models), :func:`decode_pair` draws the upright
``y'`` and the output ``x'`` of a code, :func:`pose_table` lists every model's sliders.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .. import warps
from ..book.registry import LABELS
from ..models import DTVAE, VAE

H = W = 28
"""Height and width of the images in pixels (MNIST)."""
D = H * W
"""Pixels per image: the length of a flattened image, ``(784,)``."""
PX = W / 2
"""Pixels per normalised unit under the ``torch`` sampling convention (the image's outer edges
at +-1: 28 pixels span 2 units); see :func:`pixels_per_unit`."""


def pixels_per_unit(sampling: str) -> float:
    """Pixels per normalised unit under ``sampling`` (:mod:`tvae.warps`): ``(W - 1) / 2 = 13.5``
    for ``lasagne`` (the first and last pixel centres at +-1), ``W / 2 = 14`` for ``torch``."""
    return (W - 1) / 2 if warps.SAMPLINGS[sampling][0] else W / 2


AFFINE_NAMES = ("rotation", "log scale x", "log scale y", "shear", "shift x", "shift y")
"""Names of the six affine pose sliders, in the order of :func:`affine_params_from_matrix`."""
AFFINE_UNITS = ("deg", "", "", "", "px", "px")
"""Units of the affine pose sliders (empty: a pure number)."""
AFFINE_HALF_RANGE = np.array([90.0, 1.0, 1.0, 1.0, 10.0, 10.0])
"""Half-width of each affine slider around the mean pose (widened to 3.5 SD if needed)."""

POSE_SD_RANGE = 3.0
"""TPS mode sliders span ``[-3, 3]`` standard deviations along each mode."""
TPS_MODES = 6
"""Number of principal pose modes offered as sliders for TPS models."""


# ---------------------------------------------------------------------- affine pose ----
def _rot(deg: np.ndarray) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], -2)


def affine_params_from_matrix(v: np.ndarray, px: float = PX) -> np.ndarray:
    """Visible affine maps ``(..., 2, 3)`` -> slider parameters ``(..., 6)``: rotation (deg),
    log scale x, log scale y, shear, shift x (px), shift y (px), with ``px`` pixels per
    normalised unit (:func:`pixels_per_unit`). See the module docstring.

    The 2x2 block is factored ``R(a) U`` with ``U = [[sx, sx*shear], [0, sy]]`` (a QR
    factorisation); a reflection (``sy <= 0``, which the explorer's models do not produce)
    is mapped to ``log scale y = log(1e-3)``.
    """
    v = np.asarray(v, dtype=np.float64)
    m00, m01, m10, m11 = v[..., 0, 0], v[..., 0, 1], v[..., 1, 0], v[..., 1, 1]
    sx = np.hypot(m00, m10)
    c, s = m00 / sx, -m10 / sx
    rot = np.rad2deg(np.arctan2(s, c))
    u01 = c * m01 - s * m11
    sy = s * m01 + c * m11
    shear = u01 / sx
    return np.stack([rot, np.log(sx), np.log(np.maximum(sy, 1e-3)), shear,
                     v[..., 0, 2] * px, v[..., 1, 2] * px], -1)


def matrix_from_affine_params(p: np.ndarray, px: float = PX) -> np.ndarray:
    """Inverse of :func:`affine_params_from_matrix`: ``(..., 6)`` -> visible maps ``(..., 2, 3)``."""
    p = np.asarray(p, dtype=np.float64)
    sx, sy, sh = np.exp(p[..., 1]), np.exp(p[..., 2]), p[..., 3]
    zero = np.zeros_like(sx)
    u = np.stack([np.stack([sx, sx * sh], -1), np.stack([zero, sy], -1)], -2)
    m = _rot(p[..., 0]) @ u
    t = np.stack([p[..., 4], p[..., 5]], -1)[..., None] / px
    return np.concatenate([m, t], -1)


def invert_affine_np(m: np.ndarray) -> np.ndarray:
    """Inverse of affine maps ``(..., 2, 3)``: ``x -> A x + t`` becomes ``x -> A^-1 x - A^-1 t``."""
    a_inv = np.linalg.inv(m[..., :2])
    return np.concatenate([a_inv, -a_inv @ m[..., 2:]], -1)


# ------------------------------------------------------------------------ pose spec ----
@dataclass
class PoseSpec:
    """How a model's pose ``u`` is shown as sliders.

    ``kind``: ``'none'`` (VAE), ``'affine'`` or ``'tps'``. ``inverse``: the model draws
    ``x' = T_u^{-1}(y')`` (DTVAE). Per slider (``k`` of them): ``names``, ``units``,
    ``centre`` (value at ``u_mean``), ``sd`` (standard deviation over training digits, in
    slider units), ``lo``/``hi`` (range). ``u_mean``: ``(dim u,)`` the model's training-mean
    pose. TPS only: ``modes`` ``(k, dim u)`` orthonormal principal directions of ``u``,
    ``mode_sd`` ``(k,)`` standard deviation of ``u`` along each (normalised units),
    ``explained`` ``(k,)`` fraction of the pose variance along each. ``px``: pixels per
    normalised unit of the affine shift sliders (:func:`pixels_per_unit` of the model's
    sampling convention).
    """

    kind: str
    inverse: bool = False
    names: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    centre: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sd: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lo: np.ndarray = field(default_factory=lambda: np.zeros(0))
    hi: np.ndarray = field(default_factory=lambda: np.zeros(0))
    u_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    modes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    mode_sd: np.ndarray = field(default_factory=lambda: np.zeros(0))
    explained: np.ndarray = field(default_factory=lambda: np.zeros(0))
    px: float = PX

    @property
    def size(self) -> int:
        """Number of pose sliders."""
        return len(self.names)

    def to_u(self, values: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
        """Slider values ``(k,)`` (plus a TPS ``residual`` ``(dim u,)``) -> warp parameters
        ``u`` ``(dim u,)`` as float64."""
        values = np.asarray(values, dtype=np.float64)
        if self.kind == "none":
            return np.zeros(0)
        if self.kind == "affine":
            v = matrix_from_affine_params(values, self.px)
            return (v if self.inverse else invert_affine_np(v)).reshape(6)
        u = self.u_mean + (values * self.mode_sd) @ self.modes
        return u if residual is None else u + residual

    def from_u(self, u: np.ndarray, clip: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Warp parameters ``u`` ``(dim u,)`` -> ``(values (k,), residual (dim u,))``.

        TPS: exact (``to_u(*from_u(u)) == u``) with the values clipped to the slider range and
        the rest of ``u - u_mean`` kept in the residual. Affine: values clipped to the slider
        range when ``clip`` (then only approximate); the residual is empty.
        """
        u = np.asarray(u, dtype=np.float64)
        if self.kind == "none":
            return np.zeros(0), np.zeros(0)
        if self.kind == "affine":
            m = u.reshape(2, 3)
            vals = affine_params_from_matrix(m if self.inverse else invert_affine_np(m), self.px)
            if clip:
                vals = np.clip(vals, self.lo, self.hi)
            return vals, np.zeros(0)
        d = u - self.u_mean
        sd = np.where(self.mode_sd > 0, self.mode_sd, 1.0)
        vals = (self.modes @ d) / sd
        if clip:
            vals = np.clip(vals, self.lo, self.hi)
        return vals, d - (vals * self.mode_sd) @ self.modes

    def to_json(self) -> dict:
        """JSON-ready dict (lists of floats) of every field."""
        out = {"kind": self.kind, "inverse": self.inverse, "names": list(self.names),
               "units": list(self.units), "px": float(self.px)}
        for k in ("centre", "sd", "lo", "hi", "u_mean", "mode_sd", "explained"):
            out[k] = [float(x) for x in getattr(self, k)]
        out["modes"] = [[float(x) for x in row] for row in self.modes]
        return out

    @classmethod
    def from_json(cls, d: dict) -> PoseSpec:
        kw = {k: np.asarray(d[k], dtype=np.float64)
              for k in ("centre", "sd", "lo", "hi", "u_mean", "mode_sd", "explained")}
        modes = (np.asarray(d["modes"], dtype=np.float64) if d["modes"] else np.zeros((0, 0)))
        return cls(kind=d["kind"], inverse=d["inverse"], names=tuple(d["names"]),
                   units=tuple(d["units"]), modes=modes, px=float(d.get("px", PX)), **kw)


@torch.no_grad()
def encode_poses(model: VAE, x: Tensor, batch_size: int = 1000) -> np.ndarray:
    """Posterior-mode warp parameters ``u`` of ``x`` ``(N, 784)``: ``(N, dim u)`` float64."""
    out = [model.encode(x[i:i + batch_size]).u.double().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()


def pose_spec(model: VAE, x: Tensor, n_modes: int = TPS_MODES) -> PoseSpec:
    """The :class:`PoseSpec` of ``model`` from the poses it gives the training digits ``x``
    ``(N, 784)`` (a few hundred to a few thousand are plenty)."""
    if not model.has_pose:
        return PoseSpec("none")
    inverse = isinstance(model, DTVAE)
    u_mean = model.u_mean.detach().double().cpu().numpy()
    us = encode_poses(model, x)
    if model.warp.name == "affine":
        px = pixels_per_unit(model.config.sampling)
        m = us.reshape(-1, 2, 3)
        vals = affine_params_from_matrix(m if inverse else invert_affine_np(m), px)
        centre_m = u_mean.reshape(2, 3)
        centre = affine_params_from_matrix(centre_m if inverse else invert_affine_np(centre_m), px)
        sd = vals.std(0)
        half = np.maximum(AFFINE_HALF_RANGE, 3.5 * sd)
        return PoseSpec("affine", inverse, AFFINE_NAMES, AFFINE_UNITS, centre, sd, centre - half,
                        centre + half, u_mean, px=px)
    d = us - u_mean
    cov = d.T @ d / max(len(d), 1)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1][:n_modes]
    evals, modes = np.clip(evals[order], 0, None), evecs[:, order].T.copy()
    for row in modes:   # a deterministic sign: the largest component positive
        if row[np.argmax(np.abs(row))] < 0:
            row *= -1
    total = float(np.clip(np.linalg.eigvalsh(cov), 0, None).sum())
    k = len(order)
    return PoseSpec("tps", inverse, tuple(f"mode {i + 1}" for i in range(k)), ("SD",) * k,
                    np.zeros(k), np.ones(k), np.full(k, -POSE_SD_RANGE), np.full(k, POSE_SD_RANGE),
                    u_mean, modes, np.sqrt(evals), evals / total if total > 0 else np.zeros(k))


@dataclass
class ExplorerModel:
    """A trained model ready for the explorer: ``name`` (a key such as ``'tps-tvae'``),
    ``label`` (shown to the reader), the model (eval mode, CPU) and its :class:`PoseSpec`."""

    name: str
    label: str
    model: VAE
    pose: PoseSpec

    @property
    def zdim(self) -> int:
        return self.model.config.zdim


def prepare(models: dict[str, VAE] | list[VAE], x_train: Tensor, n_pose: int = 1000
            ) -> dict[str, ExplorerModel]:
    """Wrap trained models for the explorer. ``models``: ``{name: model}`` or a list (named by
    their kind); ``x_train`` ``(N, 784)``: the first ``n_pose`` digits set the pose sliders."""
    if not isinstance(models, dict):
        models = {m.config.model: m for m in models}
    out = {}
    for name, m in models.items():
        if isinstance(m, ExplorerModel):
            out[name] = m
            continue
        m = m.cpu().eval()
        label = LABELS.get(name, LABELS.get(m.config.model, name))
        out[name] = ExplorerModel(name, label, m, pose_spec(m, x_train[:n_pose].cpu()))
    return out


def pose_table(models: dict[str, ExplorerModel]) -> pd.DataFrame:
    """Every pose slider of ``models``, one row per model and slider (index ``model``, ``slider``;
    the slider's name with its unit): ``at the mean pose`` (the slider's value at ``u_mean``) and
    ``SD over training digits`` (slider units); for a TPS, whose sliders are in standard
    deviations along the principal modes (0 and 1 by construction), also ``share of pose
    variance`` of each mode (NaN for affine sliders). The VAE has no rows."""
    rows = []
    for em in models.values():
        spec = em.pose
        if spec.kind == "affine":
            for name, unit, c, sd in zip(spec.names, spec.units, spec.centre, spec.sd, strict=True):
                rows.append({"model": em.label, "slider": name + (f" ({unit})" if unit else ""),
                             "at the mean pose": c, "SD over training digits": sd})
        elif spec.kind == "tps":
            for i, name in enumerate(spec.names):
                rows.append({"model": em.label, "slider": name, "at the mean pose": 0.0,
                             "SD over training digits": 1.0, "share of pose variance": spec.explained[i]})
    return pd.DataFrame(rows).set_index(["model", "slider"])


# ---------------------------------------------------------------------- decoding ----
@torch.no_grad()
def decode_pair(model: VAE, z: Tensor, u: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Upright ``y'`` and output ``x'``, each ``(B, 784)``, from ``z`` ``(B, dim z)`` and ``u``
    ``(B, dim u)`` (ignored by the VAE). ``x'`` equals ``model.decode(z, u)``; ``y'`` is
    decoded once and warped."""
    y = model.decode_upright(z)
    if not model.has_pose:
        return y, y
    if u is None:
        u = model.u_mean.expand(z.shape[0], -1)
    img = y.view(-1, 1, H, W)
    x = model.warp.apply_inverse(img, u) if isinstance(model, DTVAE) else model.warp.apply(img, u)
    return y, x.reshape(-1, D)
