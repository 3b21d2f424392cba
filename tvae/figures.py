"""Figures of the book: image grids, warp demonstrations, architecture diagrams, curves, maps.

Every function draws with matplotlib and returns the :class:`matplotlib.figure.Figure` it
made (created through ``pyplot``, so ``plt.show()`` displays it in a notebook). Images are
28 x 28 grey levels in ``[0, 1]``, accepted in any of these forms: a torch tensor or numpy
array of shape ``(N, 784)``, ``(N, 28, 28)`` or ``(N, 1, 28, 28)``, or a single image
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
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.ticker import MaxNLocator

from .warps import (
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
DIGIT_COLOURS = plt.get_cmap("tab10")


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
    grey as well. Returns ``(rows * (28 + pad) - pad, ncol * (28 + pad) - pad)``.
    """
    a = as_images(images)
    n = len(a)
    if n == 0:
        raise ValueError("no images to tile")
    ncol = n if ncol is None else max(1, min(ncol, n))
    nrow = math.ceil(n / ncol)
    step = SIDE + pad
    out = np.full((nrow * step - pad, ncol * step - pad), pad_value, dtype=np.float32)
    for k, img in enumerate(a):
        r, c = divmod(k, ncol)
        out[r * step:r * step + SIDE, c * step:c * step + SIDE] = img
    return out


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


# ------------------------------------------------------------- architecture diagrams ----
_STYLE = {
    "data": {"fc": "#eeeeee", "ec": "#555555"},
    "net": {"fc": "#cfe3f6", "ec": "#2b6aa6"},
    "latent": {"fc": "#fff1b8", "ec": "#b38f00"},
    "pose": {"fc": "#fbd5c0", "ec": "#c0501f"},
    "warp": {"fc": "#d9f0d3", "ec": "#2e7d32"},
}

# node name -> (x, y, label, style); edges (from, to, label)
_DIAGRAMS: dict[str, tuple[dict, list]] = {
    "vae": ({
        "x": (0.0, 0.0, "$x$\n784", "data"),
        "enc": (1.6, 0.0, "encoder\nMLP 256-256", "net"),
        "z": (3.3, 0.0, "$z \\sim q(z|x)$\n$\\mu_z, \\sigma_z$", "latent"),
        "dec": (5.0, 0.0, "decoder\nMLP 256-256", "net"),
        "xr": (6.6, 0.0, "$x'$\n784", "data"),
    }, [("x", "enc", ""), ("enc", "z", ""), ("z", "dec", ""), ("dec", "xr", "")]),
    "tvae": ({
        "x": (0.0, 0.0, "$x$\n784", "data"),
        "enc": (1.6, 0.0, "shared encoder\nMLP 256-256", "net"),
        "z": (3.3, 0.55, "$z \\sim q(z|x)$\n$\\mu_z, \\sigma_z$", "latent"),
        "u": (3.3, -0.75, "pose $u$\ntanh head", "pose"),
        "dec": (5.0, 0.55, "decoder\nMLP 256-256", "net"),
        "yr": (6.5, 0.55, "upright $y'$", "data"),
        "st": (6.5, -0.75, "transformer\n$T_u$", "warp"),
        "xr": (8.0, -0.75, "$x' = T_u(y')$", "data"),
    }, [("x", "enc", ""), ("enc", "z", ""), ("enc", "u", ""), ("z", "dec", ""), ("dec", "yr", ""),
        ("yr", "st", ""), ("u", "st", ""), ("st", "xr", "")]),
    "dtvae": ({
        "x": (0.0, 0.0, "$x$\n784", "data"),
        "loc": (1.5, -0.85, "localisation\nnet 128", "net"),
        "u": (3.0, -0.85, "pose $u$", "pose"),
        "st1": (1.5, 0.55, "transformer\n$T_u$", "warp"),
        "y": (3.0, 0.55, "upright $y$", "data"),
        "enc": (4.5, 0.55, "encoder\nMLP 256-256", "net"),
        "z": (6.0, 0.55, "$z \\sim q(z|y)$", "latent"),
        "dec": (7.5, 0.55, "decoder\nMLP 256-256", "net"),
        "yr": (9.0, 0.55, "upright $y'$", "data"),
        "st2": (9.0, -0.85, "inverse\n$T_u^{-1}$", "warp"),
        "xr": (10.5, -0.85, "$x'$", "data"),
    }, [("x", "loc", ""), ("loc", "u", ""), ("x", "st1", ""), ("u", "st1", ""), ("st1", "y", ""),
        ("y", "enc", ""), ("enc", "z", ""), ("z", "dec", ""), ("dec", "yr", ""), ("yr", "st2", ""),
        ("u", "st2", ""), ("st2", "xr", "")]),
}

_TITLES = {"vae": "VAE", "tvae": "Transformer VAE (TVAE)", "dtvae": "Double transformer VAE (DTVAE)"}
_LOSSES = {
    "vae": "loss: BCE$(x, x')$ + KL$(q(z|x)\\,\\|\\,N(0,I))$",
    "tvae": "loss: BCE$(x, T_u(y'))$ + KL on $z$ (+ KL on $u'$ under a Gaussian pose prior)",
    "dtvae": "loss: BCE$(x, T_u^{-1}(y'))$ + KL on $z$ (+ KL on $u'$ under a Gaussian pose prior)",
}

