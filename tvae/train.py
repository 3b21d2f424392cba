"""Training: one loop for every model, atomic per-epoch checkpoints, exact resumption.

``train(config)`` loads the data, builds the model from the seed, and runs ``config.epochs``
epochs of minibatch ELBO ascent (batches are slices of one seeded permutation of the data
tensor, which stays on the device). After every epoch it evaluates the train and test ELBO
terms, appends them to the history and writes a checkpoint atomically (temporary file, fsync,
rename), with the optimiser and random-generator states, so that a run killed at any point
resumes from its last epoch and ends with the same weights as an uninterrupted run (on the CPU).

The loop, in reading order: :func:`train` prepares the data and a :class:`Run` (model,
optimiser over one flat parameter buffer, generators; :func:`start_run`, :func:`resume_run`),
then per epoch :func:`train_epoch` (the steps), :func:`evaluate_epoch` (the history row),
after the last epoch :func:`set_mean_pose`, and a checkpoint (:func:`snapshot`). The step's
loss is eager or compiled (:mod:`tvae.step`), the update is :class:`tvae.optim.FlatAdadelta`.
Non-finite losses and gradients are recorded on the device step by step and checked once
per epoch (:func:`check_finite`), before anything of that epoch is saved.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from .config import Config
from .errors import CheckpointError, ConfigError, TrainingError
from .io import FORMAT_VERSION, load_weights, read_checkpoint, save_checkpoint
from .models import VAE, build_model, log_bernoulli
from .optim import FlatAdadelta, FlatParameters, TorchOptimizer
from .runtime import configure_threads, select_device
from .step import compiled_loss, eager_loss, use_compile

_log = logging.getLogger("tvae.train")

MODEL_VERSION = 2  # issue 10: Glorot init, Lasagne sampling, double TPS start; issue 11: flat Adadelta
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

EVAL_BCE_BATCH = 1000
"""Batch of the per-epoch posterior-mean test BCE (:func:`posterior_mean_bce`). Measured on the
project's CPU (one thread, 10,000 test digits, dim z 20, medians of 3, load ~6), seconds at
batch 1,000 / 2,000 / 5,000 / 10,000: VAE 0.28 / 0.33 / 0.40 / 0.54, TPS-TVAE 0.42 / 0.41 /
0.44 / 0.52, Affine-DTVAE 0.68 / 0.68 / 0.98 / 1.05, TPS-DTVAE 1.36 / 2.74 / 4.08 / 3.93:
past ~1,000 rows the activations leave the cache and the per-sample TPS solve slows down."""


def make_optimizer(model: torch.nn.Module, config: Config, compiled: bool = False
                   ) -> FlatAdadelta | TorchOptimizer:
    """The optimiser over ``model``'s parameters, re-seated in one flat buffer
    (:class:`tvae.optim.FlatParameters`; call after ``model.to(device)``): Adadelta with
    Lasagne's defaults (lr 1.0, rho 0.95, eps 1e-6: the paper's) as one pass over the buffer
    (fused when ``compiled``), or ``torch.optim.Adam``. ``.flat`` holds the buffers."""
    flat = FlatParameters(model)
    if config.optimizer == "adadelta":
        return FlatAdadelta(flat, lr=config.learning_rate, compiled=compiled)
    return TorchOptimizer(flat, torch.optim.Adam(flat.params, lr=config.learning_rate))


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


@torch.no_grad()
def posterior_mean_bce(model: VAE, x: Tensor, batch_size: int = EVAL_BCE_BATCH) -> float:
    """The original's reconstruction metric (its experiment 1): the Bernoulli cross-entropy of
    the deterministic reconstruction (``z`` = posterior mean, ``u`` its deterministic value),
    outputs clipped to ``[1e-6, 1 - 1e-6]``, summed over the 784 pixels and averaged over
    ``x`` ``(N, 784)``; nats per digit, accumulated in float64."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        post = model.encode(xb)
        total -= log_bernoulli(xb, model.decode(post.mu_z, post.u)).double().sum()
    model.train(was_training)
    return total.item() / len(x)


def set_mean_pose(model: VAE, x_train: Tensor) -> None:
    """Store the training-set mean pose in ``model.u_mean`` (pose models; nothing for the
    VAE): the one place it is written, once, after the last epoch."""
    if model.has_pose:
        model.u_mean.copy_(mean_pose(model, x_train))


