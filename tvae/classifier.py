"""An MNIST classifier trained by the package: the measuring instrument of sample quality.

A small LeNet-like convolutional network (two 5 x 5 convolutions with ReLU and 2 x 2 max
pooling, a dense layer of :attr:`ClassifierConfig.hidden` ReLU units, the *penultimate
features*, and a linear layer to the 10 class logits), trained with Adam and cross-entropy on
the grey MNIST training digits, each batch shifted by up to 2 pixels. It is seeded (weights
from ``torch.manual_seed(seed)``, batches from a seeded permutation per epoch, shifts from a
seeded generator, no dropout): the same config, data and seed give the same
weights on the CPU. It is stored through the model cache (:func:`tvae.cache.get_classifier`)
like every generative model, under its own key.

Images are flat ``(N, 784)`` floats in ``[0, 1]``, as everywhere in tvae.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import check_fields
from .data import batch_indices
from .errors import CheckpointError, ConfigError
from .io import FORMAT_VERSION, load_weights, read_checkpoint, save_checkpoint
from .runtime import configure_threads, select_device

CLASSIFIER_VERSION = 1
"""Version of what classifier training produces (network, initialisation, training loop). It
is part of the classifier's cache entry name: bump it whenever a change alters trained weights,
so stale cached classifiers are never reused."""

EVAL_BATCH = 1000
"""Images per forward pass when embedding or evaluating (memory stays under ~50 MB)."""


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything that determines a trained classifier (with the data's identity).

    With the defaults, trained on all 60,000 training digits with seed 0 on the CPU, it
    recognises 99.28% of the 10,000 test digits (6 epochs: 176 s of CPU time on one core);
    ``train_size`` and ``epochs`` shrink it for tests.
    """

    channels: tuple[int, int] = (16, 32)
    """Feature maps of the two convolutions (LeNet-5 had 6 and 16; more channels, fewer errors)."""
    hidden: int = 128
    """Penultimate (feature) layer width: the space of the Fréchet distance and precision/recall."""
    epochs: int = 6
    batch_size: int = 100
    lr: float = 1e-3
    """Adam's learning rate in the first epoch."""
    lr_decay: float = 0.7
    """The learning rate is multiplied by this after every epoch (a step decay that settles the
    weights in the last epochs)."""
    shift: int = 2
    """Augmentation: every training batch is translated by a random whole number of pixels in
    ``[-shift, shift]`` along each axis (black fills the border; 0: none). Translation is the
    variation a classifier of handwriting must ignore, and it is what the transformer models'
    samples vary in."""
    train_size: int | None = None
    """Training digits (a seeded class-stratified subset; None: all 60,000)."""
    dataset: str = "mnist"
    seed: int = 0

    def __post_init__(self) -> None:
        try:
            ch = tuple(int(c) for c in self.channels)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"classifier channels must be two positive integers, got "
                              f"{self.channels!r}") from e
        object.__setattr__(self, "channels", ch)
        object.__setattr__(self, "lr", float(self.lr))
        object.__setattr__(self, "lr_decay", float(self.lr_decay))
        if len(ch) != 2 or min(ch) < 1:
            raise ConfigError(f"classifier channels must be two positive integers, got {ch}; "
                              "pass e.g. channels=(16, 32)")
        for name in ("hidden", "epochs", "batch_size", "shift"):
            v = getattr(self, name)
            if (isinstance(v, bool) or not isinstance(v, int)
                    or v < (0 if name in ("epochs", "shift") else 1)):
                raise ConfigError(f"classifier {name} must be a positive integer, got {v!r}")
        if not (self.lr > 0 and 0 < self.lr_decay <= 1):
            raise ConfigError(f"classifier lr must be > 0 and lr_decay in (0, 1], got "
                              f"{self.lr} and {self.lr_decay}")
        if self.dataset != "mnist":
            raise ConfigError(f"the classifier is trained on mnist only, got dataset "
                              f"{self.dataset!r}; pass dataset='mnist'")
        if self.train_size is not None and (isinstance(self.train_size, bool)
                                            or not isinstance(self.train_size, int)
                                            or self.train_size < 10):
            raise ConfigError(f"classifier train_size must be None or an integer >= 10, got "
                              f"{self.train_size!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"classifier seed must be a non-negative integer, got {self.seed!r}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ClassifierConfig:
        check_fields(cls, d, "classifier config")
        return cls(**d)

    def key(self) -> str:
        """Stable 16-hex digest of every field (the cache key, with the data identity)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


class Classifier(nn.Module):
    """LeNet-like CNN on flat ``(B, 784)`` images: :meth:`features` ``(B, hidden)`` and
    :meth:`forward` logits ``(B, 10)``."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        c1, c2 = config.channels
        self.conv1 = nn.Conv2d(1, c1, 5, padding=2)     # 28 x 28 -> pool -> 14 x 14
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2)    # 14 x 14 -> pool -> 7 x 7
        self.fc = nn.Linear(c2 * 7 * 7, config.hidden)
        self.out = nn.Linear(config.hidden, 10)

    def features(self, x: Tensor) -> Tensor:
        """The penultimate activations (after ReLU), ``(B, hidden)``."""
        h = F.max_pool2d(F.relu(self.conv1(x.reshape(-1, 1, 28, 28))), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return F.relu(self.fc(h.flatten(1)))

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.features(x))