BOX_W, BOX_H = 1.25, 0.62


def _arch_family(kind: str) -> str:
    k = kind.lower()
    if k in _DIAGRAMS:
        return k
    if k == "vae":
        return "vae"
    if k.endswith("-dtvae"):
        return "dtvae"
    if k.endswith("-tvae"):
        return "tvae"
    raise ValueError(f"unknown architecture {kind!r}; use vae, tvae, dtvae or a model kind "
                     "such as affine-tvae")


def draw_architecture(ax: Axes, kind: str, warp: str | None = None, title: str | None = None,
                      loss: bool = True) -> None:
    """Draw the block diagram of ``kind`` (``vae``, ``tvae``, ``dtvae`` or a model kind such as
    ``tps-dtvae``) on ``ax``: boxes for data (grey), networks (blue), latent codes (yellow),
    the pose (orange) and the spatial transformers (green), arrows for the data flow.
    ``warp`` (``'affine'``/``'tps'``, default: read from ``kind``) names the transformer."""
    fam = _arch_family(kind)
    if warp is None and "-" in kind:
        warp = kind.split("-")[0]
    nodes, edges = _DIAGRAMS[fam]
    for name, (x, y, label, style) in nodes.items():
        if warp and name in ("st", "st1", "st2"):
            label = label + f"\n({warp})"
        if warp and name == "u":
            label = label + ("\n6 numbers" if warp == "affine" else "\n18 numbers")
        ax.add_patch(FancyBboxPatch((x - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H,
                                    boxstyle="round,pad=0.03,rounding_size=0.08", lw=1.2,
                                    **_STYLE[style]))
        ax.text(x, y, label, ha="center", va="center", fontsize=8)
    for a, b, label in edges:
        (xa, ya), (xb, yb) = nodes[a][:2], nodes[b][:2]
        start, end = _box_exit(xa, ya, xb, yb), _box_exit(xb, yb, xa, ya)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=11, lw=1.1,
                                     color="#333333", shrinkA=1, shrinkB=1))
        if label:
            ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.08, label, fontsize=7,
                    ha="center")
    xs = [v[0] for v in nodes.values()]
    ys = [v[1] for v in nodes.values()]
    ax.set_xlim(min(xs) - BOX_W / 2 - 0.1, max(xs) + BOX_W / 2 + 0.1)
    ax.set_ylim(min(ys) - BOX_H / 2 - (0.45 if loss else 0.1), max(ys) + BOX_H / 2 + 0.1)
    if loss:
        ax.text((min(xs) + max(xs)) / 2, min(ys) - BOX_H / 2 - 0.3, _LOSSES[fam], ha="center",
                va="center", fontsize=8, style="italic")
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title if title is not None else _TITLES[fam], fontsize=10)


def _box_exit(x: float, y: float, tx: float, ty: float) -> tuple[float, float]:
    """Point where the segment from the centre ``(x, y)`` towards ``(tx, ty)`` leaves the box."""
    dx, dy = tx - x, ty - y
    if dx == 0 and dy == 0:
        return x, y
    sx = (BOX_W / 2 + 0.03) / abs(dx) if dx else math.inf
    sy = (BOX_H / 2 + 0.03) / abs(dy) if dy else math.inf
    s = min(sx, sy)
    return x + dx * s, y + dy * s


def architecture_diagram(kind: str, warp: str | None = None, title: str | None = None) -> Figure:
    """One architecture's block diagram (see :func:`draw_architecture`) in its own figure."""
    fam = _arch_family(kind)
    nodes = _DIAGRAMS[fam][0]
    span = max(v[0] for v in nodes.values()) - min(v[0] for v in nodes.values()) + BOX_W
    fig, axes = _figure(0.85 * span + 0.4, 2.4 if fam != "vae" else 1.6)
    draw_architecture(axes[0, 0], kind, warp, title)
    fig.tight_layout()
    return fig


def architectures_overview(kinds: Sequence[str] = ("vae", "tvae", "dtvae"),
                           title: str | None = None) -> Figure:
    """Several architectures stacked vertically, one axes each (the introduction's picture)."""
    heights = [1.0 if _arch_family(k) == "vae" else 1.6 for k in kinds]
    fig, axes = _figure(9.0, sum(heights) * 1.45 + (0.3 if title else 0), len(kinds), 1,
                        gridspec_kw={"height_ratios": heights})
    for ax, k in zip(axes[:, 0], kinds, strict=True):
        draw_architecture(ax, k)
        ax.set_anchor("W")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ curves and maps ----
