"""Sample quality as numbers: how close a generative model's samples are to MNIST digits.

Every number compares a *sample set* (10,000 generated images in the paper profile) with the
*test digits*, through a classifier trained by the package (:mod:`tvae.classifier`), or with
the model's *training digits* in pixel space:

- ``frechet``: the Fréchet distance between Gaussian fits of the classifier's penultimate
  features of the samples and of the test digits, ``|mu1 - mu2|^2 + tr(S1 + S2 -
  2 (S1^1/2 S2 S1^1/2)^1/2)`` (:func:`frechet_distance`). It is the construction of the FID
  (Heusel et al. 2017) on *this classifier's* 128 features, not Inception's: its numbers are
  comparable only with each other, never with published FIDs.
- ``confidence``: the classifier's mean confidence, the mean over samples of the largest class
  probability (a recognisable digit gets a confident label).
- ``label_kl``: the KL divergence (nats) of the histogram of predicted labels from the uniform
  distribution over the 10 digits (:func:`label_kl`): 0 when every digit is generated equally
  often, ``log 10 = 2.303`` when only one is (mode coverage; MNIST's own classes are close to,
  not exactly, uniform).
- ``precision`` and ``recall``: the improved precision and recall of Kynkäänniemi et al. (2019)
  in the feature space (:func:`precision_recall`): each set's *manifold* is the union of balls
  around its points, of radius the distance to the point's k-th nearest neighbour in its own
  set (k = 3); precision is the fraction of samples inside the test digits' manifold (are the
  samples realistic?), recall the fraction of test digits inside the samples' manifold (do the
  samples cover the variety of the data?).
- ``nn_train_l2``: the mean Euclidean distance in pixel space (784 grey levels in [0, 1]) from
  each sample to its nearest training digit (:func:`nearest_distances`), as the original code
  measured generated digits: a model that copies its training digits has a small distance, a
  blurry one a large distance.

Reference rows give every number a scale (:func:`reference_rows`): real training digits against
the test digits (the floor: what a perfect model would score with as many samples), the test
digits blurred by a Gaussian of :data:`BLUR_SIGMA` pixels (a blurry but well-shaped baseline),
and the 10 per-class pixel means of the training digits, each repeated (a baseline that is
confident and covers every label but has no variety: its recall is near 0).

Sampling (:func:`sample_images`) goes through ``model.sample(n, generator, pose=...)`` with a
CPU generator seeded per row: ``pose='mean'`` is the paper's upright generation (``u`` at the
training-set mean pose; a plain VAE has no pose and samples its decoder), ``pose='prior'``
draws the pose from a Gaussian pose prior (chapter 09).

Cost on one CPU core (one torch thread), 10,000 samples against 60,000 training and 10,000 test
digits: 26 to 32 s of CPU time per row, sampling included (measured on the book's 2-core
machine; most of it is the nearest-training-digit search, a 10,000 x 60,000 float32 matrix
product over the 717 pixels that are ever inked). The test digits' features, their k-NN radii
and the reference rows are computed once per (classifier, data, n) and cached on disk
(:func:`get_reference`; 86 s of CPU time).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from .book import store
from .classifier import Classifier, ClassifierConfig, embed
from .errors import CheckpointError, ConfigError
from .io import write_csv

QUALITY_VERSION = 1
"""Version of the reference computations (features, radii, reference rows). Part of the
reference cache's entry names: bump it when a change alters their numbers."""

K_NEIGHBOURS = 3
"""k of the k-nearest-neighbour manifolds (Kynkäänniemi et al. 2019 recommend k = 3)."""

BLUR_SIGMA = 1.0
"""Standard deviation in pixels of the Gaussian blur of the blurred-test-digits baseline:
enough to soften every stroke visibly while the digit keeps its shape (the classifier still
recognises it: a blurry but well-formed baseline)."""

NN_CANDIDATES = 32
"""Nearest-training-digit search: candidates per sample kept from the float32 screening and
re-ranked with exact float64 distances (see :func:`nearest_distances`). Blurry samples have
many training digits at nearly the same distance: with 32 candidates the float32 screening
certifies almost every row, and the rest are screened again in float64."""