# ----------------------------------------------------------------------- checkpoints ----
def load_model(path: str | Path, device: str | torch.device | None = "cpu") -> tuple[VAE, dict]:
    """The model stored in a checkpoint (in eval mode) and the checkpoint dict."""
    dev = select_device(device)
    state = read_checkpoint(path, dev)
    config = Config.from_dict(state["config"])
    model = build_model(config).to(dev)
    load_weights(model, state, f"checkpoint {path} does not match the {config.model} model of this "
                 "tvae; retrain it")
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
    step_modes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> dict:
        """:func:`run_summary` of the history."""
        return run_summary(self.history)


def run_summary(history: list[dict]) -> dict:
    """The run's posterior-mean test BCE (:func:`posterior_mean_bce`, nats): its value after
    the last epoch (``test_bce_mean_last``), its lowest value (``test_bce_mean_min``, the
    original's reported number) and the epoch where it occurred (``test_bce_mean_min_epoch``,
    the first one on ties). Empty before the first epoch."""
    rows = [r for r in history if "test_bce_mean" in r]
    if not rows:
        return {}
    best = min(rows, key=lambda r: r["test_bce_mean"])
    return {"test_bce_mean_last": rows[-1]["test_bce_mean"],
            "test_bce_mean_min": best["test_bce_mean"], "test_bce_mean_min_epoch": best["epoch"]}


LossHook = Callable[[int, int, Tensor], Tensor]
"""``hook(epoch, batch, loss) -> loss`` (1-based epoch and batch), applied to each step's loss
before backward: a test's way to inject faults (see :func:`nan_loss_at`)."""


def nan_loss_at(epoch: int, batch: int) -> LossHook:
    """A :data:`LossHook` that turns the loss of ``(epoch, batch)`` into NaN (tests)."""
    def hook(e: int, b: int, loss: Tensor) -> Tensor:
        return loss * float("nan") if (e, b) == (epoch, batch) else loss
    return hook


def _test_hook_from_env() -> LossHook | None:
    """``TVAE_TEST_NAN_AT='epoch:batch'`` (1-based): :func:`nan_loss_at` for tests that drive
    the command line in another process."""
    v = os.environ.get("TVAE_TEST_NAN_AT")
    if not v:
        return None
    e, b = v.split(":")
    return nan_loss_at(int(e), int(b))


@dataclass
class Run:
    """The state of one training run: what a checkpoint holds, plus the step function."""

    config: Config
    model: VAE
    opt: FlatAdadelta | TorchOptimizer
    perm_gen: torch.Generator
    noise_gen: torch.Generator
    step_loss: Callable[[Tensor, Tensor, Tensor | None], Tensor]
    history: list[dict] = field(default_factory=list)
    step_modes: list[str] = field(default_factory=list)
    start_epoch: int = 0

    @property
    def compiled(self) -> bool:
        return bool(getattr(self.step_loss, "compiled", False))


def start_run(config: Config, dev: torch.device, compile: bool | None = None) -> Run:
    """A fresh run: the model built from the seed on ``dev``, its optimiser over one flat
    buffer, the permutation generator (CPU, ``seed``) and the noise generator (``dev``,
    ``seed + 1``); the step compiled or not (:func:`tvae.step.use_compile`)."""
    torch.manual_seed(config.seed)
    model = build_model(config).to(dev)
    compiled = use_compile(dev, compile)
    opt = make_optimizer(model, config, compiled=compiled)
    _log.info("%s on %s: %s step (compiled and eager weights differ in the last bits; the "
              "checkpoint's step_modes records which ran)", config.label(), dev,
              "compiled" if compiled else "eager")
    return Run(config, model, opt, torch.Generator().manual_seed(config.seed),
               torch.Generator(device=dev).manual_seed(config.seed + 1),
               compiled_loss(model) if compiled else eager_loss(model))


def resume_run(run: Run, out: Path, data, dev: torch.device) -> None:
    """Load the checkpoint ``out`` into ``run`` after checking that it comes from the same
    config (epochs aside, and no more epochs than asked) and the same data."""
    config = run.config
    state = read_checkpoint(out, dev)
    diff = [d for d in config_mismatch(Config.from_dict(state["config"]), config)
            if not d.startswith("epochs ")]
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
    run.model.load_state_dict(state["model"])
    run.opt.load_state_dict(state["optimizer"])
    run.perm_gen.set_state(state["rng"]["perm"])
    run.noise_gen.set_state(state["rng"]["noise"].to(run.noise_gen.get_state().device))
    torch.set_rng_state(state["rng"]["torch"])
    run.history = list(state["history"])
    run.step_modes = list(state.get("step_modes", []))
    run.start_epoch = state["epoch"]
    mode = "compiled" if run.compiled else "eager"
    if run.step_modes and run.start_epoch < config.epochs and set(run.step_modes) != {mode}:
        warnings.warn(f"resuming {out} ({'/'.join(sorted(set(run.step_modes)))} steps so far) with "
                      f"{mode} steps: the weights will differ in the last bits from an "
                      "uninterrupted run; the checkpoint records each epoch's mode (step_modes)",
                      stacklevel=3)


