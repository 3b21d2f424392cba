"""Chapter 04, training: every model of the book trained (or loaded from the cache), its time,
its learning curves, and the sentences the chapter prints about them.

Units: ELBO terms are per-digit nats; times are seconds (``ms_per_batch``: milliseconds).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import pandas as pd

from ..cache import entry_path, is_cached
from ..config import Config
from ..errors import CheckpointError
from ..io import read_checkpoint
from ..profiles import Profile
from . import registry, store
from .text import signed


def history_frame(checkpoint: dict) -> pd.DataFrame:
    """A checkpoint's per-epoch history as a DataFrame (columns ``epoch``, ``seconds``,
    ``train_loss``, ``train_bce``/``kl_z``/``kl_u``/``elbo``, ``test_...``; nats per digit)."""
    return pd.DataFrame(checkpoint["history"])


def _run_row(cfg: Config, n_train: int, checkpoint: dict, cached: bool, wall: float) -> dict:
    """One row of :func:`train_all`'s table (see there)."""
    h = checkpoint["history"]
    last = h[-1] if h else {}
    seconds = float(sum(r["seconds"] for r in h))
    row = {"label": registry.label(cfg), "model": cfg.model, "zdim": cfg.zdim, "dim_u": cfg.udim,
           "prior": cfg.prior, "rank": cfg.rank, "tps_start": cfg.tps_start, "dataset": cfg.dataset,
           "optimizer": cfg.optimizer, "seed": cfg.seed, "epochs": cfg.epochs, "train_size": n_train,
           "cached": cached, "train_seconds": seconds, "wall_seconds": wall,
           "ms_per_batch": 1000 * seconds / max(1, len(h) * math.ceil(n_train / cfg.batch_size))}
    for k in ("bce", "kl_z", "kl_u", "elbo"):
        row[f"test_{k}"] = last.get(f"test_{k}", float("nan"))
    return row


def train_all(P: Profile, configs: Iterable[Config] | None = None, *,
              log: Callable[[str], None] | None = print) -> pd.DataFrame:
    """Train (or load from the cache) every configuration (default: all of
    :func:`tvae.book.registry.needed_models`), in order, logging one line each.

    Returns one row per model: ``label``, the config fields that vary (``model``, ``zdim``,
    ``dim_u``, ``prior``, ``rank``, ``tps_start``, ``dataset``, ``optimizer``, ``seed``, ``epochs``,
    ``train_size``), ``cached`` (it was already trained), ``train_seconds`` (the training
    loops' wall time summed over epochs, from the checkpoint history; evaluation excluded),
    ``ms_per_batch`` (the same per minibatch, milliseconds),
    ``wall_seconds`` (time spent now, training or loading) and the last epoch's test terms
    ``test_bce``, ``test_kl_z``, ``test_kl_u``, ``test_elbo``.
    """
    configs = registry.needed_models(P) if configs is None else list(configs)
    rows = []
    t_all = time.perf_counter()
    for i, cfg in enumerate(configs, 1):
        data = store.data_for(P, cfg)
        cached = is_cached(cfg, data.identity)
        t0 = time.perf_counter()
        ck = store.checkpoint(P, cfg)
        row = _run_row(cfg, len(data.x_train), ck, cached, time.perf_counter() - t0)
        rows.append(row)
        if log is not None:
            how = "from the cache" if cached else f"trained in {row['wall_seconds']:.1f} s"
            log(f"[{i:>2}/{len(configs)}] {row['label']:<44} {how:<20} "
                f"test ELBO {row['test_elbo']:8.2f} nats  (total {time.perf_counter() - t_all:.0f} s)")
    return pd.DataFrame(rows)


def group_table(P: Profile) -> pd.DataFrame:
    """The registry's model groups under ``P``: one row per group (index ``group``) with the
    number of ``models`` and their ``configurations`` (labels, comma-separated)."""
    return pd.DataFrame([{"group": name, "models": len(cfgs),
                          "configurations": ", ".join(registry.label(c) for c in cfgs)}
                         for name, cfgs in registry.model_groups(P).items()]).set_index("group")


def count_sentence(P: Profile) -> str:
    """The chapter's sentence on how many distinct models the profile trains."""
    return f"In all, **{len(registry.needed_models(P))} distinct models** under the *{P.name}* profile."