NN_CHUNK = 256
"""Samples per block of the nearest-training-digit search (a 256 x 60,000 float32 block is
61 MB)."""

RADIUS_SPARE = 8
"""k-NN radii: candidates kept beyond the k + 1 nearest of the float32 screening before the
exact recomputation (more spare, fewer rows screened again in float64 when distances nearly
tie)."""

REF_BLOCK = 8192
"""Reference rows per block of the float64 re-screening (:func:`_float64_nearest`)."""

FEATURE_CHUNK = 1024
"""Rows per block of the feature-space distance computations (1024 x 10,000 float64: 82 MB)."""

MODES = ("mean", "prior", "identity")
"""Sampling modes: the pose of :meth:`tvae.models.VAE.sample`."""

COLUMNS = ("label", "kind", "model", "dim z", "prior", "pose", "model seed", "sample seed",
           "n", "frechet", "confidence", "label_kl", "precision", "recall", "nn_train_l2",
           "seconds")
"""Columns of the table (:func:`quality_table`), in order. ``kind`` is ``model`` or
``reference``; ``seconds`` is the time of sampling plus every metric of the row."""


# ----------------------------------------------------------------- settings ----
@dataclass(frozen=True)
class QualitySettings:
    """How a profile measures sample quality: samples per row, the classifier, k."""

    n: int
    """Samples per row and test digits compared (the first ``n``)."""
    classifier: ClassifierConfig
    k: int = K_NEIGHBOURS


def settings(P) -> QualitySettings:
    """The :class:`QualitySettings` of a profile: the paper profile uses 10,000 samples against
    the 10,000 test digits and the classifier trained on all 60,000 training digits; the quick
    profile ``P.test_size`` samples (2,000) and the same classifier (trained once, a few
    minutes on one core); the smoke profile 500 samples and a classifier of 60 steps on its 600
    training digits (seconds, for the tests)."""
    if P.name == "smoke":
        return QualitySettings(min(500, P.test_size or 500),
                               ClassifierConfig(epochs=3, batch_size=30, lr=1e-2, lr_decay=0.7,
                                                train_size=P.train_size, seed=0))
    return QualitySettings(P.test_size or 10_000, ClassifierConfig())