def snapshot(run: Run, data, epoch: int, complete: bool) -> dict:
    """The checkpoint dict of ``run`` after ``epoch``."""
    return {"format_version": FORMAT_VERSION, "model_version": MODEL_VERSION,
            "config": run.config.to_dict(),
            "data_identity": data.identity, "data_root": data.meta.get("root"),
            "epoch": epoch, "complete": complete,
            "model": run.model.state_dict(), "optimizer": run.opt.state_dict(),
            "rng": {"perm": run.perm_gen.get_state(), "noise": run.noise_gen.get_state().cpu(),
                    "torch": torch.get_rng_state()},
            "history": run.history, "step_modes": run.step_modes,
            "summary": run_summary(run.history)}


def check_finite(losses: Tensor, grad_sums: Tensor, epoch: int, label: str, out: Path | None) -> None:
    """Raise the :class:`TrainingError` of the first non-finite loss or gradient of the epoch
    (``losses``, ``grad_sums``: one entry per batch, on the device; one host sync). The error
    is raised before the epoch's checkpoint is written, so the last good one stays."""
    bad = ~(torch.isfinite(losses) & torch.isfinite(grad_sums))
    if not bad.any():
        return
    b = int(bad.nonzero()[0, 0])
    lv = losses[b].item()
    what = f"non-finite loss ({lv})" if not math.isfinite(lv) else "non-finite gradient"
    kept = (f"the last good checkpoint (epoch {epoch - 1}) is kept at {out}"
            if out is not None and epoch > 1 else "no checkpoint was written")
    raise TrainingError(f"{what} at epoch {epoch}, batch {b + 1} of {label}; {kept}; "
                        "lower the learning rate or try another --seed")


def train_epoch(run: Run, x_train: Tensor, epoch: int, *, loss_hook: LossHook | None = None,
                bar=None, out: Path | None = None) -> dict:
    """One epoch of minibatch steps over one seeded permutation of ``x_train``; returns the
    history row's ``epoch``, ``seconds`` (the loop's wall time) and ``train_loss`` (mean
    per-digit loss). Per step: noise drawn from the run's generator, loss (eager or compiled),
    backward into the flat gradient, its sum kept for the non-finite check, the update. No
    host synchronisation until the epoch's end."""
    from .data import batch_indices, num_batches

    config, model, opt = run.config, run.model, run.opt
    flat, dev = opt.flat, x_train.device
    n = len(x_train)
    t0 = time.perf_counter()
    nb = num_batches(n, config.batch_size)
    losses = torch.empty(nb, device=dev)
    grad_sums = torch.empty(nb, device=dev)
    sizes = []
    mode_before = run.compiled
    for b, idx in enumerate(batch_indices(n, config.batch_size, run.perm_gen, device=dev)):
        xb = x_train[idx]
        eps_z, eps_u = model.draw_noise(len(xb), run.noise_gen, dev)
        flat.zero_grad()
        loss = run.step_loss(xb, eps_z, eps_u)
        if loss_hook is not None:
            loss = loss_hook(epoch, b + 1, loss)
        loss.backward()
        losses[b] = loss.detach()
        grad_sums[b] = flat.grad_sum()
        opt.step()
        sizes.append(len(xb))
        if bar is not None:
            bar.update(1)
    check_finite(losses, grad_sums, epoch, config.label(), out)
    running = 0.0
    for lv, size in zip(losses.tolist(), sizes, strict=True):
        running += lv * size
    run.step_modes.append("compiled" if mode_before and run.compiled
                          else "eager" if not mode_before else "compiled+eager")
    if bar is not None:
        bar.set_postfix(epoch=epoch, loss=f"{running / n:.2f}", refresh=False)
    return {"epoch": epoch, "seconds": time.perf_counter() - t0, "train_loss": running / n}


