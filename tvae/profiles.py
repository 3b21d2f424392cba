"""Run profiles of the book: how much data, how many epochs, which dimensions.

- ``paper``: the paper's settings: full MNIST (60k/10k), 50 epochs, every dim z.
- ``quick``: a reader's CPU run of the whole book in about 15 minutes on 2 cores: a 6k
  training subset, 10 epochs, a few dims, evaluation on 2k test digits.
- ``smoke``: seconds per chapter, for the tests: 600 training digits, 1 epoch.

Every chapter's ``parameters`` cell passes ``profile`` and optional overrides (``epochs``,
``seed``, ``seeds``, ``device``, ``data_dir``) to :func:`resolve`, which checks their types and
names. ``seeds`` is the number of seeds of every model whose numbers enter a verdict about the
paper (:attr:`Profile.seed_list`): 3 in the paper profile, 1 in the others, so a reader can
run one seed quickly (``-p seeds 1``). A profile is settings only: the data and trained models
of a profile come from :mod:`tvae.book.store`, the configurations of its models from
:mod:`tvae.book.registry`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .errors import ConfigError
from .runtime import select_device

PROFILES = ("smoke", "quick", "paper")


@dataclass(frozen=True)
class Profile:
    """Settings of one profile (see the module docstring)."""

    name: str
    train_size: int | None       # None = the full 60k training set
    epochs: int
    zdims: tuple[int, ...]       # dims of experiment 1 (reconstruction vs latent size)
    probe_dims: tuple[int, ...]  # dims of Table 1
    test_size: int | None        # test digits used for evaluation (None = all 10k)
    probe_train: int | None      # training codes used by the SVM probe (None = all 60k)
    ll_k: int                    # importance samples for log-likelihoods
    ll_n: int                    # test digits for log-likelihoods
    seeds: tuple[int, ...]       # seeds of the local-optima study
    rot_epochs: int              # epochs on rotated MNIST (1,500 digits)
    seed: int = 0
    device: str | None = None
    data_dir: str | None = None
    n_seeds: int = 1             # seeds per verdict model: seed_list = (seed, seed + 1, ...)

    @property
    def seed_list(self) -> tuple[int, ...]:
        """The seeds of every model whose numbers enter a verdict about the paper (Table 1,
        reconstruction vs latent size): ``(seed, seed + 1, ..., seed + n_seeds - 1)``. Distinct
        from :attr:`seeds`, the local-optima study's own list."""
        return tuple(range(self.seed, self.seed + self.n_seeds))

    def config(self, model: str, zdim: int, **kw) -> Config:
        """The :class:`Config` of ``model`` at ``zdim`` under this profile (``kw`` overrides).
        The book's configurations are built with it in :mod:`tvae.book.registry` only."""
        base = dict(model=model, zdim=zdim, epochs=self.epochs, train_size=self.train_size,
                    seed=self.seed)
        base.update(kw)
        return Config(**base)

    @property
    def results_name(self) -> str:
        """The profile's name, plus the overrides that change its numbers: ``paper``, or e.g.
        ``paper-seed1-epochs3`` for ``resolve("paper", seed=1, epochs=3)``. The device and the
        data folder do not count (the same data gives the same numbers)."""
        base = _BASE.get(self.name)
        parts = [self.name]
        for field_name, short in (("seed", "seed"), ("n_seeds", "seeds"), ("epochs", "epochs"),
                                  ("train_size", "train")):
            value = getattr(self, field_name)
            if base is None or value != getattr(base, field_name):
                parts.append(f"{short}{'all' if value is None else value}")
        return "-".join(parts)

    def results_dir(self, root: str | Path = "results") -> Path:
        """``results/<results_name>/``, created: where this profile's CSVs go (so a run with
        another seed or epoch count never overwrites the profile's own numbers)."""
        d = Path(root) / self.results_name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def describe(self) -> str:
        """One line for the top of a chapter: which profile and settings produced it."""
        n = "60,000" if self.train_size is None else f"{self.train_size:,}"
        t = "10,000" if self.test_size is None else f"{self.test_size:,}"
        s = (f"seed {self.seed}" if self.n_seeds == 1
             else f"seeds {self.seed}-{self.seed + self.n_seeds - 1}")
        return (f"profile **{self.name}**: {n} training digits, {self.epochs} epochs, "
                f"{t} test digits, {s}, Adadelta, batch 100, Bernoulli likelihood")


_BASE = {
    "paper": Profile("paper", None, 50, (2, 10, 20, 40, 60, 80), (8, 20), None, None, 1000, 1000,
                     (0, 1, 2, 3), 200, n_seeds=3),
    "quick": Profile("quick", 6000, 10, (2, 10, 20, 40), (8, 20), 2000, 6000, 100, 300,
                     (0, 1, 2), 30),
    "smoke": Profile("smoke", 600, 1, (2, 20), (8, 20), 500, 600, 5, 50, (0, 1), 1),
}


def resolve(profile: str = "paper", *, epochs: int | None = None, seed: int | None = None,
            device: str | None = None, data_dir: str | None = None,
            train_size: int | None = None, seeds: int | None = None) -> Profile:
    """The :class:`Profile` named ``profile`` with overrides (``seeds`` sets
    :attr:`Profile.n_seeds`); :class:`ConfigError` for an unknown name or a parameter of the
    wrong type (as papermill can pass)."""
    if not isinstance(profile, str) or profile not in _BASE:
        raise ConfigError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)} "
                          "(papermill: -p profile quick)")
    for name, value in (("epochs", epochs), ("seed", seed), ("train_size", train_size),
                        ("seeds", seeds)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ConfigError(f"parameter {name} must be an integer or None, got {value!r} "
                              f"({type(value).__name__}); pass e.g. -p {name} 5")
    for name, value in (("device", device), ("data_dir", data_dir)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"parameter {name} must be a string or None, got {value!r}")
    if epochs is not None and epochs < 0:
        raise ConfigError(f"epochs must be >= 0, got {epochs}; pass -p epochs 0 or more")
    if train_size is not None and train_size <= 0:
        raise ConfigError(f"train_size must be positive, got {train_size}")
    if seeds is not None and seeds < 1:
        raise ConfigError(f"the seed count must be at least 1, got {seeds}; pass -p seeds 1 or more "
                          "(--seeds for tvae profile)")
    if device is not None:
        select_device(device)  # a DeviceError now, in the parameters cell, not at the first model
    p = _BASE[profile]
    changes = {k: v for k, v in dict(epochs=epochs, seed=seed, device=device, data_dir=data_dir,
                                     train_size=train_size, n_seeds=seeds).items() if v is not None}
    return dataclasses.replace(p, **changes)
