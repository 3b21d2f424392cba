"""Latent explorer: move ``z`` and the pose ``u`` by hand and watch the decoder draw.

Two front ends share one description of each model (:class:`ExplorerModel`):

- :func:`show` builds an ipywidgets explorer for a live Jupyter kernel: a model dropdown, one
  slider per ``z`` dimension (over +-3 prior standard deviations), pose sliders, the upright
  ``y'`` and the output ``x'`` side by side, and buttons for a random ``z``, a random pose, a
  reset and "encode test digit". Decoding runs in PyTorch on the CPU.
- :func:`write_static` exports each model's decoder and warp to a JavaScript file (weights as
  base64 float16, or float32 when float16 would move a pixel by more than ``tol``) beside
  ``explorer.js``, the decoder written in plain JavaScript (``tvae/static/``), so that the
  rendered book decodes in the reader's browser with no kernel and no server.
  :func:`static_html` is the HTML block that mounts it; the assets are loaded by
  ``<script src>`` with relative URLs (no fetch/XHR), so the page also works from ``file://``.

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

The exported decoder is reproduced in numpy by :func:`numpy_decode`, the reference that the
JavaScript mirrors line by line; the browser test compares both with ``model.decode``.
"""

from __future__ import annotations

import base64
import io
import json
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import Tensor, nn

from . import warps
from .book.registry import LABELS
from .figures import mosaic
from .io import write_text
from .models import DTVAE, VAE
from .warps import control_grid, tps_basis

H = W = 28
D = H * W
PX = W / 2
"""Pixels per normalised unit under the ``torch`` sampling convention (the image's outer edges
at +-1: 28 pixels span 2 units); see :func:`pixels_per_unit`."""


def pixels_per_unit(sampling: str) -> float:
    """Pixels per normalised unit under ``sampling`` (:mod:`tvae.warps`): ``(W - 1) / 2 = 13.5``
    for ``lasagne`` (the first and last pixel centres at +-1), ``W / 2 = 14`` for ``torch``."""
    return (W - 1) / 2 if warps.SAMPLINGS[sampling][0] else W / 2

EXPORT_FORMAT = 2
"""Version of the exported model files (``window.TVAE_MODELS[name]``). 2: the files name the
warp sampling convention (``sampling``, see :mod:`tvae.warps`); a format-1 file (none named)
used the ``torch`` convention."""

AFFINE_NAMES = ("rotation", "log scale x", "log scale y", "shear", "shift x", "shift y")
AFFINE_UNITS = ("deg", "", "", "", "px", "px")
AFFINE_HALF_RANGE = np.array([90.0, 1.0, 1.0, 1.0, 10.0, 10.0])
"""Half-width of each affine slider around the mean pose (widened to 3.5 SD if needed)."""

Z_RANGE = 3.0
"""``z`` sliders span ``[-3, 3]`` prior standard deviations."""
POSE_SD_RANGE = 3.0
"""TPS mode sliders span ``[-3, 3]`` standard deviations along each mode."""
TPS_MODES = 6
"""Number of principal pose modes offered as sliders for TPS models."""

STATIC_FILES = ("explorer.js", "explorer.css")


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


# ------------------------------------------------------------------ traversals ----
def z_traversal(em: ExplorerModel, values: np.ndarray | None = None) -> np.ndarray:
    """``x'`` for every ``z`` dimension swept over ``values`` (default 7 steps in [-3, 3]) with
    the other dimensions at 0 and the pose at ``u_mean``: ``(dim z, n, 28, 28)``."""
    values = np.linspace(-3, 3, 7) if values is None else np.asarray(values, dtype=np.float64)
    k, n = em.zdim, len(values)
    z = torch.zeros(k, n, k)
    for i in range(k):
        z[i, :, i] = torch.as_tensor(values, dtype=torch.float32)
    _, x = decode_pair(em.model, z.reshape(k * n, k))
    return x.reshape(k, n, H, W).numpy()


