"""Tests of :mod:`tvae.warps` against independent computations.

Conventions checked here (and relied on by the models): a warp maps *output* pixel
coordinates to *input* sampling coordinates, normalised to ``[-1, 1]`` under one of two
sampling conventions: ``lasagne`` (``align_corners=True``, border padding, the default) or
``torch`` (``align_corners=False``, zero padding); points are ``(x, y)`` = (column, row). With
that convention the pose ``psi = +pi/2`` (``theta = [[0, -1, 0], [1, 0, 0]]``: output ``(x, y)`` samples input
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
    SAMPLINGS,
    AffineWarp,
    TPSWarp,
    affine_from_pose5,
    affine_grid,
    affine_warp,
    control_grid,
    grid_sample,
    invert_affine,
    make_warp,
    pixel_coords,
    pose5_from_affine,
    tps_basis,
    tps_eval,
    tps_grid,
    tps_grid_between,
    tps_system,
    tps_warp,
)

ATOL = 1e-5


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_images(b: int = 4, h: int = 28, w: int = 28, seed: int = 0, dtype=torch.float32):
    return torch.rand(b, 1, h, w, generator=gen(seed), dtype=torch.float64).to(dtype)


def centres(h: int, w: int, dtype=torch.float64, sampling: str = "torch") -> torch.Tensor:
    """Pixel centres ``(h*w, 2)`` in normalised (x, y) coordinates, written out independently
    of :func:`tvae.warps.pixel_coords`: pixel ``i`` of ``n`` sits at ``(2 i + 1) / n - 1``
    (``torch``, ``align_corners=False``) or at ``-1 + 2 i / (n - 1)`` (``lasagne``,
    ``align_corners=True``: the first and last centres at -1 and 1)."""
    def at(i: int, n: int) -> float:
        return (2 * i + 1) / n - 1 if sampling == "torch" else -1 + 2 * i / (n - 1)

    rows = torch.tensor([at(i, h) for i in range(h)], dtype=dtype)
    cols = torch.tensor([at(j, w) for j in range(w)], dtype=dtype)
    return torch.stack([cols.repeat(h), rows.repeat_interleave(w)], -1)


def numpy_bilinear(img: np.ndarray, pts: np.ndarray, sampling: str) -> np.ndarray:
    """Independent bilinear sampler of one ``(h, w)`` image at normalised points ``(N, 2)``.

    ``lasagne``: a line-by-line port of Lasagne's ``_interpolate`` with ``border_mode='nearest'``
    (coordinates scaled by ``(n - 1) / 2``, the four neighbours' indices clipped to the image,
    the weights from the unclipped coordinates). ``torch``: ``align_corners=False`` scaling and
    neighbours outside the image read as 0."""
    h, w = img.shape
    x, y = pts[:, 0], pts[:, 1]
    if sampling == "lasagne":
        x, y = (x + 1) / 2 * (w - 1), (y + 1) / 2 * (h - 1)
    else:
        x, y = ((x + 1) * w - 1) / 2, ((y + 1) * h - 1) / 2
    x0f, y0f = np.floor(x), np.floor(y)
    x1f, y1f = x0f + 1, y0f + 1

    def read(xi, yi):
        xi, yi = xi.astype(np.int64), yi.astype(np.int64)
        if sampling == "lasagne":
            return img[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        return np.where(ok, img[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)], 0.0)

    return ((x1f - x) * (y1f - y) * read(x0f, y0f) + (x1f - x) * (y - y0f) * read(x0f, y1f)
            + (x - x0f) * (y1f - y) * read(x1f, y0f) + (x - x0f) * (y - y0f) * read(x1f, y1f))


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


# ------------------------------------------------------------ sampling convention ----
@pytest.mark.parametrize("sampling", list(SAMPLINGS))
def test_pixel_coords_are_the_documented_centres(sampling):
    for h, w in ((28, 28), (5, 7)):
        got = pixel_coords(h, w, sampling, dtype=torch.float64)
        assert (got - centres(h, w, sampling=sampling)).abs().max().item() < 1e-15
    lasagne = pixel_coords(28, 28, "lasagne", dtype=torch.float64)
    assert lasagne[0].tolist() == [-1.0, -1.0] and lasagne[-1].tolist() == [1.0, 1.0]


def test_corner_aligned_identity_warp_reproduces_the_image_exactly():
    """Under ``lasagne`` sampling the identity grid lands on the pixel centres themselves, so
    the identity affine and TPS warps return the image (float64: to rounding; a torch-sampling
    identity is exact too, but a *corner* pixel there is half outside the image)."""
    img = random_images(seed=1, dtype=torch.float64)
    theta = AffineWarp().identity(dtype=torch.float64).reshape(1, 2, 3).expand(len(img), 2, 3)
    assert (affine_warp(img, theta, "lasagne") - img).abs().max().item() < 1e-12
    pts = control_grid(3, dtype=torch.float64).expand(len(img), -1, -1)
    assert (tps_warp(img, pts, "lasagne") - img).abs().max().item() < 1e-12
    img32 = img.float()
    assert (affine_warp(img32, theta.float()) - img32).abs().max().item() < ATOL   # float32 rounding


@pytest.mark.parametrize("sampling", list(SAMPLINGS))
def test_grid_sample_matches_an_independent_bilinear_sampler(sampling):
    """Random points inside and far outside the image: ``lasagne`` clamps to the border (the
    port of Lasagne's interpolation), ``torch`` reads zeros outside."""
    h, w = 7, 9
    img = torch.rand(1, 1, h, w, generator=gen(50), dtype=torch.float64)
    pts = 3.0 * (torch.rand(400, 2, generator=gen(51), dtype=torch.float64) * 2 - 1)
    out = grid_sample(img, pts.reshape(1, 20, 20, 2), sampling).reshape(-1)
    ref = numpy_bilinear(img[0, 0].numpy(), pts.numpy(), sampling)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)
    outside = (pts.abs() > 1.2).any(-1)
    assert outside.sum() > 100
    if sampling == "lasagne":   # border padding: an outside point reads a border pixel's value
        clamped = grid_sample(img, pts.clamp(-1, 1).reshape(1, 20, 20, 2), sampling).reshape(-1)
        assert torch.allclose(out, clamped, atol=1e-12)
        assert (out[outside] > 0).all()
    else:
        far = (pts.abs() > 1.5).any(-1)
        assert (out[far] == 0).all()