def evaluate_epoch(model: VAE, data, config: Config, last: bool) -> dict:
    """The history row's evaluation: the ELBO terms (one seeded draw) on the first 2,000
    digits of each split, or after the last epoch on the first 10,000 training digits and the
    whole test set (``n_eval_train``, ``n_eval_test`` say which), and the posterior-mean test
    BCE on the whole test set (``test_bce_mean``) after every epoch."""
    x_train, x_test = data.x_train, data.x_test
    n_tr, n_te = (EVAL_TRAIN_MAX, len(x_test)) if last else (EVAL_CURVE_MAX, EVAL_CURVE_MAX)
    row = {"n_eval_train": min(n_tr, len(x_train)), "n_eval_test": min(n_te, len(x_test))}
    for split, xs in (("train", x_train[:n_tr]), ("test", x_test[:n_te])):
        for k, v in evaluate_terms(model, xs, seed=config.seed + 2).items():
            row[f"{split}_{k}"] = v
    row["test_bce_mean"] = posterior_mean_bce(model, x_test)
    return row


def _prepare_data(config: Config, data, data_dir, dev: torch.device):
    """The run's dataset on ``dev``: ``data`` checked against the config, else loaded."""
    from . import data as tdata

    if data is None:
        return tdata.load_dataset(config.dataset, data_dir, device=dev,
                                  train_size=config.train_size, seed=config.seed)
    if data.name != config.dataset:
        raise ConfigError(f"data is {data.name!r} but the config says dataset {config.dataset!r}; "
                          "pass matching data or omit it")
    if config.train_size is not None and len(data.x_train) != config.train_size:
        raise ConfigError(f"data has {len(data.x_train)} training digits but the config says "
                          f"train_size {config.train_size}; pass matching data or omit it")
    return data.to(dev)


def _progress_bar(config: Config, n_steps: int, progress: bool | None):
    """A tqdm bar over ``n_steps`` batches, or ``None``; ``progress=None`` follows
    ``$TVAE_PROGRESS`` (``0`` turns it off, as the book build does)."""
    if progress is None:
        progress = os.environ.get("TVAE_PROGRESS", "1") != "0"
    if not progress or n_steps <= 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=n_steps, desc=config.label(), unit="batch", leave=False, mininterval=1.0)


@torch.enable_grad()  # callable from inside torch.no_grad()
def train(config: Config, data=None, *, out: str | Path | None = None, resume: bool = False,
          device: str | torch.device | None = None, data_dir: str | Path | None = None,
          progress: bool | None = None, nan_at: tuple[int, int] | None = None,
          on_epoch=None, loss_hook: LossHook | None = None,
          compile: bool | None = None) -> TrainResult:
    """Train ``config`` and return the model and its history.

    ``data``: a :class:`tvae.data.Dataset` (else loaded from ``data_dir`` / ``$TVAE_DATA``).
    ``out``: checkpoint path, rewritten atomically after every epoch. ``resume``: continue
    from ``out`` if it exists (it must come from the same config and data).
    ``on_epoch(epoch, row)`` is called after each epoch (for live plots). ``progress``: a tqdm
    bar; ``None`` follows ``$TVAE_PROGRESS``. ``compile``: compile the step (``None``: see
    :func:`tvae.step.use_compile`). Tests: ``loss_hook`` (:data:`LossHook`), or ``nan_at =
    (epoch, batch)`` (1-based) or ``$TVAE_TEST_NAN_AT`` for :func:`nan_loss_at`.
    """
    from .data import num_batches

    configure_threads()
    dev = select_device(device)
    data = _prepare_data(config, data, data_dir, dev)
    n_batches = num_batches(len(data.x_train), config.batch_size)  # checks the batch size
    out = Path(out) if out is not None else None
    run = start_run(config, dev, compile)
    if resume and out is not None and out.exists():
        resume_run(run, out, data, dev)
    if nan_at is not None:
        loss_hook = nan_loss_at(*nan_at)
    loss_hook = loss_hook or _test_hook_from_env()
    bar = _progress_bar(config, (config.epochs - run.start_epoch) * n_batches, progress)

    run.model.train()
    try:
        for epoch in range(run.start_epoch + 1, config.epochs + 1):
            row = train_epoch(run, data.x_train, epoch, loss_hook=loss_hook, bar=bar, out=out)
            last = epoch == config.epochs
            row.update(evaluate_epoch(run.model, data, config, last))
            run.history.append(row)
            if last:
                set_mean_pose(run.model, data.x_train)
            run.model.train()
            if out is not None:
                save_checkpoint(out, snapshot(run, data, epoch, last))
            if on_epoch is not None:
                on_epoch(epoch, row)
    finally:
        if bar is not None:
            bar.close()
    if config.epochs == 0:
        set_mean_pose(run.model, data.x_train)
    if out is not None and (config.epochs == 0 or run.start_epoch == config.epochs):
        save_checkpoint(out, snapshot(run, data, config.epochs, True))
    run.model.eval()
    return TrainResult(run.model, run.history, out, config, run.step_modes)
