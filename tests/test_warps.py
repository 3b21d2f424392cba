"""Tests of :mod:`tvae.warps` against independent computations.

Conventions checked here (and relied on by the models): a warp maps *output* pixel
coordinates to *input* sampling coordinates, normalised to ``[-1, 1]`` with
``align_corners=False``; points are ``(x, y)`` = (column, row). With that convention the
pose ``psi = +pi/2`` (``theta = [[0, -1, 0], [1, 0, 0]]``: output ``(x, y)`` samples input
``(-y, x)``) rotates the *content* of a displayed image (row 0 at the top) by 90 degrees
counter-clockwise, which is ``torch.rot90(img, k=1, dims=(-2, -1))``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tvae.warps import (
    AffineWarp,
    TPSWarp,
    affine_from_pose5,
    affine_warp,
    compose_affine,
    control_grid,
    invert_affine,
    pose5_from_affine,
    tps_eval,
    tps_grid,
    tps_grid_between,
    tps_warp,
)

ATOL = 1e-5


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_images(b: int = 4, h: int = 28, w: int = 28, seed: int = 0, dtype=torch.float32):
    return torch.rand(b, 1, h, w, generator=gen(seed), dtype=torch.float64).to(dtype)


def centres(h: int, w: int, dtype=torch.float64) -> torch.Tensor:
    """Pixel centres ``(h*w, 2)`` in normalised (x, y) coordinates, written out independently
    of :func:`tvae.warps.pixel_coords`: pixel ``i`` of ``n`` sits at ``(2 i + 1) / n - 1``."""
    rows = torch.tensor([(2 * i + 1) / h - 1 for i in range(h)], dtype=dtype)
    cols = torch.tensor([(2 * j + 1) / w - 1 for j in range(w)], dtype=dtype)
    return torch.stack([cols.repeat(h), rows.repeat_interleave(w)], -1)


def random_affine(b: int, seed: int, dtype=torch.float64, scale: float = 0.3) -> torch.Tensor:
    """Well-conditioned random affine maps ``(b, 2, 3)``: identity plus a perturbation."""
    eye = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]], dtype=dtype)
    return eye + scale * torch.randn(b, 2, 3, generator=gen(seed), dtype=dtype)


def smooth_images(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Smooth (low-frequency) random images ``(b, 1, h, w)`` in [0, 1], float64."""
    g = gen(seed)
    c = centres(h, w).reshape(h, w, 2)
    x, y = c[..., 0], c[..., 1]
    out = []
    for _ in range(b):
        a, p = torch.rand(4, generator=g, dtype=torch.float64) * 2, torch.rand(4, generator=g) * 6
        img = (torch.sin(a[0] * x + p[0]) * torch.cos(a[1] * y + p[1])
               + torch.sin(a[2] * (x + y) + p[2]) + torch.cos(a[3] * (x - y) + p[3]))
        out.append((img - img.min()) / (img.max() - img.min()))
    return torch.stack(out)[:, None]


# -------------------------------------------------------------------- identity ----
def test_affine_identity_returns_input():
    img = random_images(seed=1)
    theta = AffineWarp().identity().reshape(1, 2, 3).expand(len(img), 2, 3)
    out = affine_warp(img, theta)
    assert out.dtype == torch.float32 and out.shape == img.shape
    assert (out - img).abs().max().item() < ATOL


@pytest.mark.parametrize("s", [3, 4])
def test_tps_identity_returns_input(s):
    img = random_images(seed=2)
    points = control_grid(s).expand(len(img), -1, -1)
    out = tps_warp(img, points)
    assert out.dtype == torch.float32 and out.shape == img.shape
    assert (out - img).abs().max().item() < ATOL
    warp = TPSWarp(s)
    u = warp.identity().expand(len(img), -1)
    assert (warp.apply(img, u) - img).abs().max().item() < ATOL
    assert (warp.apply_inverse(img, u) - img).abs().max().item() < ATOL