@pytest.mark.parametrize("sampling", list(SAMPLINGS))
def test_affine_grid_is_one_product_equal_to_torch(sampling):
    align = sampling == "lasagne"
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-6)):
        theta = random_affine(5, seed=52, dtype=dtype)
        for h, w in ((28, 28), (6, 11)):
            ref = F.affine_grid(theta, [5, 1, h, w], align_corners=align)
            assert (affine_grid(theta, h, w, sampling) - ref).abs().max().item() < tol


def test_unknown_sampling_is_refused():
    with pytest.raises(ValueError, match="sampling"):
        make_warp("affine", 3, "nearest")
    with pytest.raises(ValueError, match="sampling"):
        pixel_coords(4, 4, "align")


# -------------------------------------------------------------------- identity ----
@pytest.mark.parametrize("sampling", list(SAMPLINGS))
def test_affine_identity_returns_input(sampling):
    img = random_images(seed=1)
    theta = AffineWarp().identity().reshape(1, 2, 3).expand(len(img), 2, 3)
    out = affine_warp(img, theta, sampling)
    assert out.dtype == torch.float32 and out.shape == img.shape
    assert (out - img).abs().max().item() < ATOL


@pytest.mark.parametrize("sampling", list(SAMPLINGS))
@pytest.mark.parametrize("s", [3, 4])
def test_tps_identity_returns_input(s, sampling):
    img = random_images(seed=2)
    points = control_grid(s).expand(len(img), -1, -1)
    out = tps_warp(img, points, sampling)
    assert out.dtype == torch.float32 and out.shape == img.shape
    assert (out - img).abs().max().item() < ATOL
    warp = TPSWarp(s, sampling)
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