def pose_traversal(em: ExplorerModel, values: np.ndarray | None = None,
                   z: np.ndarray | None = None) -> np.ndarray:
    """``x'`` for every pose slider swept over ``values`` standard deviations of the training
    poses (default 7 steps in [-3, 3]) around the mean pose, the other sliders at their centre
    and ``z`` (default 0): ``(k, n, 28, 28)``; ``(0, n, 28, 28)`` for the VAE."""
    values = np.linspace(-3, 3, 7) if values is None else np.asarray(values, dtype=np.float64)
    spec, n = em.pose, len(values)
    if spec.size == 0:
        return np.zeros((0, n, H, W), dtype=np.float32)
    us = []
    for i in range(spec.size):
        for v in values:
            vals = spec.centre.copy()
            vals[i] += v * spec.sd[i]
            us.append(spec.to_u(vals))
    zz = torch.zeros(len(us), em.zdim) if z is None else torch.as_tensor(
        np.broadcast_to(z, (len(us), em.zdim)), dtype=torch.float32)
    _, x = decode_pair(em.model, zz, torch.as_tensor(np.stack(us), dtype=torch.float32))
    return x.reshape(spec.size, n, H, W).numpy()


def pose_row_labels(spec: PoseSpec) -> list[str]:
    """Row labels of a pose traversal: the slider name and one SD in its units."""
    out = []
    for name, unit, sd in zip(spec.names, spec.units, spec.sd, strict=True):
        if spec.kind == "tps":
            i = len(out)
            out.append(f"{name} ({100 * spec.explained[i]:.0f}% var)")
        else:
            out.append(f"{name} (SD {sd:.2g}{' ' + unit if unit else ''})")
    return out


def image_geometry(img: np.ndarray) -> dict[str, float]:
    """Ink geometry of a grey image ``(28, 28)`` or ``(784,)``: centroid ``cx``, ``cy`` (pixels,
    x right, y down), ``slant`` (degrees; ``atan(mu11 / mu02)`` of the second central moments,
    the lean of the digit's vertical axis, positive when its top leans right) and ``size``
    (root mean square radius of the ink, pixels)."""
    a = np.asarray(img, dtype=np.float64).reshape(H, W)
    mass = a.sum()
    if mass <= 0:
        return {"cx": np.nan, "cy": np.nan, "slant": np.nan, "size": 0.0}
    yy, xx = np.mgrid[0:H, 0:W]
    cx, cy = (a * xx).sum() / mass, (a * yy).sum() / mass
    mu02 = (a * (yy - cy) ** 2).sum() / mass
    mu20 = (a * (xx - cx) ** 2).sum() / mass
    mu11 = (a * (xx - cx) * (yy - cy)).sum() / mass
    return {"cx": cx, "cy": cy, "slant": float(np.degrees(np.arctan2(-mu11, mu02))),
            "size": float(np.sqrt(mu20 + mu02))}


def traversal_geometry(grid: np.ndarray) -> list[dict[str, float]]:
    """For each row of a traversal grid ``(k, n, 28, 28)``: how far the sweep moves the ink.
    ``slant_range`` (degrees) and ``size_range`` (pixels): max minus min over the row;
    ``shift``: distance (pixels) between the extreme centroids of the row, the largest over pairs;
    ``change``: mean absolute grey-level difference between the row's two ends."""
    out = []
    for row in grid:
        g = [image_geometry(im) for im in row]
        c = np.array([[q["cx"], q["cy"]] for q in g])
        d = np.sqrt(((c[:, None] - c[None]) ** 2).sum(-1))
        sl = np.array([q["slant"] for q in g])
        sz = np.array([q["size"] for q in g])
        out.append({"slant_range": float(np.nanmax(sl) - np.nanmin(sl)),
                    "size_range": float(sz.max() - sz.min()), "shift": float(np.nanmax(d)),
                    "change": float(np.abs(row[-1] - row[0]).mean())})
    return out