# ------------------------------------------------------------ pure metrics ----
def gaussian_fit(f: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(d,)`` and unbiased covariance ``(d, d)`` of the rows of ``f``, float64."""
    a = np.asarray(f.cpu() if isinstance(f, Tensor) else f, dtype=np.float64)
    if a.ndim != 2 or len(a) < 2:
        raise ConfigError(f"a Gaussian fit needs at least 2 rows of features, got shape {a.shape}")
    return a.mean(0), np.cov(a, rowvar=False)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Fréchet (2-Wasserstein squared) distance between ``N(mu1, cov1)`` and ``N(mu2, cov2)``:
    ``|mu1 - mu2|^2 + tr(cov1) + tr(cov2) - 2 tr((cov1^1/2 cov2 cov1^1/2)^1/2)``.

    Computed in float64 through symmetric eigendecompositions (``cov1^1/2`` from ``cov1``'s,
    then the eigenvalues of the symmetric PSD ``cov1^1/2 cov2 cov1^1/2``, clipped at 0), which
    is exact up to rounding for singular covariances too (no ``sqrtm`` of a non-symmetric
    product)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    c1, c2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    w, v = np.linalg.eigh((c1 + c1.T) / 2)
    s1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = s1 @ c2 @ s1
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * cross)


def _as32(f: Tensor | np.ndarray) -> Tensor:
    return (f if isinstance(f, Tensor) else torch.from_numpy(np.asarray(f))).detach().cpu().float()


def _margin(d: int, na: Tensor, nb_max: float) -> Tensor:
    """A bound, per row, on the float32 rounding error of ``|a|^2 + |b|^2 - 2 a.b`` over ``d``
    dimensions, for rows of norm ``na`` (float64) against rows of norm at most ``nb_max``:
    Higham's ``gamma_d (|a| + |b|)^2`` for the dot product and the two squared norms, three more
    roundings of that size for the sums, all doubled to spare."""
    u = 2.0 ** -24
    gamma = d * u / (1 - d * u)
    return 2 * (gamma + 3 * u) * (na + nb_max) ** 2


def _screen(a: Tensor, b: Tensor, na2: Tensor, nb2: Tensor) -> Tensor:
    """Squared distances ``(len(a), len(b))`` by the norm trick in float32 (screening only)."""
    return torch.addmm(na2[:, None] + nb2[None, :], a, b.T, alpha=-2)


def _exact_sq(a: Tensor, b: Tensor) -> Tensor:
    """Squared distances of paired rows, ``sum((a - b)^2)`` in float64 (duplicates at exactly 0)."""
    d = a.double() - b.double()
    return (d * d).sum(-1)


def _float64_nearest(q: Tensor, ref: Tensor, m: int, exclude: Tensor | None = None,
                     cols: Tensor | None = None, spare: int = RADIUS_SPARE) -> Tensor:
    """The ``m`` smallest squared distances from each row of ``q`` to the rows of ``ref``,
    sorted, float64 ``(len(q), m)``: screened by the norm trick in float64 (block by block of
    :data:`REF_BLOCK` reference rows, over the columns ``cols``, where ``ref`` is non-zero),
    ``m + spare`` candidates recomputed as sums of squared differences. Float64 rounding
    (~1e-13 of the squared norms) can only swap candidates whose distances agree to that
    precision. ``exclude``: one index of ``ref`` per row to leave out (``-1``: none)."""
    q64 = q.double()
    qc = q64 if cols is None else q64[:, cols]
    nq = (q64 * q64).sum(1)
    c = min(m + spare, len(ref))
    vals, idxs = [], []
    for j in range(0, len(ref), REF_BLOCK):
        rb = ref[j:j + REF_BLOCK].double()
        rc = rb if cols is None else rb[:, cols]
        d2 = nq[:, None] + (rb * rb).sum(1)[None, :] - 2 * qc @ rc.T
        if exclude is not None:
            rows = torch.nonzero((exclude >= j) & (exclude < j + len(rb))).squeeze(1)
            d2[rows, exclude[rows] - j] = float("inf")
        v, i = d2.topk(min(c, len(rb)), dim=1, largest=False)
        vals.append(v)
        idxs.append(i + j)
    top = torch.cat(vals, 1).topk(c, dim=1, largest=False).indices
    cand = torch.cat(idxs, 1).gather(1, top)
    exact = _exact_sq(q[:, None, :], ref[cand])
    if exclude is not None:
        exact[cand == exclude[:, None]] = float("inf")
    return exact.sort(1).values[:, :m]


def knn_radii(f: Tensor | np.ndarray, k: int = K_NEIGHBOURS, chunk: int = FEATURE_CHUNK) -> Tensor:
    """Distance of every row of ``f`` ``(N, d)`` (taken as float32, as features are) to its
    ``k``-th nearest *other* row (float64, ``(N,)``): the radius of its ball in the k-NN
    manifold. Duplicates count as neighbours at distance 0. Needs ``N > k``.

    The ``k + 1 +`` :data:`RADIUS_SPARE` nearest are screened by the norm trick in float32, and
    their distances recomputed in float64 as sums of squared differences; a row for which a
    screened-out point could still be nearer (within the float32 error bound) is screened again
    in float64 (:func:`_float64_nearest`). The result is exact to float64 rounding."""
    a = _as32(f)
    if len(a) <= k:
        raise ConfigError(f"k-NN radii need more than k = {k} points, got {len(a)}")
    n64 = (a.double() ** 2).sum(1)
    n32, norms = n64.float(), n64.sqrt()
    c = min(len(a), k + 1 + RADIUS_SPARE)
    out = torch.empty(len(a), dtype=torch.float64)
    for i in range(0, len(a), chunk):
        ai = a[i:i + chunk]
        d2 = _screen(ai, a, n32[i:i + chunk], n32)
        rows = torch.arange(len(ai))
        d2[rows, rows + i] = -1.0       # the point itself, always first
        vals, idx = d2.topk(min(c + 1, len(a)), dim=1, largest=False)
        # the (k+1)-th smallest including the point itself is the k-th nearest other point
        best = _exact_sq(ai[:, None, :], a[idx[:, :c]]).sort(1).values[:, k]
        if c < len(a):
            # a screened-out point is at least this far (a squared distance is never negative,
            # so ties at 0, duplicates, are always certified)
            floor = (vals[:, c].double()
                     - _margin(a.shape[1], norms[i:i + chunk], float(norms.max()))).clamp_min(0)
            redo = torch.nonzero(best > floor).squeeze(1)
            if len(redo):
                best[redo] = _float64_nearest(ai[redo], a, k + 1)[:, k]
        out[i:i + chunk] = best
    return out.sqrt()


def precision_recall(real: Tensor | np.ndarray, fake: Tensor | np.ndarray, k: int = K_NEIGHBOURS,
                     real_radii: Tensor | None = None, fake_radii: Tensor | None = None,
                     chunk: int = FEATURE_CHUNK) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of the ``fake`` features against
    the ``real`` ones (both taken as float32): precision is the fraction of fake rows within
    the (closed) ``k``-NN ball of some real row, recall the fraction of real rows within the
    ball of some fake row. Radii are computed with :func:`knn_radii` unless given.

    Distances are screened in float32 by the norm trick; the pairs whose comparison with a
    radius is within the float32 error bound are decided again with float64 sums of squared
    differences, so every decision is exact to float64 rounding."""
    r, g = _as32(real), _as32(fake)
    rr = knn_radii(r, k) if real_radii is None else _as32(real_radii).double()
    rg = knn_radii(g, k) if fake_radii is None else _as32(fake_radii).double()
    nr64, ng64 = (r.double() ** 2).sum(1), (g.double() ** 2).sum(1)
    nr32, ng32 = nr64.float(), ng64.float()
    rr2, rg2 = rr ** 2, rg ** 2
    rmax = float(nr64.max().sqrt())
    fake_in = torch.zeros(len(g), dtype=torch.bool)
    real_in = torch.zeros(len(r), dtype=torch.bool)
    for i in range(0, len(g), chunk):
        gi = g[i:i + chunk]
        d2 = _screen(gi, r, ng32[i:i + chunk], nr32).double()
        m = _margin(g.shape[1], ng64[i:i + chunk].sqrt(), rmax)[:, None]
        for radius2, fake_side in ((rr2[None, :], True), (rg2[i:i + chunk, None], False)):
            inside = d2 <= radius2 - m                       # surely inside
            unsure = (d2 <= radius2 + m) & ~inside
            pi, pj = torch.nonzero(unsure, as_tuple=True)
            if len(pi):
                inside[pi, pj] = _exact_sq(gi[pi], r[pj]) <= radius2.expand_as(d2)[pi, pj]
            if fake_side:
                fake_in[i:i + chunk] = inside.any(1)
            else:
                real_in |= inside.any(0)
    return float(fake_in.double().mean()), float(real_in.double().mean())


def label_kl(labels: Tensor | np.ndarray, classes: int = 10) -> float:
    """KL divergence (nats) of the histogram of integer ``labels`` from the uniform distribution
    over ``classes``: ``sum_c p_c log(p_c * classes)`` with ``0 log 0 = 0``."""
    lab = np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels).astype(np.int64)
    if lab.size == 0:
        raise ConfigError("label_kl needs at least one label")
    p = np.bincount(lab.ravel(), minlength=classes) / lab.size
    nz = p > 0
    return float((p[nz] * np.log(p[nz] * classes)).sum())