@pytest.mark.parametrize("sampling", list(SAMPLINGS))
def test_tps_pixel_basis_matches_direct_evaluation(sampling):
    """The cached pixel basis (one solve, float64, reused) against a fresh per-call solve at
    independently computed pixel centres."""
    h, w = 28, 20
    c = control_grid(3, dtype=torch.float64)
    points = c + 0.2 * torch.randn(3, 9, 2, generator=gen(3), dtype=torch.float64)
    grid = tps_grid(points, h, w, sampling)
    assert grid.shape == (3, h, w, 2) and grid.dtype == torch.float64
    direct = tps_eval(points, centres(h, w, sampling=sampling)).reshape(3, h, w, 2)
    assert (grid - direct).abs().max().item() < 1e-10
    grid32 = tps_grid(points.float(), h, w, sampling)
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


def numpy_tps_system(src: np.ndarray, reg: float = 0.0) -> np.ndarray:
    """The textbook ``(K+3)``-square TPS matrix of :func:`numpy_tps`, element by element."""
    k = len(src)
    big = np.zeros((k + 3, k + 3))
    for i in range(k):
        for j in range(k):
            d2 = float(((src[i] - src[j]) ** 2).sum())
            big[i, j] = d2 * np.log(d2) if d2 > 0 else 0.0
        big[i, i] += reg
        big[i, k], big[k, i] = 1.0, 1.0
        big[i, k + 1], big[i, k + 2] = src[i]
        big[k + 1, i], big[k + 2, i] = src[i]
    return big


def test_tps_system_is_the_textbook_matrix():
    """The one TPS system of :mod:`tvae.warps` (used by the pixel basis, :func:`tps_eval` and
    :func:`tps_grid_between`) against the element-by-element matrix, batched and with a ridge."""
    c = control_grid(3, dtype=torch.float64)
    src = c + 0.2 * torch.randn(2, 9, 2, generator=gen(16), dtype=torch.float64)
    np.testing.assert_allclose(tps_system(c).numpy(), numpy_tps_system(c.numpy()), atol=1e-14)
    for i in range(2):
        np.testing.assert_allclose(tps_system(src, 1e-3)[i].numpy(),
                                   numpy_tps_system(src[i].numpy(), 1e-3), atol=1e-14)


@pytest.mark.parametrize("sampling", list(SAMPLINGS))
def test_tps_matches_a_textbook_implementation(sampling):
    h, w = 9, 7
    c = control_grid(3, dtype=torch.float64)
    pts = c + 0.25 * torch.randn(2, 9, 2, generator=gen(15), dtype=torch.float64)
    grid = tps_grid(pts, h, w, sampling).reshape(2, h * w, 2)
    between = tps_grid_between(pts, c.expand(2, -1, -1), h, w,
                               sampling=sampling).reshape(2, h * w, 2)
    at = centres(h, w, sampling=sampling).numpy()
    basis = tps_basis(3, h, w, sampling, dtype=torch.float64).numpy()
    eye = np.eye(9)
    np.testing.assert_allclose(basis, np.stack([numpy_tps(c.numpy(), np.stack([eye[k], eye[k]], 1), at)[:, 0]
                                                for k in range(9)], 1), atol=1e-10)
    for i in range(2):
        np.testing.assert_allclose(grid[i].numpy(), numpy_tps(c.numpy(), pts[i].numpy(), at), atol=1e-10)
        np.testing.assert_allclose(between[i].numpy(), numpy_tps(pts[i].numpy(), c.numpy(), at),
                                   atol=1e-10)


