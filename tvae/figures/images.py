"""Image figures: digits tiled in grids, rows and panels, warp demonstrations, 2-d sweeps.

Images are 28 x 28 grey levels in ``[0, 1]``, accepted in any of these forms: a torch tensor or
numpy array of shape ``(N, 784)``, ``(N, 28, 28)`` or ``(N, 1, 28, 28)``, or a single image
``(784,)`` / ``(28, 28)``. They are drawn with the ``gray`` colour map, black background,
white ink, no ticks.

Warp conventions are those of :mod:`tvae.warps`: a warp maps an *output* pixel position
``g`` in normalised coordinates ``[-1, 1]^2`` (``x`` to the right, ``y`` down) to the *input*
position ``f(g)`` it reads; the warp functions take that module's ``sampling`` convention
(default ``lasagne``: +-1 at the centres of the border pixels, clamped at the border), which
also places normalised points on the drawn pixels (:func:`to_pixels`). Drawn on the input,
the image of the output's regular lattice under ``f`` shows where every output pixel comes
from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from ..warps import (
    DEFAULT_SAMPLING,
    SAMPLINGS,
    affine_matrix,
    affine_warp,
    control_grid,
    tps_eval,
    tps_warp,
)

SIDE = 28
"""Image side in pixels."""

GREY = "gray"
"""The colour map of every image."""


# ------------------------------------------------------------------------- helpers ----
def as_images(x) -> np.ndarray:
    """Images in any accepted form (see the module docstring) -> float numpy ``(N, 28, 28)``."""
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if a.ndim == 2 and a.shape == (SIDE, SIDE):
        a = a[None]
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim == 2:
        if a.shape[1] != SIDE * SIDE:
            raise ValueError(f"flat images must have {SIDE * SIDE} pixels, got shape {a.shape}")
        a = a.reshape(-1, SIDE, SIDE)
    if a.ndim != 3 or a.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"expected 28x28 images as (N, 784), (N, 28, 28) or (N, 1, 28, 28), "
                         f"got shape {a.shape}")
    return a


def mosaic(images, ncol: int | None = None, pad: int = 1, pad_value: float = 0.5) -> np.ndarray:
    """Tile ``N`` images into one 2-d array of ``ceil(N / ncol)`` rows and ``ncol`` columns.

    ``pad`` pixels of grey ``pad_value`` separate the tiles; empty cells of the last row are
    ``pad_value`` as well. Returns ``(rows * (28 + pad) - pad, ncol * (28 + pad) - pad)``:
    torchvision's ``make_grid`` without the frame it also draws around the outside (and
    without its three colour channels). The one tiling of the package (figures, the CLI's
    sample PNG, the explorer's traversals).
    """
    a = as_images(images)
    n = len(a)
    if n == 0:
        raise ValueError("no images to tile")
    if n == 1:  # make_grid returns a single image as it is, without padding
        return a[0].copy()
    ncol = n if ncol is None else max(1, min(ncol, n))
    grid = make_grid(torch.from_numpy(a).unsqueeze(1), nrow=ncol, padding=pad, pad_value=pad_value)
    return grid[0, pad:grid.shape[1] - pad, pad:grid.shape[2] - pad].numpy()


def _show(ax: Axes, tile: np.ndarray, title: str | None = None) -> None:
    ax.imshow(tile, cmap=GREY, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)


def _figure(width: float, height: float, nrows: int = 1, ncols: int = 1, **kw):
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, **kw)
    return fig, axes


# --------------------------------------------------------------------- image grids ----
def sample_grid(images, ncol: int = 10, title: str | None = None, scale: float = 0.45) -> Figure:
    """One mosaic of images (e.g. generated samples), ``ncol`` per row, in one axes.

    ``scale``: inches per digit.
    """
    tile = mosaic(images, ncol)
    h, w = tile.shape
    fig, axes = _figure(max(2.0, w / SIDE * scale), max(1.2, h / SIDE * scale + (0.35 if title else 0)))
    _show(axes[0, 0], tile, title)
    fig.tight_layout()
    return fig


def image_rows(rows: Mapping[str, object], ncol: int | None = None, title: str | None = None,
               scale: float = 0.4) -> Figure:
    """Labelled rows of images: one axes per entry of ``rows`` (label -> images), the label
    written at the left. Each row is tiled ``ncol`` per line (default: all in one line)."""
    if not rows:
        raise ValueError("no rows to draw")
    tiles = {k: mosaic(v, ncol) for k, v in rows.items()}
    width = max(t.shape[1] for t in tiles.values()) / SIDE * scale + 1.3
    heights = [t.shape[0] / SIDE * scale for t in tiles.values()]
    fig, axes = _figure(width, sum(heights) + 0.15 * len(rows) + (0.4 if title else 0.1),
                        len(rows), 1, gridspec_kw={"height_ratios": heights})
    for ax, (label, tile) in zip(axes[:, 0], tiles.items(), strict=True):
        _show(ax, tile)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
        ax.set_anchor("W")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(h_pad=0.3)
    return fig


def panels(groups: Mapping[str, object], ncol: int = 5, per_row: int | None = None,
           title: str | None = None, scale: float = 0.3) -> Figure:
    """Mosaics side by side: one titled axes per entry of ``groups`` (label -> images), each
    tiled ``ncol`` per line; ``per_row`` panels per figure row (default: all in one row)."""
    if not groups:
        raise ValueError("no panels to draw")
    n = len(groups)
    per_row = n if per_row is None else max(1, min(per_row, n))
    nrows = math.ceil(n / per_row)
    tiles = {k: mosaic(v, ncol) for k, v in groups.items()}
    th = max(t.shape[0] for t in tiles.values()) / SIDE * scale
    tw = max(t.shape[1] for t in tiles.values()) / SIDE * scale
    fig, axes = _figure(per_row * (tw + 0.2), nrows * (th + 0.45) + (0.4 if title else 0), nrows,
                        per_row)
    flat = list(axes.ravel())
    for ax, (label, tile) in zip(flat, tiles.items(), strict=False):
        _show(ax, tile, label)
    for ax in flat[n:]:
        ax.remove()
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def reconstruction_rows(inputs, recs: Mapping[str, object], uprights: Mapping[str, object] | None = None,
                        ncol: int | None = None, title: str | None = None) -> Figure:
    """The paper's reconstruction figure: a row of inputs, then one row per model
    (``recs``: label -> ``x'``), each followed by that model's upright ``y'`` when
    ``uprights`` has the label. One axes per row."""
    rows: dict[str, object] = {"input x": inputs}
    uprights = uprights or {}
    for label, x_rec in recs.items():
        rows[f"{label}: x'"] = x_rec
        if label in uprights:
            rows[f"{label}: y'"] = uprights[label]
    return image_rows(rows, ncol, title)


# -------------------------------------------------------------------------- warps ----
def to_pixels(points: np.ndarray, sampling: str = DEFAULT_SAMPLING) -> np.ndarray:
    """Normalised coordinates ``(..., 2)`` in ``[-1, 1]`` -> pixel positions as drawn by
    ``imshow`` (pixel centres at integers) under ``sampling``: ``lasagne`` puts +-1 on the
    centres of the border pixels (0 and 27), ``torch`` on the image's outer edges (-0.5, 27.5)."""
    if SAMPLINGS[sampling][0]:
        return (np.asarray(points) + 1.0) * (SIDE - 1) / 2
    return (np.asarray(points) + 1.0) * SIDE / 2 - 0.5


def warp_map(kind: str, u) -> Callable[[np.ndarray], np.ndarray]:
    """The sampling map ``f`` of one warp as a numpy function ``(N, 2) -> (N, 2)``.

    ``kind``: ``'affine'`` (``u``: 6 numbers of the 2 x 3 matrix) or ``'tps'`` (``u``: the
    ``2 s^2`` interleaved images of the ``s x s`` control grid).
    """
    u = torch.as_tensor(np.asarray(u, dtype=np.float64))
    if kind == "affine":
        m = affine_matrix(u.reshape(1, 6))[0].numpy()
        return lambda p: np.asarray(p, dtype=np.float64) @ m[:, :2].T + m[:, 2]
    if kind == "tps":
        pts = u.reshape(1, -1, 2)
        return lambda p: tps_eval(pts, torch.as_tensor(np.asarray(p, dtype=np.float64)))[0].numpy()
    raise ValueError(f"unknown warp kind {kind!r}; use 'affine' or 'tps'")


def apply_warp(kind: str, images, u, sampling: str = DEFAULT_SAMPLING) -> np.ndarray:
    """Warp images ``(N, ...)`` by one parameter vector ``u`` (see :func:`warp_map`) under
    ``sampling``: ``(N, 28, 28)`` numpy outputs."""
    img = torch.from_numpy(as_images(images)).unsqueeze(1)
    ut = torch.as_tensor(np.asarray(u, dtype=np.float32)).reshape(1, -1).expand(len(img), -1)
    if kind == "affine":
        out = affine_warp(img, affine_matrix(ut), sampling)
    elif kind == "tps":
        out = tps_warp(img, ut.reshape(len(img), -1, 2), sampling)
    else:
        raise ValueError(f"unknown warp kind {kind!r}; use 'affine' or 'tps'")
    return out[:, 0].numpy()


def _fit_limits(axes, points: np.ndarray, margin: float = 2.0) -> None:
    """Set equal x/y limits on ``axes`` covering the frame and ``points`` (pixel coordinates)."""
    lo = min(-0.5, float(np.min(points))) - margin
    hi = max(SIDE - 0.5, float(np.max(points))) + margin
    for ax in axes:
        ax.set_xlim(lo, hi)
        ax.set_ylim(hi, lo)


def draw_lattice(ax: Axes, f=None, lines: int = 5, color: str = "tab:orange", lw: float = 1.0,
                 dense: int = 60, sampling: str = DEFAULT_SAMPLING) -> np.ndarray:
    """Draw on ``ax`` the image under ``f`` of a ``lines x lines`` lattice spanning the frame
    ``[-1, 1]^2`` (``f=None``: the regular lattice itself), in pixel coordinates. Returns the
    drawn points ``(M, 2)`` in pixels."""
    t = np.linspace(-1, 1, dense)
    drawn = []
    for c in np.linspace(-1, 1, lines):
        for seg in (np.stack([t, np.full_like(t, c)], 1), np.stack([np.full_like(t, c), t], 1)):
            p = to_pixels(seg if f is None else f(seg), sampling)
            ax.plot(p[:, 0], p[:, 1], color=color, lw=lw, alpha=0.9)
            drawn.append(p)
    return np.concatenate(drawn)


def warp_demo(image, kind: str, params: Sequence, labels: Sequence[str], lines: int = 5,
              title: str | None = None, sampling: str = DEFAULT_SAMPLING) -> Figure:
    """How a spatial transformer warps one digit, for several parameter vectors.

    Two rows of ``len(params)`` axes. Top: the input digit with the image of the output's
    lattice (orange) under the sampling map, i.e. where the output's lattice lines read the
    input; for a TPS the control points' images (the parameters ``u``) are red dots. Bottom:
    the warped output with its regular lattice (and the regular control grid for a TPS).
    """
    if len(params) != len(labels) or not params:
        raise ValueError("need one label per parameter vector, and at least one")
    img = as_images(image)[:1]
    n = len(params)
    fig, axes = _figure(1.9 * n, 4.1 + (0.3 if title else 0), 2, n)
    extent = []
    for j, (u, label) in enumerate(zip(params, labels, strict=True)):
        f = warp_map(kind, u)
        out = apply_warp(kind, img, u, sampling)[0]
        top, bottom = axes[0, j], axes[1, j]
        _show(top, img[0], label)
        drawn = draw_lattice(top, f, lines, sampling=sampling)
        _show(bottom, out)
        draw_lattice(bottom, None, lines, sampling=sampling)
        if kind == "tps":
            pts = to_pixels(np.asarray(u, dtype=np.float64).reshape(-1, 2), sampling)
            top.scatter(pts[:, 0], pts[:, 1], s=14, c="red", zorder=3)
            s = int(round(math.sqrt(len(pts))))
            grid = to_pixels(control_grid(s, dtype=torch.float64).numpy(), sampling)
            bottom.scatter(grid[:, 0], grid[:, 1], s=14, c="red", zorder=3)
            drawn = np.concatenate([drawn, pts])
        extent.append(drawn)
    _fit_limits(axes.ravel(), np.concatenate(extent))   # one scale for every panel
    axes[0, 0].set_ylabel("input x", fontsize=9)
    axes[1, 0].set_ylabel("output", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def control_grid_figure(image, points, title: str | None = None, lines: int = 7,
                        sampling: str = DEFAULT_SAMPLING) -> Figure:
    """One TPS in detail: the digit with the regular 3 x 3 (``s x s``) control grid, the same
    digit with the displaced control points (red arrows from the regular grid to their images
    ``u``) and the deformed lattice, and the warped output. Three axes."""
    img = as_images(image)[:1]
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    s = int(round(math.sqrt(len(pts))))
    grid = control_grid(s, dtype=torch.float64).numpy()
    f = warp_map("tps", pts.reshape(-1))
    out = apply_warp("tps", img, pts.reshape(-1), sampling)[0]
    fig, axes = _figure(7.0, 2.9 + (0.3 if title else 0), 1, 3)
    a0, a1, a2 = axes[0]
    gp, pp = to_pixels(grid, sampling), to_pixels(pts, sampling)
    _show(a0, img[0], f"control grid ({s}x{s})")
    draw_lattice(a0, None, lines, color="tab:blue", sampling=sampling)
    a0.scatter(gp[:, 0], gp[:, 1], s=18, c="red", zorder=3)
    _show(a1, img[0], "control points moved")
    drawn = draw_lattice(a1, f, lines, sampling=sampling)
    for g, p in zip(gp, pp, strict=True):
        a1.annotate("", xy=p, xytext=g, arrowprops={"arrowstyle": "->", "color": "red", "lw": 1.2})
    a1.scatter(pp[:, 0], pp[:, 1], s=18, c="red", zorder=3)
    _show(a2, out, "warped output")
    draw_lattice(a2, None, lines, sampling=sampling)
    a2.scatter(gp[:, 0], gp[:, 1], s=18, c="red", zorder=3)
    _fit_limits(axes[0], np.concatenate([drawn, pp]))
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def sweep_codes(n: int = 15, edge: float = 0.05) -> torch.Tensor:
    """An ``n x n`` grid of 2-d codes ``(n*n, 2)``, row-major: ``z = Phi^{-1}(p)`` with ``p``
    evenly spaced on ``[edge, 1 - edge]`` per axis (equal prior mass between neighbours);
    ``z_1`` grows to the right, ``z_2`` grows upwards (row 0 is the largest ``z_2``)."""
    if n < 2 or not 0 < edge < 0.5:
        raise ValueError(f"need n >= 2 and 0 < edge < 0.5, got n={n}, edge={edge}")
    p = torch.linspace(edge, 1 - edge, n, dtype=torch.float64)
    z = torch.distributions.Normal(0.0, 1.0).icdf(p).float()
    z2, z1 = torch.meshgrid(z.flip(0), z, indexing="ij")
    return torch.stack([z1.reshape(-1), z2.reshape(-1)], 1)


@torch.no_grad()
def latent_sweep(model, n: int = 15, edge: float = 0.05, pose: str | None = None,
                 title: str | None = None, scale: float = 0.32) -> Figure:
    """The continuous 2-d sweep of a model with ``dim z = 2``: the decoder's image at every
    code of :func:`sweep_codes`, tiled ``n x n`` in one axes. ``pose=None`` draws the upright
    ``y'``; ``'mean'`` or ``'identity'`` warps it by that pose (transformer models)."""
    if model.config.zdim != 2:
        raise ValueError(f"the 2-d sweep needs a model with dim z = 2, got {model.config.zdim}")
    z = sweep_codes(n, edge).to(next(model.parameters()).device)
    model.eval()
    if pose is None or not model.has_pose:
        imgs = model.decode_upright(z)
    else:
        imgs = model.decode(z, model.sample_pose(len(z), None, pose))
    tile = mosaic(imgs, n, pad=0)
    fig, axes = _figure(n * scale + 0.6, n * scale + 0.6 + (0.3 if title else 0))
    ax = axes[0, 0]
    _show(ax, tile, title)
    ax.set_xlabel("$z_1 = \\Phi^{-1}(p)$, increasing $\\rightarrow$", fontsize=8)
    ax.set_ylabel("$z_2$, increasing $\\uparrow$", fontsize=8)
    fig.tight_layout()
    return fig


@torch.no_grad()
def latent_sweeps(models: Mapping[str, object], n: int = 15, edge: float = 0.05,
                  pose: str | None = None, title: str | None = None, size: float = 3.6) -> Figure:
    """:func:`latent_sweep` of several ``dim z = 2`` models side by side, one axes each
    (label -> model), on the same grid of codes."""
    if not models:
        raise ValueError("no models to sweep")
    fig, axes = _figure(size * len(models), size + 0.5 + (0.3 if title else 0), 1, len(models))
    z = sweep_codes(n, edge)
    for ax, (label, model) in zip(axes[0], models.items(), strict=True):
        if model.config.zdim != 2:
            raise ValueError(f"the 2-d sweep needs dim z = 2; {label!r} has {model.config.zdim}")
        model.eval()
        zz = z.to(next(model.parameters()).device)
        if pose is None or not model.has_pose:
            imgs = model.decode_upright(zz)
        else:
            imgs = model.decode(zz, model.sample_pose(len(zz), None, pose))
        _show(ax, mosaic(imgs, n, pad=0), label)
        ax.set_xlabel("$z_1$ increasing $\\rightarrow$", fontsize=8)
        ax.set_ylabel("$z_2$ increasing $\\uparrow$", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


__all__ = ["SIDE", "as_images", "mosaic", "sample_grid", "image_rows", "panels", "reconstruction_rows",
           "to_pixels", "warp_map", "apply_warp", "draw_lattice", "warp_demo", "control_grid_figure",
           "sweep_codes", "latent_sweep", "latent_sweeps"]