def mean_confidence(probs: Tensor) -> float:
    """Mean over rows of the largest class probability."""
    return float(probs.max(1).values.double().mean())


def nearest_distances(x: Tensor, ref: Tensor, exclude: Tensor | None = None,
                      chunk: int = NN_CHUNK, candidates: int = NN_CANDIDATES) -> Tensor:
    """Exact Euclidean distance from every row of ``x`` ``(N, D)`` to its nearest row of
    ``ref`` ``(M, D)``, float64 ``(N,)``. ``exclude``: for each row of ``x``, an index of
    ``ref`` to leave out (its own copy, for training digits; ``-1``: none).

    Screening by the norm trick in float32 (one matrix product per block of ``chunk`` rows,
    over the pixels where some row of ``ref`` is non-zero: the others add nothing to the dot
    products), then the ``candidates`` best re-ranked with float64 distances. A row whose best
    re-ranked distance is not below every screened-out one minus the float32 rounding bound
    (:func:`_margin`) is screened again in float64 (:func:`_float64_nearest`). The result is
    exact to float64 rounding.
    """
    xs, rs = x.detach().cpu().float(), ref.detach().cpu().float()
    if xs.shape[1] != rs.shape[1]:
        raise ConfigError(f"images have {xs.shape[1]} pixels but the reference has {rs.shape[1]}")
    nx64 = (xs.double() ** 2).sum(1)
    nr64 = (rs.double() ** 2).sum(1)
    nr32 = nr64.float()
    cols = torch.nonzero((rs != 0).any(0)).squeeze(1)
    xs_c, rs_c = xs[:, cols].contiguous(), rs[:, cols].contiguous()
    rmax = float(nr64.max().sqrt())
    c = min(candidates, len(rs))
    out = torch.empty(len(xs), dtype=torch.float64)
    for i in range(0, len(xs), chunk):
        xb = xs[i:i + chunk]
        d2 = torch.addmm(nr32[None, :], xs_c[i:i + chunk], rs_c.T, alpha=-2)  # |t|^2 - 2 s.t
        if exclude is not None:
            ex = exclude[i:i + chunk].cpu()
            rows = torch.nonzero(ex >= 0).squeeze(1)
            d2[rows, ex[rows]] = float("inf")
        vals, idx = d2.topk(c + 1 if c < len(rs) else c, dim=1, largest=False)
        cand = idx[:, :c]
        diff = xb.double()[:, None, :] - rs[cand].double()
        exact = (diff * diff).sum(2)
        if exclude is not None:
            exact[cand == ex[:, None]] = float("inf")
        best = exact.min(1).values
        if c < len(rs):
            # a screened-out t has a screened value |t|^2 - 2 s.t at least the (c+1)-th one,
            # and its true |s|^2 + |t|^2 - 2 s.t is at least that plus |s|^2 minus the bound
            nxb = nx64[i:i + chunk]
            floor = (vals[:, c].double() + nxb
                     - _margin(len(cols), nxb.sqrt(), rmax)).clamp_min(0)
            redo = torch.nonzero(best > floor).squeeze(1)
            if len(redo):
                best[redo] = _float64_nearest(xb[redo], rs, 1, None if exclude is None
                                              else ex[redo], cols)[:, 0]
        out[i:i + chunk] = best
    return out.sqrt()


