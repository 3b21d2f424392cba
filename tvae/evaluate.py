"""Evaluation: codes, the linear-SVM probe of Table 1, PCA, reconstruction and denoising errors,
importance-sampled log-likelihoods.

All errors are per-sample nats (the Bernoulli cross-entropy summed over the 784 pixels) unless
a name says otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.svm import LinearSVC
from torch import Tensor

from .io import write_text
from .models import VAE, log_bernoulli
from .train import EVAL_BATCH, evaluate_terms

PAPER_C = {("affine-tvae", 8): 0.01, ("affine-tvae", 20): 0.01, ("vae", 20): 10.0}
"""The paper's LinearSVC C per row of Table 1 (1 for every row not listed)."""

C_GRID = (0.01, 0.1, 1.0, 10.0)
"""Candidate C values of the common-C protocol."""


def paper_c(model: str, dim: int) -> float:
    """The C the paper used for ``model`` (``'raw'``, ``'pca'`` or a model kind) at ``dim``."""
    return PAPER_C.get((model, dim), 1.0)


# ----------------------------------------------------------------------------- codes ----
@torch.no_grad()
def codes(model: VAE, x: Tensor, *, with_pose: bool = False, batch_size: int = EVAL_BATCH
          ) -> np.ndarray:
    """Posterior means of ``z`` (``(N, dim z)``, float64 numpy), with the posterior-mode warp
    parameters ``u`` appended (``(N, dim z + dim u)``) when ``with_pose``."""
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        post = model.encode(x[i:i + batch_size])
        out.append(torch.cat([post.mu_z, post.u], 1) if with_pose else post.mu_z)
    return torch.cat(out).double().cpu().numpy()


@torch.no_grad()
def reconstruct(model: VAE, x: Tensor, *, batch_size: int = EVAL_BATCH) -> dict[str, Tensor]:
    """Deterministic reconstructions from the posterior means: ``x'`` and the upright ``y'``
    (``(N, 784)`` each), the pose ``u`` and, for the DTVAE, the upright input ``y``."""
    model.eval()
    parts: dict[str, list[Tensor]] = {"x_rec": [], "y_rec": [], "u": [], "y": []}
    for i in range(0, len(x), batch_size):
        post = model.encode(x[i:i + batch_size])
        y_rec = model.decode_upright(post.mu_z)
        parts["y_rec"].append(y_rec)
        parts["x_rec"].append(model.decode(post.mu_z, post.u) if model.has_pose else y_rec)
        parts["u"].append(post.u)
        if post.y is not None:
            parts["y"].append(post.y)
    return {k: torch.cat(v) for k, v in parts.items() if v}


def reconstruction_error(model: VAE, x: Tensor, *, target: Tensor | None = None,
                         batch_size: int = EVAL_BATCH) -> dict[str, float]:
    """Mean per-sample errors of the posterior-mean reconstruction of ``x`` against ``target``
    (default ``x``): ``bce`` (nats, Bernoulli on grey targets) and ``mse`` (sum of squared
    pixel errors). Use ``x`` noisy and ``target`` clean for denoising."""
    target = x if target is None else target
    bce = mse = 0.0
    for i in range(0, len(x), batch_size):
        rec = reconstruct(model, x[i:i + batch_size])["x_rec"]
        t = target[i:i + batch_size]
        bce += -log_bernoulli(t, rec).double().sum().item()
        mse += (rec - t).pow(2).sum().double().item()
    return {"bce": bce / len(x), "mse": mse / len(x)}


def elbo_terms(model: VAE, x: Tensor, seed: int = 0) -> dict[str, float]:
    """Mean per-sample ELBO terms on ``x`` (one posterior draw): bce, kl_z, kl_u, elbo."""
    return evaluate_terms(model, x, seed=seed)


