"""Architecture diagrams: block diagrams of the VAE, the TVAE and the DTVAE."""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .images import _figure

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


__all__ = ["draw_architecture", "architecture_diagram", "architectures_overview"]
