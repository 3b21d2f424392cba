"""The raw files of MNIST and Fashion-MNIST: where they live, how they are read, checked and
fetched.

The raw data are the four uncompressed IDX files of torchvision's layout,
``<root>/MNIST/raw/`` and ``<root>/FashionMNIST/raw/``:

* ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte`` (60,000 training digits),
* ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (10,000 test digits).

The files are read with numpy after their headers and sizes are checked, and verified against
``<root>/<folder>/SHA256SUMS`` when that file exists (lines ``<sha256 hex>  raw/<file name>``).
Missing files are fetched: for Fashion-MNIST first from Debian's ``dataset-fashion-mnist``
package (:data:`DEBIAN_FASHION_DIR`), then, for both, with torchvision's downloader. Every
problem a user can cause raises a one-line :class:`~tvae.errors.DataError` or
:class:`~tvae.errors.ConfigError` naming the fix. :mod:`tvae.data` turns them into datasets.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError
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

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package puts the gzipped Fashion-MNIST files."""

CHECKSUMS_FILE = "SHA256SUMS"

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
