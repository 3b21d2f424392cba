"""Training: one loop for every model, atomic per-epoch checkpoints, exact resumption.

``train(config)`` loads the data, builds the model from the seed, and runs ``config.epochs``
epochs of minibatch ELBO ascent (batches are slices of one seeded permutation of the data
tensor, which stays on the device). After every epoch it evaluates the train and test ELBO
terms, appends them to the history and writes a checkpoint atomically (temporary file, fsync,
rename), with the optimiser and random-generator states, so that a run killed at any point
resumes from its last epoch and ends with the same weights as an uninterrupted run (on the CPU).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from .config import Config
from .errors import CheckpointError, ConfigError, TrainingError
from .io import FORMAT_VERSION, read_checkpoint, save_checkpoint
from .models import VAE, build_model
from .runtime import configure_threads, select_device

MODEL_VERSION = 2  # issue 10: Glorot init, Lasagne warp sampling, doubled TPS-TVAE start
"""Version of what training produces (model code, initialisation, training loop). Bump it
whenever a change to them alters trained weights: it is part of the model cache's entry names,
so stale cached models are never reused."""

EVAL_BATCH = 2000
EVAL_TRAIN_MAX = 10000
EVAL_CURVE_MAX = 2000
"""Per-epoch evaluation (the learning curves): the train and test ELBO terms on the first
2,000 digits of each split after every epoch but the last, and after the last epoch on the
first 10,000 training digits and the whole test set (the numbers a run reports). The row's
``n_eval_train`` and ``n_eval_test`` say which."""


def make_optimizer(model: torch.nn.Module, config: Config) -> torch.optim.Optimizer:
    """Adadelta with Lasagne's defaults (lr 1.0, rho 0.95, eps 1e-6: the paper's) or Adam."""
    if config.optimizer == "adadelta":
        return torch.optim.Adadelta(model.parameters(), lr=config.learning_rate, rho=0.95, eps=1e-6)
    return torch.optim.Adam(model.parameters(), lr=config.learning_rate)


# ----------------------------------------------------------------------- evaluation ----
@torch.no_grad()
def evaluate_terms(model: VAE, x: Tensor, seed: int = 0, batch_size: int = EVAL_BATCH
                   ) -> dict[str, float]:
    """Mean per-sample ELBO terms (nats) of ``model`` on ``x`` ``(N, 784)``, one posterior
    draw per sample from a generator seeded with ``seed`` (so evaluation never disturbs the
    training random streams)."""
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=x.device).manual_seed(seed)
    sums: dict[str, float] = {}
    for i in range(0, len(x), batch_size):
        t = model.terms(x[i:i + batch_size], gen)
        for k, v in t.items():
            sums[k] = sums.get(k, 0.0) + v.double().sum().item()
    model.train(was_training)
    return {k: v / len(x) for k, v in sums.items()}


@torch.no_grad()
def mean_pose(model: VAE, x: Tensor, batch_size: int = EVAL_BATCH) -> Tensor:
    """Mean over ``x`` of the posterior-mode warp parameters ``u``, ``(dim u,)``."""
    total = None
    for i in range(0, len(x), batch_size):
        u = model.encode(x[i:i + batch_size]).u.double().sum(0)
        total = u if total is None else total + u
    return (total / len(x)).float()


# ----------------------------------------------------------------------- checkpoints ----
def load_model(path: str | Path, device: str | torch.device | None = "cpu") -> tuple[VAE, dict]:
    """The model stored in a checkpoint (in eval mode) and the checkpoint dict."""
    dev = select_device(device)
    state = read_checkpoint(path, dev)
    config = Config.from_dict(state["config"])
    model = build_model(config).to(dev)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint {path} does not match the {config.model} model of this tvae "
                              f"({type(e).__name__}: {str(e).splitlines()[0]}); retrain it") from e
    model.eval()
    return model, state


def config_mismatch(a: Config, b: Config) -> list[str]:
    """Names and values of the fields where two configs differ."""
    da, db = a.to_dict(), b.to_dict()
    return [f"{k} {da[k]!r} vs {db[k]!r}" for k in da if da[k] != db.get(k)]


# -------------------------------------------------------------------------- training ----
@dataclass
class TrainResult:
    """A trained model, its per-epoch history (a list of dicts), its checkpoint path."""

    model: VAE
    history: list[dict] = field(default_factory=list)
    path: Path | None = None
    config: Config | None = None


def _fault_nan_at() -> tuple[int, int] | None:
    """Test hook: ``TVAE_TEST_NAN_AT='epoch:batch'`` forces a NaN loss there (1-based)."""
    v = os.environ.get("TVAE_TEST_NAN_AT")
    if not v:
        return None
    e, b = v.split(":")
    return int(e), int(b)


@torch.enable_grad()  # callable from inside torch.no_grad()
def train(config: Config, data=None, *, out: str | Path | None = None, resume: bool = False,
          device: str | torch.device | None = None, data_dir: str | Path | None = None,
          progress: bool | None = None, nan_at: tuple[int, int] | None = None,
          on_epoch=None) -> TrainResult:
    """Train ``config`` and return the model and its history.

    ``data``: a :class:`tvae.data.Dataset` (else loaded from ``data_dir`` / ``$TVAE_DATA``).
    ``out``: checkpoint path, rewritten atomically after every epoch. ``resume``: continue
    from ``out`` if it exists (it must come from the same config and data). ``nan_at``:
    ``(epoch, batch)``, 1-based, where a NaN is forced into the loss (a test hook).
    ``on_epoch(epoch, row)`` is called after each epoch (for live plots). ``progress``: a tqdm
    bar; ``None`` follows ``$TVAE_PROGRESS`` (``0`` turns it off, as the book build does).
    """
    from . import data as tdata

    configure_threads()
    dev = select_device(device)
    if data is None:
        data = tdata.load_dataset(config.dataset, data_dir, device=dev,
                                  train_size=config.train_size, seed=config.seed)
    else:
        if data.name != config.dataset:
            raise ConfigError(f"data is {data.name!r} but the config says dataset {config.dataset!r}; "
                              "pass matching data or omit it")
        if config.train_size is not None and len(data.x_train) != config.train_size:
            raise ConfigError(f"data has {len(data.x_train)} training digits but the config says "
                              f"train_size {config.train_size}; pass matching data or omit it")
        data = data.to(dev)
    x_train, x_test = data.x_train, data.x_test
    n = len(x_train)
    n_batches = tdata.num_batches(n, config.batch_size)  # checks the batch size against n

    torch.manual_seed(config.seed)
    model = build_model(config).to(dev)
    opt = make_optimizer(model, config)
    perm_gen = torch.Generator().manual_seed(config.seed)
    noise_gen = torch.Generator(device=dev).manual_seed(config.seed + 1)
    history: list[dict] = []
    start_epoch = 0
    out = Path(out) if out is not None else None

    if resume and out is not None and out.exists():
        state = read_checkpoint(out, dev)
        old = Config.from_dict(state["config"])
        diff = config_mismatch(old, config)
        diff = [d for d in diff if not d.startswith("epochs ")]
        if diff:
            raise CheckpointError(f"checkpoint {out} is from another config ({'; '.join(diff)}); "
                                  "use another --out or the same settings")
        if state.get("data_identity") != data.identity:
            raise CheckpointError(f"checkpoint {out} was trained on other data "
                                  f"({state.get('data_identity')} vs {data.identity}); "
                                  "use another --out or the same data")
        if state["epoch"] > config.epochs:
            raise CheckpointError(f"checkpoint {out} has already trained {state['epoch']} epochs, more "
                                  f"than the {config.epochs} asked; pass --epochs {state['epoch']} or "
                                  "more, or another --out")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        perm_gen.set_state(state["rng"]["perm"])
        noise_gen.set_state(state["rng"]["noise"].to(noise_gen.get_state().device))
        torch.set_rng_state(state["rng"]["torch"])
        history = list(state["history"])
        start_epoch = state["epoch"]

    nan_at = nan_at or _fault_nan_at()
    if progress is None:
        progress = os.environ.get("TVAE_PROGRESS", "1") != "0"
    bar = None
    if progress and start_epoch < config.epochs:
        from tqdm.auto import tqdm
        bar = tqdm(total=(config.epochs - start_epoch) * n_batches, desc=config.label(),
                   unit="batch", leave=False, mininterval=1.0)

    def snapshot(epoch: int, complete: bool) -> dict:
        return {"format_version": FORMAT_VERSION, "model_version": MODEL_VERSION,
                "config": config.to_dict(),
                "data_identity": data.identity, "data_root": data.meta.get("root"),
                "epoch": epoch, "complete": complete,
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "rng": {"perm": perm_gen.get_state(), "noise": noise_gen.get_state().cpu(),
                        "torch": torch.get_rng_state()},
                "history": history}

    def stop(what: str, epoch: int, batch: int) -> None:
        """Raise the TrainingError of a non-finite loss or gradient; the weights are untouched
        by the bad batch and the last epoch's checkpoint stays as it was."""
        if bar is not None:
            bar.close()
        kept = (f"the last good checkpoint (epoch {epoch - 1}) is kept at {out}"
                if out is not None and epoch > 1 else "no checkpoint was written")
        raise TrainingError(f"{what} at epoch {epoch}, batch {batch} of {config.label()}; {kept}; "
                            "lower the learning rate or try another --seed")

    model.train()
    for epoch in range(start_epoch + 1, config.epochs + 1):
        t0 = time.perf_counter()
        running, seen = 0.0, 0
        for b, idx in enumerate(tdata.batch_indices(n, config.batch_size, perm_gen, device=dev)):
            xb = x_train[idx]
            loss = model.loss(xb, noise_gen)
            if nan_at == (epoch, b + 1):
                loss = loss * float("nan")
            lv = loss.item()
            if not math.isfinite(lv):
                stop(f"non-finite loss ({lv})", epoch, b + 1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # A finite loss can still give inf/NaN gradients; Adadelta then writes NaN into the
            # weights and the end-of-epoch checkpoint would store them as "good".
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
            if not torch.isfinite(gnorm):
                stop("non-finite gradient", epoch, b + 1)
            opt.step()
            running += lv * len(xb)
            seen += len(xb)
            if bar is not None:
                bar.update(1)
                if b % 50 == 0:
                    bar.set_postfix(epoch=epoch, loss=f"{running / seen:.2f}", refresh=False)
        row = {"epoch": epoch, "seconds": time.perf_counter() - t0, "train_loss": running / seen}
        last = epoch == config.epochs
        n_tr, n_te = (EVAL_TRAIN_MAX, len(x_test)) if last else (EVAL_CURVE_MAX, EVAL_CURVE_MAX)
        row["n_eval_train"], row["n_eval_test"] = min(n_tr, n), min(n_te, len(x_test))
        for split, xs in (("train", x_train[:n_tr]), ("test", x_test[:n_te])):
            for k, v in evaluate_terms(model, xs, seed=config.seed + 2).items():
                row[f"{split}_{k}"] = v
        history.append(row)
        if last and model.has_pose:
            model.u_mean.copy_(mean_pose(model, x_train))
        model.train()
        if out is not None:
            save_checkpoint(out, snapshot(epoch, last))
        if on_epoch is not None:
            on_epoch(epoch, row)
    if bar is not None:
        bar.close()
    if config.epochs == 0 and model.has_pose:
        model.u_mean.copy_(mean_pose(model, x_train))
    if out is not None and (config.epochs == 0 or start_epoch == config.epochs):
        save_checkpoint(out, snapshot(config.epochs, True))
    model.eval()
    return TrainResult(model, history, out, config)
