"""Datasets: MNIST, Fashion-MNIST and the paper's rotated MNIST, as flat float tensors.

Every dataset is 28x28 grey images flattened to 784 floats in ``[0, 1]`` (grey value / 255)
with int64 labels 0-9. The raw data are the four uncompressed IDX files of torchvision's
layout, ``<root>/MNIST/raw/`` and ``<root>/FashionMNIST/raw/``:

* ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte`` (60,000 training digits),
* ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (10,000 test digits).

The files are read with numpy after their headers and sizes are checked, and verified against
``<root>/<folder>/SHA256SUMS`` when that file exists (lines ``<sha256 hex>  raw/<file name>``).
Missing files are fetched: for Fashion-MNIST first from Debian's ``dataset-fashion-mnist``
package (:data:`DEBIAN_FASHION_DIR`), then, for both, with torchvision's downloader. Every
problem a user can cause raises a one-line :class:`~tvae.errors.DataError` or
:class:`~tvae.errors.ConfigError` naming the fix.

Randomness (subsets, rotation angles) comes from numpy ``Generator`` streams seeded by
``(stream, seed)``; the :attr:`Dataset.identity` digest hashes the raw files *and* the chosen
indices and angles, so it changes whenever the data do.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import json
import math
import os
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .config import DATASETS  # the valid names for load_dataset, defined once with the Config
from .errors import ConfigError, DataError, DeviceError
from .io import atomic_path, write_bytes

FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
"""Sub-folder of the data root holding each raw dataset (torchvision's names)."""

RAW_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
"""``split -> (images file, labels file)`` inside ``<root>/<folder>/raw/``."""

SPLIT_SIZES = {"train": 60_000, "test": 10_000}
"""Number of images each split's IDX files must hold."""

IMAGE_SIDE = 28
IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

ROT_MNIST_TRAIN_SIZE = 1500
"""Training digits of the paper's rotated MNIST."""

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package puts the gzipped Fashion-MNIST files."""

CHECKSUMS_FILE = "SHA256SUMS"

_FORMAT = "tvae-data-1"  # bump when the way data are derived from the raw files changes

# numpy random streams: one per use, so that e.g. test angles do not depend on train_size
_STREAM_SUBSET, _STREAM_ANGLES_TRAIN, _STREAM_ANGLES_TEST = 0, 1, 2

_REFETCH = "delete it and download again (or re-copy it)"


# ------------------------------------------------------------------------- paths ----
def data_root(root: str | Path | None = None) -> Path:
    """The data root: ``root`` if given, else ``$TVAE_DATA`` if set and non-empty, else ``./data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("TVAE_DATA")
    return Path(env).expanduser() if env else Path("data")


def raw_dir(name: str, root: str | Path | None = None) -> Path:
    """``<root>/<folder>/raw`` for a raw dataset name (``'mnist'`` or ``'fashion-mnist'``)."""
    return data_root(root) / FOLDERS[name] / "raw"


def raw_paths(name: str, root: str | Path | None = None) -> list[Path]:
    """The four IDX file paths of a raw dataset, train images/labels then test images/labels."""
    folder = raw_dir(name, root)
    return [folder / f for split in ("train", "test") for f in RAW_FILES[split]]


# ---------------------------------------------------------------------- IDX files ----
def _file_key(path: Path) -> tuple[str, int, int, int]:
    """``(absolute path, size in bytes, mtime in ns, inode)``: a cache key that changes on rewrite."""
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino


@functools.lru_cache(maxsize=12)
def _read_idx_cached(key: tuple[str, int, int, int]) -> tuple[np.ndarray, str]:
    """Decode one IDX file (see :func:`read_idx`); cached per :func:`_file_key`."""
    path = Path(key[0])
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if len(data) < 8:
        raise DataError(f"{path} is truncated ({len(data)} bytes); {_REFETCH}")
    magic = int.from_bytes(data[0:4], "big")
    if magic == IMAGES_MAGIC:
        header = 16
        if len(data) < header:
            raise DataError(f"{path} is truncated ({len(data)} bytes); {_REFETCH}")
        n, rows, cols = (int.from_bytes(data[i : i + 4], "big") for i in (4, 8, 12))
        if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE):
            raise DataError(
                f"{path} holds {rows}x{cols} images, expected {IMAGE_SIDE}x{IMAGE_SIDE}; {_REFETCH}"
            )
        item, shape = IMAGE_PIXELS, (n, IMAGE_SIDE, IMAGE_SIDE)
    elif magic == LABELS_MAGIC:
        header, n = 8, int.from_bytes(data[4:8], "big")
        item, shape = 1, (n,)
    else:
        raise DataError(
            f"{path} is not an MNIST IDX file (magic number {magic}, expected "
            f"{IMAGES_MAGIC} for images or {LABELS_MAGIC} for labels); {_REFETCH}"
        )
    expected = header + n * item
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "too long"
        raise DataError(
            f"{path} is {what}: {len(data)} bytes, its header says {expected} ({n} items); {_REFETCH}"
        )
    # torchvision's reader (torchvision.datasets.mnist.read_image_file) is not used here, on
    # purpose: it takes a path, so under the checks above it would read the file a second time
    # (measured on the 47 MB training images: 82 ms for this function with its SHA-256, 58 ms
    # more for torchvision's read), its own checks are `assert`s that `python -O` removes and it
    # skips the size check (strict=False); what it would replace is this one zero-copy line.
    array = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
    array.flags.writeable = False  # shared by every caller through the cache
    return array, digest


