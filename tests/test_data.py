"""Tests of tvae.data and tvae.rawdata: raw MNIST reading and validation, subsets, rotated MNIST, batching."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets

from tvae import data, rawdata
from tvae.errors import ConfigError, DataError


def write_sha256sums(folder: Path) -> None:
    """``folder/SHA256SUMS`` for every file of ``folder/raw``, in ``sha256sum`` format."""
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  raw/{p.name}"
        for p in sorted((folder / "raw").iterdir())
    ]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def mnist(mnist_root: Path) -> data.Dataset:
    return data.load_dataset("mnist", mnist_root, download=False)


@pytest.fixture(scope="module")
def rot(mnist_root: Path) -> data.Dataset:
    return data.load_dataset("rot-mnist", mnist_root, seed=0, download=False)


# ------------------------------------------------------------------ real MNIST ----
def test_real_mnist_shapes_dtypes_ranges(mnist: data.Dataset) -> None:
    assert mnist.x_train.shape == (60_000, 784) and mnist.x_test.shape == (10_000, 784)
    assert mnist.y_train.shape == (60_000,) and mnist.y_test.shape == (10_000,)
    assert mnist.x_train.dtype == torch.float32 and mnist.y_train.dtype == torch.int64
    assert mnist.x_train.min() == 0.0 and mnist.x_train.max() == 1.0
    # the published pixel statistics of the training set
    assert mnist.x_train.mean().item() == pytest.approx(0.1307, abs=1e-4)
    assert mnist.x_train.std().item() == pytest.approx(0.3081, abs=1e-4)
    assert len(mnist.identity) == 16 and int(mnist.identity, 16) >= 0
    assert mnist.meta["train_indices"] is None and mnist.meta["seed"] is None


def test_real_mnist_label_histogram(mnist: data.Dataset) -> None:
    train = torch.bincount(mnist.y_train, minlength=10)
    test = torch.bincount(mnist.y_test, minlength=10)
    assert train.tolist()[:2] == [5923, 6742] and int(train.sum()) == 60_000
    assert test.tolist()[:2] == [980, 1135]
    assert int(train.min()) > 5000 and int(test.min()) > 850
    assert int(mnist.y_train.max()) == 9 and int(mnist.y_train.min()) == 0


def test_loading_twice_is_cached_and_identical(mnist_root: Path, mnist: data.Dataset) -> None:
    raw = rawdata.load_raw("mnist", mnist_root, download=False)
    again = rawdata.load_raw("mnist", mnist_root, download=False)
    assert raw.x_train is again.x_train  # decoded once per process
    assert not raw.x_train.flags.writeable
    assert data.load_dataset("mnist", mnist_root, download=False).identity == mnist.identity


def test_dataset_to_keeps_data(mnist_root: Path) -> None:
    ds = data.load_dataset("mnist", mnist_root, train_size=100, download=False)
    moved = ds.to("cpu")
    assert moved is not ds and moved.identity == ds.identity
    assert torch.equal(moved.x_train, ds.x_train) and moved.device.type == "cpu"


# ------------------------------------------------------------- corrupt files ----
def test_sha256_mismatch_names_the_file(mnist_root: Path, tmp_path: Path) -> None:
    shutil.copytree(mnist_root / "MNIST", tmp_path / "MNIST")
    victim = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    victim.chmod(0o644)
    with open(victim, "r+b") as f:  # a pixel byte: headers and sizes stay valid
        f.seek(16 + 5000)
        byte = f.read(1)
        f.seek(16 + 5000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte fails its checksum") as err:
        rawdata.load_raw("mnist", tmp_path, download=False)
    assert "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7" in str(err.value)
    assert "download again" in str(err.value)


def test_sha256sums_verifies_tiny(tiny_mnist_root: Path) -> None:
    write_sha256sums(tiny_mnist_root / "MNIST")
    assert rawdata.verify_checksums(tiny_mnist_root / "MNIST") == 4
    ds = data.load_dataset("mnist", tiny_mnist_root, download=False)
    assert ds.x_train.shape == (200, 784) and ds.x_test.shape == (50, 784)
    (tiny_mnist_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    rawdata.write_idx(
        tiny_mnist_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte",
        np.zeros(50, np.uint8),
    )
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte fails its checksum"):
        data.load_dataset("mnist", tiny_mnist_root, download=False)


def test_truncated_idx_is_reported(tiny_mnist_root: Path) -> None:
    path = tiny_mnist_root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="train-images-idx3-ubyte is truncated") as err:
        data.load_dataset("mnist", tiny_mnist_root, download=False)
    assert "delete it" in str(err.value)


def test_bad_magic_is_reported(tiny_mnist_root: Path) -> None:
    path = tiny_mnist_root / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    raw = bytearray(path.read_bytes())
    raw[3] = 0x42
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte is not an MNIST IDX file"):
        data.load_dataset("mnist", tiny_mnist_root, download=False)


def test_wrong_count_and_swapped_files(tiny_mnist_root: Path, monkeypatch) -> None:
    monkeypatch.setattr(rawdata, "SPLIT_SIZES", {"train": 201, "test": 50})
    with pytest.raises(DataError, match="expected 201 each"):
        rawdata.load_raw("mnist", tiny_mnist_root, download=False)
    raw = tiny_mnist_root / "MNIST" / "raw"
    monkeypatch.setattr(rawdata, "SPLIT_SIZES", {"train": 200, "test": 50})
    images, labels = raw / "t10k-images-idx3-ubyte", raw / "t10k-labels-idx1-ubyte"
    tmp = raw / "tmp"
    images.rename(tmp), labels.rename(images), tmp.rename(labels)
    with pytest.raises(DataError, match="swapped"):
        rawdata.load_raw("mnist", tiny_mnist_root, download=False)


def test_idx_round_trip(tmp_path: Path) -> None:
    x = np.arange(3 * 28 * 28, dtype=np.uint64).reshape(3, 28, 28).astype(np.uint8)
    rawdata.write_idx(tmp_path / "x", x)
    back, digest = rawdata.read_idx(tmp_path / "x")
    assert np.array_equal(back, x) and digest == rawdata.sha256_file(tmp_path / "x")


# ------------------------------------------------------------- missing data ----
def _assert_helpful(err: pytest.ExceptionInfo, root: Path) -> None:
    msg = str(err.value)
    assert "\n" not in msg
    assert "TVAE_DATA" in msg and "MNIST/raw" in msg and str(root) in msg
    assert "train-images-idx3-ubyte" in msg


def test_missing_without_download(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        data.load_dataset("mnist", tmp_path / "nowhere", download=False)
    _assert_helpful(err, tmp_path / "nowhere")


def test_missing_offline_download_fails(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def offline(self) -> None:
        calls.append(self.root)
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    with pytest.raises(DataError, match="could not be downloaded") as err:
        data.load_dataset("rot-mnist", tmp_path, download=True)
    _assert_helpful(err, tmp_path)
    assert calls == [str(tmp_path)]
    assert isinstance(err.value.__cause__, RuntimeError)


def test_data_root_resolution(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TVAE_DATA", str(tmp_path))
    assert rawdata.data_root() == tmp_path
    assert rawdata.data_root("elsewhere") == Path("elsewhere")
    with pytest.raises(DataError) as err:  # the env root is the one searched
        data.load_dataset("mnist", download=False)
    assert str(tmp_path / "MNIST" / "raw") in str(err.value)
    monkeypatch.delenv("TVAE_DATA")
    assert rawdata.data_root() == Path("data")


def test_unknown_name_and_bad_settings(tiny_mnist_root: Path) -> None:
    with pytest.raises(ConfigError, match="mnist, fashion-mnist, rot-mnist"):
        data.load_dataset("cifar", tiny_mnist_root)
    for bad in (0, -5, 201):
        with pytest.raises(ConfigError, match="--train-size"):
            data.load_dataset("mnist", tiny_mnist_root, train_size=bad, download=False)
    with pytest.raises(ConfigError, match="seed"):
        data.load_dataset("mnist", tiny_mnist_root, seed=-1, download=False)


# ------------------------------------------------------------- Fashion-MNIST ----
def test_fashion_from_debian_gz(tiny_mnist_root: Path, tmp_path: Path, monkeypatch) -> None:
    debian = tmp_path / "debian"
    debian.mkdir()
    for f in (tiny_mnist_root / "MNIST" / "raw").iterdir():
        (debian / f"{f.name}.gz").write_bytes(gzip.compress(f.read_bytes()))
    monkeypatch.setattr(rawdata, "DEBIAN_FASHION_DIR", debian)

    def no_download(self) -> None:
        raise AssertionError("torchvision must not be asked: the Debian files are there")

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", no_download)
    root = tmp_path / "root"
    ds = data.load_dataset("fashion-mnist", root, download=True)
    mnist = data.load_dataset("mnist", tiny_mnist_root, download=False)
    assert torch.equal(ds.x_train, mnist.x_train) and torch.equal(ds.y_test, mnist.y_test)
    assert ds.identity != mnist.identity  # the name is part of the identity
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(
        p.name for p in rawdata.raw_paths("fashion-mnist", root)
    )  # no temporary files left behind


def test_fashion_corrupt_gz(tmp_path: Path) -> None:
    debian = tmp_path / "debian"
    debian.mkdir()
    good = gzip.compress(b"\0" * 5000)
    (debian / "train-images-idx3-ubyte.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="corrupt.*dataset-fashion-mnist"):
        rawdata.decompress_debian_fashion(tmp_path / "root", debian)
    assert not any((tmp_path / "root" / "FashionMNIST" / "raw").iterdir())


def test_fashion_missing_message(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(rawdata, "DEBIAN_FASHION_DIR", tmp_path / "absent")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist") as err:
        data.load_dataset("fashion-mnist", tmp_path, download=False)
    assert "FashionMNIST/raw" in str(err.value) and "TVAE_DATA" in str(err.value)


# ---------------------------------------------------------- stratified subset ----
def test_class_quotas_largest_remainder() -> None:
    counts = np.array([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    for size in (1, 7, 100, 1500, 59_999):
        q = data.class_quotas(counts, size)
        assert q.sum() == size
        assert np.all(np.abs(q - size * counts / counts.sum()) < 1)


def test_stratified_subset(mnist_root: Path, mnist: data.Dataset) -> None:
    labels = mnist.y_train.numpy()
    idx = data.stratified_subset(labels, 1000, seed=3)
    assert idx.shape == (1000,) and len(np.unique(idx)) == 1000
    exact = 1000 * np.bincount(labels, minlength=10) / len(labels)
    assert np.all(np.abs(np.bincount(labels[idx], minlength=10) - exact) < 1)
    assert np.array_equal(idx, data.stratified_subset(labels, 1000, seed=3))
    assert not np.array_equal(idx, data.stratified_subset(labels, 1000, seed=4))

    ds = data.load_dataset("mnist", mnist_root, train_size=1000, seed=3, download=False)
    assert ds.x_train.shape == (1000, 784) and ds.x_test.shape == (10_000, 784)
    assert torch.equal(ds.x_train, mnist.x_train[torch.from_numpy(idx)])
    assert torch.equal(ds.meta["train_indices"], torch.from_numpy(idx))
    other = data.load_dataset("mnist", mnist_root, train_size=1000, seed=4, download=False)
    assert other.identity != ds.identity != mnist.identity


# ---------------------------------------------------------------- rot-mnist ----
def test_rotate_direction_and_inverse() -> None:
    x = torch.zeros(2, 1, 28, 28)
    x[:, 0, 12:16, 20:26] = 1.0  # a bar right of the centre
    y = data.rotate(x, torch.tensor([90.0, 0.0]))
    rows, cols = y[0, 0].nonzero().float().mean(0).tolist()
    # counter-clockwise: the bar goes to the top
    assert rows < 8 and abs(cols - 13.5) < 1
    assert torch.allclose(y[1], x[1], atol=1e-6)  # 0 degrees is the identity
    back = data.rotate(y, torch.tensor([-90.0, 0.0]))
    assert torch.allclose(back, x, atol=1e-4)  # quarter turns land on the pixel grid


def test_rot_mnist(mnist_root: Path, mnist: data.Dataset, rot: data.Dataset) -> None:
    assert rot.x_train.shape == (1500, 784) and rot.x_test.shape == (10_000, 784)
    assert rot.x_train.min() >= 0 and rot.x_train.max() <= 1
    a_train, a_test = rot.meta["angles_train"], rot.meta["angles_test"]
    assert a_train.shape == (1500,) and a_test.shape == (10_000,)
    assert 0 <= float(a_test.min()) < 1 and 359 < float(a_test.max()) < 360
    assert abs(float(a_test.mean()) - 180) < 6  # uniform over the full circle
    assert torch.bincount(rot.y_train, minlength=10).min() >= 130  # stratified

    # rotating back by -angle recovers the source digit
    orig = mnist.x_train[rot.meta["train_indices"]]
    back = data.rotate(rot.x_train, -a_train)
    o, b = orig - orig.mean(1, keepdim=True), back - back.mean(1, keepdim=True)
    corr = (o * b).sum(1) / (o.norm(dim=1) * b.norm(dim=1))
    assert corr.mean() > 0.9
    # ...and the rotation did change the digits
    o2 = rot.x_train - rot.x_train.mean(1, keepdim=True)
    assert ((o * o2).sum(1) / (o.norm(dim=1) * o2.norm(dim=1))).mean() < 0.6
    assert torch.equal(rot.y_test, mnist.y_test)

    again = data.load_dataset("rot-mnist", mnist_root, seed=0, download=False)
    assert torch.equal(again.x_train, rot.x_train) and again.identity == rot.identity
    assert torch.equal(again.meta["angles_test"], a_test)


def test_rot_mnist_other_seed(mnist_root: Path, rot: data.Dataset) -> None:
    other = data.load_dataset("rot-mnist", mnist_root, seed=1, train_size=300, download=False)
    assert other.x_train.shape == (300, 784)
    assert not torch.equal(other.meta["angles_test"], rot.meta["angles_test"])
    assert other.identity != rot.identity


# ------------------------------------------------------------------ batching ----
def _batches(x: torch.Tensor, batch_size: int, generator: torch.Generator, drop_last: bool = False):
    """Rows of ``x`` batched as the trainer does: ``x[idx]`` for each of :func:`batch_indices`."""
    return [x[i] for i in data.batch_indices(len(x), batch_size, generator, drop_last, device=x.device)]


def test_batch_indices_cover_every_row_once_and_repeat() -> None:
    x = torch.arange(103).float().unsqueeze(1).expand(103, 4)
    out = _batches(x, 10, torch.Generator().manual_seed(5))
    assert [len(b) for b in out] == [10] * 10 + [3]
    seen = torch.cat(out)[:, 0].long()
    assert torch.equal(seen.sort().values, torch.arange(103))
    assert not torch.equal(seen, torch.arange(103))  # shuffled
    again = torch.cat(_batches(x, 10, torch.Generator().manual_seed(5)))
    assert torch.equal(again[:, 0].long(), seen)
    dropped = _batches(x, 10, torch.Generator().manual_seed(5), drop_last=True)
    assert len(dropped) == 10 == data.num_batches(103, 10, drop_last=True)
    assert data.num_batches(103, 10) == 11


def test_batch_size_errors() -> None:
    with pytest.raises(ConfigError, match=r"batch size 64 is larger than the dataset \(50"):
        data.batch_indices(50, 64, torch.Generator())
    for bad in (0, -1):
        with pytest.raises(ConfigError, match="batch size"):
            data.batch_indices(50, bad, torch.Generator())


def test_images_reshape() -> None:
    x = torch.rand(5, 784)
    img = data.images(x)
    assert img.shape == (5, 1, 28, 28) and torch.equal(img[2, 0, 3], x[2, 84:112])
    with pytest.raises(ValueError, match="784"):
        data.images(torch.zeros(5, 100))
