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

The metrics are pure functions of :mod:`tvae.quality_metrics` (imported here, so that
``tvae.quality`` names them all); this module measures them on samples and references.

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
from .quality_metrics import (
                              K_NEIGHBOURS,
                              frechet_distance,
                              gaussian_fit,
                              knn_radii,
                              label_kl,
                              mean_confidence,
                              nearest_distances,
                              precision_recall,
)

QUALITY_VERSION = 1
"""Version of the reference computations (features, radii, reference rows). Part of the
reference cache's entry names: bump it when a change alters their numbers."""

BLUR_SIGMA = 1.0
"""Standard deviation in pixels of the Gaussian blur of the blurred-test-digits baseline:
enough to soften every stroke visibly while the digit keeps its shape (the classifier still
recognises it: a blurry but well-formed baseline)."""

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
