"""Tests of :mod:`tvae.evaluate`: the linear-SVM probe and its cross-validation, the PCA
baseline, the noise models, the gap summary and the code/reconstruction helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tvae import Config, build_model
from tvae.evaluate import (
    add_noise,
    choose_common_c,
    codes,
    cv_accuracy,
    linear_probe,
    paper_c,
    pca_features,
    reconstruct,
    reconstruction_error,
)


def blobs(n_per_class: int, classes: int, dim: int, sep: float, seed: int):
    """Gaussian blobs: class ``c`` centred at ``sep * e_c`` (unit noise), shuffled."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    centres = np.zeros((classes, dim))
    centres[np.arange(classes), np.arange(classes)] = sep
    x = centres[y] + rng.standard_normal((len(y), dim))
    perm = rng.permutation(len(y))
    return x[perm], y[perm]


# ------------------------------------------------------------------ linear probe ----
def test_linear_probe_on_separable_data_is_perfect():
    x, y = blobs(60, 10, 12, sep=10.0, seed=0)
    xt, yt = blobs(20, 10, 12, sep=10.0, seed=1)
    r = linear_probe(x, y, xt, yt, c=1.0)
    assert set(r) == {"cv_mean", "cv_std", "test", "C", "converged"}
    assert r["converged"] is True           # separable blobs: the solver stops well within max_iter
    assert r["cv_mean"] == pytest.approx(100.0) and r["cv_std"] == pytest.approx(0.0)
    assert r["test"] == pytest.approx(100.0) and r["C"] == 1.0


def test_linear_probe_on_random_labels_is_at_chance():
    rng = np.random.default_rng(2)
    x, xt = rng.standard_normal((1800, 8)), rng.standard_normal((2000, 8))
    y, yt = rng.integers(0, 10, 1800), rng.integers(0, 10, 2000)
    r = linear_probe(x, y, xt, yt, c=1.0)
    # chance is 10%; the binomial s.d. of a 2000-sample accuracy is 0.67 points
    assert abs(r["test"] - 10.0) < 4.0, r
    assert abs(r["cv_mean"] - 10.0) < 4.0, r


def test_cv_uses_nine_stratified_folds_and_the_probe_reports_them():
    x, y = blobs(45, 10, 12, sep=2.0, seed=3)                 # hard enough to make folds differ
    folds = cv_accuracy(x, y, c=1.0)
    assert folds.shape == (9,)
    assert ((folds >= 0) & (folds <= 100)).all()
    r = linear_probe(x, y, x[:50], y[:50], c=1.0)
    assert r["cv_mean"] == pytest.approx(folds.mean()) and r["cv_std"] == pytest.approx(folds.std())
    # the same as scikit-learn's own 9-fold stratified, unshuffled CV
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.svm import LinearSVC

    ref = cross_val_score(LinearSVC(C=1.0, max_iter=2000), x, y,
                          cv=StratifiedKFold(9, shuffle=False)) * 100
    np.testing.assert_allclose(folds, ref)
    assert cv_accuracy(x, y, c=1.0, folds=3).shape == (3,)


def test_choose_common_c_picks_the_best_mean_accuracy():
    x, y = blobs(30, 10, 12, sep=3.0, seed=4)
    noise = np.random.default_rng(5).standard_normal(x.shape)
    grid = (0.001, 1.0, 100.0)
    best, scores = choose_common_c([x, noise], y, grid=grid, folds=3)
    assert set(scores) == set(grid) and best == max(scores, key=scores.get)
    for c in grid:     # the mean over feature sets of the mean 3-fold accuracy
        expected = np.mean([cv_accuracy(f, y, c, folds=3).mean() for f in (x, noise)])
        assert scores[c] == pytest.approx(expected)


def test_paper_c():
    assert paper_c("affine-tvae", 8) == 0.01 and paper_c("vae", 20) == 10.0
    assert paper_c("tps-tvae", 20) == 1.0 and paper_c("pca", 8) == 1.0


# --------------------------------------------------------------------------- PCA ----
def test_pca_features_shapes_and_reconstruction_error_decreases(mnist300):
    xtr = mnist300.x_train.double().numpy()
    xte = mnist300.x_test[:200].double().numpy()
    centred = xtr - xtr.mean(0)
    errors = []
    for dim in (1, 2, 5, 10, 20, 50):
        ftr, fte = pca_features(xtr, xte, dim)
        assert ftr.shape == (300, dim) and fte.shape == (200, dim)
        # components are orthonormal, so the unexplained energy is |x - mean|^2 - |f|^2
        err = (centred ** 2).sum(1).mean() - (ftr ** 2).sum(1).mean()
        errors.append(err)
        # and it is (nearly) the optimum, the tail energy of an exact SVD; scikit-learn's 'auto'
        # solver may use a seeded randomized SVD, hence the tolerance
        sv = np.linalg.svd(centred, compute_uv=False)
        assert err == pytest.approx((sv[dim:] ** 2).sum() / len(xtr), rel=1e-3 if dim <= 20 else 1e-2)
        assert err >= (sv[dim:] ** 2).sum() / len(xtr) * (1 - 1e-9)
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[0] > 0


