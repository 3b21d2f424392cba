"""Chapter 07, experiment 3 (upright generation): the sample figures, the ink and entropy of the
samples, their quality as numbers (:mod:`tvae.quality`) at every training seed, the paper's
generation claims decided with the seed spread, and the sentences the chapter prints.

Conventions, stated once:

- A model of the chapter is a key ``(kind, dim z)`` of
  :func:`tvae.book.registry.generation_set`, trained at every seed of ``P.seed_list``; the
  figures show the models of the first seed (``P.seed``).
- Samples are drawn at the mean pose, ``x' = T_ubar(y')`` (``pose="mean"``; the paper's
  *upright* generation), ``z ~ N(0, I)`` from a CPU generator seeded per call with a
  *sampling* seed, so that models of the same dim z receive the same codes.
- The spread that decides a claim is the spread over *training* seeds: a number of a model is
  first averaged over its sampling seeds, then its mean and SD over training seeds are taken
  (:func:`tvae.book.latent_dimension.seed_stats`), and every ordering is decided by the book's
  one seed rule (:func:`tvae.book.discussion.order_verdict`). With one training seed the
  verdicts say that they rest on one seed and are not decisive.

Written to ``results/<profile>/``: ``sample_quality.csv`` (one row per model x sampling mode x
training seed x sampling seed, and the reference rows; :data:`tvae.quality.COLUMNS`),
``generation_samples.csv`` (ink and entropy, one row per model x training seed, and the real
test digits; :data:`SAMPLE_COLUMNS`) and ``generation_verdicts.csv`` (the claims, their verdicts
and the numbers behind them; :data:`VERDICT_COLUMNS`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import evaluate as ev
from .. import figures as tf
from .. import quality as tq
from ..io import write_csv
from ..models import VAE
from ..profiles import Profile
from . import registry, store
from .discussion import (
    GENERATION_EXPERIMENT,
    NOT_REPRODUCED,
    PARTLY,
    REPRODUCED,
    UNDECIDED,
    order_verdict,
)
from .latent_dimension import seed_stats
from .text import bullets

PANEL = 64
"""Samples per panel of the figures (an 8 x 8 mosaic)."""

DESCRIBE_N = 500
"""Samples per model and training seed for the ink and entropy table (enough for a mean
entropy to about 0.001 nats per pixel)."""

SAMPLE_ROWS = 3
"""Sample-quality rows per point (model and sampling mode) in the quick and paper profiles:
spread over training seeds first (the paper profile: 3 training seeds x 1 sampling seed, about
20 minutes of the chapter on one core), the remainder over sampling seeds (the quick profile: 1
training seed x 3 sampling seeds). The smoke profile measures one row per model."""

SAMPLE_COLUMNS = ["label", "model", "dim_z", "dim_u", "seed", "n", "entropy_x", "ink_x",
                  "entropy_y", "ink_y"]
"""Columns of ``generation_samples.csv``: ``entropy_*`` mean binary pixel entropy (nats per
pixel, :func:`tvae.evaluate.pixel_entropy`), ``ink_*`` grey levels summed over the image, of the
samples ``x'`` and of the decoder's canvas ``y'``; ``seed`` the training seed (empty for the real
test digits)."""

VERDICT_COLUMNS = ["experiment", "claim", "verdict", "evidence"]
"""Columns of ``generation_verdicts.csv`` (those of :func:`tvae.book.discussion.verdicts`)."""

REAL = "real test digits"
"""Label of the real digits' row of the ink and entropy table."""

EXPERIMENT = GENERATION_EXPERIMENT
"""Experiment column of the paper's generation claims (chapter 14 takes these rows)."""

QUESTION = "exp. 3 (ch. 07), no claim in the paper"
"""Experiment column of a comparison the paper shows without a stated verdict."""

HOLDS, REVERSED = "holds", "the reverse holds"
"""Verdicts of a comparison the paper makes no claim on (the seed rule's two decided cases)."""

QUALITY_METRICS = ("frechet", "confidence", "label_kl", "precision", "recall", "nn_train_l2")
"""The sample-quality numbers of :mod:`tvae.quality` summarised over training seeds."""


# ------------------------------------------------------------------------ models ----
def name(kind: str, zdim: int) -> str:
    """A model's label in the chapter's figures and tables, e.g. ``Affine-TVAE, dim z 4``."""
    return f"{registry.LABELS[kind]}, dim z {zdim}"