def blur(x: Tensor, sigma: float = BLUR_SIGMA) -> Tensor:
    """Images ``(N, 784)`` blurred by a normalised Gaussian of ``sigma`` pixels (kernel of
    ``2 ceil(3 sigma) + 1`` taps, zero padding: MNIST's borders are black)."""
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    img = x.detach().cpu().float().reshape(-1, 1, 28, 28)
    img = F.conv2d(img, g.view(1, 1, 1, -1), padding=(0, r))
    img = F.conv2d(img, g.view(1, 1, -1, 1), padding=(r, 0))
    return img.reshape(-1, 784)


def class_means(x: Tensor, y: Tensor, n: int) -> Tensor:
    """The 10 per-class mean images of ``x`` (labels ``y``), cycled to ``n`` images
    (image ``i`` is the mean of class ``i mod 10``)."""
    xs, ys = x.detach().cpu().float(), y.detach().cpu()
    means = torch.stack([xs[ys == c].mean(0) for c in range(10)])
    return means[torch.arange(n) % 10]


# ------------------------------------------------------------- reference ----
@dataclass
class Reference:
    """What every row is compared with: the classifier, the test digits' features and k-NN
    radii and Gaussian fit, the training digits (for the pixel-space nearest neighbour) and the
    reference rows (:func:`reference_rows`). Built once by :func:`get_reference`."""

    classifier: Classifier
    classifier_state: dict
    x_train: Tensor
    test_features: Tensor
    test_radii: Tensor
    test_mu: np.ndarray
    test_cov: np.ndarray
    n: int
    k: int
    rows: list[dict]
    key: str

    @property
    def test_accuracy(self) -> float:
        """The classifier's accuracy on all the test digits of its own data."""
        return float(self.classifier_state["test_accuracy"])


