"""The model cache: a config, the data's identity and the seed are trained once, then loaded.

Entries live in ``$TVAE_CACHE`` (default ``./cache``) as ``<model>-z<dim>-<config key>-<data
identity>-m<MODEL_VERSION>.pt`` checkpoints (a new model version never reuses old entries).
A file lock per entry makes concurrent requests (``make -j``, two notebooks) train it once:
the first process trains while the others wait, then all load.
A corrupt or truncated entry is reported as a warning and retrained; an interrupted one (a
checkpoint that is not yet complete) is resumed. A checkpoint trained elsewhere (a Ray worker,
:mod:`tvae.engines`) enters the cache through :func:`store_checkpoint`, under the same lock and
with the same atomic write as local training.

The sample-quality classifier (:mod:`tvae.classifier`) is cached the same way, under its own
key: ``classifier-<classifier config key>-<data identity>-c<CLASSIFIER_VERSION>.pt``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from filelock import FileLock, Timeout

from .classifier import CLASSIFIER_VERSION, Classifier, ClassifierConfig, load_classifier
from .classifier import train_classifier as _train_classifier
from .config import Config
from .data import load_dataset
from .errors import CheckpointError
from .io import FORMAT_VERSION, read_checkpoint, save_checkpoint
from .models import VAE
from .runtime import select_device
from .train import MODEL_VERSION, load_model, train


def cache_dir(root: str | Path | None = None) -> Path:
    """The argument, else ``$TVAE_CACHE``, else ``./cache``."""
    return Path(root or os.environ.get("TVAE_CACHE") or "cache")


def entry_path(config: Config, data_identity: str, root: str | Path | None = None) -> Path:
    """Where the model for ``config`` trained on data ``data_identity`` is cached."""
    return (cache_dir(root)
            / f"{config.model}-z{config.zdim}-{config.key()}-{data_identity}-m{MODEL_VERSION}.pt")


def _complete(path: Path) -> bool:
    """True if ``path`` holds a complete, readable checkpoint; warns and returns False if corrupt."""
    if not path.exists():
        return False
    try:
        return bool(read_checkpoint(path).get("complete"))
    except CheckpointError as e:
        warnings.warn(f"model cache entry {path} is unusable ({e}); retraining it", stacklevel=3)
        path.unlink(missing_ok=True)
        return False


def get_model(config: Config, data=None, *, data_dir: str | Path | None = None,
              device: str | None = None, root: str | Path | None = None,
              progress: bool | None = None) -> tuple[VAE, dict]:
    """The trained model of ``config`` (trained now if not cached) and its checkpoint dict
    (``history``, ``config``, ``data_identity``...). ``data``: a :class:`tvae.data.Dataset`,
    else loaded as the config says."""
    dev = select_device(device)
    data = _data(config, data, data_dir, dev)
    path = entry_path(config, data.identity, root)
    return _trained_once(path, lambda: train(config, data, out=path, resume=path.exists(), device=dev,
                                             progress=progress),
                         lambda: load_model(path, dev))


def _data(config, data, data_dir, dev):
    """``data`` as given, else the dataset ``config`` names (its training subset, its seed)."""
    if data is not None:
        return data
    return load_dataset(config.dataset, data_dir, device=dev, train_size=config.train_size,
                        seed=config.seed)


def _trained_once(path: Path, train_entry, load_entry):
    """Under ``path``'s file lock: ``train_entry()`` unless the entry is complete, then
    ``load_entry()`` (concurrent callers train it once; the others wait, then load)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not _complete(path):
            train_entry()
        return load_entry()


def train_unless_busy(config: Config, data, *, device: str | None = None,
                      root: str | Path | None = None, progress: bool | None = None) -> str:
    """Train ``config``'s cache entry unless it is complete or another process holds its lock.

    Returns ``'cached'`` (complete already), ``'trained'`` (trained now) or ``'busy'`` (another
    process is training it; nothing done). Parallel workers that walk the same list of configs
    with this function share the work without waiting on each other (``scripts/train_models.py``).
    """
    path = entry_path(config, data.identity, root)
    if _complete(path):
        return "cached"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return "busy"
    try:
        if _complete(path):
            return "cached"
        train(config, data, out=path, resume=path.exists(), device=select_device(device),
              progress=progress)
        return "trained"
    finally:
        lock.release()


# ---------------------------------------- entries trained elsewhere (tvae.engines, Ray) ----
def store_checkpoint(config: Config, data_identity: str, state: dict,
                     root: str | Path | None = None) -> str:
    """Write ``state``, a checkpoint of ``config`` trained on data ``data_identity`` by another
    process or machine, into ``config``'s cache entry: under the entry's lock, atomically
    (:func:`tvae.io.save_checkpoint`, as local training writes it).

    Returns ``'stored'``, or ``'cached'`` when a complete entry appeared meanwhile (left as is).
    A ``state`` that is not a complete checkpoint of this config, data, format and model version
    raises :class:`CheckpointError` and writes nothing.
    """

    path = entry_path(config, data_identity, root)
    want = {"format_version": FORMAT_VERSION, "model_version": MODEL_VERSION, "complete": True,
            "config": config.to_dict(), "data_identity": data_identity, "epoch": config.epochs}
    bad = [k for k, v in want.items() if not isinstance(state, dict) or state.get(k) != v]
    if bad:
        raise CheckpointError(f"the checkpoint received for {config.label()} does not match its "
                              f"cache entry {path.name} ({', '.join(bad)} differ); run the same tvae "
                              "version on every node")
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if _complete(path):
            return "cached"
        save_checkpoint(path, state)
    return "stored"


def is_cached(config: Config, data_identity: str, root: str | Path | None = None) -> bool:
    """Whether a complete entry exists (without training anything)."""
    return _complete(entry_path(config, data_identity, root))


# --------------------------------------------------------------------- classifier ----
def classifier_entry_path(config: ClassifierConfig, data_identity: str,
                          root: str | Path | None = None) -> Path:
    """Where the classifier of ``config`` trained on data ``data_identity`` is cached."""
    return cache_dir(root) / f"classifier-{config.key()}-{data_identity}-c{CLASSIFIER_VERSION}.pt"


def get_classifier(config: ClassifierConfig, data=None, *, data_dir: str | Path | None = None,
                   device: str | None = None, root: str | Path | None = None
                   ) -> tuple[Classifier, dict]:
    """The trained classifier of ``config`` (trained now if not cached, under the entry's file
    lock) and its checkpoint dict (``test_accuracy``, ``seconds``, ``history``...). ``data``:
    MNIST as a :class:`tvae.data.Dataset` with ``config.train_size`` training digits, else
    loaded as the config says."""
    dev = select_device(device)
    data = _data(config, data, data_dir, dev)
    path = classifier_entry_path(config, data.identity, root)
    return _trained_once(path, lambda: _train_classifier(config, data, out=path, device=dev),
                         lambda: load_classifier(path, dev))
