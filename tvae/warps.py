"""Spatial transformer warps: affine and thin-plate spline (TPS).

Conventions (PyTorch's, also Lasagne's): images are ``(B, C, H, W)`` tensors and coordinates
are normalised to ``[-1, 1]`` with ``align_corners=False``. A warp is a map ``g -> f(g)`` from
*output* pixel coordinates to *input* sampling coordinates: output pixel ``g`` takes the
(bilinearly interpolated) input value at ``f(g)``. The identity parameters therefore return
the input unchanged. Points are ``(x, y)`` pairs, ``x`` horizontal (column) and ``y``
vertical (row), both pointing to larger indices.

Every function is batched, differentiable in its parameters and its image, and keeps the
device and dtype of its inputs.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

IDENTITY_AFFINE = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
"""The 6 numbers of the identity 2x3 matrix, row-major."""


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


def compose_affine(outer: Tensor, inner: Tensor) -> Tensor:
    """Matrix of ``g -> outer(inner(g))`` for ``(B, 2, 3)`` maps."""
    a1, t1 = outer[:, :, :2], outer[:, :, 2:]
    a2, t2 = inner[:, :, :2], inner[:, :, 2:]
    return torch.cat([a1 @ a2, a1 @ t2 + t1], dim=-1)


def affine_warp(img: Tensor, theta: Tensor, padding_mode: str = "zeros") -> Tensor:
    """Warp ``img`` ``(B, C, H, W)`` by affine maps ``theta`` ``(B, 2, 3)`` (output -> input)."""
    grid = F.affine_grid(theta.to(img.dtype), list(img.shape), align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode=padding_mode,
                         align_corners=False)


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


def pixel_coords(h: int, w: int, *, device=None, dtype=torch.float32) -> Tensor:
    """Centres of an ``h x w`` image in normalised coordinates (align_corners=False), ``(h*w, 2)``."""
    ys = (torch.arange(h, device=device, dtype=dtype) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=device, dtype=dtype) * 2 + 1) / w - 1
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)


@functools.lru_cache(maxsize=32)
def _tps_basis_cached(s: int, h: int, w: int, device: str, dtype: torch.dtype) -> Tensor:
    """``(h*w, s*s)`` matrix ``B`` such that the TPS through targets ``P`` evaluated at every
    pixel is ``B @ P``. Solved once per grid (the TPS system depends only on the control grid)."""
    c = control_grid(s, dtype=torch.float64)                       # (K, 2)
    k = c.shape[0]
    # System [[K, P], [P^T, 0]] [w; a] = [targets; 0]
    kmat = _tps_radial(torch.cdist(c, c).pow(2))                   # (K, K)
    pmat = torch.cat([torch.ones(k, 1, dtype=torch.float64), c], 1)  # (K, 3)
    top = torch.cat([kmat, pmat], 1)
    bottom = torch.cat([pmat.T, torch.zeros(3, 3, dtype=torch.float64)], 1)
    system = torch.cat([top, bottom], 0)                           # (K+3, K+3)
    inv = torch.linalg.inv(system)[:, :k]                          # maps targets -> (w; a)
    g = pixel_coords(h, w, dtype=torch.float64)                    # (HW, 2)
    feats = torch.cat([_tps_radial(torch.cdist(g, c).pow(2)),
                       torch.ones(g.shape[0], 1, dtype=torch.float64), g], 1)  # (HW, K+3)
    return (feats @ inv).to(device=device, dtype=dtype).contiguous()


def tps_basis(s: int, h: int, w: int, *, device=None, dtype=torch.float32) -> Tensor:
    """Cached ``(h*w, s*s)`` interpolation matrix of the TPS on the ``s x s`` control grid."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    return _tps_basis_cached(s, h, w, str(device), dtype)


def tps_eval(points: Tensor, at: Tensor, s: int | None = None) -> Tensor:
    """Evaluate the TPS that maps the control grid onto ``points`` at arbitrary locations.

    ``points``: ``(B, s*s, 2)`` images of the control points; ``at``: ``(N, 2)`` locations.
    Returns ``(B, N, 2)``. Independent of the cached pixel basis (used to test it).
    """
    k = points.shape[1]
    s = s or int(round(k ** 0.5))
    c = control_grid(s, device=points.device, dtype=points.dtype)
    kmat = _tps_radial(torch.cdist(c, c).pow(2))
    pmat = torch.cat([torch.ones(k, 1, device=c.device, dtype=c.dtype), c], 1)
    system = torch.cat([torch.cat([kmat, pmat], 1),
                        torch.cat([pmat.T, torch.zeros(3, 3, device=c.device, dtype=c.dtype)], 1)])
    rhs = torch.cat([points, points.new_zeros(points.shape[0], 3, 2)], 1)
    coef = torch.linalg.solve(system, rhs)                        # (B, K+3, 2)
    feats = torch.cat([_tps_radial(torch.cdist(at, c).pow(2)),
                       torch.ones(at.shape[0], 1, device=at.device, dtype=at.dtype), at], 1)
    return feats @ coef


def tps_grid(points: Tensor, h: int, w: int) -> Tensor:
    """Sampling grid ``(B, h, w, 2)`` of the TPS mapping the control grid onto ``points`` ``(B, K, 2)``."""
    k = points.shape[1]
    s = int(round(k ** 0.5))
    if s * s != k:
        raise ValueError(f"TPS needs a square number of control points, got {k}")
    basis = tps_basis(s, h, w, device=points.device, dtype=points.dtype)   # (HW, K)
    b = points.shape[0]
    # One (2B, K) @ (K, HW) product: torch.matmul(basis, points) broadcasts into B batched
    # (HW, K) @ (K, 2) GEMMs, which are very thin and slow on the CPU (forward and backward).
    out = points.transpose(1, 2).reshape(b * 2, k) @ basis.T                # (2B, HW)
    return out.reshape(b, 2, h, w).permute(0, 2, 3, 1)