def sample_metrics(x: Tensor, ref: Reference, exclude: Tensor | None = None) -> dict:
    """Every metric of the sample set ``x`` ``(n, 784)`` against ``ref`` (see the module
    docstring), and ``seconds``, the time they took. ``exclude``: passed to
    :func:`nearest_distances` (the training-digit floor leaves each digit's own copy out)."""
    t0 = time.perf_counter()
    feats, probs = embed(ref.classifier, x)
    mu, cov = gaussian_fit(feats)
    precision, recall = precision_recall(ref.test_features, feats, ref.k, real_radii=ref.test_radii)
    return {"n": len(x),
            "frechet": frechet_distance(mu, cov, ref.test_mu, ref.test_cov),
            "confidence": mean_confidence(probs),
            "label_kl": label_kl(probs.argmax(1)),
            "precision": precision, "recall": recall,
            "nn_train_l2": float(nearest_distances(x, ref.x_train, exclude).mean()),
            "seconds": time.perf_counter() - t0}


def reference_rows(ref: Reference, x_train: Tensor, y_train: Tensor, x_test: Tensor,
                   seed: int = 0) -> list[dict]:
    """The reference rows of the table, each with ``ref.n`` images: ``training digits`` (a
    seeded random subset of the training digits; their nearest training digit is the nearest
    *other* one), ``test digits, blurred`` (:func:`blur`), ``class pixel means``
    (:func:`class_means` of the training digits)."""
    n = ref.n
    if len(x_train) < n:
        raise ConfigError(f"the training digits ({len(x_train)}) are fewer than the {n} samples "
                          "of a row; use a profile with more training digits or fewer samples")
    idx = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed))[:n]
    sets = [("training digits", x_train[idx].cpu(), idx),
            (f"test digits, blurred (sigma {BLUR_SIGMA:g} px)", blur(x_test[:n]), None),
            ("class pixel means", class_means(x_train, y_train, n), None)]
    rows = []
    for label, x, exclude in sets:
        m = sample_metrics(x, ref, exclude)
        rows.append({"label": label, "kind": "reference", "sample seed": seed, **m})
    return rows


