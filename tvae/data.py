"""Datasets: MNIST, Fashion-MNIST and the paper's rotated MNIST, as flat float tensors.

Every dataset is 28x28 grey images flattened to 784 floats in ``[0, 1]`` (grey value / 255)
with int64 labels 0-9, read from the raw IDX files by :mod:`tvae.rawdata` (where they live,
their checks and their download). Every problem a user can cause raises a one-line
:class:`~tvae.errors.DataError` or :class:`~tvae.errors.ConfigError` naming the fix.

Randomness (subsets, rotation angles) comes from numpy ``Generator`` streams seeded by
``(stream, seed)``; the :attr:`Dataset.identity` digest hashes the raw files *and* the chosen
indices and angles, so it changes whenever the data do.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .config import DATASETS  # the valid names for load_dataset, defined once with the Config
from .errors import ConfigError, DeviceError
from .rawdata import IMAGE_PIXELS, IMAGE_SIDE, data_root, load_raw

ROT_MNIST_TRAIN_SIZE = 1500
"""Training digits of the paper's rotated MNIST."""

_FORMAT = "tvae-data-1"  # bump when the way data are derived from the raw files changes

# numpy random streams: one per use, so that e.g. test angles do not depend on train_size
_STREAM_SUBSET, _STREAM_ANGLES_TRAIN, _STREAM_ANGLES_TEST = 0, 1, 2


# ------------------------------------------------------------------ transforms ----
def images(x: Tensor) -> Tensor:
    """Flat images ``(N, 784)`` -> ``(N, 1, 28, 28)`` (a view when possible)."""
    if x.shape[-1] != IMAGE_PIXELS:
        raise ValueError(f"expected flat images with {IMAGE_PIXELS} pixels, got shape {tuple(x.shape)}")
    return x.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)


def to_float(x: np.ndarray) -> Tensor:
    """uint8 images ``(N, 28, 28)`` -> float32 ``(N, 784)`` in ``[0, 1]`` (grey / 255), CPU."""
    with warnings.catch_warnings():  # x may be read-only (cached); it is copied, never written
        warnings.simplefilter("ignore", UserWarning)
        u8 = torch.from_numpy(x.reshape(len(x), IMAGE_PIXELS))
    return u8.to(torch.float32).div_(255.0)


def rotate(x: Tensor, degrees: Tensor, chunk: int = 4096) -> Tensor:
    """Rotate images about their centre, each by its own angle.

    ``x``: ``(N, 784)`` or ``(N, 1, 28, 28)`` floats; ``degrees``: ``(N,)`` angles in degrees,
    positive counter-clockwise as displayed (row 0 at the top). Bilinear interpolation, zero
    padding, ``align_corners=False``; processed in chunks of ``chunk`` images. Returns the
    shape of ``x``, values clamped to ``[0, 1]``.
    """
    if len(degrees) != len(x):
        raise ValueError(f"need one angle per image: {len(degrees)} angles for {len(x)} images")
    img = images(x) if x.dim() == 2 else x
    rad = torch.deg2rad(degrees.to(device=x.device, dtype=x.dtype))
    c, s, zero = rad.cos(), rad.sin(), torch.zeros_like(rad)
    # output pixel g samples the input at R g, R = [[c, -s], [s, c]]; with y pointing down
    # that moves the content counter-clockwise by the angle on screen
    theta = torch.stack([c, -s, zero, s, c, zero], -1).reshape(-1, 2, 3)
    out = torch.empty_like(img)
    for i in range(0, len(img), chunk):
        part = img[i : i + chunk]
        grid = F.affine_grid(theta[i : i + chunk], list(part.shape), align_corners=False)
        out[i : i + chunk] = F.grid_sample(
            part, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
    out.clamp_(0.0, 1.0)
    return out.reshape(x.shape)


# ------------------------------------------------------------------ randomness ----
def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([stream, seed])


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def class_quotas(counts: np.ndarray, size: int) -> np.ndarray:
    """Split ``size`` over classes in proportion to ``counts`` (largest-remainder rounding).

    ``counts``: ``(C,)`` class sizes. Returns ``(C,)`` int64 quotas summing to ``size``, each
    within 1 of ``size * counts / counts.sum()`` and never above its class size; ties in
    the remainders go to the lower class index.
    """
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if not 0 < size <= total:
        raise ConfigError(f"subset size must be in 1..{total}, got {size}")
    exact = size * counts / total
    quotas = np.floor(exact).astype(np.int64)
    short = size - int(quotas.sum())
    order = np.argsort(-(exact - quotas), kind="stable")
    quotas[order[:short]] += 1
    return quotas


def stratified_subset(labels: np.ndarray | Tensor, size: int, seed: int) -> np.ndarray:
    """Indices of a seeded class-stratified random subset of exactly ``size`` items.

    ``labels``: ``(N,)`` integer classes. Each class gets its :func:`class_quotas` share,
    drawn uniformly without replacement. Returns sorted int64 indices ``(size,)``; the same
    ``(labels, size, seed)`` always give the same subset.
    """
    # Not scikit-learn's train_test_split(stratify=...): its class quotas are the same as
    # class_quotas' (checked on MNIST, 6,000 of 60,000), but it draws other digits (614 of 6,000
    # in common with this function's subset, seed 0). The subset's indices are part of every
    # data identity, so switching would retrain every cached model and move every number of
    # the book; this function is kept so that the published numbers stay reproducible.
    labels = np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels)
    n = len(labels)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 0 < size <= n:
        raise ConfigError(
            f"train size must be between 1 and {n} (the training set), got {size!r}; change --train-size"
        )
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    quotas = class_quotas(counts, int(size))
    perm = _rng(_check_seed(seed), _STREAM_SUBSET).permutation(n)
    cls = inverse[perm]
    # rank of each permuted item within its class = how many of its class came before it
    order = np.argsort(cls, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, counts)
    chosen = perm[rank < quotas[cls]]
    return np.sort(chosen).astype(np.int64)