def shift_images(x: Tensor, shift: int, generator: torch.Generator) -> Tensor:
    """Flat images ``(B, 784)`` each translated by its own random ``(dy, dx)`` in
    ``[-shift, shift]^2`` pixels (drawn on the CPU from ``generator``), black outside."""
    if shift == 0:
        return x
    n = len(x)
    img = F.pad(x.reshape(n, 28, 28), (shift,) * 4)
    d = torch.randint(0, 2 * shift + 1, (2, n), generator=generator).to(x.device)
    ar = torch.arange(28, device=x.device)
    rows, cols = d[0][:, None] + ar, d[1][:, None] + ar
    return img[torch.arange(n, device=x.device)[:, None, None], rows[:, :, None],
               cols[:, None, :]].reshape(n, 784)


@torch.no_grad()
def embed(classifier: Classifier, x: Tensor, batch_size: int = EVAL_BATCH) -> tuple[Tensor, Tensor]:
    """Penultimate features ``(N, hidden)`` and class probabilities ``(N, 10)`` of images
    ``x`` ``(N, 784)``, both float32 on the CPU."""
    was = classifier.training
    classifier.eval()
    dev = next(classifier.parameters()).device
    feats, probs = [], []
    for i in range(0, len(x), batch_size):
        f = classifier.features(x[i:i + batch_size].to(dev, torch.float32))
        feats.append(f.cpu())
        probs.append(torch.softmax(classifier.out(f), 1).cpu())
    classifier.train(was)
    if not feats:
        return torch.zeros(0, classifier.config.hidden), torch.zeros(0, 10)
    return torch.cat(feats), torch.cat(probs)


@torch.no_grad()
def accuracy(classifier: Classifier, x: Tensor, y: Tensor) -> float:
    """Fraction of ``x`` whose most probable class is ``y``."""
    _, p = embed(classifier, x)
    return float((p.argmax(1) == y.cpu()).double().mean())


@torch.enable_grad()
def train_classifier(config: ClassifierConfig, data, *, out: str | Path | None = None,
                     device: str | torch.device | None = None) -> tuple[Classifier, dict]:
    """Train the classifier of ``config`` on ``data`` (a :class:`tvae.data.Dataset` whose
    training split has ``config.train_size`` digits) and return it (eval mode) with its
    checkpoint dict: ``history`` (per-epoch loss and seconds), ``test_accuracy`` (on all of
    ``data``'s test digits), ``seconds``. ``out``: where the complete checkpoint is written,
    atomically, through :func:`tvae.io.save_checkpoint`."""

    if data.name != config.dataset:
        raise ConfigError(f"data is {data.name!r} but the classifier config says "
                          f"{config.dataset!r}; pass MNIST data")
    if config.train_size is not None and len(data.x_train) != config.train_size:
        raise ConfigError(f"data has {len(data.x_train)} training digits but the classifier "
                          f"config says train_size {config.train_size}; pass matching data")
    configure_threads()
    dev = select_device(device)
    x, y = data.x_train.to(dev), data.y_train.to(dev)
    torch.manual_seed(config.seed)
    net = Classifier(config).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, config.lr_decay)
    perm_gen = torch.Generator().manual_seed(config.seed)
    shift_gen = torch.Generator().manual_seed(config.seed + 1)
    history = []
    t_start = time.perf_counter()
    net.train()
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        total, seen = 0.0, 0
        for idx in batch_indices(len(x), config.batch_size, perm_gen, device=dev):
            loss = F.cross_entropy(net(shift_images(x[idx], config.shift, shift_gen)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        sched.step()
        history.append({"epoch": epoch, "train_loss": total / max(seen, 1),
                        "seconds": time.perf_counter() - t0})
    seconds = time.perf_counter() - t_start
    net.eval()
    state = {"format_version": FORMAT_VERSION, "kind": "classifier",
             "classifier_version": CLASSIFIER_VERSION, "config": config.to_dict(),
             "data_identity": data.identity, "complete": True, "model": net.state_dict(),
             "history": history, "seconds": seconds,
             "test_accuracy": accuracy(net, data.x_test, data.y_test),
             "n_test": len(data.x_test)}
    if out is not None:
        save_checkpoint(out, state)
    return net, state


def load_classifier(path: str | Path, device: str | torch.device | None = "cpu"
                    ) -> tuple[Classifier, dict]:
    """The classifier stored in a checkpoint (eval mode) and the checkpoint dict."""

    dev = select_device(device)
    state = read_checkpoint(path, dev)
    if state.get("kind") != "classifier":
        raise CheckpointError(f"{path} is not a classifier checkpoint; pass one written by "
                              "tvae.cache.get_classifier")
    net = Classifier(ClassifierConfig.from_dict(state["config"])).to(dev)
    load_weights(net, state, f"classifier checkpoint {path} does not match this tvae's classifier; "
                 "delete it to retrain")
    return net, state


__all__ = ["CLASSIFIER_VERSION", "Classifier", "ClassifierConfig", "accuracy", "embed",
           "load_classifier", "train_classifier"]