def log_likelihood(model: VAE, x: Tensor, k: int = 100, seed: int = 0,
                   batch_size: int = 500) -> np.ndarray:
    """Importance-sampled ``log p(x)`` per sample (nats, ``(N,)`` numpy) with ``k`` draws."""
    gen = torch.Generator(device=x.device).manual_seed(seed)
    model.eval()
    out = [model.log_likelihood(x[i:i + batch_size], k, gen).double().cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()


# ------------------------------------------------------------------------ denoising ----
def add_noise(x: Tensor, kind: str, level: float, seed: int = 0) -> Tensor:
    """A corrupted copy of ``x`` ``(N, 784)`` in ``[0, 1]``.

    ``gaussian``: additive N(0, level^2), clipped; ``salt-pepper``: a fraction ``level`` of
    pixels set to 0 or 1; ``occlusion``: a random square of side ``level`` x 28 pixels set to 0.
    """
    g = torch.Generator(device=x.device).manual_seed(seed)
    if kind == "gaussian":
        return (x + level * torch.randn(x.shape, generator=g, device=x.device)).clamp(0, 1)
    if kind == "salt-pepper":
        hit = torch.rand(x.shape, generator=g, device=x.device) < level
        salt = (torch.rand(x.shape, generator=g, device=x.device) < 0.5).to(x.dtype)
        return torch.where(hit, salt, x)
    if kind == "occlusion":
        side = int(round(level * 28))
        if side == 0:
            return x.clone()
        n = len(x)
        r0 = torch.randint(0, 28 - side + 1, (n, 1, 1), generator=g, device=x.device)
        c0 = torch.randint(0, 28 - side + 1, (n, 1, 1), generator=g, device=x.device)
        rr = torch.arange(28, device=x.device).view(1, 28, 1)
        cc = torch.arange(28, device=x.device).view(1, 1, 28)
        mask = (rr >= r0) & (rr < r0 + side) & (cc >= c0) & (cc < c0 + side)
        return x.masked_fill(mask.reshape(n, -1), 0.0)
    raise ValueError(f"unknown noise kind {kind!r}; use gaussian, salt-pepper or occlusion")


# ---------------------------------------------------------------------- linear probe ----
PCA_TEST_MEANS = ("train", "own")
"""How :func:`pca_features` centres the test images before projecting them: ``train``, on the
training images' mean (scikit-learn's ``PCA.transform``: the clean choice, no statistic of the
test set used); ``own``, on the test images' own mean, as the original code did for Table 1
(PAPER.md, "What the original code did"). The training images are always centred on their mean."""


def pca_features(train_images: np.ndarray, test_images: np.ndarray, dim: int, seed: int = 0,
                 test_mean: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """PCA with ``dim`` components fitted on the training images ``(n, 784)``; both splits
    projected on the components: ``((n, dim), (m, dim))``. The test images ``(m, 784)`` are
    centred as ``test_mean`` says (one of :data:`PCA_TEST_MEANS`)."""
    if test_mean not in PCA_TEST_MEANS:
        raise ValueError(f"unknown PCA test centring {test_mean!r}; use one of {PCA_TEST_MEANS}")
    pca = PCA(n_components=dim, svd_solver="full", random_state=seed).fit(train_images)
    if test_mean == "own":
        return pca.transform(train_images), (test_images - test_images.mean(0)) @ pca.components_.T
    return pca.transform(train_images), pca.transform(test_images)


SVM_DUAL: bool | str = "auto"
"""LinearSVC's solver. The paper's scikit-learn (2017) defaulted to ``dual=True``,
``max_iter=1000``; today's ``'auto'`` picks the primal solver when there are more codes than
features (every model row). Same optimum when both converge; say which one the book used."""


SVM_MAX_ITER = 2000
"""LinearSVC's iteration limit (the paper's scikit-learn default was 1000); whether each fit
converged within it is reported."""


def make_svm(c: float, max_iter: int = SVM_MAX_ITER):
    """The probe's classifier: ``LinearSVC(C=c)`` with the book's solver (:data:`SVM_DUAL`),
    iteration limit and ``random_state=0``."""
    return LinearSVC(C=c, max_iter=max_iter, dual=SVM_DUAL, random_state=0)


def cv_accuracy(x: np.ndarray, y: np.ndarray, c: float, folds: int = 9, max_iter: int = SVM_MAX_ITER
                ) -> np.ndarray:
    """Per-fold accuracies (%) of ``LinearSVC(C=c)`` under scikit-learn's ``cross_val_score``
    with ``folds`` folds (stratified, not shuffled, as in the paper)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cross_val_score(make_svm(c, max_iter), x, y, cv=folds) * 100


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                 test_y: np.ndarray, c: float, folds: int = 9, max_iter: int = SVM_MAX_ITER
                 ) -> dict[str, float]:
    """Table 1's probe: a scikit-learn ``LinearSVC(C=c)`` on unscaled features.

    ``cv_mean``, ``cv_std``: accuracy (%) over ``folds``-fold cross-validation on the training
    features (:func:`cv_accuracy`); ``test``: accuracy (%) on the test features of a fit on all
    the training features.
    """
    cv = cv_accuracy(train_x, train_y, c, folds, max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        svm = make_svm(c, max_iter).fit(train_x, train_y)
        test = svm.score(test_x, test_y) * 100
    return {"cv_mean": float(cv.mean()), "cv_std": float(cv.std()), "test": float(test), "C": c,
            "converged": bool(int(svm.n_iter_) < max_iter)}


# ------------------------------------------------------------------ probe result cache ----
PROBE_CACHE_VERSION = 2
"""Version of what a cached probe result means (bump it if the probe's protocol changes; 2: the
key no longer hashes numpy's global random state, see :func:`_digest`)."""


def probe_cache_dir() -> Path:
    """Where probe results are cached: ``<model cache>/probes`` (``$TVAE_CACHE``, else ``./cache``)."""
    from .cache import cache_dir

    return cache_dir() / "probes"


def _digest(arrays: list[np.ndarray], params: dict) -> str:
    """sha256 of the arrays' dtypes, shapes and bytes, the parameters, the protocol's
    constants and scikit-learn's version. Nothing of the process: every probe is deterministic
    (``LinearSVC(random_state=0)``, unshuffled folds, seeded subsamples), so a result written by
    one process (a chapter, a worker of :func:`run_probes`) is found by the next. (Version 1
    of the key also hashed numpy's global random state, which numpy seeds afresh in every
    process, so no entry was ever found by another process.)"""
    import sklearn

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.view(np.uint8).reshape(-1))
    h.update(json.dumps({**params, "sklearn": sklearn.__version__, "dual": SVM_DUAL,
                         "version": PROBE_CACHE_VERSION}, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]


def cached_probe(what: str, arrays: list[np.ndarray], params: dict, compute: Callable[[], dict]
                 ) -> dict:
    """``compute()`` (a dict of JSON numbers and booleans), cached on disk under
    :func:`probe_cache_dir` by the content of ``arrays`` (the features and labels: the data's
    identity at the level that matters), ``params`` (C, folds, iteration limit), the solver
    choice and scikit-learn's version (:func:`_digest`). ``$TVAE_PROBE_CACHE=0``
    turns the cache off. Entries are written atomically (temporary file, rename)."""
    if os.environ.get("TVAE_PROBE_CACHE", "1") == "0":
        return compute()
    path = probe_cache_dir() / f"{what}-{_digest(arrays, {'what': what, **params})}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)            # a foreign or damaged entry: recompute
    result = compute()
    write_text(path, json.dumps(result))
    return result


def cached_linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                        test_y: np.ndarray, c: float, folds: int = 9, max_iter: int = SVM_MAX_ITER
                        ) -> dict[str, float]:
    """:func:`linear_probe` through :func:`cached_probe`: features that do not depend on a model
    (raw pixels, PCA) are probed once per data, protocol, C and scikit-learn version, not once
    per book build."""
    return cached_probe("probe", [train_x, train_y, test_x, test_y],
                        {"c": float(c), "folds": folds, "max_iter": max_iter},
                        lambda: linear_probe(train_x, train_y, test_x, test_y, c, folds, max_iter))


def cached_test_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                         test_y: np.ndarray, c: float, max_iter: int = SVM_MAX_ITER) -> float:
    """Test accuracy (%) of one ``LinearSVC(C=c)`` fit on all the training features (no
    cross-validation: Table 1's z+u column), through :func:`cached_probe`."""
    def fit() -> dict:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return {"test": float(make_svm(c, max_iter).fit(train_x, train_y).score(test_x, test_y) * 100)}

    return cached_probe("fit", [train_x, train_y, test_x, test_y],
                        {"c": float(c), "max_iter": max_iter}, fit)["test"]


def probe(arrays: tuple, arrays_zu: tuple | None, c: float) -> dict:
    """One probe: :func:`tvae.evaluate.linear_probe`'s numbers on ``arrays`` (train features,
    train labels, test features, test labels), ``test_zu`` (the same on z and u together, pose
    models) and ``seconds``. Runs here or in a worker process (:func:`run_probes`); its results
    go through the probe cache either way."""
    t0 = time.perf_counter()
    res = cached_linear_probe(*arrays, c)
    if arrays_zu is not None:
        res["test_zu"] = cached_test_accuracy(*arrays_zu, c)
    res["seconds"] = time.perf_counter() - t0
    return res


def run_probes(tasks: list[tuple], jobs: int = 1) -> Iterator[tuple[int, dict]]:
    """``(index, result)`` of :func:`probe` for every task ``(arrays, arrays_zu, c)``, in ``jobs``
    worker processes (joblib) when ``jobs > 1``, the largest problems (training codes x
    features) first so the workers finish together; results are yielded as they come, in that
    order. The results do not depend on ``jobs``: every probe is deterministic (tested)."""
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i][0][0].size)
    if jobs <= 1 or len(tasks) <= 1:
        for i in order:
            yield i, probe(*tasks[i])
        return
    from joblib import Parallel, delayed

    run = Parallel(n_jobs=min(jobs, len(tasks)), return_as="generator")
    yield from zip(order, run(delayed(probe)(*tasks[i]) for i in order), strict=True)