def reference_key(cls_path: Path, data_identity: str, n: int, k: int, seed: int) -> str:
    """16-hex key of a reference: classifier entry, data, n, k, seed, :data:`QUALITY_VERSION`."""
    blob = json.dumps({"classifier": cls_path.name, "data": data_identity, "n": n, "k": k,
                       "seed": seed, "version": QUALITY_VERSION}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def get_reference(data, settings: QualitySettings, *, classifier_data=None,
                  root: str | Path | None = None, device: str | None = None,
                  data_dir: str | Path | None = None, seed: int = 0) -> Reference:
    """The :class:`Reference` for the models trained on ``data`` (a
    :class:`tvae.data.Dataset`: its training digits for the nearest-neighbour distance, its
    first ``settings.n`` test digits for the rest), measured with the classifier of
    ``settings.classifier`` (from the model cache, trained on ``classifier_data`` or MNIST as
    its config says). The test digits' features, radii and Gaussian fit and the reference rows
    are computed once and cached in ``<cache>/quality-<key>.pt`` (atomic writes, a file lock)."""
    from filelock import FileLock

    from .cache import cache_dir, classifier_entry_path, get_classifier
    from .io import FORMAT_VERSION, read_checkpoint, save_checkpoint

    if data.name != "mnist":
        raise ConfigError(f"sample quality is measured on MNIST models, got data {data.name!r}")
    n = settings.n
    if not 0 < n <= len(data.x_test):
        raise ConfigError(f"n must be between 1 and {len(data.x_test)} test digits, got {n}")
    clf, cstate = get_classifier(settings.classifier, classifier_data, data_dir=data_dir,
                                 device=device, root=root)
    cpath = classifier_entry_path(settings.classifier, cstate["data_identity"], root)
    key = reference_key(cpath, data.identity, n, settings.k, seed)
    path = cache_dir(root) / f"quality-{key}-q{QUALITY_VERSION}.pt"
    clf = clf.cpu()
    with FileLock(str(path) + ".lock"):
        state = None
        if path.exists():
            try:
                state = read_checkpoint(path)
            except CheckpointError:
                path.unlink(missing_ok=True)
        if state is None:
            feats, _ = embed(clf, data.x_test[:n])
            mu, cov = gaussian_fit(feats)
            radii = knn_radii(feats, settings.k)
            ref = Reference(clf, cstate, data.x_train.cpu(), feats, radii, mu, cov, n,
                            settings.k, [], key)
            rows = reference_rows(ref, data.x_train, data.y_train, data.x_test, seed)
            state = {"format_version": FORMAT_VERSION, "kind": "quality-reference",
                     "key": key, "test_features": feats, "test_radii": radii,
                     "test_mu": mu, "test_cov": cov, "rows": rows}
            save_checkpoint(path, state)
    return Reference(clf, cstate, data.x_train.cpu(), state["test_features"], state["test_radii"],
                     state["test_mu"], state["test_cov"], n, settings.k, state["rows"], key)


# ---------------------------------------------------------------- models ----
def sample_images(model, n: int, pose: str = "mean", seed: int = 0) -> Tensor:
    """``n`` samples of ``model`` through ``model.sample(n, generator, pose=pose)`` with a CPU
    generator seeded with ``seed``. A plain VAE has no pose: only ``pose='mean'`` is accepted
    for it (its decoder's samples)."""
    if pose not in MODES:
        raise ConfigError(f"unknown sampling mode {pose!r}; use one of {', '.join(MODES)}")
    if not getattr(model, "has_pose", False) and pose != "mean":
        raise ConfigError(f"{model.config.label()} has no pose to sample; use pose='mean'")
    if pose == "prior" and not model.pose.stochastic:
        raise ConfigError(f"{model.config.label()} has the flat pose prior, no pose distribution; "
                          "use pose='mean' or a model with a Gaussian pose prior")
    return model.sample(n, torch.Generator().manual_seed(seed), pose=pose).detach().cpu().float()


@dataclass(frozen=True)
class Entry:
    """One row to measure: a labelled model, a sampling mode, a sampling seed."""

    label: str
    model: object
    pose: str = "mean"
    seed: int = 0


def model_row(entry: Entry, ref: Reference) -> dict:
    """The table row of one :class:`Entry` (sampling time included in ``seconds``)."""
    t0 = time.perf_counter()
    x = sample_images(entry.model, ref.n, entry.pose, entry.seed)
    t_sample = time.perf_counter() - t0
    m = sample_metrics(x, ref)
    cfg = entry.model.config
    m["seconds"] += t_sample
    return {"label": entry.label, "kind": "model", "model": cfg.model, "dim z": cfg.zdim,
            "prior": cfg.prior + (f" r{cfg.rank}" if cfg.prior == "lowrank" else ""),
            "pose": entry.pose if getattr(entry.model, "has_pose", False) else "none",
            "model seed": cfg.seed, "sample seed": entry.seed, **m}


def quality_table(entries: Iterable[Entry | Sequence], ref: Reference, *,
                  references: bool = True) -> pd.DataFrame:
    """The sample-quality table: the reference rows (unless ``references=False``), then one
    row per entry (an :class:`Entry` or a ``(label, model, pose, seed)`` tuple), with the
    :data:`COLUMNS`."""
    rows = [dict(r) for r in ref.rows] if references else []
    for e in entries:
        rows.append(model_row(e if isinstance(e, Entry) else Entry(*e), ref))
    return pd.DataFrame(rows).reindex(columns=list(COLUMNS))


def write_table(df: pd.DataFrame, P, name: str = "sample_quality", root: str | Path = "results"
                ) -> Path:
    """Write ``df`` to ``results/<profile>/<name>.csv`` atomically (:func:`tvae.io.write_csv`)."""
    path = P.results_dir(root) / f"{name}.csv"
    write_csv(df, path)
    return path


def profile_reference(P, *, root: str | Path | None = None) -> Reference:
    """:func:`get_reference` for a profile: its data, :func:`settings`, its seed for the
    reference subset."""
    s = settings(P)
    mnist = store.data(P)
    cdata = mnist if s.classifier.train_size == P.train_size else None
    return get_reference(mnist, s, classifier_data=cdata, root=root, device=P.device,
                         data_dir=P.data_dir, seed=P.seed)


# ---------------------------------------------------------------- figure ----
def figure(df: pd.DataFrame, title: str | None = None):
    """Two panels: the Fréchet distance per row label (models: mean over seeds with the
    min-max spread as an error bar, seeds as dots; references as grey dashed lines), and
    precision against recall (one marker per row, references in grey). Returns the figure."""
    import matplotlib.pyplot as plt

    if df.empty:
        raise ValueError("no rows to draw")
    models = df[df["kind"] == "model"]
    refs = df[df["kind"] == "reference"]
    groups = [(lab, models[(models["label"] == lab) & (models["pose"] == pose)])
              for lab, pose in dict.fromkeys(zip(models["label"], models["pose"], strict=True))]
    names = [lab if g["pose"].iloc[0] in ("mean", "none") else f"{lab} ({g['pose'].iloc[0]} pose)"
             for lab, g in groups]
    fig, axes = plt.subplots(1, 2, figsize=(max(10.0, 6.5 + 0.45 * len(groups)), 4.6),
                             gridspec_kw={"width_ratios": [max(1.0, len(groups) / 6), 1]})
    ax = axes[0]
    colours = plt.get_cmap("tab10")
    for i, (_, g) in enumerate(groups):
        v = g["frechet"].to_numpy(float)
        ax.errorbar([i], [v.mean()], yerr=[[v.mean() - v.min()], [v.max() - v.mean()]],
                    fmt="o", color=colours(i % 10), capsize=3)
        ax.plot(np.full(len(v), i), v, ".", color="k", ms=3, alpha=0.6)
    for j, (_, r) in enumerate(refs.iterrows()):
        ax.axhline(r["frechet"], color="0.5", ls=("--", ":", "-.")[j % 3], lw=1, label=r["label"])
    ax.set_xticks(range(len(groups)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("Fréchet distance\n(the classifier's features)")
    ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)
    if len(refs):
        ax.legend(fontsize=7, loc="best")
    ax = axes[1]
    for i, (_, g) in enumerate(groups):
        ax.scatter(g["recall"], g["precision"], color=colours(i % 10), s=18, label=names[i])
    for j, (_, r) in enumerate(refs.iterrows()):
        ax.scatter([r["recall"]], [r["precision"]], color="0.5", marker="sx^"[j % 3], s=28)
        ax.annotate(r["label"], (r["recall"], r["precision"]), fontsize=6, color="0.4",
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel(f"recall (k = {K_NEIGHBOURS})")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    if len(groups) <= 16:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


__all__ = ["COLUMNS", "Entry", "K_NEIGHBOURS", "QualitySettings", "Reference", "blur",
           "class_means", "figure", "frechet_distance", "gaussian_fit", "get_reference",
           "knn_radii", "label_kl", "mean_confidence", "model_row", "nearest_distances",
           "precision_recall", "profile_reference", "quality_table", "reference_rows",
           "sample_images", "sample_metrics", "settings", "write_table"]
