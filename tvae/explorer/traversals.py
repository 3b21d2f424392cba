"""Traversals: one latent coordinate or pose slider swept with the others held, and how far each
sweep moves the ink (centroid, slant, size), for the explorer chapter's grids and table."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..figures import mosaic
from .pose import ExplorerModel, H, PoseSpec, W, decode_pair


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