def code_scatter(codes: Mapping[str, np.ndarray], labels, title: str | None = None,
                 per_row: int = 2, size: float = 3.4, point: float = 4.0) -> Figure:
    """2-d code maps: one axes per model (label -> ``(N, 2)`` codes), points coloured by the
    digit class ``labels`` ``(N,)`` (tab10), with a shared class legend."""
    if not codes:
        raise ValueError("no code maps to draw")
    lab = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    n = len(codes)
    per_row = max(1, min(per_row, n))
    nrows = math.ceil(n / per_row)
    fig, axes = _figure(size * per_row + 0.8, size * nrows + (0.3 if title else 0), nrows, per_row)
    flat = list(axes.ravel())
    for ax, (name, c) in zip(flat, codes.items(), strict=False):
        c = np.asarray(c)
        if c.ndim != 2 or c.shape[1] != 2 or len(c) != len(lab):
            raise ValueError(f"codes of {name!r} must be (N, 2) with N = {len(lab)}, got {c.shape}")
        ax.scatter(c[:, 0], c[:, 1], c=DIGIT_COLOURS(lab % 10), s=point, alpha=0.7, linewidths=0)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$")
        ax.set_aspect("equal", adjustable="datalim")
        ax.tick_params(labelsize=8)
    for ax in flat[n:]:
        ax.remove()
    handles = [plt.Line2D([], [], ls="", marker="o", color=DIGIT_COLOURS(d), label=str(d))
               for d in range(10)]
    fig.legend(handles=handles, loc="center right", title="digit", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1 - 0.7 / fig.get_figwidth(), 1))
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


def grouped_bars(values: Mapping[str, Mapping[str, float]], ylabel: str, title: str | None = None,
                 log: bool = False) -> Figure:
    """Grouped bar chart: ``values[group][series]`` (e.g. noise setting -> model -> error).
    One axes; groups on the x axis, one coloured bar per series."""
    if not values:
        raise ValueError("no values to draw")
    groups = list(values)
    series: list[str] = []
    for g in groups:
        series += [s for s in values[g] if s not in series]
    width = 0.8 / len(series)
    # wide enough for the groups and for the one-row legend above the axes
    wide = max(4.0, 1.5 * len(series) + 1.0, 0.9 * len(groups) * max(1, len(series) / 3) + 1.5)
    fig, axes = _figure(wide, 3.4)
    ax = axes[0, 0]
    for k, s in enumerate(series):
        xs = [i + (k - (len(series) - 1) / 2) * width for i, g in enumerate(groups) if s in values[g]]
        ys = [values[g][s] for g in groups if s in values[g]]
        ax.bar(xs, ys, width, label=s)
    ax.set_xticks(range(len(groups)), groups, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    # The legend sits between the title and the axes, in one row: it never covers a bar.
    ax.legend(fontsize=8, ncol=len(series), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def spectra(values: Mapping[str, Sequence[float]], ylabel: str = "eigenvalue",
            title: str | None = None, log: bool = True) -> Figure:
    """Sorted spectra (e.g. eigenvalues of prior covariances), one line per label, one axes."""
    if not values:
        raise ValueError("no spectra to draw")
    fig, axes = _figure(4.6, 3.2)
    ax = axes[0, 0]
    for label, v in values.items():
        v = np.sort(np.asarray(v, dtype=float))[::-1]
        ax.plot(np.arange(1, len(v) + 1), v, marker="o", ms=4, label=label)
    ax.set_xlabel("component (largest first)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def angle_scatter(pairs: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                  title: str | None = None, size: float = 3.2) -> Figure:
    """Recovered against true angles in degrees: one axes per label (label -> ``(true,
    recovered)``), both axes on ``[-180, 180]``, with the diagonals ``y = x`` and ``y = -x``."""
    if not pairs:
        raise ValueError("no angle pairs to draw")
    n = len(pairs)
    fig, axes = _figure(size * n, size + 0.3 + (0.3 if title else 0), 1, n)
    for ax, (label, (t, r)) in zip(axes[0], pairs.items(), strict=True):
        t, r = np.asarray(t, dtype=float), np.asarray(r, dtype=float)
        ax.scatter(t, r, s=5, alpha=0.6, linewidths=0)
        ax.plot([-180, 180], [-180, 180], color="grey", lw=0.8, ls="--", label="y = x")
        ax.plot([-180, 180], [180, -180], color="grey", lw=0.8, ls=":", label="y = -x")
        ax.set_xlim(-180, 180)
        ax.set_ylim(-180, 180)
        ax.set_xticks([-180, -90, 0, 90, 180])
        ax.set_yticks([-180, -90, 0, 90, 180])
        ax.set_xlabel("true angle (degrees)")
        ax.set_ylabel("angle read from u (degrees)")
        ax.set_title(label, fontsize=10)
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title, fontsize=11)
    # The reference lines' legend goes below the panels: every corner of a panel is on a line.
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


__all__ = ["as_images", "mosaic", "sample_grid", "image_rows", "panels", "reconstruction_rows",
           "to_pixels", "warp_map", "apply_warp", "draw_lattice", "warp_demo", "control_grid_figure",
           "draw_architecture", "architecture_diagram", "architectures_overview",
           "code_scatter", "sweep_codes", "latent_sweep", "latent_sweeps", "grouped_bars", "spectra",
           "angle_scatter"]