def choose_common_c(feature_sets: list[np.ndarray], y: np.ndarray, grid=C_GRID,
                    folds: int = 3, max_samples: int = 10000, seed: int = 0) -> tuple[float, dict]:
    """One C for every row: the C of ``grid`` with the best mean CV accuracy over all feature
    sets (each on a seeded stratified subsample of at most ``max_samples`` training codes).
    Returns the C and the mean accuracy (%) per candidate."""
    n = len(y)
    idx = np.arange(n)
    if n > max_samples:
        idx, _ = train_test_split(idx, train_size=max_samples, stratify=y, random_state=seed)
    scores = {}
    for c in grid:
        accs = [cached_probe("cv", [f[idx], y[idx]], {"c": float(c), "folds": folds},
                             lambda f=f, c=c: {"mean": float(cv_accuracy(f[idx], y[idx], c, folds)
                                                             .mean())})["mean"]
                for f in feature_sets]
        scores[c] = float(np.mean(accs))
    best = max(scores, key=scores.get)
    return best, scores


# ------------------------------------------------------------ descriptive statistics ----
def pixel_entropy(x: Tensor) -> float:
    """Mean binary entropy of the pixels of images ``x`` ``(N, 784)`` in ``[0, 1]``, nats per
    pixel (clipped to ``[1e-6, 1 - 1e-6]``): near ``log 2`` for grey blur, near 0 for crisp ink."""
    p = x.clamp(1e-6, 1 - 1e-6)
    return float((-(p * p.log() + (1 - p) * (1 - p).log())).mean())