def final_terms(P: Profile, runs: pd.DataFrame) -> pd.DataFrame:
    """The last epoch's test terms of the main models (:func:`tvae.book.registry.main_models`)
    from :func:`train_all`'s table, indexed by label: ``dim u``, ``BCE``, ``KL(z)``, ``KL(u')``,
    ``ELBO`` (nats per digit)."""
    labels = [registry.label(c) for c in registry.main_models(P)]
    rows = runs.set_index("label").loc[labels]
    return rows[["dim_u", "test_bce", "test_kl_z", "test_kl_u", "test_elbo"]].rename(
        columns={"dim_u": "dim u", "test_bce": "BCE", "test_kl_z": "KL(z)", "test_kl_u": "KL(u')",
                 "test_elbo": "ELBO"})


def time_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Training time per model kind from :func:`train_all`'s table: ``models``, the median
    ``ms per batch of 100`` and the ``total seconds`` of training loops, indexed by display label."""
    summary = runs.groupby("model", sort=False).agg(
        models=("label", "size"), ms_per_batch=("ms_per_batch", "median"),
        total_seconds=("train_seconds", "sum"))
    summary.index = [registry.LABELS[m] for m in summary.index]
    return summary.rename(columns={"ms_per_batch": "median ms per batch of 100",
                                   "total_seconds": "total seconds"})


def time_sentence(runs: pd.DataFrame) -> str:
    """The chapter's sentence on the total training time of :func:`train_all`'s table."""
    return (f"Total training time of the {len(runs)} models: **{runs.train_seconds.sum() / 60:.1f} "
            f"minutes** of training loops (this page's own run spent "
            f"{runs.wall_seconds.sum() / 60:.1f} minutes training or loading them).")


HISTORY_KEYS = ("label", "model", "zdim", "dim_u", "prior", "rank", "tps_start", "init", "sampling",
                "hidden", "dataset", "optimizer", "seed", "epochs")
"""The configuration columns that lead each row of :func:`all_histories` (what tells two
models apart in the book; ``hidden`` as written in the label, e.g. ``256x256``)."""


def all_histories(P: Profile, configs: Iterable[Config] | None = None) -> pd.DataFrame:
    """Every model's per-epoch history (default: all of :func:`tvae.book.registry.needed_models`)
    in one long table, one row per (model, epoch): :data:`HISTORY_KEYS` then the history's
    columns (:func:`history_frame`), so that anyone can check every model's convergence. Loads
    the models from the cache (trains nothing new if :func:`train_all` ran first)."""
    configs = registry.needed_models(P) if configs is None else list(configs)
    frames = []
    for cfg in configs:
        h = history_frame(store.checkpoint(P, cfg))
        keys = {"label": registry.label(cfg), "model": cfg.model, "zdim": cfg.zdim,
                "dim_u": cfg.udim, "prior": cfg.prior, "rank": cfg.rank, "tps_start": cfg.tps_start,
                "init": cfg.init, "sampling": cfg.sampling,
                "hidden": "x".join(str(n) for n in cfg.hidden), "dataset": cfg.dataset,
                "optimizer": cfg.optimizer, "seed": cfg.seed, "epochs": cfg.epochs}
        frames.append(h.assign(**keys)[list(HISTORY_KEYS) + list(h.columns)])
    return pd.concat(frames, ignore_index=True)


def cache_status(P: Profile, configs: Iterable[Config] | None = None) -> pd.DataFrame:
    """Where the profile's training stands, read from the model cache without training or
    waiting on anything: one row per model (default: :func:`tvae.book.registry.needed_models`) with
    ``label``, ``model``, ``seed``, ``groups`` (the registry groups that use it, ``; ``-joined),
    ``epochs``, ``epochs_done`` (0 when missing; a partial entry counts its saved epochs),
    ``complete`` and ``train_seconds`` (training loops so far, from the history)."""
    groups: dict[str, list[str]] = {}
    for name, cfgs in registry.model_groups(P).items():
        for c in cfgs:
            groups.setdefault(c.key(), []).append(name)
    rows = []
    for cfg in registry.needed_models(P) if configs is None else configs:
        path = entry_path(cfg, store.data_for(P, cfg).identity)
        try:
            ck = read_checkpoint(path) if path.exists() else {}
        except CheckpointError:          # being written or corrupt: as good as missing here
            ck = {}
        h = ck.get("history", [])
        rows.append({"label": registry.label(cfg), "model": cfg.model, "seed": cfg.seed,
                     "groups": "; ".join(groups[cfg.key()]), "epochs": cfg.epochs,
                     "epochs_done": len(h), "complete": bool(ck.get("complete")),
                     "train_seconds": float(sum(r["seconds"] for r in h))})
    return pd.DataFrame(rows)


def status_lines(status: pd.DataFrame, workers: int = 1) -> list[str]:
    """Readable lines on :func:`cache_status`: models and epochs done per seed, and an estimate
    of the training-loop time left (each kind's mean seconds per epoch so far, else the mean
    over all kinds, times its remaining epochs, over ``workers`` parallel workers; the per-epoch
    evaluation and loading are not counted, so the wall time is somewhat longer)."""
    out = []
    for seed, g in status.groupby("seed"):
        out.append(f"seed {seed}: {int(g.complete.sum())}/{len(g)} models complete, "
                   f"{int(g.epochs_done.sum())}/{int(g.epochs.sum())} epochs")
    done = status[status.epochs_done > 0]
    overall = done.train_seconds.sum() / max(1, done.epochs_done.sum())
    per_epoch = (done.groupby("model").train_seconds.sum()
                 / done.groupby("model").epochs_done.sum()).to_dict()
    left = sum((r.epochs - r.epochs_done) * per_epoch.get(r.model, overall)
               for r in status.itertuples())
    if done.empty:
        out.append("no epoch trained yet: no estimate of the time left")
    else:
        out.append(f"training loops left: about {left / 3600:.1f} h on one core, "
                   f"{left / 3600 / max(1, workers):.1f} h with {workers} worker(s) "
                   "(evaluation after each epoch not counted)")
    return out


def main_histories(P: Profile) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """``({label: history_frame}, {label: colour})`` of the main models (the five kinds at
    dim z 20), for the chapter's learning curves."""
    main = registry.main_models(P)
    histories = {registry.label(c): history_frame(store.checkpoint(P, c)) for c in main}
    colors = {registry.label(c): registry.COLORS[c.model] for c in main}
    return histories, colors


