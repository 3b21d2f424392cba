"""The exported decoder in numpy: the reference that ``tvae/static/explorer.js`` mirrors line by
line, and that the tests compare with ``model.decode`` and with the browser.

:func:`export_arrays` reads an export dict (:func:`tvae.explorer.export.export_model`) back
into arrays; :func:`numpy_decode` decodes one ``(z, u)`` from it as the browser does (float64
arithmetic on the stored weights): the MLP, then the warp's sampling grid
(:func:`sampling_grid_np`) and bilinear sampling (:func:`grid_sample_np`), the numpy twins of
:mod:`tvae.warps`.
"""

from __future__ import annotations

import base64

import numpy as np

from .. import warps
from .pose import D, H, PoseSpec, W, invert_affine_np


def _unb64(s: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)


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
