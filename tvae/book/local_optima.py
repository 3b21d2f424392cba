"""Chapter 11, experiment 7: local optima of the transformer models, and the sentences the
chapter prints.

Several runs of one setting (Affine-TVAE and TPS-TVAE at dim z 20, flat pose prior; TPS from the
identity and from the original code's double start) differ only by their seed
(:func:`tvae.book.registry.local_optima_set`). For each run the chapter shows what the decoder
draws with the warp switched off (the pose set to the identity: the decoder's own canvas) and
measures it: test ELBO and BCE (the objective), the canvas's *ink* and *diversity*. Per-run
numbers go to ``results/<profile>/local_optima.csv`` (:data:`RUN_COLUMNS`), the statistics over
seeds of each (model, start) group to ``local_optima_summary.csv`` (:data:`SUMMARY_COLUMNS`).
Units: ELBO and BCE in nats per digit, ink in pixels, diversity in grey levels.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from ..evaluate import elbo_terms
from ..io import write_csv
from ..models import VAE
from ..profiles import Profile
from . import registry, store
from .text import signed

INK_LEVEL = 0.5
"""A pixel counts as ink when brighter than this: half-way between the background (0) and a
stroke (1), so a blurry grey template counts little ink and a crisp thick digit much."""

CANVAS_SHOWN = 36
"""Identity-warp canvases shown per run (a 6 x 6 panel)."""

CANVAS_MEASURED = 500
"""Identity-warp canvases per run behind the ink and diversity numbers: enough for a mean
whose standard error is well under a pixel of ink."""

MIN_RUNS_FOR_CORRELATION = 3
"""Runs a group needs before its ELBO-ink correlation is reported (two points always correlate
perfectly)."""

RUN_COLUMNS = ["model", "start", "seed", "test_elbo", "test_bce", "ink", "diversity", "n_test",
               "n_canvas", "profile"]
"""The columns of ``local_optima.csv``: one row per run. ``model`` is the display name,
``start`` the TPS start of the pose head (``identity`` or ``double``), ``ink`` the mean number
of canvas pixels brighter than :data:`INK_LEVEL`, ``diversity`` the per-pixel standard deviation
across the canvases, averaged over pixels."""

SUMMARY_COLUMNS = ["model", "start", "runs", "test_elbo_mean", "test_elbo_sd", "test_bce_mean",
                   "ink_mean", "ink_sd", "diversity_mean", "best_seed", "worst_seed", "best_ink",
                   "worst_ink", "elbo_spread", "corr_elbo_ink", "corr_elbo_ink_pooled",
                   "real_ink", "profile"]
"""The columns of ``local_optima_summary.csv``: one row per (model, start) group, statistics
over its seeds (SD with ``ddof = 1``, NaN for one run). ``best``/``worst``: the seeds of the
highest and lowest test ELBO, and their ink; ``elbo_spread`` the difference of their ELBOs;
``corr_elbo_ink`` the Pearson correlation of ELBO and ink over the group's runs (NaN below
:data:`MIN_RUNS_FOR_CORRELATION` runs or for a constant column);
``corr_elbo_ink_pooled`` (the same in every row) the correlation over all runs once each
group's means are removed (NaN when there are no more runs than groups plus one);
``real_ink`` the ink of the real test digits, for reference."""


# ---------------------------------------------------------------------------- runs ----
def runs(P: Profile) -> dict[tuple[str, str, int], VAE]:
    """``{(display name, warp start, seed): trained model}`` of the registry's
    :func:`~tvae.book.registry.local_optima_set`, in its order."""
    return {(registry.LABELS[kind], start, s): store.model(P, cfg)
            for (kind, start, s), cfg in registry.local_optima_set(P).items()}


def describe_runs(P: Profile) -> str:
    """One sentence: how many runs, which seeds."""
    return f"{len(runs(P))} trained runs: seeds {list(P.seeds)}."


def identity_canvas(P: Profile, model: VAE, n: int = CANVAS_SHOWN) -> Tensor:
    """``n`` decoder outputs ``(n, 784)`` with the pose set to the identity, ``x' =
    T_identity(y')``: the decoder's canvas. ``z ~ N(0, I)`` from a generator seeded with
    ``P.seed``, so every run decodes the same codes."""
    return model.sample(n, torch.Generator().manual_seed(P.seed), pose="identity")


def canvas_groups(P: Profile) -> dict[str, dict[str, Tensor]]:
    """``{panel title: {"seed s": canvases}}``: one panel per (model, start) group, one block of
    :data:`CANVAS_SHOWN` identity-warp canvases per seed."""
    out: dict[str, dict[str, Tensor]] = {}
    for (family, start, s), m in runs(P).items():
        title = f"{family} (warp started at {start}): decoder output, identity warp"
        out.setdefault(title, {})[f"seed {s}"] = identity_canvas(P, m)
    return out


def real_ink(P: Profile) -> float:
    """Mean number of pixels brighter than :data:`INK_LEVEL` in the profile's test digits."""
    return float((store.test_x(P) > INK_LEVEL).float().sum(1).mean())


# --------------------------------------------------------------------------- tables ----
def run_table(P: Profile, *, write: bool = True, out_dir: str | Path | None = None) -> pd.DataFrame:
    """One row per run (:data:`RUN_COLUMNS`): test ELBO and BCE on the profile's test digits
    (one posterior draw seeded with ``P.seed``), ink and diversity of :data:`CANVAS_MEASURED`
    identity-warp canvases. Written to ``local_optima.csv`` when ``write``."""
    xt = store.test_x(P)
    rows = []
    for (family, start, s), m in runs(P).items():
        terms = elbo_terms(m, xt, seed=P.seed)
        canvas = identity_canvas(P, m, CANVAS_MEASURED)
        rows.append({"model": family, "start": start, "seed": s, "test_elbo": terms["elbo"],
                     "test_bce": terms["bce"],
                     "ink": float((canvas > INK_LEVEL).float().sum(1).mean()),
                     "diversity": float(canvas.std(0).mean()), "n_test": len(xt),
                     "n_canvas": CANVAS_MEASURED, "profile": P.results_name})
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    if write:
        write_csv(df, Path(out_dir or P.results_dir()) / "local_optima.csv")
    return df


def _corr(a: pd.Series, b: pd.Series) -> float:
    """Pearson correlation, NaN for a constant column."""
    return float(a.corr(b)) if a.std() > 0 and b.std() > 0 else math.nan


def pooled_correlation(df: pd.DataFrame) -> float:
    """Correlation of test ELBO and ink over all runs of ``df`` (:func:`run_table`) once each
    (model, start) group's means are removed: within groups only, since pooled raw runs would
    mostly compare the groups' averages (the double start against the identity start). NaN
    when there are not more runs than groups plus one."""
    groups = df.groupby(["model", "start"], sort=False)
    if len(df) <= groups.ngroups + 1:
        return math.nan
    centred = df[["test_elbo", "ink"]] - groups[["test_elbo", "ink"]].transform("mean")
    return _corr(centred["test_elbo"], centred["ink"])


def summary_table(P: Profile, df: pd.DataFrame, *, write: bool = True,
                  out_dir: str | Path | None = None) -> pd.DataFrame:
    """Statistics over seeds of each (model, start) group of ``df`` (:func:`run_table`), one
    row per group (:data:`SUMMARY_COLUMNS`). Written to ``local_optima_summary.csv`` when
    ``write``."""
    pooled, ink0 = pooled_correlation(df), real_ink(P)
    rows = []
    for (family, start), g in df.groupby(["model", "start"], sort=False):
        best, worst = g.loc[g.test_elbo.idxmax()], g.loc[g.test_elbo.idxmin()]
        corr = _corr(g.test_elbo, g.ink) if len(g) >= MIN_RUNS_FOR_CORRELATION else math.nan
        rows.append({"model": family, "start": start, "runs": len(g),
                     "test_elbo_mean": g.test_elbo.mean(), "test_elbo_sd": g.test_elbo.std(),
                     "test_bce_mean": g.test_bce.mean(), "ink_mean": g.ink.mean(),
                     "ink_sd": g.ink.std(), "diversity_mean": g.diversity.mean(),
                     "best_seed": int(best.seed), "worst_seed": int(worst.seed),
                     "best_ink": best.ink, "worst_ink": worst.ink,
                     "elbo_spread": best.test_elbo - worst.test_elbo, "corr_elbo_ink": corr,
                     "corr_elbo_ink_pooled": pooled, "real_ink": ink0, "profile": P.results_name})
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    if write:
        write_csv(out, Path(out_dir or P.results_dir()) / "local_optima_summary.csv")
    return out


# ------------------------------------------------------------------------ sentences ----
def run_findings(summary: pd.DataFrame) -> str:
    """Markdown: the real digits' ink, the best and worst seed of each group, and the ELBO-ink
    correlations (``summary`` from :func:`summary_table`)."""
    lines = [f"Real test digits: {summary.real_ink.iloc[0]:.1f} pixels brighter than {INK_LEVEL} "
             "on average.", ""]
    for r in summary.itertuples():
        lines.append(f"- {r.model}, start {r.start}: best seed {r.best_seed} (ink {r.best_ink:.1f}), "
                     f"worst seed {r.worst_seed} (ink {r.worst_ink:.1f}); ELBO spread "
                     f"{r.elbo_spread:.1f} nats over {r.runs} runs")
    pooled = summary.corr_elbo_ink_pooled.iloc[0]
    if math.isnan(pooled):
        lines += ["", "Too few runs per group for a correlation between ELBO and ink in this profile."]
        return "\n".join(lines)
    text = (f"Correlation between test ELBO and canvas ink within the groups (each group's mean "
            f"removed, {int(summary.runs.sum())} runs): **{signed(pooled, 2)}** (positive: the "
            "better optimum of a group draws more ink).")
    per_group = summary.dropna(subset=["corr_elbo_ink"])
    if len(per_group):
        text += " Per group: " + ", ".join(f"{r.model}, {r.start} {signed(r.corr_elbo_ink, 2)}"
                                           for r in per_group.itertuples()) + "."
    return "\n".join(lines + ["", text])


def good_and_poor(df: pd.DataFrame) -> dict[str, pd.Series]:
    """The TPS-TVAE runs of ``df`` (:func:`run_table`) with the highest (``good``) and lowest
    (``poor``) test ELBO, over both starts."""
    tps = df[df.model == registry.LABELS["tps-tvae"]]
    return {"good": tps.loc[tps.test_elbo.idxmax()], "poor": tps.loc[tps.test_elbo.idxmin()]}


def good_and_poor_canvases(P: Profile, df: pd.DataFrame) -> dict[str, Tensor]:
    """``{panel title: identity-warp canvases}`` of the good and the poor TPS optimum."""
    models = runs(P)
    return {f"{name}: seed {r.seed}, start {r.start}\nELBO {r.test_elbo:.1f}":
            identity_canvas(P, models[(r.model, r.start, r.seed)])
            for name, r in good_and_poor(df).items()}


def good_and_poor_poses(P: Profile, df: pd.DataFrame) -> dict[str, tuple[Tensor, Tensor]]:
    """``{title: (one identity-warp canvas, the run's mean pose u_mean)}`` of the good and the
    poor TPS optimum, for :func:`tvae.figures.control_grid_figure`."""
    models = runs(P)
    out = {}
    for name, r in good_and_poor(df).items():
        m = models[(r.model, r.start, r.seed)]
        out[f"{name} optimum: mean pose of seed {r.seed}, start {r.start}"] = (
            identity_canvas(P, m, 1), m.u_mean.cpu())
    return out


def start_comparison(summary: pd.DataFrame) -> pd.DataFrame:
    """The TPS-TVAE rows of ``summary`` (:func:`summary_table`), indexed by start: mean test
    ELBO, BCE, ink and diversity over seeds, and the number of runs."""
    tps = summary[summary.model == registry.LABELS["tps-tvae"]].set_index("start")
    return tps[["test_elbo_mean", "test_bce_mean", "ink_mean", "diversity_mean", "runs"]]


def start_findings(summary: pd.DataFrame) -> str:
    """Markdown: what the double start changes against the identity start (TPS-TVAE, means
    over seeds from ``summary``), and whether it draws more ink."""
    t = start_comparison(summary)
    d_elbo = t.test_elbo_mean["double"] - t.test_elbo_mean["identity"]
    d_ink = t.ink_mean["double"] - t.ink_mean["identity"]
    return (f"Starting at the double grid changes the mean test ELBO by **{signed(d_elbo)} nats** "
            f"(from {t.test_elbo_mean['identity']:.1f} to {t.test_elbo_mean['double']:.1f}) and "
            f"the canvas ink by **{signed(d_ink)} pixels** (from {t.ink_mean['identity']:.1f} to "
            f"{t.ink_mean['double']:.1f}), double minus identity. A 2x zoom-out start should push "
            "the decoder towards large digits, which would fit the paper's remark that good optima "
            "draw thick digits filling the frame; in this run the double start "
            + ("does" if d_ink > 0 else "does not") + " draw more ink.")


__all__ = ["INK_LEVEL", "CANVAS_SHOWN", "CANVAS_MEASURED", "MIN_RUNS_FOR_CORRELATION",
           "RUN_COLUMNS", "SUMMARY_COLUMNS", "runs", "describe_runs", "identity_canvas",
           "canvas_groups", "real_ink", "run_table", "pooled_correlation", "summary_table",
           "run_findings", "good_and_poor", "good_and_poor_canvases", "good_and_poor_poses",
           "start_comparison", "start_findings"]