def test_pca_test_centring_own_mean_against_numpy(mnist300):
    """The original code's PCA test features: the test images centred on their own mean, then
    projected on the training images' principal axes (numpy's SVD here, independent of
    scikit-learn; each axis is defined up to its sign)."""
    xtr = mnist300.x_train.double().numpy()
    xte = mnist300.x_test[:200].double().numpy()
    _, _, vt = np.linalg.svd(xtr - xtr.mean(0), full_matrices=False)
    axes = vt[:8].T                                                          # (784, 8)
    ftr, own = pca_features(xtr, xte, 8, test_mean="own")
    _, clean = pca_features(xtr, xte, 8)                                     # the default: "train"
    signs = np.sign((ftr * ((xtr - xtr.mean(0)) @ axes)).sum(0))             # align each axis
    np.testing.assert_allclose(own, (xte - xte.mean(0)) @ axes * signs, atol=1e-8)
    np.testing.assert_allclose(clean, (xte - xtr.mean(0)) @ axes * signs, atol=1e-8)
    # the two centrings differ by the projected difference of the two means, the same for every digit
    shift = (xtr.mean(0) - xte.mean(0)) @ axes * signs
    assert np.abs(shift).max() > 1e-3
    np.testing.assert_allclose(own - clean, np.broadcast_to(shift, own.shape), atol=1e-8)
    with pytest.raises(ValueError, match="test centring"):
        pca_features(xtr, xte, 8, test_mean="test")


# ------------------------------------------------------------------------- noise ----
@pytest.mark.parametrize("kind,level", [("gaussian", 0.3), ("salt-pepper", 0.2), ("occlusion", 0.25)])
def test_add_noise_is_valid_and_seeded(kind, level):
    x = torch.rand(50, 784, generator=torch.Generator().manual_seed(0))
    a, b = add_noise(x, kind, level, seed=1), add_noise(x, kind, level, seed=1)
    c = add_noise(x, kind, level, seed=2)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min().item() >= 0.0 and a.max().item() <= 1.0
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, x)
    assert torch.equal(x, torch.rand(50, 784, generator=torch.Generator().manual_seed(0)))  # input untouched


def test_salt_pepper_changes_the_expected_fraction_of_pixels():
    x = torch.full((200, 784), 0.5)
    for level in (0.05, 0.3):
        y = add_noise(x, "salt-pepper", level, seed=3)
        changed = (y != x).float().mean().item()
        se = math.sqrt(level * (1 - level) / x.numel())
        assert abs(changed - level) < 5 * se
        hit = y[y != x]
        assert set(hit.unique().tolist()) == {0.0, 1.0}
        assert abs((hit == 1).float().mean().item() - 0.5) < 0.05        # salt and pepper, evenly


def test_gaussian_noise_has_the_requested_scale():
    x = torch.full((200, 784), 0.5)
    y = add_noise(x, "gaussian", 0.1, seed=4)                       # clipping at 5 s.d.: negligible
    d = (y - x).flatten()
    assert abs(d.mean().item()) < 1e-3 and d.std().item() == pytest.approx(0.1, rel=0.02)


def test_occlusion_zeroes_one_square_per_image():
    x = torch.full((100, 784), 0.5)
    for level in (0.25, 0.5):
        side = round(level * 28)
        y = add_noise(x, "occlusion", level, seed=5).reshape(100, 28, 28)
        zero = y == 0
        assert (zero.sum((1, 2)) == side * side).all()
        rows, cols = zero.any(2), zero.any(1)
        assert (rows.sum(1) == side).all() and (cols.sum(1) == side).all()   # a square
        assert (y[~zero] == 0.5).all()
        # squares land in different places
        assert len({tuple(r.nonzero()[0].tolist()) for r in rows}) > 5


def test_add_noise_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown noise kind"):
        add_noise(torch.zeros(1, 784), "speckle", 0.1)


# ------------------------------------------------------------ codes, reconstruction ----
@pytest.mark.parametrize("model,udim", [("vae", 0), ("affine-tvae", 6), ("tps-tvae", 18), ("tps-dtvae", 18)])
def test_codes_shape_with_and_without_pose(model, udim, mnist300):
    torch.manual_seed(0)
    m = build_model(Config(model=model, zdim=5, hidden=(32, 32), loc_hidden=(16,)))
    with torch.no_grad():
        for p in m.parameters():                        # move the pose heads off their zero init
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    x = mnist300.x_train[:37]
    c = codes(m, x)
    cp = codes(m, x, with_pose=True)
    assert c.shape == (37, 5) and c.dtype == np.float64
    assert cp.shape == (37, 5 + udim)
    with torch.no_grad():
        post = m.encode(x)
    np.testing.assert_allclose(c, post.mu_z.double().numpy(), atol=1e-6)
    np.testing.assert_allclose(cp[:, 5:], post.u.double().numpy(), atol=1e-6)
    np.testing.assert_allclose(codes(m, x, with_pose=True, batch_size=8), cp, atol=1e-6)


def test_reconstruction_error_is_the_posterior_mean_bce(mnist300):
    torch.manual_seed(0)
    m = build_model(Config(model="affine-tvae", zdim=5, hidden=(32, 32)))
    x = mnist300.x_train[:20]
    r = reconstruct(m, x)
    assert set(r) == {"x_rec", "y_rec", "u"} and r["x_rec"].shape == (20, 784)
    with torch.no_grad():
        post = m.encode(x)
        rec = m.decode(post.mu_z, post.u)
    assert torch.allclose(r["x_rec"], rec)
    err = reconstruction_error(m, x, batch_size=7)
    ref_bce = F.binary_cross_entropy(rec.clamp(1e-6, 1 - 1e-6), x, reduction="none").sum(1).mean().item()
    assert err["bce"] == pytest.approx(ref_bce, rel=1e-5)
    assert err["mse"] == pytest.approx((rec - x).pow(2).sum(1).mean().item(), rel=1e-5)
    noisy = add_noise(x, "salt-pepper", 0.2, seed=0)
    den = reconstruction_error(m, noisy, target=x)
    with torch.no_grad():
        rec_noisy = reconstruct(m, noisy)["x_rec"]
    assert den["mse"] == pytest.approx((rec_noisy - x).pow(2).sum(1).mean().item(), rel=1e-5)
