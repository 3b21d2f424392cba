"""The one configuration object: which model, how it is trained, on what data.

Defaults are the paper's settings: 2 x 256 ReLU MLPs, a 1 x 128 localisation net, a 3 x 3 TPS
grid, the flat pose prior, a Bernoulli likelihood on grey targets, Adadelta (lr 1.0,
rho 0.95, eps 1e-6, Lasagne's defaults), batch 100, 50 epochs, full MNIST; and, where the
text is silent, what the original (Lasagne) code did: Glorot-uniform initialisation
(``init``), corner-aligned bilinear warps clamped at the border (``sampling``) and the
TPS-TVAE's doubled start grid (``tps_start``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
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
"""Initial warp of a flat-prior TPS pose head: ``identity``, or ``double`` (the control grid
added twice, a 2x zoom-out: the original code's TPS-TVAE, see ``Config.tps_start``)."""
INITS = ("glorot", "torch")
"""Weight initialisation of the dense layers (``Config.init``): ``glorot`` (Lasagne's
``DenseLayer`` defaults, the original code's) or ``torch`` (PyTorch's ``nn.Linear`` defaults,
this package's before issue 10)."""
SAMPLINGS = ("lasagne", "torch")
"""Warp sampling conventions (``Config.sampling``), defined in :mod:`tvae.warps`:
``lasagne`` (``align_corners=True``, border padding) or ``torch`` (``align_corners=False``, zero
padding)."""
LEGACY_DEFAULTS = {"init": "torch", "sampling": "torch"}
"""Values of fields that a config dict written before they existed (a checkpoint of an
earlier version) lacks: what the code then did. :meth:`Config.from_dict` fills them in, so an
old checkpoint is rebuilt as it was trained."""


def check_fields(cls: type, d: dict, what: str) -> None:
    """Refuse a dict (a checkpoint's ``config``) with fields the dataclass ``cls`` lacks: one
    :class:`ConfigError` naming them and the known ones (``what``: how the message names it)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - known
    if unknown:
        raise ConfigError(f"unknown {what} field(s) {sorted(unknown)}; known fields: {sorted(known)}")


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
    tps_start: str | None = None
    """Initial TPS warp of the flat pose head, one of :data:`TPS_STARTS`. ``None`` (the default)
    is the model's own start: ``double`` for ``tps-tvae``, because the original code's TPS layer
    (Lasagne's ``TPSTransformerLayer``) adds the control grid to its input offsets and its head
    already output ``tanh(...) + grid``, so its TPS-TVAE started at twice the grid (PAPER.md,
    "What the original code did"); ``identity`` for every other model (no TPS warp, or the
    TPS-DTVAE, which is ours: a 2x zoom-out of its encoder's input has no original to follow).
    ``identity`` for ``tps-tvae`` is the other option the book compares, ``double`` is allowed
    for the TPS-DTVAE too. The field is normalised at construction, so a non-TPS model's cache
    key never depends on it (always ``identity``); ``double`` for a non-TPS model is refused."""
    init: str = "glorot"
    """Weight initialisation of every dense layer, one of :data:`INITS`: ``glorot``, the
    original code's Lasagne ``DenseLayer`` defaults (Glorot-uniform weights with gain 1, zero
    biases), also in the pose heads; ``torch``: PyTorch's ``nn.Linear`` defaults in the networks
    and zero-initialised pose heads (this package's behaviour before issue 10). See
    :func:`tvae.models.init_weights`."""
    sampling: str = "lasagne"
    """Warp sampling convention, one of :data:`SAMPLINGS` (:mod:`tvae.warps` defines them):
    ``lasagne``, the original code's transformer layers (bilinear, corners aligned, clamped at
    the border); ``torch``, PyTorch's ``grid_sample`` defaults (bilinear, pixel edges at +-1,
    zero outside; this package's behaviour before issue 10)."""
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
            object.__setattr__(self, name, _layer_sizes(getattr(self, name), name))
        if self.tps_start is None:
            object.__setattr__(self, "tps_start", default_tps_start(self.model))
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
        check_fields(cls, d, "config")
        return cls(**{**LEGACY_DEFAULTS, **d})

    def replace(self, **changes) -> Config:
        """A copy with ``changes``. A new ``model`` whose ``tps_start`` is not given keeps the
        model's own start when this config had its model's own start (see ``tps_start``)."""
        if ("model" in changes and "tps_start" not in changes
                and self.tps_start == default_tps_start(self.model)):
            changes["tps_start"] = None
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


def default_tps_start(model: str) -> str:
    """The start a ``tps_start=None`` config gets: ``double`` for ``tps-tvae`` (the original's),
    ``identity`` for every other model (see ``Config.tps_start``)."""
    return "double" if model == "tps-tvae" else "identity"


_SIZE_FLAGS = {"hidden": ("hidden layer sizes", "--hidden 256,256"),
               "loc_hidden": ("localisation layer sizes", "--loc-hidden 128")}


def _layer_sizes(value, name: str) -> tuple[int, ...]:
    """``value`` as a non-empty tuple of positive layer sizes, or :class:`ConfigError`. Items may
    be integers or strings of decimal digits (as the command line passes them); floats, bools
    and other strings are refused rather than truncated. The message shows the sizes
    comma-separated, as typed on the command line, so Python and the CLI print the same line."""
    what, flag = _SIZE_FLAGS[name]
    try:
        items = list(value) if not isinstance(value, (str, bytes)) else None
    except TypeError:
        items = None
    shown = ",".join(str(h) for h in items) if items is not None else repr(value)
    problem = ConfigError(f"{what} must be positive integers, got {shown or 'none'}; "
                          f"pass e.g. {flag}")
    if not items:
        raise problem
    sizes = []
    for h in items:
        if isinstance(h, str) and h.strip().isdigit():
            h = int(h)
        if isinstance(h, bool):
            raise problem
        try:
            h = operator.index(h)
        except TypeError:
            raise problem from None
        if h <= 0:
            raise problem
        sizes.append(h)
    return tuple(sizes)


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
    _choice(c.init, INITS, "initialisation", "--init")
    _choice(c.sampling, SAMPLINGS, "warp sampling", "--sampling")
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