def chapter_models(P: Profile, seed: int | None = None) -> dict[str, VAE]:
    """``{name: trained model}`` of :func:`tvae.book.registry.generation_set` at training seed
    ``seed`` (default ``P.seed``, the figures' models)."""
    return {name(k, z): store.model(P, c) for (k, z), c in registry.generation_set(P, seed).items()}


def samples(model: VAE, n: int, seed: int) -> torch.Tensor:
    """``n`` samples ``x' = T_ubar(y')`` of ``model`` (a VAE: its decoder's output), ``z`` from a
    generator seeded with the sampling seed ``seed``."""
    return model.sample(n, torch.Generator().manual_seed(seed), pose="mean")


def canvases(model: VAE, n: int, seed: int) -> torch.Tensor:
    """The decoder's upright canvases ``y'`` of the same codes as :func:`samples`."""
    return model.sample(n, torch.Generator().manual_seed(seed), upright=True)


def sample_seeds(P: Profile) -> tuple[int, ...]:
    """The sampling seeds of the sample-quality rows (:data:`SAMPLE_ROWS`): ``(P.seed,)`` in the
    smoke profile and wherever there are several training seeds, else ``P.seed, P.seed + 1,
    ...`` up to :data:`SAMPLE_ROWS`."""
    n = 1 if P.name == "smoke" else max(1, SAMPLE_ROWS // P.n_seeds)
    return tuple(P.seed + i for i in range(n))


# ----------------------------------------------------------------------- figures ----
def _totals() -> tuple[int, int]:
    return registry.GENERATION_TOTALS


def same_total_figure(P: Profile):
    """VAE (left) against Affine-TVAE (right) at the same total latent size, 10 (top) and 20."""
    m = chapter_models(P)
    t10, t20 = _totals()
    keys = [name("vae", t10), name("affine-tvae", t10 - 6), name("vae", t20), name("affine-tvae", t20 - 6)]
    return tf.panels({k: samples(m[k], PANEL, P.seed) for k in keys}, ncol=8, per_row=2,
                     title=f"Samples at {t10} (top) and {t20} (bottom) latent numbers: VAE (left), "
                           "Affine-TVAE (right)")


def same_dim_figure(P: Profile):
    """VAE (left) against Affine-TVAE (right) at the same dim z."""
    m = chapter_models(P)
    keys = [name(k, t) for t in _totals() for k in ("vae", "affine-tvae")]
    return tf.panels({k: samples(m[k], PANEL, P.seed) for k in keys}, ncol=8, per_row=2,
                     title="Samples at equal dim z: VAE (left), Affine-TVAE (right)")


def canvas_figure(P: Profile, zdim: int = registry.MAIN_DIM):
    """The Affine-TVAE at ``zdim``: the same 16 samples before (``y'``) and after the mean warp."""
    m = chapter_models(P)[name("affine-tvae", zdim)]
    return tf.image_rows({"canvas $y'$": canvases(m, 16, P.seed),
                          r"$x' = T_{\bar{u}}(y')$": samples(m, 16, P.seed)},
                         title=f"{name('affine-tvae', zdim)}: the same samples before and after the "
                               "mean warp")


def mean_pose_sentence(P: Profile, zdim: int = registry.MAIN_DIM) -> str:
    """The mean pose of the Affine-TVAE at ``zdim``, its determinant, and what it does."""
    u_bar = chapter_models(P)[name("affine-tvae", zdim)].u_mean.detach().double().cpu().numpy()
    det = float(np.linalg.det(u_bar.reshape(2, 3)[:, :2]))
    return ("Mean pose $\\bar u$ of this Affine-TVAE (2x3 matrix, row-major): "
            + ", ".join(f"{v:.3f}" for v in u_bar) + " (identity: 1, 0, 0, 0, 1, 0). "
            f"Its determinant is {det:.3f}: the average output reads a region {abs(det):.2f} times "
            "the frame's area from the canvas, so the digit comes out "
            + ("smaller" if abs(det) > 1 else "larger") + " than the decoder drew it"
            + (" and mirrored (a negative determinant)." if det < 0 else "."))


def sweep_figure(P: Profile):
    """The continuous 2-d sweeps of Affine-TVAE and Affine-DTVAE at dim z 2 (mean pose)."""
    m = chapter_models(P)
    return tf.latent_sweeps({name(k, 2): m[name(k, 2)] for k in ("affine-tvae", "affine-dtvae")},
                            n=15, pose="mean",
                            title=r"Continuous 2-d sweep of the output $x' = T_{\bar{u}}(y')$")


def affine_figure(P: Profile):
    """Affine-TVAE (left) against Affine-DTVAE (right) at dim z total - 6, then at dim z total."""
    m = chapter_models(P)
    t10, t20 = _totals()
    dims = (t10 - 6, t20 - 6, t10, t20)
    keys = [name(k, z) for z in dims for k in ("affine-tvae", "affine-dtvae")]
    return tf.panels({k: samples(m[k], PANEL, P.seed) for k in keys}, ncol=8, per_row=2,
                     title="Samples: Affine-TVAE (left) and Affine-DTVAE (right)\nrows: dim z "
                           f"{dims[0]}, {dims[1]} (equal total size), then {dims[2]}, {dims[3]} "
                           "(equal dim z)")


def thirty_figure(P: Profile):
    """Affine-TVAE at dim z 24 against TPS-TVAE at dim z 12 (30 latent numbers each)."""
    m = chapter_models(P)
    keys = [name("affine-tvae", 24), name("tps-tvae", 12)]
    return tf.panels({k: samples(m[k], PANEL, P.seed) for k in keys}, ncol=8, per_row=2,
                     title="Samples at 30 latent numbers (dim z + dim u)")


# --------------------------------------------------------------- ink and entropy ----
def _describe(x: torch.Tensor) -> tuple[float, float]:
    return ev.pixel_entropy(x), float(x.sum(1).double().mean())


def sample_table(P: Profile, *, write: bool = True, out_dir: str | Path | None = None) -> pd.DataFrame:
    """Ink and entropy of :data:`DESCRIBE_N` samples ``x'`` and canvases ``y'`` (sampling seed
    ``P.seed``) of every model of the chapter at every training seed, and of the real test
    digits (:data:`SAMPLE_COLUMNS`). Written to ``generation_samples.csv`` when ``write``."""
    real = store.test_x(P)
    ent, ink = _describe(real)
    rows = [{"label": REAL, "model": "data", "n": len(real), "entropy_x": ent, "ink_x": ink}]
    for s in P.seed_list:
        for (kind, z), cfg in registry.generation_set(P, s).items():
            m = store.model(P, cfg)
            ex, ix = _describe(samples(m, DESCRIBE_N, P.seed))
            ey, iy = _describe(canvases(m, DESCRIBE_N, P.seed))
            rows.append({"label": name(kind, z), "model": kind, "dim_z": z, "dim_u": cfg.udim,
                         "seed": s, "n": DESCRIBE_N, "entropy_x": ex, "ink_x": ix,
                         "entropy_y": ey, "ink_y": iy})
    df = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    if write:
        write_csv(df, Path(out_dir or P.results_dir()) / "generation_samples.csv")
    return df


def seed_summary(df: pd.DataFrame, by: list[str], metrics: tuple[str, ...]) -> pd.DataFrame:
    """``df`` reduced over its ``seed`` column: one row per group of ``by`` (in order of
    appearance) with ``n_seeds`` and, per metric, its mean over seeds (same name) and SD over
    seeds (``<metric>_sd``, NaN with one seed; :func:`tvae.book.latent_dimension.seed_stats`)."""
    rows = []
    for key, g in df.groupby(by, sort=False, dropna=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
        row["n_seeds"] = int(g["seed"].notna().sum()) or 1
        for c in metrics:
            row[c], row[c + "_sd"], _ = seed_stats(g[c])
        rows.append(row)
    return pd.DataFrame(rows)


def _pm(mean: float, sd: float, digits: int) -> str:
    """``mean ± SD`` (just the mean when the SD is unknown)."""
    return f"{mean:.{digits}f}" + ("" if math.isnan(sd) else f" ± {sd:.{digits}f}")


def sample_display(df: pd.DataFrame) -> pd.DataFrame:
    """The ink and entropy table as the chapter shows it: per model, mean ± SD over training
    seeds of the entropy and ink of ``x'`` and ``y'``."""
    s = seed_summary(df, ["label", "dim_z", "dim_u"], ("entropy_x", "ink_x", "entropy_y", "ink_y"))
    out = pd.DataFrame({"samples": s.label, "dim z": s.dim_z.astype("Int64"),
                        "seeds": s.n_seeds})
    for c, head, digits in (("entropy_x", "entropy x' (nats/pixel)", 3), ("ink_x", "ink x' (pixels)", 1),
                            ("entropy_y", "entropy y' (nats/pixel)", 3), ("ink_y", "ink y' (pixels)", 1)):
        out[head] = [_pm(m, d, digits) if not math.isnan(m) else "" for m, d in zip(s[c], s[c + "_sd"],
                                                                                  strict=True)]
    return out.set_index("samples")


def sample_sentences(df: pd.DataFrame) -> str:
    """The entropy and ink of the samples of each comparison of the chapter, against the real
    test digits' (Markdown)."""
    s = seed_summary(df, ["label"], ("entropy_x", "ink_x")).set_index("label")
    n = int(s.drop(REAL).n_seeds.min())

    def describe(label: str) -> str:
        r = s.loc[label]
        return (f"{label} {_pm(r.entropy_x, r.entropy_x_sd, 3)} nats/pixel, ink "
                f"{_pm(r.ink_x, r.ink_x_sd, 0)}")

    t10, t20 = _totals()
    groups = {t: (("vae", t), ("affine-tvae", t - 6), ("affine-dtvae", t - 6)) for t in (t10, t20)}
    lines = [f"{t} latent numbers: " + "; ".join(describe(name(k, z)) for k, z in group)
             for t, group in groups.items()]
    lines.append("30 latent numbers: " + "; ".join(describe(name(k, z)) for k, z in
                                                   (("affine-tvae", 24), ("tps-tvae", 12))))
    seeds = "one training seed" if n == 1 else f"mean ± SD over {n} training seeds"
    return (f"Samples x' ({DESCRIBE_N} per model, {seeds}) against the real test digits (ink "
            f"{s.loc[REAL, 'ink_x']:.0f}):\n\n" + bullets(lines))


# ----------------------------------------------------------------- sample quality ----
def quality_table(P: Profile, ref: tq.Reference | None = None, *, write: bool = True,
                  out_dir: str | Path | None = None) -> pd.DataFrame:
    """:func:`tvae.quality.quality_table` of every model of the chapter at every training seed of
    ``P.seed_list`` and every sampling seed of :func:`sample_seeds`, at the mean pose, after the
    reference rows; ``ref`` defaults to :func:`tvae.quality.profile_reference`. Written to
    ``sample_quality.csv`` when ``write``."""
    ref = tq.profile_reference(P) if ref is None else ref
    entries = [tq.Entry(name(k, z), store.model(P, cfg), "mean", ss)
               for s in P.seed_list for (k, z), cfg in registry.generation_set(P, s).items()
               for ss in sample_seeds(P)]
    df = tq.quality_table(entries, ref)
    if write:
        write_csv(df, Path(out_dir or P.results_dir()) / "sample_quality.csv")
    return df


def reference_sentence(P: Profile, ref: tq.Reference) -> str:
    """The classifier's accuracy and what each row of the quality table measures."""
    seeds = ", ".join(map(str, P.seed_list))
    return (f"Classifier: {ref.test_accuracy:.2%} of the test digits recognised. {ref.n:,} samples "
            f"per row, compared with the first {ref.n:,} test digits; training seeds {seeds}, "
            f"sampling seeds {', '.join(map(str, sample_seeds(P)))}.")


def quality_summary(df: pd.DataFrame) -> pd.DataFrame:
    """The model rows of a quality table reduced to one row per (label, pose): each metric
    averaged over the sampling seeds of a trained model, then its mean and SD over training
    seeds (:func:`seed_summary`, the ``model seed`` column), with ``n_seeds``."""
    m = df[df["kind"] == "model"]
    per_model = (m.groupby(["label", "pose", "model seed"], sort=False)[list(QUALITY_METRICS)]
                 .mean().reset_index().rename(columns={"model seed": "seed"}))
    return seed_summary(per_model, ["label", "pose"], QUALITY_METRICS)


POSE_NAMES = {"prior": "posed", "identity": "identity pose"}
"""How a row label names a sampling mode other than the mean pose (short: one line in a table)."""

QUALITY_DIGITS = {"frechet": 2, "confidence": 3, "label_kl": 3, "precision": 3, "recall": 3,
                  "nn_train_l2": 2}
"""Decimals of each metric in the chapters' tables."""


def quality_display(df: pd.DataFrame) -> pd.DataFrame:
    """The quality table as the chapters show it: the reference rows, then one row per model and
    sampling mode with each metric as mean ± SD over training seeds."""
    refs = df[df["kind"] == "reference"]
    rows = [{"samples": r.label, "seeds": "reference",
             **{c: f"{r[c]:.{QUALITY_DIGITS[c]}f}" for c in QUALITY_METRICS}} for _, r in refs.iterrows()]
    for _, r in quality_summary(df).iterrows():
        label = r.label if r.pose in ("mean", "none") else f"{r.label}, {POSE_NAMES[r.pose]}"
        rows.append({"samples": label, "seeds": str(r.n_seeds),
                     **{c: _pm(r[c], r[c + "_sd"], QUALITY_DIGITS[c]) for c in QUALITY_METRICS}})
    return pd.DataFrame(rows).set_index("samples")


# ---------------------------------------------------------------------- verdicts ----
def _stats(s: pd.DataFrame, label: str, col: str) -> tuple[float, float, int]:
    r = s.loc[label]
    return float(r[col]), float(r[col + "_sd"]), int(r.n_seeds)


def _combine(verdicts: list[str]) -> str:
    """One verdict for a claim made of several orderings: reproduced when every ordering is,
    partly when some are, not reproduced when none is and some are reversed, else within the
    seed spread."""
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    if REPRODUCED in verdicts:
        return PARTLY
    return NOT_REPRODUCED if NOT_REPRODUCED in verdicts else UNDECIDED


def _pairs(s: pd.DataFrame, pairs: list[tuple[tuple[str, int], tuple[str, int]]], col: str,
           digits: int, claim: bool = True) -> tuple[list[str], list[str]]:
    """The seed rule on 'A lower than B' in ``col`` for each pair: (verdicts, evidence parts).
    ``claim=False``: a comparison the paper makes no claim on, whose evidence names the decided
    cases :data:`HOLDS` and :data:`REVERSED`."""
    verdicts, parts = [], []
    for a, b in pairs:
        va, vb = _stats(s, name(*a), col), _stats(s, name(*b), col)
        v, e = order_verdict(va, vb, higher_is_better=False)
        verdicts.append(v)
        shown = v if claim else _as_comparison(v)
        parts.append(f"{name(*a)} {_pm(*va[:2], digits)} vs {name(*b)} {_pm(*vb[:2], digits)}: "
                     f"{shown} ({e})")
    return verdicts, parts


def _as_comparison(verdict: str) -> str:
    return {REPRODUCED: HOLDS, NOT_REPRODUCED: REVERSED}.get(verdict, verdict)


def upright_pairs() -> list[tuple[tuple[str, int], tuple[str, int]]]:
    """(Affine-TVAE, VAE) pairs of the claims: the same total latent size, then the same dim z."""
    return ([(("affine-tvae", t - 6), ("vae", t)) for t in _totals()]
            + [(("affine-tvae", t), ("vae", t)) for t in _totals()])


def generation_verdicts(quality: pd.DataFrame, descriptions: pd.DataFrame) -> pd.DataFrame:
    """The paper's generation claims and comparisons, decided by the seed rule over training
    seeds (:func:`tvae.book.discussion.order_verdict`, lower is better):

    1. *Better upright digits* (the slides): every Affine-TVAE of :func:`upright_pairs` has a
       lower Fréchet distance to the test digits than the VAE it is paired with.
    2. *Sharper than the VAE* (the slides): the same pairs, a lower pixel entropy of the samples
       ``x'`` (the ink is in the evidence: a faint template is not a crisp digit).
    3. Comparisons the paper shows without a verdict (Fréchet distance): Affine-DTVAE against
       Affine-TVAE at every dim z both have, TPS-TVAE (dim z 12) against Affine-TVAE (dim z 24);
       their verdict is :data:`HOLDS`, :data:`REVERSED` or within the seed spread.

    A claim of several orderings is combined by :func:`_combine`. ``quality`` is a
    :func:`quality_table`, ``descriptions`` a :func:`sample_table`. Columns
    :data:`VERDICT_COLUMNS`."""
    q = quality_summary(quality).set_index("label")
    d = seed_summary(descriptions[descriptions.label != REAL], ["label"], ("entropy_x", "ink_x")
                     ).set_index("label")
    n = min(int(q.n_seeds.min()), int(d.n_seeds.min()))
    over = "one training seed" if n == 1 else f"mean ± SD over {n} training seeds"
    pairs = upright_pairs()
    rows = []
    vs, parts = _pairs(q, pairs, "frechet", 2)
    rows.append({"experiment": EXPERIMENT, "verdict": _combine(vs),
                 "claim": "Better upright digits: Affine-TVAE's samples closer to the test digits "
                          "than the VAE's (Fréchet distance, lower is better)",
                 "evidence": f"{over}; " + "; ".join(parts)})
    vs, parts = _pairs(d, pairs, "entropy_x", 3)
    inks = ", ".join(f"{name(*k)} {_pm(*_stats(d, name(*k), 'ink_x')[:2], 0)}"
                     for k in dict.fromkeys(x for p in pairs for x in p))
    rows.append({"experiment": EXPERIMENT, "verdict": _combine(vs),
                 "claim": "Sharper than the VAE: Affine-TVAE's samples have a lower pixel entropy "
                          "than the VAE's",
                 "evidence": f"nats per pixel, {over}; " + "; ".join(parts) + f"; ink: {inks}"})
    kinds = descriptions.groupby("model").dim_z.agg(set)
    dims = sorted(int(z) for z in kinds["affine-dtvae"] & kinds["affine-tvae"])
    for claim, cmp_pairs in (
            ("Affine-DTVAE's samples closer to the test digits than Affine-TVAE's (Fréchet distance)",
             [(("affine-dtvae", z), ("affine-tvae", z)) for z in dims]),
            ("TPS-TVAE (dim z 12) closer to the test digits than Affine-TVAE (dim z 24), both at 30 "
             "latent numbers (Fréchet distance)", [(("tps-tvae", 12), ("affine-tvae", 24))])):
        vs, parts = _pairs(q, cmp_pairs, "frechet", 2, claim=False)
        rows.append({"experiment": QUESTION, "claim": claim, "verdict": _as_comparison(_combine(vs)),
                     "evidence": f"{over}; " + "; ".join(parts)})
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def verdict_table(P: Profile, quality: pd.DataFrame, descriptions: pd.DataFrame, *,
                  write: bool = True, out_dir: str | Path | None = None) -> pd.DataFrame:
    """:func:`generation_verdicts`, written to ``generation_verdicts.csv`` when ``write``."""
    df = generation_verdicts(quality, descriptions)
    if write:
        write_csv(df, Path(out_dir or P.results_dir()) / "generation_verdicts.csv")
    return df


def verdict_display(df: pd.DataFrame):
    """A verdict table as the chapters show it (a pandas Styler: evidence left-aligned and
    wrapped, no index)."""
    return df.style.set_properties(subset=["evidence"], **{"text-align": "left",
                                                          "white-space": "normal"}).hide(axis="index")


def seeds_note(P: Profile) -> str:
    """What the verdicts of this profile rest on (one training seed: not decisive)."""
    if P.n_seeds == 1:
        return ("**One training seed per model in this profile:** the verdicts below are decided "
                "on the sign of each difference alone and are not decisive (the paper profile "
                "trains three seeds).")
    return (f"Each model is trained at {P.n_seeds} seeds ({', '.join(map(str, P.seed_list))}); the "
            "verdicts use the spread over these training seeds.")


__all__ = ["PANEL", "DESCRIBE_N", "SAMPLE_ROWS", "SAMPLE_COLUMNS", "VERDICT_COLUMNS", "REAL",
           "HOLDS", "REVERSED", "QUALITY_METRICS", "QUALITY_DIGITS", "name", "chapter_models",
           "samples", "canvases", "sample_seeds", "same_total_figure", "same_dim_figure",
           "canvas_figure", "mean_pose_sentence", "sweep_figure", "affine_figure", "thirty_figure",
           "sample_table", "seed_summary", "sample_display", "sample_sentences", "quality_table",
           "reference_sentence", "quality_summary", "quality_display", "upright_pairs",
           "generation_verdicts", "verdict_table", "verdict_display", "seeds_note"]
