"""Chapter 05, experiment 1: test reconstruction error against the latent size, and the
sentences the chapter prints about it.

Written to ``results/<profile>/recon_vs_dim.csv``. Units: errors and ELBOs are per-digit nats
(the Bernoulli cross-entropy summed over the 784 pixels).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import evaluate as ev
from ..config import Config
from ..io import write_csv
from ..models import VAE
from ..priors import kl_std_normal
from ..profiles import Profile, resolve
from ..train import run_summary
from . import registry, store
from .registry import LABELS, PAPER_KINDS
from .seed_rule import NOT_REPRODUCED, ONE_SEED, REPRODUCED, UNDECIDED, order_verdict
from .text import count, pm, signed

RECON_COLUMNS = ["model", "dim_z", "dim_u", "seed", "bce_mean_best", "best_epoch", "bce_mean_last",
                 "bce_sampled_last", "kl_z", "active_z"]
"""The leading columns of ``recon_vs_dim.csv`` (one row per model, dim z and seed); see
:data:`METRICS` for which number is which."""

METRICS = {
    "bce_mean_best": ("the original's number: posterior-mean reconstruction (z = posterior mean, u its "
                      "deterministic value), BCE summed over the 784 pixels, averaged over all 10,000 "
                      "test digits, at the epoch where it was lowest",
                      "a selection on the test set, as the original did"),
    "bce_mean_last": ("the same posterior-mean BCE after the last epoch",
                      "no selection: the run as it ended"),
    "bce_sampled_last": ("the reconstruction term of the ELBO after the last epoch: one z drawn from "
                         "q(z|x) per digit, on the profile's test digits",
                         "no selection; higher than the posterior-mean BCE by the noise of the draw"),
}
"""The three test reconstruction errors of chapter 05 (nats per digit): ``{column: (what it is,
how it was selected)}``. The chapter prints them as one table, so that no 'test BCE' goes
unexplained."""

METRIC_NAMES = {"bce_mean_best": "best-epoch posterior-mean BCE",
                "bce_mean_last": "last-epoch posterior-mean BCE",
                "bce_sampled_last": "sampled-z BCE (last epoch)"}
"""How the sentences name the three errors of :data:`METRICS`."""

ACTIVE_NATS = 0.01
"""A latent dimension is *active* when its mean KL(q || prior) over the test digits exceeds this
(nats); the others carry (almost) no information about the digit."""


@torch.no_grad()
def kl_per_dim(model: VAE, x: torch.Tensor, batch_size: int = 2000) -> np.ndarray:
    """Mean over ``x`` ``(N, 784)`` of KL(q(z_j|x) || N(0, 1)) for each dimension j of z:
    ``(dim z,)`` nats (:func:`tvae.priors.kl_std_normal` of each dimension alone)."""
    model.eval()
    total = None
    for i in range(0, len(x), batch_size):
        post = model.encode(x[i:i + batch_size])
        kl = kl_std_normal(post.mu_z.unsqueeze(-1), post.logsigma_z.unsqueeze(-1))  # (B, dim z)
        kl = kl.double().sum(0)
        total = kl if total is None else total + kl
    return (total / len(x)).cpu().numpy()


def active_dims(model: VAE, x: torch.Tensor) -> int:
    """How many dimensions of z are active on ``x`` (see :data:`ACTIVE_NATS`)."""
    return int((kl_per_dim(model, x) > ACTIVE_NATS).sum())


def _run_row(P: Profile, cfg: Config, x: torch.Tensor) -> dict:
    """One row of :func:`recon_vs_dim` (its docstring lists the columns) for the trained model
    of ``cfg``, evaluated on the test digits ``x``."""
    model, ck = store.trained(P, cfg)
    t = ev.elbo_terms(model, x, seed=cfg.seed)
    s = run_summary(ck.get("history") or [])
    if s:
        best, epoch, last, source = (s["test_bce_mean_min"], s["test_bce_mean_min_epoch"],
                                     s["test_bce_mean_last"], "history")
    else:
        best, epoch, last, source = (math.nan, math.nan,
                                     ev.reconstruction_error(model, x)["bce"], "computed")
    return {"model": cfg.model, "dim_z": cfg.zdim, "dim_u": cfg.udim, "seed": cfg.seed,
            "bce_mean_best": best, "best_epoch": epoch, "bce_mean_last": last,
            "bce_sampled_last": t["bce"], "kl_z": t["kl_z"], "active_z": active_dims(model, x),
            "bce_mean_source": source, "test_elbo": t["elbo"], "test_kl_u": t["kl_u"],
            "latent_total": cfg.zdim + cfg.udim, "n_test": len(x),
            "train_size": len(store.data_for(P, cfg).x_train), "epochs": cfg.epochs,
            "label": LABELS[cfg.model]}


def recon_vs_dim(P: Profile, *, write: bool = True, out_dir: str | Path | None = None) -> pd.DataFrame:
    """Experiment 1: test reconstruction error against the latent size, one row per model kind
    (VAE, Affine-TVAE, TPS-TVAE, Affine-DTVAE), dim z of ``P.zdims`` and seed of ``P.seed_list``.

    Columns :data:`RECON_COLUMNS` (the three errors are described in :data:`METRICS`):
    ``bce_mean_best`` and ``best_epoch`` come from the training history's ``test_bce_mean``
    (all 10,000 test digits after every epoch) and are NaN for a model whose history lacks it
    (trained before it was logged); ``bce_mean_last`` is the history's last value, or else
    computed now on the profile's test digits (``bce_mean_source`` says which:
    'history' | 'computed'); ``bce_sampled_last``, ``kl_z`` (nats), ``active_z`` (dimensions of
    z whose mean KL exceeds :data:`ACTIVE_NATS`) on the profile's test digits
    (:func:`tvae.book.store.test_x`). Extra columns: ``test_elbo``, ``test_kl_u``,
    ``latent_total`` (dim z + dim u), ``n_test``, ``train_size``, ``epochs``, ``label``.
    Written to ``<out_dir or P.results_dir()>/recon_vs_dim.csv`` when ``write``.
    ``attrs["seconds"]``: the wall time of the call (loading or training the models included;
    not written to the CSV).
    """
    t0 = time.perf_counter()
    x = store.test_x(P)
    rows = [_run_row(P, cfg, x) for cfg in registry.exp1_models(P)]
    df = pd.DataFrame(rows)
    if write:
        write_csv(df, Path(out_dir or P.results_dir()) / "recon_vs_dim.csv")
    df.attrs["seconds"] = time.perf_counter() - t0
    return df


LEGACY_COLUMNS = {"test_bce": "bce_sampled_last", "test_kl_z": "kl_z", "test_bce_mean": "bce_mean_last"}
"""Columns of a ``recon_vs_dim.csv`` written before seeds (one unseeded run per point, no
per-epoch metric) and their names today (:func:`upgrade`)."""


def upgrade(df: pd.DataFrame) -> pd.DataFrame:
    """A ``recon_vs_dim`` table in today's columns: an older table (:data:`LEGACY_COLUMNS`,
    perhaps no ``seed``) gets its columns renamed, ``bce_mean_best`` and ``best_epoch`` NaN; a current
    table is returned as it is."""
    if "bce_mean_last" in df or "test_bce_mean" not in df:
        return df
    out = df.rename(columns=LEGACY_COLUMNS)
    for c in ("bce_mean_best", "best_epoch"):
        out[c] = math.nan
    if "seed" not in out:
        out["seed"] = 0
    return out


def main_metric(df: pd.DataFrame) -> str:
    """The column chapter 05 plots and judges: ``bce_mean_best`` (the original's number) when
    every row has it, else ``bce_mean_last`` (models trained before the metric was logged)."""
    df = upgrade(df)
    if "bce_mean_best" in df and df.bce_mean_best.notna().all() and len(df):
        return "bce_mean_best"
    return "bce_mean_last"


def seed_stats(values: pd.Series) -> tuple[float, float, int]:
    """``(mean, SD, n)`` of one number over seeds: the SD with ``n - 1`` in the denominator,
    NaN for a single seed (its spread is unknown, not zero)."""
    v = values.dropna().to_numpy(float)
    n = len(v)
    return (float(v.mean()) if n else math.nan, float(v.std(ddof=1)) if n > 1 else math.nan, n)


def recon_summary(df: pd.DataFrame, columns: tuple[str, ...] = ("bce_mean_best", "bce_mean_last",
                                                                 "bce_sampled_last", "kl_z", "active_z")
                  ) -> pd.DataFrame:
    """A :func:`recon_vs_dim` table reduced over seeds: one row per (model, dim z) with
    ``dim_u``, ``latent_total``, ``n_seeds``, and for each of ``columns`` its mean over seeds
    (same name) and SD over seeds (``<name>_sd``, :func:`seed_stats`)."""
    out = []
    for (m, z), g in upgrade(df).groupby(["model", "dim_z"], sort=False):
        row = {"model": m, "dim_z": z, "dim_u": g.dim_u.iloc[0],
               "latent_total": g.dim_z.iloc[0] + g.dim_u.iloc[0], "n_seeds": len(g)}
        for c in columns:
            if c in g:
                row[c], row[c + "_sd"], _ = seed_stats(g[c])
        out.append(row)
    return pd.DataFrame(out)


def vae_bce_at_total(df: pd.DataFrame, column: str = "test_bce") -> pd.Series:
    """For each row of a :func:`recon_summary` table, the VAE's ``column`` at the same total
    latent size (dim z + dim u), linearly interpolated in log(total size) between the VAE's
    measured dims; NaN outside their range."""
    v = df[df.model == "vae"].sort_values("latent_total")
    lx = np.log(v.latent_total.to_numpy(float))
    out = np.interp(np.log(df.latent_total.to_numpy(float)), lx, v[column].to_numpy(float),
                    left=np.nan, right=np.nan)
    return pd.Series(out, index=df.index, name=f"vae_{column}_same_total")


def _optimum_sentence(v: pd.DataFrame, col: str) -> str:
    """The VAE's best latent size (``v``: the VAE's rows of a summary, sorted by dim z)."""
    best = v.loc[v[col].idxmin()]
    dims = ", ".join(str(d) for d in v.dim_z)
    shape = ("the error rises again beyond it" if best.dim_z < v.dim_z.max() else
             "the error still falls at the largest dim we trained, so no interior optimum is visible")
    return (f"**VAE optimum.** Among dim z = {dims}, the VAE's {METRIC_NAMES.get(col, col)} is "
            f"lowest at dim z = "
            f"{best.dim_z} ({best[col]:.1f} nats); {shape}. The paper places the optimum "
            f"near 25 latent variables.")


def recon_findings(df: pd.DataFrame, col: str | None = None) -> list[str]:
    """Markdown sentences on experiment 1, every number taken from ``df`` (a
    :func:`recon_summary` table, seed means; or any table with one row per model and dim z):
    the VAE's best latent size, and how the transformer models compare with the VAE at the
    same dim z and at the same total latent size, in column ``col`` (default
    :func:`main_metric`)."""
    col = col or main_metric(df)
    out = []
    v = df[df.model == "vae"].sort_values("dim_z")
    if len(v):
        out.append(_optimum_sentence(v, col))
    others = df[df.model != "vae"]
    if not (len(v) and len(others)):
        return out
    merged = others.merge(v[["dim_z", col]], on="dim_z", suffixes=("", "_vae"))
    same_total = vae_bce_at_total(df, col).loc[others.index]
    parts, parts_total = [], []
    for m, g in merged.groupby("model", sort=False):
        d = g[col] - g[col + "_vae"]
        parts.append(f"{LABELS[m]} {signed(d.mean())} nats ({(d < 0).sum()} of {len(d)} dims better)")
        t = (others.loc[others.model == m, col] - same_total[others.model == m]).dropna()
        if len(t):
            parts_total.append(f"{LABELS[m]} {signed(t.mean())} nats ({count(len(t), 'point')})")
    out.append(f"**Against the VAE at the same dim z** (mean difference in "
               f"{METRIC_NAMES.get(col, col)}, negative = "
               "better than the VAE): " + "; ".join(parts) + ".")
    if parts_total:
        out.append("**Against the VAE at the same total latent size** dim z + dim u (the VAE's "
                   "curve interpolated): " + "; ".join(parts_total) + ".")
    else:
        out.append("No transformer model falls inside the VAE's range of total latent sizes, "
                   "so no same-size comparison is possible in this profile.")
    rank = df.groupby("model")[col].mean().sort_values()
    out.append(f"**Ranking by mean {METRIC_NAMES.get(col, col)} over the dims:** " + " < ".join(
        f"{LABELS[m]} ({b:.1f})" for m, b in rank.items()) + ". The paper: transformer models "
               "reconstruct better than the VAE, mostly TPS-TVAE and Affine-DTVAE.")
    return out


# ------------------------------------------------------------- the chapter's text ----
def seed_table_heading(s: pd.DataFrame, col: str) -> str:
    """The Markdown line above a table of :func:`seed_mean_view`: which error it shows and on
    how many seeds per point (``s``: :func:`recon_summary`; ``col``: :func:`main_metric`)."""
    return f"**{METRIC_NAMES[col]}** ({int(s.n_seeds.min())} seed(s) per point):"


def measurement_note(df: pd.DataFrame, seconds: float | None = None) -> str:
    """Markdown under the measurement of chapter 05: how many models were evaluated on how
    many digits in how long (``seconds``, default :func:`recon_vs_dim`'s ``attrs["seconds"]``),
    and the notes a reader needs when the best-epoch metric is missing (models trained before
    it was logged) or the profile has one seed."""
    seconds = df.attrs["seconds"] if seconds is None else seconds
    s = recon_summary(df)
    n_seeds, n_test = int(s.n_seeds.min()), int(df.n_test.iloc[0])
    out = [f"{len(df)} models ({len(s)} points x {n_seeds} seed(s)) evaluated on "
           f"{n_test:,} test digits in {seconds:.1f} s."]
    if main_metric(df) != "bce_mean_best":
        out.append("**Note.** These models were trained before the training history logged the "
                   "posterior-mean test BCE after every epoch: the best-epoch number and its epoch "
                   "are empty (NaN), and the last-epoch posterior-mean BCE was computed directly "
                   f"from the trained model on the profile's {n_test:,} test digits. The main curve "
                   "below is that last-epoch value.")
    if n_seeds == 1:
        out.append("**One seed per point in this profile:** no seed spread is shown, and no "
                   "verdict of this chapter is decisive (the paper profile trains three).")
    return "\n\n".join(out)


def metrics_view(col: str) -> pd.DataFrame:
    """:data:`METRICS` as a table (index ``column``): what each error is, how it was selected,
    and whether it is the main curve (``col``) or shown beside it."""
    return pd.DataFrame([{"column": c, "what it is": what, "selection": sel,
                          "shown as": "main curve" if c == col else "beside it"}
                         for c, (what, sel) in METRICS.items()]).set_index("column")


def _kind_order(s: pd.DataFrame) -> list[str]:
    """Display names of the paper's kinds present in ``s``, in the paper's order."""
    return [LABELS[k] for k in PAPER_KINDS if k in set(s.model)]


def seed_mean_view(s: pd.DataFrame, col: str, digits: int = 2) -> pd.DataFrame:
    """A :func:`recon_summary` table as dim z x model of ``"mean ± SD"`` strings of ``col``
    (``digits`` decimals; just the mean with one seed)."""
    cell = [pm(m, d, digits) for m, d in zip(s[col], s[col + "_sd"], strict=True)]
    view = (s.assign(label=s.model.map(LABELS), v=cell)
            .pivot(index="dim_z", columns="label", values="v")[_kind_order(s)])
    return view.rename_axis("dim z")


def seed_mean_caption(s: pd.DataFrame, col: str) -> str:
    """The caption of :func:`seed_mean_view` in chapter 05 (``s``: its summary table)."""
    n_seeds = int(s.n_seeds.min())
    return (f"**{METRIC_NAMES[col]}** (nats per digit, mean over {n_seeds} seed(s)"
            + ("" if n_seeds == 1 else " ± SD over seeds") + "). Lower is better.")


def curve_shape_sentence(s: pd.DataFrame, col: str) -> str:
    """How flat each curve of a :func:`recon_summary` table is past its smallest dim z: the
    band of ``col`` (seed means) over the larger dims, its lowest dim, and how often it rises
    or falls from one dim to the next; with fewer than three larger dims, a sentence saying
    that the profile trains too few (and how many the paper profile trains)."""
    n_seeds = int(s.n_seeds.min())
    rest = s[s.dim_z > s.dim_z.min()]
    dims = sorted(rest.dim_z.unique())
    if len(dims) < 3:
        n_paper = len(resolve("paper").zdims) - 1
        return (f"This profile trains {len(dims)} dim(s) above dim z = {s.dim_z.min()}, too few "
                f"to say whether the curves level off; the paper profile trains {n_paper}.")
    parts, steady = [], []
    for kind in PAPER_KINDS:
        g = rest[rest.model == kind].sort_values("dim_z")
        steps = g[col].diff().dropna()
        ups, downs = int((steps > 0).sum()), int((steps < 0).sum())
        if ups == 0 or downs == 0:
            steady.append(f"{LABELS[kind]} {'falls' if ups == 0 else 'rises'} at every step")
        best = int(g.dim_z.iloc[g[col].argmin()])
        parts.append(f"{LABELS[kind]} {g[col].min():.1f}-{g[col].max():.1f} "
                     f"({g[col].max() - g[col].min():.1f} nats, lowest at {best}; "
                     f"{count(downs, 'fall')}, {count(ups, 'rise')})")
    n = len(PAPER_KINDS)
    verdict = (f"{n - len(steady)} of {n} curves both rise and fall between neighbouring dims"
               + (f" ({'; '.join(steady)})" if steady else "") + ". "
               + ("With one seed per point, ups and downs of this size may be seed noise (chapter "
                  "11 measures how much the seed alone moves these numbers), so the lowest point of "
                  "a curve that zigzags is not a clear optimum." if n_seeds == 1 else
                  f"Compare each step with the SD over the {n_seeds} seeds in the table above: a "
                  "step smaller than that spread is not a clear rise or fall."))
    return (f"Over dim z = {', '.join(map(str, dims))} the {METRIC_NAMES[col]} (seed means) spans: "
            + "; ".join(parts) + ". " + verdict)


def active_dims_sentence(s: pd.DataFrame) -> str:
    """The active dimensions (seed means) of each kind at the largest dim z of a
    :func:`recon_summary` table, and what a model gains from the rest."""
    largest = s.dim_z.max()
    at = s[s.dim_z == largest].assign(label=lambda f: f.model.map(LABELS)).set_index("label")
    return (f"At the largest dim z of this profile ({largest}), the active dimensions (mean over "
            "seeds) are: " + ", ".join(f"{name} {at.active_z[name]:.3g}" for name in _kind_order(s))
            + ". A model that uses fewer dimensions than it has gains nothing from the rest; the "
            "transformer models can also move information about the digit's position, size and "
            "slant into the pose, which costs no KL under the flat prior.")


def three_metrics_view(s: pd.DataFrame) -> pd.DataFrame:
    """The three errors of :data:`METRICS` side by side (seed means): rows dim z, columns
    (model, error)."""
    side = s.assign(label=s.model.map(LABELS)).set_index(["dim_z", "label"])[list(METRICS)]
    return side.rename(columns=METRIC_NAMES).unstack("label").swaplevel(axis=1)[_kind_order(s)]


def three_metrics_caption(s: pd.DataFrame) -> str:
    """The caption of :func:`three_metrics_view` (``s``: its summary table)."""
    return (f"Seed means (nats per digit, {int(s.n_seeds.min())} seed(s)); NaN where the history "
            "lacks the per-epoch metric.")


def runs_view(df: pd.DataFrame) -> pd.DataFrame:
    """Every run of a :func:`recon_vs_dim` table, :data:`RECON_COLUMNS` indexed by (model,
    dim z, seed), the model by its display name."""
    return (df[RECON_COLUMNS].assign(model=df.model.map(LABELS))
            .set_index(["model", "dim_z", "seed"]))


# ------------------------------------------------------ the initialisation ablation ----
INIT_COLUMNS = ["model", "init", "dim_z", "seed", "bce_mean_best", "best_epoch", "bce_mean_last",
                "bce_sampled_last", "kl_z", "active_z"]
"""The leading columns of ``init_ablation.csv`` (one row per model kind, initialisation and
seed): the columns of :data:`RECON_COLUMNS` with ``init`` (``glorot`` | ``torch``)."""

INITS_SHOWN = {"glorot": "Glorot (faithful)", "torch": "PyTorch default"}
"""How chapter 05 names the two initialisations of :data:`tvae.config.INITS`."""


def init_ablation(P: Profile, *, write: bool = True, out_dir: str | Path | None = None) -> pd.DataFrame:
    """The initialisation ablation (issue 10): for each model of
    :func:`tvae.book.registry.init_ablation_set` (VAE and Affine-TVAE at dim z 20, Glorot and
    PyTorch's default initialisation, every seed of ``P.seed_list``) the row
    :func:`recon_vs_dim` computes (same measures, same test digits), with its ``init``.
    Columns :data:`INIT_COLUMNS`, then ``bce_mean_source``, ``n_test``, ``train_size``,
    ``epochs``, ``label``. Written to ``<out_dir or P.results_dir()>/init_ablation.csv`` when
    ``write``."""
    x = store.test_x(P)
    rows = [{**_run_row(P, cfg, x), "init": cfg.init}
            for cfg in registry.init_ablation_set(P).values()]
    extra = ["bce_mean_source", "n_test", "train_size", "epochs", "label"]
    df = pd.DataFrame(rows)[INIT_COLUMNS + extra]
    if write:
        write_csv(df, Path(out_dir or P.results_dir()) / "init_ablation.csv")
    return df


def init_summary(df: pd.DataFrame) -> pd.DataFrame:
    """An :func:`init_ablation` table reduced over seeds: one row per (model, init) with
    ``dim_z``, ``n_seeds``, and the seed mean and SD (``<name>_sd``, :func:`seed_stats`) of
    ``active_z`` and of the :func:`main_metric` column, named ``bce`` (``metric`` says which)."""
    col = main_metric(df)
    out = []
    for (m, init), g in df.groupby(["model", "init"], sort=False):
        row = {"model": m, "init": init, "dim_z": int(g.dim_z.iloc[0]), "metric": col}
        row["active_z"], row["active_z_sd"], row["n_seeds"] = seed_stats(g.active_z)
        row["bce"], row["bce_sd"], _ = seed_stats(g[col])
        out.append(row)
    return pd.DataFrame(out)


def init_view(summary: pd.DataFrame) -> pd.DataFrame:
    """An :func:`init_summary` table for the chapter: rows (model, initialisation), the active
    dimensions of z and the error as ``"mean ± SD"`` strings."""
    col = summary.metric.iloc[0]
    view = pd.DataFrame({
        "model": summary.model.map(LABELS), "initialisation": summary.init.map(INITS_SHOWN),
        "active dims of z": [f"{pm(m, d, 1)} of {z}" for m, d, z in
                             zip(summary.active_z, summary.active_z_sd, summary.dim_z, strict=True)],
        f"{METRIC_NAMES[col]} (nats)": [pm(m, d, 2) for m, d in
                                        zip(summary.bce, summary.bce_sd, strict=True)],
        "seeds": summary.n_seeds})
    return view.set_index(["model", "initialisation"])


INIT_ANSWERS = {"yes": "Yes", "part": "In part", "no": "No"}
"""The answers of :func:`init_answer` as chapter 05 prints them."""


def _init_orders(summary: pd.DataFrame) -> dict[str, dict[str, tuple[str, str]]]:
    """Per kind of an :func:`init_summary` table, the seed rule's
    orderings (:func:`order_verdict`) of the Glorot models against PyTorch's default: key
    ``active`` for 'Glorot leaves more dimensions of z active', ``bce`` for 'Glorot reconstructs
    better' (a lower error)."""
    out = {}
    for m, g in summary.groupby("model", sort=False):
        by = g.set_index("init")
        a, b = by.loc["glorot"], by.loc["torch"]
        out[m] = {"active": order_verdict((a.active_z, a.active_z_sd, int(a.n_seeds)),
                                          (b.active_z, b.active_z_sd, int(b.n_seeds))),
                  "bce": order_verdict((a.bce, a.bce_sd, int(a.n_seeds)),
                                       (b.bce, b.bce_sd, int(b.n_seeds)), higher_is_better=False)}
    return out


def init_answer(summary: pd.DataFrame) -> str:
    """Whether the initialisation explains the unused latent dimensions, from an
    :func:`init_summary` table, by the seed rule: ``"yes"`` when for
    every kind the Glorot models leave more dimensions of z active than PyTorch's default
    (:data:`REPRODUCED` by :func:`order_verdict`) and none unused; ``"part"`` when they leave
    more active for at least one kind but some remain unused; ``"no"`` otherwise (the difference
    within the seed spread, or in PyTorch's favour)."""
    orders = _init_orders(summary)
    more = [m for m, o in orders.items() if o["active"][0] == REPRODUCED]
    glorot = summary[summary.init == "glorot"]
    unused = (glorot.dim_z - glorot.active_z).max()
    if more and len(more) == len(orders) and unused <= 0:
        return "yes"
    return "part" if more else "no"


def _capital(text: str) -> str:
    """``text`` with its first letter upper-case (a metric's name at the start of a sentence)."""
    return text[:1].upper() + text[1:]


def init_findings(summary: pd.DataFrame) -> list[str]:
    """Markdown sentences on chapter 05's initialisation ablation (an
    :func:`init_summary` table): per kind, the active dimensions
    and the error under both initialisations with the seed rule's verdicts
    (:func:`_init_orders`); then the answer of :func:`init_answer` and what is left, the
    dimensions the Glorot models still leave unused."""
    orders = _init_orders(summary)
    col = summary.metric.iloc[0]
    names = {REPRODUCED: "more with Glorot", NOT_REPRODUCED: "more with PyTorch's default",
             UNDECIDED: UNDECIDED}
    bce_names = {REPRODUCED: "lower with Glorot", NOT_REPRODUCED: "lower with PyTorch's default",
                 UNDECIDED: UNDECIDED}
    out = []
    for m, o in orders.items():
        by = summary[summary.model == m].set_index("init")
        a, b = by.loc["glorot"], by.loc["torch"]
        out.append(f"**{LABELS[m]} z{int(a.dim_z)}.** Active dimensions of z: Glorot "
                   f"{pm(a.active_z, a.active_z_sd)}, PyTorch's default {pm(b.active_z, b.active_z_sd)} "
                   f"({names[o['active'][0]]}; {o['active'][1]}). {_capital(METRIC_NAMES.get(col, col))}: "
                   f"{pm(a.bce, a.bce_sd, 2)} against {pm(b.bce, b.bce_sd, 2)} nats "
                   f"({bce_names[o['bce'][0]]}; {o['bce'][1]}).")
    answer = init_answer(summary)
    glorot = summary[summary.init == "glorot"]
    left = ", ".join(f"{LABELS[r.model]} {r.dim_z - r.active_z:.3g} of {r.dim_z}"
                     for r in glorot.itertuples())
    why = {"yes": "the Glorot models use every dimension, and more than with PyTorch's default",
           "part": "the Glorot models use more dimensions than those started from PyTorch's "
                   "default (" + ", ".join(LABELS[m] for m, o in orders.items()
                                           if o["active"][0] == REPRODUCED)
                   + "), but some dimensions stay unused",
           "no": "by the seed rule the Glorot models do not use more dimensions than those started "
                 "from PyTorch's default"}[answer]
    tail = f" ({ONE_SEED})" if int(summary.n_seeds.min()) < 2 else ""
    out.append(f"**Does the initialisation explain the unused dimensions? {INIT_ANSWERS[answer]}**: "
               f"{why}{tail}. What is left: under the faithful Glorot initialisation, unused "
               f"dimensions of z (seed means): {left}."
               + ("" if answer == "yes" else f" Each of them carries under {ACTIVE_NATS:g} nats of KL from "
                  "the prior, almost no information about the digit; the initialisation does not "
                  "account for them."))
    return out


__all__ = ["RECON_COLUMNS", "METRICS", "METRIC_NAMES", "ACTIVE_NATS", "kl_per_dim", "active_dims",
           "recon_vs_dim", "LEGACY_COLUMNS", "upgrade", "main_metric", "seed_stats",
           "recon_summary", "vae_bce_at_total", "recon_findings", "measurement_note", "metrics_view",
           "seed_mean_view", "seed_mean_caption", "curve_shape_sentence", "active_dims_sentence",
           "three_metrics_view", "three_metrics_caption", "runs_view", "INIT_COLUMNS", "INITS_SHOWN",
           "init_ablation", "init_summary", "init_view", "INIT_ANSWERS", "init_answer", "init_findings"]