def curve_split(h: pd.DataFrame, split: str = "test") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of a history (:func:`history_frame`) evaluated on ``split``'s per-epoch curve
    subset, and the others. The trainer evaluates every epoch but the last on the first
    ``EVAL_CURVE_MAX`` digits of each split and the last epoch on more (``n_eval_train`` /
    ``n_eval_test`` say how many), so only the first group is one curve; the last epoch's
    numbers are on other digits. A one-epoch history is all curve."""
    col = f"n_eval_{split}"
    if col not in h or len(h) == 0:
        return h, h.iloc[0:0]
    same = h[col] == h[col].iloc[0]
    return h[same], h[~same]


def training_findings(histories: dict[str, pd.DataFrame]) -> list[str]:
    """Markdown sentences on training curves (``{label: history_frame(...)}``): for each model
    the final test ELBO (last epoch, its final evaluation set), the change between the last two
    epochs evaluated on the same per-epoch subset of test digits, and the train-test ELBO gap."""
    out = []
    for name, h in histories.items():
        last = h.iloc[-1]
        n_last = f" on {int(last.n_eval_test):,} test digits" if "n_eval_test" in h else ""
        s = f"**{name}**: test ELBO {last.test_elbo:.2f} nats after {int(last.epoch)} epoch(s){n_last}"
        curve, _ = curve_split(h, "test")
        if len(curve) > 1:
            a, b = curve.iloc[-2], curve.iloc[-1]
            d = b.test_elbo - a.test_elbo
            sub = f" (the first {int(b.n_eval_test):,} test digits)" if "n_eval_test" in h else ""
            s += f"; {signed(d, 2)} nats from epoch {int(a.epoch)} to {int(b.epoch)}{sub}"
            s += ", still improving" if d > 0 else ", no longer improving"
        gap = last.train_elbo - last.test_elbo
        s += f"; train minus test ELBO {signed(gap, 2)} nats."
        out.append(s)
    return out


__all__ = ["history_frame", "train_all", "group_table", "count_sentence", "final_terms",
           "time_summary", "time_sentence", "HISTORY_KEYS", "all_histories", "cache_status",
           "status_lines", "main_histories", "curve_split", "training_findings"]