def test_control_grid_layout():
    c = control_grid(3)
    assert c.shape == (9, 2)
    assert torch.equal(c[0], torch.tensor([-1.0, -1.0]))     # top-left (x, y)
    assert torch.equal(c[1], torch.tensor([0.0, -1.0]))      # x varies fastest (row-major)
    assert torch.equal(c[3], torch.tensor([-1.0, 0.0]))
    assert torch.equal(c[8], torch.tensor([1.0, 1.0]))
    with pytest.raises(ValueError):
        control_grid(1)


# ------------------------------------------------------------------------- TPS ----
@pytest.mark.parametrize("s", [3, 4])
def test_tps_interpolates_control_points_exactly(s):
    c = control_grid(s, dtype=torch.float64)
    targets = (c + 0.3 * torch.randn(5, s * s, 2, generator=gen(s), dtype=torch.float64)).float()
    at_controls = tps_eval(targets, control_grid(s))
    assert at_controls.shape == targets.shape
    assert (at_controls - targets).abs().max().item() < ATOL


def test_tps_pixel_basis_matches_direct_evaluation():
    """The cached pixel basis (one solve, float64, reused) against a fresh per-call solve at
    independently computed pixel centres."""
    h, w = 28, 20
    c = control_grid(3, dtype=torch.float64)
    points = c + 0.2 * torch.randn(3, 9, 2, generator=gen(3), dtype=torch.float64)
    grid = tps_grid(points, h, w)
    assert grid.shape == (3, h, w, 2) and grid.dtype == torch.float64
    direct = tps_eval(points, centres(h, w)).reshape(3, h, w, 2)
    assert (grid - direct).abs().max().item() < 1e-10
    grid32 = tps_grid(points.float(), h, w)
    assert grid32.dtype == torch.float32
    assert (grid32.double() - direct).abs().max().item() < ATOL


