"""The one configuration object: which model, how it is trained, on what data.

Defaults are the paper's settings: 2 x 256 ReLU MLPs, a 1 x 128 localisation net, a 3 x 3 TPS
grid, the flat pose prior, a Bernoulli likelihood on grey targets, Adadelta (lr 1.0,
rho 0.95, eps 1e-6, Lasagne's defaults), batch 100, 50 epochs, full MNIST.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from .errors import ConfigError

MODELS = ("vae", "affine-tvae", "tps-tvae", "affine-dtvae", "tps-dtvae")
"""Model kinds. ``tps-dtvae`` is ours, not the paper's."""
PRIORS = ("flat", "identity-diag", "mean-diag", "reparam5-diag", "lowrank")
DATASETS = ("mnist", "fashion-mnist", "rot-mnist")
LIKELIHOODS = ("bernoulli", "continuous-bernoulli")
"""``bernoulli`` is the paper's; ``continuous-bernoulli`` (Loaiza-Ganem & Cunningham 2019) is a
modern option, a proper density on [0, 1] for grey targets."""
OPTIMIZERS = ("adadelta", "adam")
TPS_STARTS = ("identity", "double")


@dataclass(frozen=True)
class Config:
    """Everything that determines a trained model (with the data's identity and the seed)."""

    model: str = "vae"
    zdim: int = 20
    hidden: tuple[int, ...] = (256, 256)
    loc_hidden: tuple[int, ...] = (128,)
    grid: int = 3
    prior: str = "flat"
    rank: int | None = None
    likelihood: str = "bernoulli"
    tps_start: str = "identity"
    dataset: str = "mnist"
    train_size: int | None = None
    epochs: int = 50
    batch_size: int = 100
    optimizer: str = "adadelta"
    lr: float | None = None
    seed: int = 0
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        for name in ("hidden", "loc_hidden"):
            value = getattr(self, name)
            try:
                sizes = tuple(int(h) for h in value)
            except (TypeError, ValueError) as e:
                raise ConfigError(f"{name} must be a sequence of positive integers, got {value!r}") from e
            if not sizes:
                raise ConfigError(f"{name} needs at least one layer, got {value!r}")
            object.__setattr__(self, name, sizes)
        if self.lr is not None:
            if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)):
                raise ConfigError(f"learning rate must be a number, got {self.lr!r}; pass --lr > 0")
            object.__setattr__(self, "lr", float(self.lr))   # lr=1 and lr=1.0: one cache key
        validate(self)

    # ------------------------------------------------------------------ derived ----
    @property
    def warp(self) -> str | None:
        """``'affine'``, ``'tps'`` or ``None`` (plain VAE)."""
        return None if self.model == "vae" else self.model.split("-")[0]

    @property
    def udim(self) -> int:
        """Number of warp parameters: 0, 6 (affine) or ``2 * grid**2`` (TPS)."""
        return {None: 0, "affine": 6, "tps": 2 * self.grid ** 2}[self.warp]

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else {"adadelta": 1.0, "adam": 1e-3}[self.optimizer]

    @property
    def is_paper_setting(self) -> bool:
        """True when likelihood and optimiser are the paper's (numbers need no 'modern' label)."""
        return self.likelihood == "bernoulli" and self.optimizer == "adadelta"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"], d["loc_hidden"] = list(self.hidden), list(self.loc_hidden)
        d.pop("extra")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown config field(s) {sorted(unknown)}; known fields: {sorted(known)}")
        return cls(**d)

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)

    def key(self) -> str:
        """Stable 16-hex digest of every field (the model cache's key with the data identity)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def label(self) -> str:
        """Short human name, e.g. ``tps-tvae z8 flat``."""
        s = f"{self.model} z{self.zdim}"
        if self.warp:
            s += f" {self.prior}" + (f" r{self.rank}" if self.prior == "lowrank" else "")
        return s


def _choice(value, options, what: str, flag: str) -> None:
    if value not in options:
        raise ConfigError(f"unknown {what} {value!r}; choose one of {', '.join(options)} ({flag})")


def validate(c: Config) -> None:
    """Raise :class:`ConfigError` naming the bad setting and the fix."""
    _choice(c.model, MODELS, "model", "--model")
    _choice(c.prior, PRIORS, "pose prior", "--prior")
    _choice(c.dataset, DATASETS, "dataset", "--dataset")
    _choice(c.likelihood, LIKELIHOODS, "likelihood", "--likelihood")
    _choice(c.optimizer, OPTIMIZERS, "optimizer", "--optimizer")
    _choice(c.tps_start, TPS_STARTS, "TPS start", "--tps-start")
    for name in ("zdim", "epochs", "batch_size", "grid", "seed"):
        if not isinstance(getattr(c, name), int) or isinstance(getattr(c, name), bool):
            raise ConfigError(f"{name} must be an integer, got {getattr(c, name)!r}")
    if c.zdim <= 0:
        raise ConfigError(f"dim z must be a positive integer, got {c.zdim}; pass --zdim 1 or more")
    if c.epochs < 0:
        raise ConfigError(f"epochs must be >= 0, got {c.epochs}; pass --epochs 0 or more")
    if c.batch_size <= 0:
        raise ConfigError(f"batch size must be positive, got {c.batch_size}; pass --batch-size 1 or more")
    if c.grid < 2:
        raise ConfigError(f"TPS grid size must be >= 2, got {c.grid}; pass --grid 2 or more")
    if any(h <= 0 for h in c.hidden + c.loc_hidden):
        raise ConfigError(f"hidden layer sizes must be positive, got {c.hidden} / {c.loc_hidden}")
    if c.train_size is not None and (not isinstance(c.train_size, int) or c.train_size <= 0):
        raise ConfigError(f"train size must be a positive integer, got {c.train_size!r}; "
                          "omit --train-size for the full training set")
    if c.seed < 0:
        raise ConfigError(f"seed must be >= 0, got {c.seed}; pass --seed 0 or more")
    if c.lr is not None and not 0 < c.lr < float("inf"):
        raise ConfigError(f"learning rate must be positive, got {c.lr}; pass --lr > 0")
    if c.model == "vae" and c.prior != "flat":
        raise ConfigError(f"the plain VAE has no pose, so no pose prior; drop --prior {c.prior}")
    if c.prior == "reparam5-diag" and c.warp != "affine":
        raise ConfigError("the reparam5-diag prior exists only for affine models; "
                          "use --model affine-tvae or another --prior")
    if c.tps_start == "double" and c.warp != "tps":
        raise ConfigError("--tps-start double applies only to TPS models")
    if c.prior == "lowrank":
        if (not isinstance(c.rank, int) or isinstance(c.rank, bool)
                or not 1 <= c.rank <= c.udim):
            raise ConfigError(f"rank must be in 1..{c.udim} (dim u of {c.model}) for the lowrank "
                              f"prior, got {c.rank}; pass --rank between 1 and {c.udim}")
    elif c.rank is not None:
        raise ConfigError(f"--rank applies only to --prior lowrank (got prior {c.prior!r})")
