"""The one way a chapter gets data and trained models, and the one memory of what it computed.

- :func:`data` / :func:`test_x`: a profile's dataset and its evaluation digits;
- :func:`trained` (and :func:`model`, :func:`checkpoint`, :func:`models`): a trained model of a
  configuration of :mod:`tvae.book.registry`, from the model cache (trained there if
  missing). Under a book profile (smoke, quick, paper) a configuration the registry does not
  list is refused with a :class:`~tvae.errors.ConfigError`, so that no chapter trains an
  unplanned model in the middle of a build;
- :func:`remember` keeps anything expensive (datasets, models, probe features, importance
  weights) for the rest of the process; :func:`forget`, right below it, drops it all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch

from ..cache import get_model
from ..config import Config
from ..data import Dataset, load_dataset
from ..errors import ConfigError
from ..models import VAE
from ..profiles import PROFILES, Profile
from ..runtime import select_device
from . import registry

T = TypeVar("T")

# --------------------------------------------------------------------------- memory ----
_MEMO: dict[tuple, Any] = {}
"""Everything this package keeps in memory, keyed by ``(what, ...)``: ``("data", ...)``,
``("model", ...)``, ``("registered", P)``, ``("features", ...)`` (chapter 08),
``("log_weights", ...)`` (chapter 10)."""


def remember(key: tuple, compute: Callable[[], T]) -> T:
    """``compute()``, kept under ``key`` for the rest of the process (or until :func:`forget`)."""
    if key not in _MEMO:
        _MEMO[key] = compute()
    return _MEMO[key]


def forget() -> None:
    """Drop every dataset, model, feature set and log-weight matrix kept in memory (the model
    cache on disk is untouched)."""
    _MEMO.clear()


# ----------------------------------------------------------------------------- data ----
def _load(P: Profile, name: str, train_size: int | None, seed: int) -> Dataset:
    key = ("data", name, train_size, seed, P.data_dir, P.device)
    return remember(key, lambda: load_dataset(name, P.data_dir, device=select_device(P.device),
                                              train_size=train_size, seed=seed))


def data(P: Profile, name: str = "mnist") -> Dataset:
    """The profile's dataset ``name``: a class-stratified training subset of ``P.train_size``
    digits drawn with ``P.seed`` (rotated MNIST: its own 1,500), the full test set, on the
    profile's device."""
    return _load(P, name, None if name == "rot-mnist" else P.train_size, P.seed)


def test_x(P: Profile, name: str = "mnist") -> torch.Tensor:
    """The first ``P.test_size`` test images ``(M, 784)`` of :func:`data` (all 10k when None)."""
    d = data(P, name)
    return d.x_test[: P.test_size] if P.test_size else d.x_test


def data_for(P: Profile, cfg: Config) -> Dataset:
    """The dataset ``cfg`` is trained on under ``P``: the profile's (:func:`data`) when the
    training-set size is the profile's, whatever the config's seed (so every seed of chapter
    11 sees the same digits), else the dataset the config names, drawn with its seed."""
    if cfg.train_size == P.train_size:
        return data(P, cfg.dataset)
    return _load(P, cfg.dataset, cfg.train_size, cfg.seed)


# --------------------------------------------------------------------------- models ----
def is_registered(P: Profile, cfg: Config) -> bool:
    """Whether ``cfg`` is one of :func:`tvae.book.registry.needed_models` under ``P``."""
    keys = remember(("registered", P), lambda: {c.key() for c in registry.needed_models(P)})
    return cfg.key() in keys


def trained(P: Profile, cfg: Config, *, progress: bool | None = None) -> tuple[VAE, dict]:
    """The trained model of ``cfg`` (eval mode) and its checkpoint dict (``history``,
    ``config``...), from the model cache (trained now if missing), kept in memory.
    ``progress``: a training bar, ``None`` following ``$TVAE_PROGRESS``."""
    if P.name in PROFILES and not is_registered(P, cfg):
        raise ConfigError(f"{registry.label(cfg)} ({cfg.key()}) is not a model of the book's "
                          f"{P.name} profile; add it to a group of tvae/book/registry.py")
    d = data_for(P, cfg)

    def load() -> tuple[VAE, dict]:
        with torch.enable_grad():  # training may happen here, even if the caller disabled grad
            return get_model(cfg, d, data_dir=P.data_dir, device=P.device, progress=progress)

    return remember(("model", cfg.key(), d.identity, P.device), load)


def model(P: Profile, cfg: Config) -> VAE:
    """The trained model of ``cfg`` (see :func:`trained`)."""
    return trained(P, cfg)[0]


def checkpoint(P: Profile, cfg: Config) -> dict:
    """The checkpoint dict of ``cfg``'s trained model (see :func:`trained`)."""
    return trained(P, cfg)[1]


def models(P: Profile, configs: Mapping[str, Config]) -> dict[str, VAE]:
    """``{name: trained model}`` for ``{name: Config}`` (e.g. a ``*_set`` of the registry)."""
    return {name: model(P, cfg) for name, cfg in configs.items()}


__all__ = ["remember", "forget", "data", "test_x", "data_for", "is_registered", "trained", "model",
           "checkpoint", "models"]
