"""Spatial transformer warps: affine and thin-plate spline (TPS).

Conventions, stated once here and used by every warp of the package (the models, the figures,
the explorer's numpy and JavaScript ports). Images are ``(B, C, H, W)`` tensors. A warp is a
map ``g -> f(g)`` from *output* pixel coordinates to *input* sampling coordinates: output pixel
``g`` takes the bilinearly interpolated input value at ``f(g)``, so the identity parameters
return the input unchanged. Points are ``(x, y)`` pairs, ``x`` horizontal (column) and ``y``
vertical (row), both pointing to larger indices, in normalised coordinates where the image
spans ``[-1, 1]`` in each direction. Two *sampling conventions* say where the pixels sit in
that square and what lies outside it (:data:`SAMPLINGS`, ``Config.sampling``):

- ``"lasagne"`` (the default; the original code's Lasagne ``TransformerLayer`` and
  ``TPSTransformerLayer``): ``-1`` and ``1`` are the *centres* of the first and last pixels,
  pixel ``i`` of ``n`` sits at ``-1 + 2 i / (n - 1)`` (PyTorch's ``align_corners=True``), and a
  point outside the image reads the nearest border pixel (``padding_mode="border"``; Lasagne
  clamps too: its early versions clip the coordinates to ``[-1, 1]``, later ones clip the four
  neighbours' indices, ``border_mode="nearest"`` by default; both give these values);
- ``"torch"`` (this package's convention before issue 10; PyTorch's ``grid_sample``
  defaults): ``-1`` and ``1`` are the outer *edges* of those pixels, pixel ``i`` sits at
  ``(2 i + 1) / n - 1`` (``align_corners=False``), and a point outside reads 0
  (``padding_mode="zeros"``).

Both sample bilinearly. Every function is batched, differentiable in its parameters and its
image, and keeps the device and dtype of its inputs.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

SAMPLINGS = {"lasagne": (True, "border"), "torch": (False, "zeros")}
"""Sampling convention -> ``(align_corners, padding_mode)`` of ``F.grid_sample`` (see the
module docstring). Its keys are ``tvae.config.SAMPLINGS``."""

DEFAULT_SAMPLING = "lasagne"
"""The original code's convention, the default of ``Config.sampling`` and of every function
here."""

IDENTITY_AFFINE = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
"""The 6 numbers of the identity 2x3 matrix, row-major."""


def _mode(sampling: str) -> tuple[bool, str]:
    try:
        return SAMPLINGS[sampling]
    except KeyError:
        raise ValueError(f"unknown sampling {sampling!r}; use one of {', '.join(SAMPLINGS)}") from None


def pixel_coords(h: int, w: int, sampling: str = DEFAULT_SAMPLING, *, device=None,
                 dtype=torch.float32) -> Tensor:
    """Normalised ``(x, y)`` coordinates of the pixel centres of an ``h x w`` image under
    ``sampling``, ``(h*w, 2)``, row-major (``x`` varies fastest)."""
    align, _ = _mode(sampling)
    if align:
        ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=dtype)
    else:
        ys = (torch.arange(h, device=device, dtype=dtype) * 2 + 1) / h - 1
        xs = (torch.arange(w, device=device, dtype=dtype) * 2 + 1) / w - 1
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)


def grid_sample(img: Tensor, grid: Tensor, sampling: str = DEFAULT_SAMPLING) -> Tensor:
    """Bilinear sampling of ``img`` ``(B, C, H, W)`` at ``grid`` ``(B, H', W', 2)`` under
    ``sampling``: the one call to ``F.grid_sample`` of the package."""
    align, padding = _mode(sampling)
    return F.grid_sample(img, grid.to(img.dtype), mode="bilinear", padding_mode=padding,
                         align_corners=align)


# --------------------------------------------------------------------------- affine ----
def affine_matrix(u: Tensor) -> Tensor:
    """``(B, 6)`` row-major numbers -> ``(B, 2, 3)`` affine matrices."""
    return u.reshape(-1, 2, 3)


def affine_from_pose5(p: Tensor) -> Tensor:
    """5-d.o.f. pose ``(psi, log S_x, log S_y, T_x, T_y)``, shape ``(B, 5)`` -> ``(B, 2, 3)``.

    ``M = [[S_x cos psi, -S_x sin psi, S_x T_x], [S_y sin psi, S_y cos psi, S_y T_y]]``:
    a rotation by ``psi`` radians and a translation ``T`` followed by axis scalings ``S``.
    """
    psi, log_sx, log_sy, tx, ty = p.unbind(-1)
    sx, sy = log_sx.exp(), log_sy.exp()
    c, s = psi.cos(), psi.sin()
    row0 = torch.stack([sx * c, -sx * s, sx * tx], -1)
    row1 = torch.stack([sy * s, sy * c, sy * ty], -1)
    return torch.stack([row0, row1], -2)


def pose5_from_affine(theta: Tensor) -> Tensor:
    """Inverse of :func:`affine_from_pose5`: ``(B, 2, 3)`` -> ``(B, 5)``.

    Exact for matrices of that family (rows of the 2x2 block orthogonal); for a general
    affine matrix it returns the pose whose scales are the row norms and whose angle is read
    from the second row.
    """
    sx = theta[:, 0, :2].norm(dim=-1)
    sy = theta[:, 1, :2].norm(dim=-1)
    psi = torch.atan2(theta[:, 1, 0] / sy, theta[:, 1, 1] / sy)
    return torch.stack([psi, sx.log(), sy.log(), theta[:, 0, 2] / sx, theta[:, 1, 2] / sy], -1)


def invert_affine(theta: Tensor) -> Tensor:
    """Inverse of ``(B, 2, 3)`` affine maps ``x -> A x + t``: ``x -> A^-1 x - A^-1 t``."""
    a, t = theta[:, :, :2], theta[:, :, 2:]
    a_inv = torch.linalg.inv(a)
    return torch.cat([a_inv, -a_inv @ t], dim=-1)


@functools.lru_cache(maxsize=32)
def _homogeneous_cached(h: int, w: int, sampling: str, device: str, dtype: torch.dtype) -> Tensor:
    """``(h*w, 3)`` rows ``(x, y, 1)`` of the pixel centres (fixed for a convention and a size)."""
    g = pixel_coords(h, w, sampling, dtype=torch.float64)
    return torch.cat([g, torch.ones(h * w, 1, dtype=torch.float64)], 1).to(
        device=device, dtype=dtype).contiguous()


def affine_grid(theta: Tensor, h: int, w: int, sampling: str = DEFAULT_SAMPLING) -> Tensor:
    """Sampling grid ``(B, h, w, 2)`` of affine maps ``theta`` ``(B, 2, 3)``: ``theta (x, y, 1)``
    at every pixel centre, as one ``(2B, 3) @ (3, h*w)`` product with the fixed homogeneous
    coordinates (like :func:`tps_grid`); equals ``F.affine_grid(theta, (B, C, h, w),
    align_corners)`` of the convention."""
    b = theta.shape[0]
    hom = _homogeneous_cached(h, w, sampling, str(theta.device), theta.dtype)    # (HW, 3)
    out = theta.reshape(b * 2, 3) @ hom.T                                        # (2B, HW)
    return out.reshape(b, 2, h, w).permute(0, 2, 3, 1)


def affine_warp(img: Tensor, theta: Tensor, sampling: str = DEFAULT_SAMPLING) -> Tensor:
    """Warp ``img`` ``(B, C, H, W)`` by affine maps ``theta`` ``(B, 2, 3)`` (output -> input)."""
    grid = affine_grid(theta.to(img.dtype), img.shape[-2], img.shape[-1], sampling)
    return grid_sample(img, grid, sampling)


# ------------------------------------------------------------------------------ TPS ----
def control_grid(s: int = 3, *, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> Tensor:
    """The ``s x s`` regular control grid on ``[-1, 1]^2``, shape ``(s*s, 2)``, row-major (y outer)."""
    if s < 2:
        raise ValueError(f"TPS grid size must be >= 2, got {s}")
    lin = torch.linspace(-1.0, 1.0, s, device=device, dtype=dtype)
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)


def _tps_radial(d2: Tensor) -> Tensor:
    """TPS kernel ``U(r) = r^2 log r^2`` from squared distances, with ``U(0) = 0``."""
    return d2 * torch.log(d2.clamp_min(1e-20))


def tps_features(at: Tensor, src: Tensor) -> Tensor:
    """Rows ``(U(|q - src_1|^2), ..., U(|q - src_K|^2), 1, x, y)`` for the locations
    ``q = (x, y)`` of ``at`` ``(..., N, 2)`` and control points ``src`` ``(..., K, 2)``:
    ``(..., N, K + 3)``. A TPS through ``src`` evaluated at ``at`` is ``features @ coef``."""
    ones = at.new_ones(*at.shape[:-1], 1)
    return torch.cat([_tps_radial(torch.cdist(at, src).pow(2)), ones, at], -1)


def tps_system(src: Tensor, reg: float = 0.0) -> Tensor:
    """The TPS interpolation matrix ``L = [[U + reg I, P], [P^T, 0]]`` of control points ``src``
    ``(..., K, 2)``: ``(..., K + 3, K + 3)``, with ``U_ij = U(|src_i - src_j|^2)`` and rows
    ``P_i = (1, x_i, y_i)``. The TPS mapping ``src`` onto ``dst`` has coefficients
    ``L^-1 [dst; 0]`` (Bookstein 1989): kernel weights ``w`` with ``sum w = 0`` and
    ``sum w src = 0``, then the affine part. ``reg > 0`` is a smoothing TPS (no longer exact
    at ``src``) that stays solvable when points coincide. The one place the system is written."""
    k = src.shape[-2]
    kmat = _tps_radial(torch.cdist(src, src).pow(2))
    if reg:
        kmat = kmat + reg * torch.eye(k, device=src.device, dtype=src.dtype)
    pmat = torch.cat([src.new_ones(*src.shape[:-1], 1), src], -1)               # (..., K, 3)
    top = torch.cat([kmat, pmat], -1)
    bottom = torch.cat([pmat.transpose(-1, -2), src.new_zeros(*src.shape[:-2], 3, 3)], -1)
    return torch.cat([top, bottom], -2)


def tps_coefficients(src: Tensor, dst: Tensor, reg: float = 0.0) -> Tensor:
    """Coefficients ``(..., K + 3, 2)`` of the TPS mapping ``src`` ``(..., K, 2)`` onto ``dst``
    ``(..., K, 2)`` (batch dimensions broadcast): ``L^-1 [dst; 0]`` of :func:`tps_system`."""
    rhs = torch.cat([dst, dst.new_zeros(*dst.shape[:-2], 3, 2)], -2)
    return torch.linalg.solve(tps_system(src, reg), rhs)


@functools.lru_cache(maxsize=32)
def _tps_basis_cached(s: int, h: int, w: int, sampling: str, device: str, dtype: torch.dtype) -> Tensor:
    """``(h*w, s*s)`` matrix ``B`` such that the TPS through targets ``P`` evaluated at every
    pixel is ``B @ P``. Solved once per grid (the TPS system depends only on the control grid)."""
    c = control_grid(s, dtype=torch.float64)                                     # (K, 2)
    inv = torch.linalg.inv(tps_system(c))[:, : s * s]                            # targets -> coef
    g = pixel_coords(h, w, sampling, dtype=torch.float64)                        # (HW, 2)
    return (tps_features(g, c) @ inv).to(device=device, dtype=dtype).contiguous()


def tps_basis(s: int, h: int, w: int, sampling: str = DEFAULT_SAMPLING, *, device=None,
              dtype=torch.float32) -> Tensor:
    """Cached ``(h*w, s*s)`` interpolation matrix of the TPS on the ``s x s`` control grid,
    at the pixel centres of ``sampling``."""
    _mode(sampling)
    device = torch.device(device) if device is not None else torch.device("cpu")
    return _tps_basis_cached(s, h, w, sampling, str(device), dtype)


def tps_eval(points: Tensor, at: Tensor, s: int | None = None) -> Tensor:
    """Evaluate the TPS that maps the control grid onto ``points`` at arbitrary locations.

    ``points``: ``(B, s*s, 2)`` images of the control points; ``at``: ``(N, 2)`` locations.
    Returns ``(B, N, 2)``. A per-call solve, independent of the cached pixel basis.
    """
    k = points.shape[1]
    s = s or int(round(k ** 0.5))
    c = control_grid(s, device=points.device, dtype=points.dtype)
    return tps_features(at.to(points.dtype), c) @ tps_coefficients(c, points)


def tps_grid(points: Tensor, h: int, w: int, sampling: str = DEFAULT_SAMPLING) -> Tensor:
    """Sampling grid ``(B, h, w, 2)`` of the TPS mapping the control grid onto ``points`` ``(B, K, 2)``."""
    k = points.shape[1]
    s = int(round(k ** 0.5))
    if s * s != k:
        raise ValueError(f"TPS needs a square number of control points, got {k}")
    basis = tps_basis(s, h, w, sampling, device=points.device, dtype=points.dtype)   # (HW, K)
    b = points.shape[0]
    # One (2B, K) @ (K, HW) product: torch.matmul(basis, points) broadcasts into B batched
    # (HW, K) @ (K, 2) GEMMs, which are very thin and slow on the CPU (forward and backward).
    out = points.transpose(1, 2).reshape(b * 2, k) @ basis.T                # (2B, HW)
    return out.reshape(b, 2, h, w).permute(0, 2, 3, 1)


def tps_warp(img: Tensor, points: Tensor, sampling: str = DEFAULT_SAMPLING) -> Tensor:
    """Warp ``img`` ``(B, C, H, W)`` by the TPS whose control grid maps onto ``points`` ``(B, K, 2)``.

    ``points`` equal to :func:`control_grid` is the identity.
    """
    grid = tps_grid(points.to(img.dtype), img.shape[-2], img.shape[-1], sampling)
    return grid_sample(img, grid, sampling)


TPS_INVERSE_REG = 1e-3
"""Ridge ``lambda`` added to the kernel block of the per-sample TPS solve of
:meth:`TPSWarp.apply_inverse`: moved control points may coincide (the flat pose head lets each
move by up to 1, the grid spacing), which makes the exact system singular. The regularised
(smoothing) TPS stays solvable; for mild warps it moves the inverse grid by ~1e-4."""


def tps_grid_between(src: Tensor, dst: Tensor, h: int, w: int, reg: float = 0.0,
                     sampling: str = DEFAULT_SAMPLING) -> Tensor:
    """Sampling grid ``(B, h, w, 2)`` of the TPS that maps ``src`` points onto ``dst`` points.

    ``src``, ``dst``: ``(B, K, 2)``. Unlike :func:`tps_grid` the source points may differ per
    sample (a batched ``(K+3)``-square solve), which gives the approximate inverse of a TPS:
    the inverse of ``grid -> p`` is approximated by the TPS ``p -> grid``. ``reg > 0`` adds
    ``reg * I`` to the kernel block (see :func:`tps_system`).
    """
    b = src.shape[0]
    coef = tps_coefficients(src, dst, reg)                                       # (B, K+3, 2)
    g = pixel_coords(h, w, sampling, device=src.device, dtype=src.dtype).expand(b, -1, -1)
    return (tps_features(g, src) @ coef).reshape(b, h, w, 2)


# ----------------------------------------------------------------------- warp kinds ----
class Warp:
    """A warp family: its parameter size, identity parameters, forward and inverse application,
    under one sampling convention (``sampling``, see the module docstring).

    Parameters ``u`` are flat ``(B, dim)`` tensors: the 6 row-major numbers of the affine
    matrix, or the ``s*s`` control-point images ``(x, y)`` interleaved for the TPS.
    Images are ``(B, 1, H, W)``.
    """

    name: str
    dim: int
    sampling: str = DEFAULT_SAMPLING

    def identity(self, device=None, dtype=torch.float32) -> Tensor:
        raise NotImplementedError

    def apply(self, img: Tensor, u: Tensor) -> Tensor:
        raise NotImplementedError

    def apply_inverse(self, img: Tensor, u: Tensor) -> Tensor:
        raise NotImplementedError


class AffineWarp(Warp):
    name, dim = "affine", 6

    def __init__(self, sampling: str = DEFAULT_SAMPLING):
        _mode(sampling)
        self.sampling = sampling

    def identity(self, device=None, dtype=torch.float32) -> Tensor:
        return torch.tensor(IDENTITY_AFFINE, device=device, dtype=dtype)

    def apply(self, img: Tensor, u: Tensor) -> Tensor:
        return affine_warp(img, affine_matrix(u), self.sampling)

    def apply_inverse(self, img: Tensor, u: Tensor) -> Tensor:
        return affine_warp(img, invert_affine(affine_matrix(u)), self.sampling)


class TPSWarp(Warp):
    name = "tps"

    def __init__(self, s: int = 3, sampling: str = DEFAULT_SAMPLING):
        _mode(sampling)
        self.s, self.dim, self.sampling = s, 2 * s * s, sampling

    def identity(self, device=None, dtype=torch.float32) -> Tensor:
        return control_grid(self.s, device=device, dtype=dtype).reshape(-1)

    def apply(self, img: Tensor, u: Tensor) -> Tensor:
        return tps_warp(img, u.reshape(u.shape[0], -1, 2), self.sampling)

    def apply_inverse(self, img: Tensor, u: Tensor) -> Tensor:
        pts = u.reshape(u.shape[0], -1, 2).to(img.dtype)
        c = control_grid(self.s, device=img.device, dtype=img.dtype).expand_as(pts)
        grid = tps_grid_between(pts, c, img.shape[-2], img.shape[-1], reg=TPS_INVERSE_REG,
                                sampling=self.sampling)
        return grid_sample(img, grid, self.sampling)


def make_warp(kind: str, grid: int = 3, sampling: str = DEFAULT_SAMPLING) -> Warp:
    """``'affine'`` or ``'tps'`` (on a ``grid x grid`` control grid), sampling under ``sampling``."""
    if kind == "affine":
        return AffineWarp(sampling)
    if kind == "tps":
        return TPSWarp(grid, sampling)
    raise ValueError(f"unknown warp kind {kind!r}; use 'affine' or 'tps'")