def wrap_degrees(deg: Tensor) -> Tensor:
    """Angles in degrees mapped to ``(-180, 180]``."""
    return -((-deg + 180) % 360 - 180)


def circular_correlation(a_deg: Tensor, b_deg: Tensor) -> float:
    """Jammalamadaka-SenGupta circular correlation of two samples of angles in degrees
    (``(N,)`` each): 1 when ``b = a + const``, -1 when ``b = -a + const``, 0 for independence."""
    a, b = torch.deg2rad(a_deg.double()), torch.deg2rad(b_deg.double())
    ma = torch.atan2(a.sin().mean(), a.cos().mean())
    mb = torch.atan2(b.sin().mean(), b.cos().mean())
    sa, sb = (a - ma).sin(), (b - mb).sin()
    return float((sa * sb).sum() / torch.sqrt((sa ** 2).sum() * (sb ** 2).sum()))


def affine_pose_summary(u: Tensor) -> dict[str, float]:
    """Spreads of interpretable components of affine poses ``u`` ``(N, 6)`` (row-major 2x3):
    rotation angle of the closest rotation-and-scale ``atan2(a21 - a12, a11 + a22)`` (std,
    degrees), shear ``(a12 + a21) / 2`` and anisotropy ``(a11 - a22) / 2`` (std), ``log|det A|``
    (std), the percentage of reflections (``det A < 0``) and the mean translation norm."""
    a11, a12, tx, a21, a22, ty = u.detach().double().T
    det = a11 * a22 - a12 * a21
    theta = torch.rad2deg(torch.atan2(a21 - a12, a11 + a22))
    return {"rotation std (deg)": float(theta.std()), "shear std": float(((a12 + a21) / 2).std()),
            "anisotropy std": float(((a11 - a22) / 2).std()),
            "log area std": float(det.abs().log().std()),
            "reflections (%)": float((det < 0).double().mean() * 100),
            "mean |t|": float(torch.stack([tx, ty], 1).norm(dim=1).mean())}