def tps_warp(img: Tensor, points: Tensor, padding_mode: str = "zeros") -> Tensor:
    """Warp ``img`` ``(B, C, H, W)`` by the TPS whose control grid maps onto ``points`` ``(B, K, 2)``.

    ``points`` equal to :func:`control_grid` is the identity.
    """
    grid = tps_grid(points.to(img.dtype), img.shape[-2], img.shape[-1])
    return F.grid_sample(img, grid, mode="bilinear", padding_mode=padding_mode,
                         align_corners=False)


TPS_INVERSE_REG = 1e-3
"""Ridge ``lambda`` added to the kernel block of the per-sample TPS solve of
:meth:`TPSWarp.apply_inverse`: moved control points may coincide (the flat pose head lets each
move by up to 1, the grid spacing), which makes the exact system singular. The regularised
(smoothing) TPS stays solvable; for mild warps it moves the inverse grid by ~1e-4."""


def tps_grid_between(src: Tensor, dst: Tensor, h: int, w: int, reg: float = 0.0) -> Tensor:
    """Sampling grid ``(B, h, w, 2)`` of the TPS that maps ``src`` points onto ``dst`` points.

    ``src``, ``dst``: ``(B, K, 2)``. Unlike :func:`tps_grid` the source points may differ per
    sample (a batched ``(K+3)``-square solve), which gives the approximate inverse of a TPS:
    the inverse of ``grid -> p`` is approximated by the TPS ``p -> grid``. ``reg > 0`` adds
    ``reg * I`` to the kernel block (a smoothing TPS, no longer exact at ``src``), which keeps
    the system solvable when source points coincide.
    """
    b, k, _ = src.shape
    ones = src.new_ones(b, k, 1)
    kmat = _tps_radial(torch.cdist(src, src).pow(2))                      # (B, K, K)
    if reg:
        kmat = kmat + reg * torch.eye(k, device=src.device, dtype=src.dtype)
    pmat = torch.cat([ones, src], -1)                                    # (B, K, 3)
    top = torch.cat([kmat, pmat], -1)
    bottom = torch.cat([pmat.transpose(1, 2), src.new_zeros(b, 3, 3)], -1)
    system = torch.cat([top, bottom], 1)                                 # (B, K+3, K+3)
    rhs = torch.cat([dst, dst.new_zeros(b, 3, 2)], 1)
    coef = torch.linalg.solve(system, rhs)                               # (B, K+3, 2)
    g = pixel_coords(h, w, device=src.device, dtype=src.dtype).expand(b, -1, -1)
    feats = torch.cat([_tps_radial(torch.cdist(g, src).pow(2)), g.new_ones(b, h * w, 1), g], -1)
    return (feats @ coef).reshape(b, h, w, 2)


# ----------------------------------------------------------------------- warp kinds ----
class Warp:
    """A warp family: its parameter size, identity parameters, forward and inverse application.

    Parameters ``u`` are flat ``(B, dim)`` tensors: the 6 row-major numbers of the affine
    matrix, or the ``s*s`` control-point images ``(x, y)`` interleaved for the TPS.
    Images are ``(B, 1, H, W)``.
    """

    name: str
    dim: int

    def identity(self, device=None, dtype=torch.float32) -> Tensor:
        raise NotImplementedError

    def apply(self, img: Tensor, u: Tensor) -> Tensor:
        raise NotImplementedError

    def apply_inverse(self, img: Tensor, u: Tensor) -> Tensor:
        raise NotImplementedError


class AffineWarp(Warp):
    name, dim = "affine", 6

    def identity(self, device=None, dtype=torch.float32) -> Tensor:
        return torch.tensor(IDENTITY_AFFINE, device=device, dtype=dtype)

    def apply(self, img: Tensor, u: Tensor) -> Tensor:
        return affine_warp(img, affine_matrix(u))

    def apply_inverse(self, img: Tensor, u: Tensor) -> Tensor:
        return affine_warp(img, invert_affine(affine_matrix(u)))


class TPSWarp(Warp):
    name = "tps"

    def __init__(self, s: int = 3):
        self.s, self.dim = s, 2 * s * s

    def identity(self, device=None, dtype=torch.float32) -> Tensor:
        return control_grid(self.s, device=device, dtype=dtype).reshape(-1)

    def apply(self, img: Tensor, u: Tensor) -> Tensor:
        return tps_warp(img, u.reshape(u.shape[0], -1, 2))

    def apply_inverse(self, img: Tensor, u: Tensor) -> Tensor:
        pts = u.reshape(u.shape[0], -1, 2).to(img.dtype)
        c = control_grid(self.s, device=img.device, dtype=img.dtype).expand_as(pts)
        grid = tps_grid_between(pts, c, img.shape[-2], img.shape[-1], reg=TPS_INVERSE_REG)
        return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False)


def make_warp(kind: str, grid: int = 3) -> Warp:
    """``'affine'`` or ``'tps'`` (on a ``grid x grid`` control grid)."""
    if kind == "affine":
        return AffineWarp()
    if kind == "tps":
        return TPSWarp(grid)
    raise ValueError(f"unknown warp kind {kind!r}; use 'affine' or 'tps'")
