"""The metrics of sample quality as pure functions of feature or pixel rows (:mod:`tvae.quality`
defines each number and builds the table from them).

- :func:`gaussian_fit` and :func:`frechet_distance`: the Fréchet distance between Gaussian fits;
- :func:`knn_radii` and :func:`precision_recall`: the improved precision and recall of
  Kynkäänniemi et al. (2019) over k-nearest-neighbour manifolds;
- :func:`nearest_distances`: the distance from each row to its nearest reference row (the
  nearest training digit);
- :func:`label_kl` and :func:`mean_confidence`: statistics of the classifier's outputs.

The distance searches screen candidates by the norm trick in float32 (one matrix product per
block), recompute the candidates' distances in float64 as sums of squared differences, and
screen again in float64 every row for which the float32 rounding bound (:func:`_margin`) could
hide a nearer point: every result is exact to float64 rounding.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .errors import ConfigError

K_NEIGHBOURS = 3
"""k of the k-nearest-neighbour manifolds (Kynkäänniemi et al. 2019 recommend k = 3)."""

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