def plot_traversals(em: ExplorerModel, values: np.ndarray | None = None):
    """Figure with the ``z`` traversal grid (left) and the pose traversal grid (right; absent
    for the VAE) of :func:`z_traversal` / :func:`pose_traversal`. Returns the figure."""
    values = np.linspace(-3, 3, 7) if values is None else np.asarray(values, dtype=np.float64)
    zg = z_traversal(em, values)
    pg = pose_traversal(em, values)
    panels = [(zg, [f"z{i + 1}" for i in range(em.zdim)],
               "z dimension (others 0" + (", mean pose)" if em.pose.size else ")"), "value (prior SD)")]
    if len(pg):
        panels.append((pg, pose_row_labels(em.pose), "pose slider (z = 0)",
                       "offset from the mean pose (training SD)"))
    rows = max(len(p[0]) for p in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 1.2, 0.5 * rows + 1.2),
                             squeeze=False)
    for ax, (grid, labels, title, xlabel) in zip(axes[0], panels, strict=True):
        tile = mosaic(grid.reshape(-1, H, W), ncol=grid.shape[1], pad=1, pad_value=1.0)
        ax.imshow(tile, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_yticks([i * (H + 1) + H / 2 for i in range(len(grid))], labels, fontsize=8)
        ax.set_xticks([j * (W + 1) + W / 2 for j in range(len(values))],
                      [f"{v:+g}" for v in values], fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(length=0)
    fig.suptitle(f"{em.label}, dim z = {em.zdim}", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------- export ----
def _linear_layers(model: VAE) -> list[nn.Linear]:
    """The decoder's Linear layers, checking the structure the exporters assume:
    ``Linear, ReLU, ..., Linear`` (a sigmoid follows in ``decode_upright``)."""
    mods = [m for m in model.decoder.modules() if not isinstance(m, nn.Sequential)]
    lin = [m for m in mods if isinstance(m, nn.Linear)]
    expected = []
    for i in range(len(lin)):
        expected.append(nn.Linear)
        if i < len(lin) - 1:
            expected.append(nn.ReLU)
    if [type(m) for m in mods] != expected or lin[-1].out_features != D:
        raise ValueError("unexpected decoder structure "
                         f"{[type(m).__name__ for m in mods]}; the explorer exports Linear/ReLU "
                         "stacks ending in a 784-unit Linear layer")
    return lin


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def _unb64(s: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)


def _weights_json(model: VAE, dtype: str) -> list[dict]:
    np_dtype = {"float16": "<f2", "float32": "<f4"}[dtype]
    out = []
    for lin in _linear_layers(model):
        wt = lin.weight.detach().cpu().numpy().T.astype(np_dtype)     # (in, out) row-major
        out.append({"in": lin.in_features, "out": lin.out_features, "w": _b64(wt),
                    "b": _b64(lin.bias.detach().cpu().numpy().astype(np_dtype))})
    return out


def export_arrays(export: dict) -> dict:
    """Decode an export dict (as written by :func:`export_model`) into numpy arrays:
    ``layers`` a list of ``(W (in, out) float32, b (out,) float32)``; ``tps_basis``
    ``(784, K)`` float32 or None; ``pose`` a :class:`PoseSpec`; ``digits`` a dict with
    ``images`` ``(n, 784)`` uint8, ``z``, ``u``, ``values``, ``residual``, ``labels``."""
    dt = {"float16": "<f2", "float32": "<f4"}[export["dtype"]]
    layers = [(_unb64(l["w"], dt, (l["in"], l["out"])).astype(np.float32),
               _unb64(l["b"], dt, (l["out"],)).astype(np.float32)) for l in export["layers"]]
    basis = (_unb64(export["tps_basis"], "<f4", (D, export["grid"] ** 2))
             if export.get("tps_basis") else None)
    dg = export["digits"]
    digits = {"images": _unb64(dg["images"], "u1", (dg["n"], D)), "labels": list(dg["labels"])}
    for k in ("z", "u", "values", "residual"):
        digits[k] = np.asarray(dg[k], dtype=np.float64).reshape(dg["n"], -1)
    return {"layers": layers, "tps_basis": basis, "pose": PoseSpec.from_json(export["pose"]),
            "digits": digits}


def _tps_radial_np(d2: np.ndarray) -> np.ndarray:
    return d2 * np.log(np.maximum(d2, 1e-20))


def pixel_grid_np(sampling: str = warps.DEFAULT_SAMPLING) -> np.ndarray:
    """Normalised centres of the 28 x 28 pixels under ``sampling``, ``(784, 2)`` as ``(x, y)``,
    row-major: the numpy twin of :func:`tvae.warps.pixel_coords`."""
    align, _ = warps.SAMPLINGS[sampling]
    c = np.linspace(-1.0, 1.0, W) if align else (np.arange(W) * 2 + 1) / W - 1
    yy, xx = np.meshgrid(c, c, indexing="ij")
    return np.stack([xx.reshape(-1), yy.reshape(-1)], -1)


def export_sampling(export: dict) -> str:
    """The sampling convention of an export (format 1 files, which name none, used ``torch``)."""
    return export.get("sampling", "torch")


def sampling_grid_np(export: dict, u: np.ndarray, basis: np.ndarray | None = None) -> np.ndarray | None:
    """Where each output pixel samples ``y'``: ``(784, 2)`` normalised ``(x, y)``, or None for
    the VAE. The numpy twin of ``samplingGrid`` in ``explorer.js`` and of the grids of
    :mod:`tvae.warps` (:func:`~tvae.warps.affine_grid`, :func:`~tvae.warps.tps_grid`,
    :func:`~tvae.warps.tps_grid_between`, whose TPS system it mirrors; the tests check it
    against them)."""
    warp = export["warp"]
    if warp is None:
        return None
    u = np.asarray(u, dtype=np.float64)
    g = pixel_grid_np(export_sampling(export))
    if warp == "affine":
        th = u.reshape(2, 3)
        if export["inverse"]:
            th = invert_affine_np(th)
        return g @ th[:, :2].T + th[:, 2]
    pts = u.reshape(-1, 2)
    if not export["inverse"]:
        return basis.astype(np.float64) @ pts
    # The TPS mapping the points p onto the control grid (tvae.warps.tps_grid_between), with
    # the ridge the model adds to the kernel block (tvae.warps.TPS_INVERSE_REG).
    k = len(pts)
    ctrl = np.asarray(export["control"], dtype=np.float64).reshape(-1, 2)
    d2 = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
    pm = np.concatenate([np.ones((k, 1)), pts], 1)
    kmat = _tps_radial_np(d2) + export.get("tps_inverse_reg", 0.0) * np.eye(k)
    system = np.block([[kmat, pm], [pm.T, np.zeros((3, 3))]])
    coef = np.linalg.solve(system, np.concatenate([ctrl, np.zeros((3, 2))]))
    gd2 = ((g[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
    feats = np.concatenate([_tps_radial_np(gd2), np.ones((D, 1)), g], 1)
    return feats @ coef


def grid_sample_np(img: np.ndarray, grid: np.ndarray, sampling: str = warps.DEFAULT_SAMPLING
                   ) -> np.ndarray:
    """:func:`tvae.warps.grid_sample` of one image ``(784,)`` at ``grid`` ``(784, 2)``:
    ``(784,)``. ``lasagne``: corners aligned, coordinates clamped into the image (border
    padding); ``torch``: ``align_corners=False``, corners outside the image contribute 0."""
    im = np.asarray(img, dtype=np.float64).reshape(H, W)
    if warps.SAMPLINGS[sampling][0]:
        ix = np.clip((grid[:, 0] + 1) / 2 * (W - 1), 0, W - 1)
        iy = np.clip((grid[:, 1] + 1) / 2 * (H - 1), 0, H - 1)
    else:
        ix = ((grid[:, 0] + 1) * W - 1) / 2
        iy = ((grid[:, 1] + 1) * H - 1) / 2
    x0, y0 = np.floor(ix), np.floor(iy)
    wx1, wy1 = ix - x0, iy - y0
    out = np.zeros(len(grid))
    for dx, wx in ((0, 1 - wx1), (1, wx1)):
        for dy, wy in ((0, 1 - wy1), (1, wy1)):
            xi, yi = (x0 + dx).astype(np.int64), (y0 + dy).astype(np.int64)
            ok = (xi >= 0) & (xi < W) & (yi >= 0) & (yi < H)
            out += np.where(ok, im[np.clip(yi, 0, H - 1), np.clip(xi, 0, W - 1)], 0.0) * wx * wy
    return out


def numpy_decode(export: dict, z: np.ndarray, u: np.ndarray | None = None,
                 arrays: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode one ``z`` ``(dim z,)`` and ``u`` ``(dim u,)`` from an export dict, as the browser
    does (float64 arithmetic on the stored weights): ``(y' (784,), x' (784,))``."""
    arrays = arrays or export_arrays(export)
    h = np.asarray(z, dtype=np.float64)
    layers = arrays["layers"]
    for i, (wt, b) in enumerate(layers):
        h = h @ wt.astype(np.float64) + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
    y = 1 / (1 + np.exp(-h))
    if export["warp"] is None:
        return y, y
    u = np.asarray(export["pose"]["u_mean"] if u is None else u, dtype=np.float64)
    return y, grid_sample_np(y, sampling_grid_np(export, u, arrays["tps_basis"]),
                             export_sampling(export))


def _check_vectors(em: ExplorerModel, digits_z: np.ndarray, digits_u: np.ndarray, n_random: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Test vectors ``(z, u)`` for the export's error check: the test digits' codes and
    ``n_random`` draws with ``z ~ N(0, I)`` and a pose from each slider's training spread."""
    rng = np.random.default_rng(seed)
    zs = [digits_z, rng.standard_normal((n_random, em.zdim))]
    spec = em.pose
    if spec.size:
        vals = spec.centre + spec.sd * rng.standard_normal((n_random, spec.size))
        vals = np.clip(vals, spec.lo, spec.hi)
        us = [digits_u, np.array([spec.to_u(v) for v in vals]).reshape(n_random, digits_u.shape[1])]
    else:
        us = [np.zeros((len(digits_z), 0)), np.zeros((n_random, 0))]
    return np.concatenate(zs), np.concatenate(us)


def export_model(em: ExplorerModel, digits: Tensor, labels: list[int] | None = None, *,
                 dtype: str = "auto", tol: float = 0.5 / 255, n_random: int = 32,
                 seed: int = 0) -> dict:
    """Export ``em``'s decoder and warp to a JSON-ready dict (the payload of its JS file).

    Weights are stored transposed ``(in, out)`` row-major as base64 little-endian float16 or
    float32. ``dtype='auto'`` takes float16 when the exported decoder stays within ``tol`` (max
    abs grey-level error) of ``model.decode`` on the test vectors (the ``digits``' codes and
    ``n_random`` random draws), else float32. ``digits`` ``(n, 784)``: test digits offered by
    "encode test digit" (their images, posterior-mean ``z``, posterior-mode ``u`` and slider
    values are stored). The measured error is kept under ``check``.
    """
    model, spec = em.model, em.pose
    with torch.no_grad():
        post = model.encode(digits.cpu())
    dz = post.mu_z.double().numpy()
    du = post.u.double().numpy()
    pairs = [spec.from_u(u) for u in du] if spec.size else [(np.zeros(0), np.zeros(0))] * len(dz)
    vals, res = [v for v, _ in pairs], [r for _, r in pairs]
    warp = model.warp.name if model.has_pose else None
    base = {
        "format": EXPORT_FORMAT, "name": em.name, "label": em.label, "kind": model.config.model,
        "warp": warp, "inverse": isinstance(model, DTVAE), "zdim": em.zdim,
        "sampling": model.config.sampling,
        "pose": spec.to_json(),
        "digits": {"n": len(dz), "images": _b64(np.round(digits.cpu().numpy() * 255).astype(np.uint8)),
                   "labels": [int(v) for v in (labels if labels is not None else [-1] * len(dz))],
                   "z": [[float(v) for v in r] for r in dz], "u": [[float(v) for v in r] for r in du],
                   "values": [[float(v) for v in r] for r in vals],
                   "residual": [[float(v) for v in r] for r in res]},
    }
    if warp == "tps":
        g = model.config.grid
        base["grid"] = g
        base["tps_basis"] = _b64(tps_basis(g, H, W, model.config.sampling).numpy().astype("<f4"))
        base["control"] = [float(v) for v in control_grid(g).reshape(-1)]
        if isinstance(model, DTVAE):
            base["tps_inverse_reg"] = float(getattr(warps, "TPS_INVERSE_REG", 0.0))
    zs, us = _check_vectors(em, dz, du, n_random, seed)
    with torch.no_grad():
        ref = model.decode(torch.as_tensor(zs, dtype=torch.float32),
                           torch.as_tensor(us, dtype=torch.float32) if model.has_pose else None
                           ).double().numpy()
    for cand in (["float16", "float32"] if dtype == "auto" else [dtype]):
        export = dict(base, dtype=cand, layers=_weights_json(model, cand))
        arrays = export_arrays(export)
        err = max(float(np.abs(numpy_decode(export, z, u, arrays)[1] - r).max())
                  for z, u, r in zip(zs, us, ref, strict=True))
        if err <= tol or cand == "float32":
            break
    export["check"] = {"max_abs_error": err, "vectors": len(zs), "tol": tol}
    return export


def model_js(export: dict) -> str:
    """The JavaScript file registering ``export`` as ``window.TVAE_MODELS[name]``."""
    return (f"/* tvae explorer model {export['name']} ({export['label']}), format {EXPORT_FORMAT}; "
            "written by tvae.explorer.write_static */\n"
            "(window.TVAE_MODELS = window.TVAE_MODELS || {})"
            f"[{json.dumps(export['name'])}] = {json.dumps(export, separators=(',', ':'))};\n")


def read_model_js(path: str | Path) -> dict:
    """Parse a file written by :func:`model_js` back into its export dict."""
    text = Path(path).read_text()
    start, end = text.index("= {") + 2, text.rindex("};") + 1
    return json.loads(text[start:end])


def model_file_name(name: str) -> str:
    """File name of a model's JS export, e.g. ``model-affine-tvae.js``."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return f"model-{safe}.js"


def write_static(models: dict[str, ExplorerModel], out_dir: str | Path, digits: Tensor,
                 labels: list[int] | None = None, *, dtype: str = "auto") -> dict[str, dict]:
    """Write the static explorer into ``out_dir``: ``explorer.js``, ``explorer.css``,
    ``manifest.js`` (the model list) and one ``model-<name>.js`` per model. ``digits``
    ``(n, 784)`` are the test digits offered by "encode test digit". Returns per model:
    ``file``, ``bytes`` (file size), ``weight_bytes`` (raw decoder weights), ``dtype``,
    ``params`` (decoder parameters) and ``max_abs_error`` (exported decoder vs ``model.decode``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for f in STATIC_FILES:
        write_text(out / f, resources.files("tvae").joinpath("static", f).read_text())
    summary, manifest = {}, []
    for name, em in models.items():
        exp = export_model(em, digits, labels, dtype=dtype)
        fname = model_file_name(name)
        write_text(out / fname, model_js(exp))
        params = sum(p.numel() for p in em.model.decoder.parameters())
        size = (out / fname).stat().st_size
        summary[name] = {"file": fname, "bytes": size, "dtype": exp["dtype"], "params": params,
                         "weight_bytes": params * (2 if exp["dtype"] == "float16" else 4),
                         "max_abs_error": exp["check"]["max_abs_error"]}
        manifest.append({"name": name, "label": em.label, "file": fname, "bytes": size,
                         "zdim": em.zdim})
    write_text(out / "manifest.js",
               "/* tvae explorer manifest, written by tvae.explorer.write_static */\n"
               f"window.TVAE_MANIFEST = {json.dumps({'format': EXPORT_FORMAT, 'models': manifest})};\n")
    return summary


def static_html(base_url: str = "explorer_static") -> str:
    """The HTML block mounting the static explorer; ``base_url`` is the (relative) URL of the
    folder written by :func:`write_static`."""
    tpl = resources.files("tvae").joinpath("static", "explorer.html").read_text()
    return tpl.replace("{base}", base_url.rstrip("/"))


def standalone_page(static_dir: str | Path, title: str = "tvae latent explorer") -> Path:
    """Write ``index.html`` beside ``static_dir`` (its parent folder) showing only the explorer;
    returns its path."""
    static_dir = Path(static_dir)
    page = static_dir.parent / "index.html"
    write_text(page, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                    "<link rel=\"icon\" href=\"data:,\">"
                    f"<title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n"
                    f"{static_html(static_dir.name)}\n</body></html>\n")
    return page


# -------------------------------------------------------------- Jupyter widget ----
def png_bytes(img: np.ndarray, scale: int = 6) -> bytes:
    """A grey image ``(784,)`` or ``(28, 28)`` in [0, 1] as PNG bytes, enlarged ``scale`` times
    (nearest neighbour), white ink on black."""
    a = np.clip(np.asarray(img, dtype=np.float32).reshape(H, W) * 255 + 0.5, 0, 255).astype(np.uint8)
    if scale > 1:
        a = a.repeat(scale, 0).repeat(scale, 1)
    buf = io.BytesIO()
    Image.fromarray(a, mode="L").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class Explorer:
    """The Jupyter explorer (ipywidgets 8). Build it with :func:`show`.

    ``models``: :class:`ExplorerModel` by name; ``x_test`` ``(N, 784)``, ``y_test`` ``(N,)``:
    digits for "encode test digit". ``widget`` is the root widget; ``times_ms`` holds the
    duration of every redraw (decode + PNG encoding + widget update), in milliseconds.
    """

    def __init__(self, models: dict[str, ExplorerModel], x_test: Tensor, y_test: Tensor | None = None,
                 scale: int = 6, seed: int = 0):
        import ipywidgets as w  # here: only the live widget needs it, not the exports

        if not models:
            raise ValueError("the explorer needs at least one model")
        self.models, self.x_test, self.y_test, self.scale = models, x_test.cpu(), y_test, scale
        self.rng = np.random.default_rng(seed)
        self.times_ms: list[float] = []
        self._hold = False
        self._sliders: list = []
        self.residual = np.zeros(0)
        side = f"{H * scale}px"
        self.dropdown = w.Dropdown(options=[(em.label, k) for k, em in models.items()],
                                   description="model")
        self.img_in = w.Image(format="png", layout=w.Layout(width=side, height=side))
        self.img_y = w.Image(format="png", layout=w.Layout(width=side, height=side))
        self.img_x = w.Image(format="png", layout=w.Layout(width=side, height=side))
        self.caption_in = w.HTML("input x (none)")
        self.z_box, self.pose_box = w.VBox(), w.VBox()
        auto = w.Layout(width="auto")
        self.b_random_z = w.Button(description="random z", layout=auto)
        self.b_random_pose = w.Button(description="random pose", layout=auto)
        self.b_reset = w.Button(description="reset", layout=auto)
        self.index = w.BoundedIntText(value=0, min=0, max=len(self.x_test) - 1, description="test digit",
                                      layout=w.Layout(width="170px"))
        self.b_encode = w.Button(description="encode this test digit", layout=auto)
        self.status = w.HTML()
        self.b_random_z.on_click(lambda _: self.random_z())
        self.b_random_pose.on_click(lambda _: self.random_pose())
        self.b_reset.on_click(lambda _: self.reset())
        self.b_encode.on_click(lambda _: self.encode(self.index.value))
        self.dropdown.observe(lambda _: self._switch_model(), names="value")

        def figure(img, caption):
            return w.VBox([img, caption if isinstance(caption, w.Widget) else w.HTML(caption)])

        self.widget = w.VBox([
            self.dropdown,
            w.HBox([figure(self.img_in, self.caption_in), figure(self.img_y, "upright y&#8242;"),
                    figure(self.img_x, "output x&#8242;")]),
            w.HBox([w.VBox([w.HTML("<b>shape z</b> (prior SD)"), self.z_box]),
                    w.VBox([w.HTML("<b>pose</b>"), self.pose_box])]),
            w.HBox([self.b_random_z, self.b_random_pose, self.b_reset, self.index, self.b_encode]),
            self.status])
        self._switch_model()

    # ---------------------------------------------------------------- state ----
    @property
    def current(self) -> ExplorerModel:
        return self.models[self.dropdown.value]

    def _switch_model(self) -> None:
        import ipywidgets as w  # here: only the live widget needs it, not the exports

        em = self.current
        style = {"description_width": "110px"}
        lay = w.Layout(width="360px")
        self.z_sliders = [w.FloatSlider(0.0, min=-Z_RANGE, max=Z_RANGE, step=0.01, description=f"z{i + 1}",
                                        style=style, layout=lay, continuous_update=True)
                          for i in range(em.zdim)]
        spec = em.pose
        self.pose_sliders = []
        for i in range(spec.size):
            unit = f" ({spec.units[i]})" if spec.units[i] else ""
            step = float((spec.hi[i] - spec.lo[i]) / 600)
            self.pose_sliders.append(w.FloatSlider(
                float(spec.centre[i]), min=float(spec.lo[i]), max=float(spec.hi[i]), step=step,
                description=spec.names[i] + unit, style=style, layout=lay, readout_format=".2f"))
        for s in self.z_sliders + self.pose_sliders:
            s.observe(self._on_slider, names="value")
        for old in self._sliders:                    # the previous model's sliders
            old.close()
        self._sliders = self.z_sliders + self.pose_sliders
        self.z_box.children = self.z_sliders
        self.pose_box.children = self.pose_sliders or [w.HTML("(the VAE has no pose)")]
        self.residual = np.zeros(len(spec.u_mean))
        self._show_input(None)
        self.redraw()

    def _on_slider(self, _change) -> None:
        if not self._hold:
            self.redraw()

    def _set(self, z: np.ndarray | None = None, values: np.ndarray | None = None,
             residual: np.ndarray | None = None) -> None:
        """Set sliders without redrawing each time, then redraw once."""
        self._hold = True
        try:
            if z is not None:
                for s, v in zip(self.z_sliders, z, strict=True):
                    s.value = float(np.clip(v, -Z_RANGE, Z_RANGE))
            if values is not None:
                for s, v in zip(self.pose_sliders, values, strict=True):
                    s.value = float(np.clip(v, s.min, s.max))
            if residual is not None:
                self.residual = np.asarray(residual, dtype=np.float64)
        finally:
            self._hold = False
        self.redraw()

    def z(self) -> np.ndarray:
        """Current ``z`` ``(dim z,)``."""
        return np.array([s.value for s in self.z_sliders])

    def u(self) -> np.ndarray:
        """Current warp parameters ``u`` ``(dim u,)`` (empty for the VAE)."""
        return self.current.pose.to_u(np.array([s.value for s in self.pose_sliders]), self.residual)

    # -------------------------------------------------------------- actions ----
    def random_z(self) -> None:
        """``z ~ N(0, I)`` (clipped to the sliders' +-3)."""
        self._set(z=self.rng.standard_normal(self.current.zdim))

    def random_pose(self) -> None:
        """Each pose slider drawn from a normal with its training centre and SD (independently)."""
        spec = self.current.pose
        if spec.size:
            self._set(values=spec.centre + spec.sd * self.rng.standard_normal(spec.size),
                      residual=np.zeros(len(spec.u_mean)))

    def reset(self) -> None:
        """``z = 0`` and the mean pose."""
        spec = self.current.pose
        self._show_input(None)
        self._set(z=np.zeros(self.current.zdim), values=spec.centre, residual=np.zeros(len(spec.u_mean)))

    def encode(self, index: int) -> None:
        """Start from test digit ``index``: ``z`` = its posterior mean, ``u`` = its pose."""
        em = self.current
        x = self.x_test[index:index + 1]
        with torch.no_grad():
            post = em.model.encode(x)
        vals, res = em.pose.from_u(post.u[0].double().numpy())
        self._show_input(index)
        self._set(z=post.mu_z[0].numpy(), values=vals, residual=res)

    def _show_input(self, index: int | None) -> None:
        if index is None:
            self.img_in.value = png_bytes(np.zeros(D), self.scale)
            self.caption_in.value = "input x (none)"
        else:
            self.img_in.value = png_bytes(self.x_test[index].numpy(), self.scale)
            lab = f", label {int(self.y_test[index])}" if self.y_test is not None else ""
            self.caption_in.value = f"input x (test digit {index}{lab})"

    # --------------------------------------------------------------- drawing ----
    def redraw(self) -> float:
        """Decode the current sliders and update both images; returns the time taken (ms)."""
        t0 = time.perf_counter()
        em = self.current
        z = torch.as_tensor(self.z(), dtype=torch.float32)[None]
        u = torch.as_tensor(self.u(), dtype=torch.float32)[None] if em.pose.size else None
        y, x = decode_pair(em.model, z, u)
        self.img_y.value = png_bytes(y[0].numpy(), self.scale)
        self.img_x.value = png_bytes(x[0].numpy(), self.scale)
        ms = (time.perf_counter() - t0) * 1000
        self.times_ms.append(ms)
        clipped = np.any(np.abs(self.z()) >= Z_RANGE)
        self.status.value = (f"redraw {ms:.1f} ms (median {np.median(self.times_ms):.1f} ms over "
                             f"{len(self.times_ms)})" + ("; some z at the slider limit" if clipped else ""))
        return ms

    def benchmark(self, n: int = 50) -> dict[str, float]:
        """Move the first ``z`` slider through ``n`` values (each move redraws, as a reader's
        drag does) and return ``{'median_ms', 'p90_ms', 'max_ms', 'n'}`` of those redraws."""
        start = len(self.times_ms)
        for v in np.linspace(-2, 2, n):
            self.z_sliders[0].value = float(v)
        t = np.array(self.times_ms[start:])
        return {"median_ms": float(np.median(t)), "p90_ms": float(np.percentile(t, 90)),
                "max_ms": float(t.max()), "n": len(t)}

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def show(models: dict[str, VAE | ExplorerModel] | list[VAE], data, n_pose: int = 1000) -> Explorer:
    """The Jupyter explorer for ``models`` (``{name: model}`` or a list), with pose sliders set
    from ``data.x_train`` (the first ``n_pose`` digits) and "encode test digit" over
    ``data.x_test``. Displays itself as a notebook's last expression."""
    ems = prepare(models, data.x_train, n_pose)
    return Explorer(ems, data.x_test, getattr(data, "y_test", None))


def summary_frame(summary: dict[str, dict]):
    """:func:`write_static`'s summary as a pandas DataFrame, one row per model: decoder
    parameters, storage dtype, raw weights and JS file sizes (kB), max abs error (grey levels,
    in units of 1/255) of the exported decoder against ``model.decode``."""
    return pd.DataFrame([{"model": LABELS.get(name, name), "decoder parameters": s["params"],
                          "stored as": s["dtype"], "weights (kB)": s["weight_bytes"] / 1000,
                          "JS file (kB)": s["bytes"] / 1000, "max error (x 1/255)": 255 * s["max_abs_error"]}
                         for name, s in summary.items()]).set_index("model")


__all__ = ["ExplorerModel", "PoseSpec", "Explorer", "show", "prepare", "pose_spec", "decode_pair",
           "z_traversal", "pose_traversal", "plot_traversals", "export_model", "export_arrays",
           "numpy_decode", "model_js", "read_model_js", "write_static", "static_html",
           "standalone_page", "affine_params_from_matrix", "matrix_from_affine_params", "png_bytes",
           "summary_frame", "image_geometry", "traversal_geometry"]