def numpy_tps(src: np.ndarray, dst: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Textbook thin-plate spline (Bookstein 1989) in numpy float64: ``f(q) = a0 + A q +
    sum_i w_i U(|q - src_i|)`` with ``U(r) = r^2 log r^2``, interpolating ``src -> dst``
    with ``sum w = 0`` and ``sum w src = 0``. ``src``, ``dst``: ``(K, 2)``; ``at``: ``(N, 2)``."""
    def u(d2):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(d2 > 0, d2 * np.log(d2), 0.0)

    k = len(src)
    big = np.zeros((k + 3, k + 3))
    big[:k, :k] = u(((src[:, None] - src[None]) ** 2).sum(-1))
    big[:k, k] = big[k, :k] = 1
    big[:k, k + 1:] = src
    big[k + 1:, :k] = src.T
    coef = np.linalg.solve(big, np.concatenate([dst, np.zeros((3, 2))]))
    feats = np.concatenate([u(((at[:, None] - src[None]) ** 2).sum(-1)), np.ones((len(at), 1)), at], 1)
    return feats @ coef


def test_tps_matches_a_textbook_implementation():
    h, w = 9, 7
    c = control_grid(3, dtype=torch.float64)
    pts = c + 0.25 * torch.randn(2, 9, 2, generator=gen(15), dtype=torch.float64)
    grid = tps_grid(pts, h, w).reshape(2, h * w, 2)
    between = tps_grid_between(pts, c.expand(2, -1, -1), h, w).reshape(2, h * w, 2)
    at = centres(h, w).numpy()
    for i in range(2):
        np.testing.assert_allclose(grid[i].numpy(), numpy_tps(c.numpy(), pts[i].numpy(), at), atol=1e-10)
        np.testing.assert_allclose(between[i].numpy(), numpy_tps(pts[i].numpy(), c.numpy(), at),
                                   atol=1e-10)


def test_tps_of_affine_targets_is_that_affine_map():
    """A TPS reproduces affine maps exactly: with control points moved by an affine map, its
    sampling grid equals ``F.affine_grid`` of that map (an independent implementation that
    also fixes the (x, y) order and the pixel-centre convention)."""
    theta = random_affine(4, seed=4)
    c = control_grid(3, dtype=torch.float64)
    targets = c @ theta[:, :, :2].transpose(1, 2) + theta[:, :, 2].unsqueeze(1)
    grid = tps_grid(targets, 28, 28)
    ref = F.affine_grid(theta, [4, 1, 28, 28], align_corners=False)
    assert (grid - ref).abs().max().item() < 1e-9
    img = random_images(4, seed=5, dtype=torch.float64)
    assert (tps_warp(img, targets) - affine_warp(img, theta)).abs().max().item() < 1e-9


def test_tps_grid_rejects_non_square_point_count():
    with pytest.raises(ValueError, match="square"):
        tps_grid(torch.zeros(1, 8, 2), 28, 28)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tps_grid_between_approximately_inverts_tps(seed):
    """``tps_grid_between(p, grid)`` (the TPS p -> grid) undoes the TPS grid -> p for a mild
    random warp: the forward map evaluated at the inverse grid is close to the identity."""
    h = w = 28
    c = control_grid(3, dtype=torch.float64)
    p = c + 0.04 * torch.randn(2, 9, 2, generator=gen(10 + seed), dtype=torch.float64)
    inv = tps_grid_between(p, c.expand(2, -1, -1), h, w)                  # (2, h, w, 2)
    forward_of_inverse = torch.stack([tps_eval(p[i:i + 1], inv[i].reshape(-1, 2))[0]
                                      for i in range(2)])                  # (2, h*w, 2)
    pix = centres(h, w)
    err = (forward_of_inverse - pix).norm(dim=-1).reshape(2, h, w)
    displacement = (tps_eval(p, pix) - pix).norm(dim=-1)
    assert displacement.max().item() > 0.04                               # a real warp
    assert err[:, 3:-3, 3:-3].max().item() < 0.02
    assert err[:, 3:-3, 3:-3].max().item() < 0.5 * displacement.max().item()


def test_tps_grid_between_maps_src_onto_dst():
    """Evaluated exactly at pixel centres placed on the source points, the grid returns the
    destination points (interpolation property of the per-sample solve)."""
    h = w = 4                         # pixel centres at +-0.25, +-0.75
    src = centres(h, w)[None].repeat(2, 1, 1)[:, [0, 3, 5, 6, 9, 10, 12, 15, 2]]   # 9 distinct points
    dst = src + 0.1 * torch.randn(src.shape, generator=gen(6), dtype=torch.float64)
    grid = tps_grid_between(src, dst, h, w).reshape(2, h * w, 2)
    idx = torch.tensor([0, 3, 5, 6, 9, 10, 12, 15, 2])
    assert (grid[:, idx] - dst).abs().max().item() < 1e-9
    # and with src = dst the grid is the identity
    same = tps_grid_between(src, src, h, w).reshape(2, h * w, 2)
    assert (same - centres(h, w)).abs().max().item() < 1e-9


def test_tps_inverse_warp_undoes_forward_warp_on_smooth_image():
    img = smooth_images(2, 64, 64, seed=7)
    c = control_grid(3, dtype=torch.float64)
    p = c + 0.03 * torch.randn(2, 9, 2, generator=gen(8), dtype=torch.float64)
    warp = TPSWarp(3)
    u = p.reshape(2, -1)
    there = warp.apply(img, u)
    back = warp.apply_inverse(there, u)
    assert (there - img)[..., 8:-8, 8:-8].abs().max().item() > 0.02        # it did move
    assert (back - img)[..., 8:-8, 8:-8].abs().max().item() < 0.02


# ---------------------------------------------------------------------- affine ----
def test_affine_compose_with_inverse_is_identity():
    theta = random_affine(8, seed=9)
    eye = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]], dtype=torch.float64).expand(8, 2, 3)
    inv = invert_affine(theta)
    assert (compose_affine(theta, inv) - eye).abs().max().item() < 1e-12
    assert (compose_affine(inv, theta) - eye).abs().max().item() < 1e-12
    # independent check with 3x3 homogeneous matrices
    bottom = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64).expand(8, 1, 3)
    full = torch.cat([theta, bottom], 1)
    assert (torch.cat([inv, bottom], 1) - torch.linalg.inv(full)).abs().max().item() < 1e-12
    # compose_affine is "outer after inner" on points
    a, b = random_affine(8, seed=10), random_affine(8, seed=11)
    pts = torch.randn(8, 5, 2, generator=gen(12), dtype=torch.float64)

    def apply(t, q):
        return q @ t[:, :, :2].transpose(1, 2) + t[:, :, 2].unsqueeze(1)

    assert (apply(compose_affine(a, b), pts) - apply(a, apply(b, pts))).abs().max().item() < 1e-12


def test_affine_warp_then_inverse_warp_is_identity_on_smooth_image():
    img = smooth_images(3, 64, 64, seed=13)
    pose = torch.tensor([[0.5, 0.1, -0.1, 0.05, -0.05], [-0.3, -0.1, 0.05, 0.0, 0.1],
                         [1.0, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    theta = affine_from_pose5(pose)
    there = affine_warp(img, theta)
    back = affine_warp(there, invert_affine(theta))
    # out(g) = img(theta g); back(g) = out(theta^-1 g) = img(g), up to two interpolations
    interior = (slice(None), slice(None), slice(16, -16), slice(16, -16))
    assert (there - img)[interior].abs().max().item() > 0.1
    assert (back - img)[interior].abs().max().item() < 0.01
    warp = AffineWarp()
    u = theta.reshape(3, 6)
    assert (warp.apply_inverse(warp.apply(img, u), u) - img)[interior].abs().max().item() < 0.01


def test_pose5_matrix_round_trip():
    g = gen(14)
    n = 64
    pose = torch.stack([(torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * 3.0,
                        torch.randn(n, generator=g, dtype=torch.float64) * 0.3,
                        torch.randn(n, generator=g, dtype=torch.float64) * 0.3,
                        torch.randn(n, generator=g, dtype=torch.float64) * 0.5,
                        torch.randn(n, generator=g, dtype=torch.float64) * 0.5], -1)
    m = affine_from_pose5(pose)
    psi, lsx, lsy, tx, ty = pose.T
    sx, sy = lsx.exp(), lsy.exp()
    expected = torch.stack([
        torch.stack([sx * psi.cos(), -sx * psi.sin(), sx * tx], -1),
        torch.stack([sy * psi.sin(), sy * psi.cos(), sy * ty], -1)], 1)   # PAPER.md's M
    assert (m - expected).abs().max().item() < 1e-12
    assert (pose5_from_affine(m) - pose).abs().max().item() < 1e-10
    assert (affine_from_pose5(pose5_from_affine(m)) - m).abs().max().item() < 1e-10
    assert torch.equal(affine_from_pose5(torch.zeros(1, 5)),
                       torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_quarter_rotations_equal_rot90(k):
    """``psi = k pi/2`` equals ``torch.rot90(img, k, dims=(-2, -1))`` (content turned
    counter-clockwise as displayed). On a square image with align_corners=False pixel centres
    map onto pixel centres, so only the border could differ by interpolation; we compare the
    interior tightly and the whole image loosely."""
    img = random_images(3, seed=20 + k)
    theta = affine_from_pose5(torch.tensor([[k * math.pi / 2, 0.0, 0.0, 0.0, 0.0]])).expand(3, 2, 3)
    out = affine_warp(img, theta)
    ref = torch.rot90(img, k, dims=(-2, -1))
    assert (out - ref)[..., 1:-1, 1:-1].abs().max().item() < ATOL
    assert (out - ref).abs().max().item() < 1e-3
    # the opposite sign is the other rotation (guards against a sign slip in the convention)
    if k == 1:
        assert (out - torch.rot90(img, -1, dims=(-2, -1))).abs().max().item() > 0.5


def test_rotation_of_a_marked_image_moves_the_mark_as_documented():
    """A single bright pixel at row 2, column 20 (upper right) goes to the upper left after a
    counter-clockwise quarter turn: ``rot90`` sends (r, c) to (W - 1 - c, r) = (7, 2)."""
    img = torch.zeros(1, 1, 28, 28)
    img[0, 0, 2, 20] = 1.0
    theta = affine_from_pose5(torch.tensor([[math.pi / 2, 0.0, 0.0, 0.0, 0.0]]))
    out = affine_warp(img, theta)[0, 0]
    r, c = divmod(int(out.argmax()), 28)
    assert (r, c) == (7, 2)
    assert out.max().item() == pytest.approx(1.0, abs=1e-5)


# -------------------------------------------------------------------- gradients ----
def test_gradcheck_affine_warp():
    img = torch.rand(2, 1, 5, 6, generator=gen(30), dtype=torch.float64, requires_grad=True)
    theta = random_affine(2, seed=31, scale=0.2).requires_grad_(True)
    assert torch.autograd.gradcheck(affine_warp, (img, theta), eps=1e-6, atol=1e-5)


def test_gradcheck_tps_warp():
    img = torch.rand(2, 1, 6, 5, generator=gen(32), dtype=torch.float64)
    c = control_grid(3, dtype=torch.float64)
    pts = (c + 0.1 * torch.randn(2, 9, 2, generator=gen(33), dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: tps_warp(img, p), (pts,), eps=1e-6, atol=1e-5)
    img.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda i: tps_warp(i, pts.detach()), (img,), eps=1e-6, atol=1e-5)


def test_gradcheck_tps_grid_between():
    c = control_grid(3, dtype=torch.float64)
    src = (c + 0.1 * torch.randn(2, 9, 2, generator=gen(34), dtype=torch.float64)).requires_grad_(True)
    dst = (c + 0.1 * torch.randn(2, 9, 2, generator=gen(35), dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s, d: tps_grid_between(s, d, 5, 4), (src, dst),
                                    eps=1e-6, atol=1e-5)


def test_gradcheck_pose5():
    pose = torch.randn(3, 5, generator=gen(36), dtype=torch.float64).mul(0.3).requires_grad_(True)
    assert torch.autograd.gradcheck(affine_from_pose5, (pose,), eps=1e-6, atol=1e-6)


# --------------------------------------------------------------- device, dtype ----
def _devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_device_and_dtype_preserved(device, dtype):
    img = random_images(2, seed=40).to(device=device, dtype=dtype)
    theta = random_affine(2, seed=41, scale=0.1).to(device=device, dtype=dtype)
    c = control_grid(3, device=device, dtype=dtype)
    assert c.device.type == device and c.dtype == dtype
    pts = c + 0.05 * torch.randn(2, 9, 2, generator=gen(42), dtype=torch.float64).to(device, dtype)
    outs = {
        "affine_warp": affine_warp(img, theta),
        "invert_affine": invert_affine(theta),
        "affine_from_pose5": affine_from_pose5(torch.zeros(2, 5, device=device, dtype=dtype)),
        "pose5_from_affine": pose5_from_affine(theta),
        "tps_warp": tps_warp(img, pts),
        "tps_grid": tps_grid(pts, 28, 28),
        "tps_eval": tps_eval(pts, c),
        "tps_grid_between": tps_grid_between(pts, c.expand(2, -1, -1), 28, 28),
        "affine.apply": AffineWarp().apply(img, theta.reshape(2, 6)),
        "affine.apply_inverse": AffineWarp().apply_inverse(img, theta.reshape(2, 6)),
        "tps.apply": TPSWarp(3).apply(img, pts.reshape(2, 18)),
        "tps.apply_inverse": TPSWarp(3).apply_inverse(img, pts.reshape(2, 18)),
        "affine.identity": AffineWarp().identity(device, dtype),
        "tps.identity": TPSWarp(3).identity(device, dtype),
    }
    for name, t in outs.items():
        assert t.device.type == device, name
        assert t.dtype == dtype, name
        assert torch.isfinite(t).all(), name