def uniform_angles(n: int, seed: int, stream: int) -> Tensor:
    """``(n,)`` float32 angles in degrees, uniform on ``[0, 360)``, from a seeded stream."""
    angles = _rng(_check_seed(seed), stream).random(n) * 360.0
    return torch.from_numpy(np.mod(angles, 360.0).astype(np.float32))


# --------------------------------------------------------------------- datasets ----
def _resolve_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError) as exc:
        raise DeviceError(
            f"device {device!r} is not available here ({str(exc).splitlines()[0]}); use --device cpu"
        ) from exc
    return dev


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset ready for training: flat float images and int64 labels on one device."""

    name: str  # 'mnist' | 'fashion-mnist' | 'rot-mnist'
    x_train: Tensor  # (N, 784) float32 in [0, 1]
    y_train: Tensor  # (N,) int64
    x_test: Tensor  # (M, 784) float32 in [0, 1]
    y_test: Tensor  # (M,) int64
    identity: str  # 16-hex digest of the exact data: raw file hashes, name, indices, angles
    meta: dict = dataclasses.field(default_factory=dict)  # train_size, seed, indices, angles

    @property
    def device(self) -> torch.device:
        """The device of the tensors."""
        return self.x_train.device

    def to(self, device: str | torch.device) -> Dataset:
        """A copy with the four tensors on ``device`` (``meta`` stays as is, on the CPU)."""
        dev = _resolve_device(device)
        return dataclasses.replace(
            self,
            x_train=self.x_train.to(dev),
            y_train=self.y_train.to(dev),
            x_test=self.x_test.to(dev),
            y_test=self.y_test.to(dev),
        )


def _digest(obj: dict, arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps(obj, sort_keys=True).encode())
    for key in sorted(arrays):
        h.update(key.encode())
        h.update(np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()[:16]


ROT_MNIST_ROTATION = "uniform [0,360) deg; bilinear, zeros padding, align_corners=False"
"""How rotated MNIST rotates its digits (:func:`rotate` by :func:`uniform_angles`), as written
into the dataset's identity: changing the rotation must change this text, and so the identity."""


def _check_train_size(train_size: int | None, n_full: int) -> None:
    """Raise a :class:`ConfigError` unless ``train_size`` is None or an integer in
    ``1..n_full`` (a bool or a float is refused)."""
    if train_size is not None and (
        isinstance(train_size, bool)
        or not isinstance(train_size, (int, np.integer))
        or not 0 < train_size <= n_full
    ):
        raise ConfigError(
            f"train size must be between 1 and {n_full} (the training set), got "
            f"{train_size!r}; change --train-size"
        )


