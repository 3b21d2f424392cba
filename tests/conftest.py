"""Shared test fixtures. Torch runs on one thread: the test machines share their CPU cores."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- data ----
@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """Data root holding the real MNIST (``MNIST/raw``): ``$TVAE_DATA``, else ``../shared/data``.

    Tests using it are skipped when the four raw files are not there.
    """
    from tvae.rawdata import raw_paths

    env = os.environ.get("TVAE_DATA")
    root = Path(env) if env else (REPO.parent / "shared" / "data").resolve()
    if not all(p.is_file() for p in raw_paths("mnist", root)):
        pytest.skip(f"real MNIST not found under {root / 'MNIST' / 'raw'}; set TVAE_DATA")
    return root


TINY_SIZES = {"train": 200, "test": 50}
"""Images per split in :func:`tiny_mnist_root`."""


@pytest.fixture
def tiny_mnist_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data root with synthetic ``MNIST/raw`` IDX files (200 train, 50 test) and no SHA256SUMS.

    Images are random blobs, labels balanced 0-9 in random order. ``tvae.rawdata.SPLIT_SIZES``
    is patched to the tiny sizes for the test so the loaders accept them; tests corrupt the
    files to exercise the error paths.
    """
    import tvae.rawdata

    monkeypatch.setattr(tvae.rawdata, "SPLIT_SIZES", dict(TINY_SIZES))
    rng = np.random.default_rng(0)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, (images_file, labels_file) in tvae.rawdata.RAW_FILES.items():
        n = TINY_SIZES[split]
        x = (rng.random((n, 28, 28)) ** 4 * 255).astype(np.uint8)
        y = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        tvae.rawdata.write_idx(raw / images_file, x)
        tvae.rawdata.write_idx(raw / labels_file, y)
    return tmp_path


@pytest.fixture
def tiny_profile(tiny_mnist_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A factory of profiles on the synthetic 200/50 MNIST of :func:`tiny_mnist_root`: 1 epoch,
    dim z 2, Table 1 at dim 8, 40 test digits, one seed, the CPU, a private model cache (the
    store's memory cleared before and after); keyword arguments override any field."""
    from tvae.book import store
    from tvae.profiles import Profile

    monkeypatch.setenv("TVAE_CACHE", str(tmp_path / "cache"))
    store.forget()
    base = dict(train_size=None, epochs=1, zdims=(2,), probe_dims=(8,), test_size=40,
                probe_train=180, ll_k=6, ll_n=12, seeds=(0,), rot_epochs=1, device="cpu",
                data_dir=str(tiny_mnist_root))
    yield lambda **overrides: Profile("tiny", **{**base, **overrides})
    store.forget()


# ------------------------------------------------- engine tests (models, training) ----
@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread_in_training() -> None:
    """``tvae.train.train`` sets torch's thread count from ``$TVAE_THREADS`` (else the core
    count); pin it to 1 for the tests, and for the subprocesses they start, so that runs are
    bitwise comparable and the shared cores are not oversubscribed."""
    os.environ.setdefault("TVAE_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def mnist300(mnist_root: Path):
    """Real MNIST: a seeded class-stratified subset of 300 training digits, the full test split."""
    from tvae.data import load_dataset

    return load_dataset("mnist", mnist_root, train_size=300, seed=0)


@pytest.fixture(scope="session")
def mnist300_short(mnist300):
    """:func:`mnist300` with its test split cut to the first 500 digits (fast per-epoch
    evaluation); its ``identity`` is suffixed ``-t500`` so checkpoints and cache entries tell
    it apart from the full data."""
    import dataclasses

    return dataclasses.replace(mnist300, x_test=mnist300.x_test[:500], y_test=mnist300.y_test[:500],
                               identity=mnist300.identity + "-t500")


# ------------------------------------------------------------------ the built book ----
@pytest.fixture(scope="session")
def book_html() -> Path:
    """The root of the built smoke book (``$TVAE_BOOK_HTML``, else built by ``make smoke``).
    Its build folder (``_build/smoke``: the stage, build-start) is the HTML's parent."""
    env = os.environ.get("TVAE_BOOK_HTML")
    if env:
        root = Path(env)
    else:
        subprocess.run(["make", "-C", str(REPO), "smoke"], check=True)
        root = REPO / "_build" / "smoke" / "html"
    assert (root / "book" / "index.html").is_file(), f"no built book at {root}"
    return root