def read_idx(path: str | Path) -> tuple[np.ndarray, str]:
    """Read an uncompressed IDX file of MNIST images or labels.

    Returns ``(array, sha256 hex of the file)``: images as read-only uint8 ``(n, 28, 28)``
    (grey 0-255), labels as read-only uint8 ``(n,)``. The header (magic number 2051 for
    images, 2049 for labels; 28x28 images) and the exact file size are checked, any
    mismatch raising :class:`DataError`. Decoded files are cached in-process, keyed by path,
    size, mtime and inode, so reading again is free.
    """
    path = Path(path)
    try:
        key = _file_key(path)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    return _read_idx_cached(key)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write uint8 images ``(n, 28, 28)`` or labels ``(n,)`` as an uncompressed IDX file.

    The inverse of :func:`read_idx` (magic 2051 or 2049, big-endian header); written
    atomically (:func:`tvae.io.atomic_path`).
    """
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if array.ndim == 3:
        header = np.array([IMAGES_MAGIC, *array.shape], dtype=">u4")
    elif array.ndim == 1:
        header = np.array([LABELS_MAGIC, len(array)], dtype=">u4")
    else:
        raise ValueError(f"expected (n, rows, cols) images or (n,) labels, got {array.shape}")
    write_bytes(path, header.tobytes() + array.tobytes())


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_checksums(folder: str | Path, known: dict[Path, str] | None = None) -> int:
    """Check every file listed in ``<folder>/SHA256SUMS``; return how many were checked.

    The list has lines ``<sha256 hex>  <path relative to folder>`` (``sha256sum`` output);
    no list means nothing to check (returns 0). ``known`` maps resolved paths to digests
    already computed, to skip re-hashing them. A missing or mismatching file, or a malformed
    line, raises :class:`DataError`.
    """
    folder = Path(folder)
    sums = folder / CHECKSUMS_FILE
    if not sums.is_file():
        return 0
    known = known or {}
    checked = 0
    for lineno, line in enumerate(sums.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise DataError(f"{sums} line {lineno} is not '<sha256>  <file>'; fix or delete {sums}")
        expected, rel = parts[0].lower(), parts[1].strip().lstrip("*")
        path = folder / rel
        if not path.is_file():
            raise DataError(f"{path}, listed in {sums}, is missing; download it again (or re-copy it)")
        actual = known.get(path.resolve()) or sha256_file(path)
        if actual != expected:
            raise DataError(
                f"{path} fails its checksum (expected sha256 {expected}, got {actual}); {_REFETCH}"
            )
        checked += 1
    return checked


# ----------------------------------------------------------------------- fetching ----
def _missing(name: str, root: Path) -> list[Path]:
    return [p for p in raw_paths(name, root) if not p.is_file()]


def decompress_debian_fashion(root: str | Path, debian_dir: str | Path | None = None) -> int:
    """Decompress Debian's gzipped Fashion-MNIST files into ``<root>/FashionMNIST/raw/``.

    Only files missing from the target are written, each atomically
    (:func:`tvae.io.atomic_path`). Returns how many files were written. A corrupt
    ``.gz`` raises :class:`DataError`. ``debian_dir`` defaults to :data:`DEBIAN_FASHION_DIR`.
    """
    source = Path(debian_dir) if debian_dir is not None else DEBIAN_FASHION_DIR
    written = 0
    for dest in _missing("fashion-mnist", Path(root)):
        gz = source / f"{dest.name}.gz"
        if not gz.is_file():
            continue
        try:
            with atomic_path(dest) as tmp, open(tmp, "wb") as out, gzip.open(gz, "rb") as src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
        except (OSError, EOFError, zlib.error) as exc:
            if isinstance(exc, PermissionError):
                raise DataError(f"cannot write {dest}: {exc}; choose a writable TVAE_DATA") from exc
            raise DataError(
                f"{gz} is corrupt ({exc}); reinstall it with "
                f"'apt-get install --reinstall dataset-fashion-mnist'"
            ) from exc
        written += 1
    return written


def _torchvision_download(name: str, root: Path) -> None:
    """Download a raw dataset with torchvision into ``<root>/<folder>/raw`` (network needed)."""
    import torchvision.datasets as tvd  # here, not at the top: only a download needs it (PIL etc.)

    cls = {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST}[name]
    cls(root=str(root), train=True, download=True)


def ensure_raw(
    name: str,
    root: str | Path | None = None,
    *,
    download: bool = True,
    debian_dir: str | Path | None = None,
) -> list[Path]:
    """Make sure the four IDX files of ``name`` exist; return their paths (see :func:`raw_paths`).

    Missing Fashion-MNIST files are first decompressed from Debian's package
    (:func:`decompress_debian_fashion`); then, if ``download``, torchvision downloads what is
    still missing. If files are still missing, raises one :class:`DataError` that says where
    the files must go.
    """
    root = data_root(root)
    if name not in FOLDERS:
        raise ConfigError(f"unknown raw dataset {name!r}; choose one of {sorted(FOLDERS)}")
    if not _missing(name, root):
        return raw_paths(name, root)
    if name == "fashion-mnist":
        decompress_debian_fashion(root, debian_dir)
    cause: Exception | None = None
    if _missing(name, root) and download:
        try:
            _torchvision_download(name, root)
        except (RuntimeError, OSError, ValueError) as exc:  # offline, HTTP, bad archive
            cause = exc
    if _missing(name, root):
        folder = f"{FOLDERS[name]}/raw"
        files = "{" + ",".join(p.name for p in raw_paths(name, root)) + "}"
        tried = "and could not be downloaded" if download else "(downloading is off)"
        title = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}[name]
        hint = ", or run 'apt-get install dataset-fashion-mnist'" if name == "fashion-mnist" else ""
        raise DataError(
            f"{title} not found under {root / folder} {tried}; set TVAE_DATA (or --data-dir) "
            f"to a directory containing {folder}/{files}, or connect to the internet{hint}"
        ) from cause
    return raw_paths(name, root)


@dataclass(frozen=True, eq=False)
class RawData:
    """A raw dataset as read from its IDX files (uint8, read-only, on the CPU)."""

    name: str
    x_train: np.ndarray  # (60000, 28, 28) uint8
    y_train: np.ndarray  # (60000,) uint8
    x_test: np.ndarray  # (10000, 28, 28) uint8
    y_test: np.ndarray  # (10000,) uint8
    sha256: dict[str, str]  # IDX file name -> sha256 hex


def load_raw(
    name: str,
    root: str | Path | None = None,
    *,
    download: bool = True,
    debian_dir: str | Path | None = None,
) -> RawData:
    """Fetch if needed (:func:`ensure_raw`), validate, checksum and decode a raw dataset.

    Checks, each raising :class:`DataError`: IDX headers and sizes (:func:`read_idx`), the
    image and label counts of each split (:data:`SPLIT_SIZES`), labels in 0-9, and
    ``<root>/<folder>/SHA256SUMS`` when present (:func:`verify_checksums`).
    """
    paths = ensure_raw(name, root, download=download, debian_dir=debian_dir)
    arrays, digests = [], {}
    for path in paths:
        array, digest = read_idx(path)
        arrays.append(array)
        digests[path.name] = digest
    x_train, y_train, x_test, y_test = arrays
    for split, (x, y), (fx, fy) in zip(
        ("train", "test"),
        ((x_train, y_train), (x_test, y_test)),
        (paths[:2], paths[2:]),
        strict=True,
    ):
        if x.ndim != 3 or y.ndim != 1:
            raise DataError(f"{fx} and {fy} are swapped or mislabelled; {_REFETCH}")
        n = SPLIT_SIZES[split]
        if len(x) != n or len(y) != n:
            raise DataError(
                f"{fx} holds {len(x)} images and {fy} {len(y)} labels, expected {n} each; "
                f"delete them and download again (or re-copy them)"
            )
        if len(y) and int(y.max()) >= NUM_CLASSES:
            raise DataError(f"{fy} has labels above {NUM_CLASSES - 1}; {_REFETCH}")
    known = {p.resolve(): digests[p.name] for p in paths}
    verify_checksums(paths[0].parent.parent, known)
    return RawData(name, x_train, y_train, x_test, y_test, digests)


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
    if train_size is not None and (
        isinstance(train_size, bool)
        or not isinstance(train_size, (int, np.integer))
        or not 0 < train_size <= n_full
    ):
        raise ConfigError(
            f"train size must be between 1 and {n_full} (the training set), got "
            f"{train_size!r}; change --train-size"
        )

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
        angles_train = uniform_angles(len(x_train), seed, _STREAM_ANGLES_TRAIN)
        angles_test = uniform_angles(len(x_test), seed, _STREAM_ANGLES_TEST)
        x_train, x_test = rotate(x_train, angles_train), rotate(x_test, angles_test)
        meta.update(angles_train=angles_train, angles_test=angles_test)
        described["rotation"] = "uniform [0,360) deg; bilinear, zeros padding, align_corners=False"
        hashed.update(angles_train=angles_train.numpy(), angles_test=angles_test.numpy())

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