def _rotate_splits(x_train: Tensor, x_test: Tensor, seed: int) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Rotated MNIST from MNIST: every digit rotated by its own angle drawn uniformly from
    ``[0, 360)`` degrees with ``seed`` (one stream per split). Returns the rotated splits and
    ``{'angles_train', 'angles_test'}`` (float32 degrees, CPU)."""
    angles = {"angles_train": uniform_angles(len(x_train), seed, _STREAM_ANGLES_TRAIN),
              "angles_test": uniform_angles(len(x_test), seed, _STREAM_ANGLES_TEST)}
    return rotate(x_train, angles["angles_train"]), rotate(x_test, angles["angles_test"]), angles


def load_dataset(
    name: str = "mnist",
    root: str | Path | None = None,
    *,
    device: str | torch.device = "cpu",
    train_size: int | None = None,
    seed: int = 0,
    download: bool = True,
) -> Dataset:
    """Load ``'mnist'``, ``'fashion-mnist'`` or ``'rot-mnist'`` as a :class:`Dataset`.

    ``root``: see :func:`data_root`. ``train_size``: keep a seeded class-stratified subset
    of exactly that many training images (:func:`stratified_subset`; ``None`` keeps all
    60,000, or 1,500 for rot-mnist); the test split is always complete (10,000).
    ``'rot-mnist'`` is the paper's rotated MNIST: the subset of MNIST training digits and
    all test digits, each rotated (:func:`rotate`) by its own angle drawn uniformly from
    ``[0, 360)`` degrees with ``seed``; ``meta['angles_train']`` and ``meta['angles_test']``
    hold the angles (float32 degrees, CPU). ``meta['train_indices']`` holds the chosen
    indices into the raw training set (``None`` when it is complete).
    """
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    seed = _check_seed(seed)
    dev = _resolve_device(device)
    raw = load_raw("mnist" if name == "rot-mnist" else name, root, download=download)
    n_full = len(raw.y_train)
    if train_size is None and name == "rot-mnist":
        train_size = ROT_MNIST_TRAIN_SIZE
    _check_train_size(train_size, n_full)

    indices = None
    if train_size is not None and (train_size < n_full or name == "rot-mnist"):
        indices = stratified_subset(raw.y_train, int(train_size), seed)
    x_train_u8 = raw.x_train if indices is None else raw.x_train[indices]
    y_train_u8 = raw.y_train if indices is None else raw.y_train[indices]
    x_train, x_test = to_float(x_train_u8), to_float(raw.x_test)
    y_train = torch.from_numpy(y_train_u8.astype(np.int64))
    y_test = torch.from_numpy(raw.y_test.astype(np.int64))

    meta: dict = {
        "train_size": len(y_train),
        "test_size": len(y_test),
        "seed": seed if indices is not None or name == "rot-mnist" else None,
        "train_indices": None if indices is None else torch.from_numpy(indices),
        "source": name if name != "rot-mnist" else "mnist",
        "root": str(data_root(root).resolve()),  # where the raw files were read (recorded in checkpoints)
    }
    described: dict = {"format": _FORMAT, "name": name, "raw_sha256": raw.sha256}
    hashed: dict[str, np.ndarray] = {}
    if indices is not None:
        hashed["train_indices"] = indices
    if name == "rot-mnist":
        x_train, x_test, angles = _rotate_splits(x_train, x_test, seed)
        meta.update(angles)
        described["rotation"] = ROT_MNIST_ROTATION
        hashed.update({k: a.numpy() for k, a in angles.items()})

    return Dataset(
        name=name,
        x_train=x_train.to(dev),
        y_train=y_train.to(dev),
        x_test=x_test.to(dev),
        y_test=y_test.to(dev),
        identity=_digest(described, hashed),
        meta=meta,
    )


# ---------------------------------------------------------------------- batching ----
def _check_batch_size(n: int, batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ConfigError(f"batch size must be a positive integer, got {batch_size!r}; change --batch-size")
    if batch_size > n:
        raise ConfigError(
            f"batch size {batch_size} is larger than the dataset ({n} samples); "
            f"lower --batch-size or raise --train-size"
        )


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches :func:`batch_indices` yields for ``n`` samples."""
    _check_batch_size(n, batch_size)
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def batch_indices(
    n: int,
    batch_size: int,
    generator: torch.Generator,
    drop_last: bool = False,
    device: str | torch.device | None = None,
) -> Iterator[Tensor]:
    """Shuffled index batches: one permutation of ``range(n)`` cut into ``batch_size`` slices.

    The permutation is drawn on the CPU with ``generator`` (a CPU ``torch.Generator``), so
    it is the same on every device, then moved to ``device``. Yields int64 tensors
    ``(batch_size,)``; the last is shorter unless ``drop_last``. Raises :class:`ConfigError`
    for ``batch_size <= 0`` or ``> n`` — eagerly, before the first batch is requested.
    """
    _check_batch_size(n, batch_size)
    perm = torch.randperm(n, generator=generator)
    if device is not None:
        perm = perm.to(device)
    stop = n - n % batch_size if drop_last else n

    def gen() -> Iterator[Tensor]:
        for i in range(0, stop, batch_size):
            yield perm[i : i + batch_size]

    return gen()