@pytest.mark.parametrize("sampling", list(SAMPLINGS))
def test_tps_of_affine_targets_is_that_affine_map(sampling):
    """A TPS reproduces affine maps exactly: with control points moved by an affine map, its
    sampling grid equals ``F.affine_grid`` of that map (an independent implementation that
    also fixes the (x, y) order and the pixel-centre convention)."""
    theta = random_affine(4, seed=4)
    c = control_grid(3, dtype=torch.float64)
    targets = c @ theta[:, :, :2].transpose(1, 2) + theta[:, :, 2].unsqueeze(1)
    grid = tps_grid(targets, 28, 28, sampling)
    ref = F.affine_grid(theta, [4, 1, 28, 28], align_corners=sampling == "lasagne")
    assert (grid - ref).abs().max().item() < 1e-9
    img = random_images(4, seed=5, dtype=torch.float64)
    assert (tps_warp(img, targets, sampling)
            - affine_warp(img, theta, sampling)).abs().max().item() < 1e-9


def test_tps_grid_rejects_non_square_point_count():
    with pytest.raises(ValueError, match="square"):
        tps_grid(torch.zeros(1, 8, 2), 28, 28)


@pytest.mark.parametrize("sampling", list(SAMPLINGS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tps_grid_between_approximately_inverts_tps(seed, sampling):
    """``tps_grid_between(p, grid)`` (the TPS p -> grid) undoes the TPS grid -> p for a mild
    random warp: the forward map evaluated at the inverse grid is close to the identity."""
    h = w = 28
    c = control_grid(3, dtype=torch.float64)
    p = c + 0.04 * torch.randn(2, 9, 2, generator=gen(10 + seed), dtype=torch.float64)
    inv = tps_grid_between(p, c.expand(2, -1, -1), h, w, sampling=sampling)   # (2, h, w, 2)
    forward_of_inverse = torch.stack([tps_eval(p[i:i + 1], inv[i].reshape(-1, 2))[0]
                                      for i in range(2)])                  # (2, h*w, 2)
    pix = centres(h, w, sampling=sampling)
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
    grid = tps_grid_between(src, dst, h, w, sampling="torch").reshape(2, h * w, 2)
    idx = torch.tensor([0, 3, 5, 6, 9, 10, 12, 15, 2])
    assert (grid[:, idx] - dst).abs().max().item() < 1e-9
    # and with src = dst the grid is the identity
    same = tps_grid_between(src, src, h, w, sampling="torch").reshape(2, h * w, 2)
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
def test_invert_affine_undoes_the_map():
    theta = random_affine(8, seed=9)
    inv = invert_affine(theta)
    # independent check with 3x3 homogeneous matrices
    bottom = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64).expand(8, 1, 3)
    full = torch.cat([theta, bottom], 1)
    assert (torch.cat([inv, bottom], 1) - torch.linalg.inv(full)).abs().max().item() < 1e-12
    # on points, both ways round
    pts = torch.randn(8, 5, 2, generator=gen(12), dtype=torch.float64)

    def apply(t, q):
        return q @ t[:, :, :2].transpose(1, 2) + t[:, :, 2].unsqueeze(1)

    assert (apply(inv, apply(theta, pts)) - pts).abs().max().item() < 1e-12
    assert (apply(theta, apply(inv, pts)) - pts).abs().max().item() < 1e-12


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


@pytest.mark.parametrize("sampling", list(SAMPLINGS))
@pytest.mark.parametrize("k", [1, 2, 3])
def test_quarter_rotations_equal_rot90(k, sampling):
    """``psi = k pi/2`` equals ``torch.rot90(img, k, dims=(-2, -1))`` (content turned
    counter-clockwise as displayed). On a square image with align_corners=False pixel centres
    map onto pixel centres, so only the border could differ by interpolation; we compare the
    interior tightly and the whole image loosely."""
    img = random_images(3, seed=20 + k)
    theta = affine_from_pose5(torch.tensor([[k * math.pi / 2, 0.0, 0.0, 0.0, 0.0]])).expand(3, 2, 3)
    out = affine_warp(img, theta, sampling)
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
        "affine_grid": affine_grid(theta, 28, 28),
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
