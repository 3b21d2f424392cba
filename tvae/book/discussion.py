"""Chapter 14, discussion: every checked claim of the paper, with its verdict and the numbers
behind it, from the tables the other chapters wrote (``results/<profile>/*.csv``).

Each rule is stated in its function's docstring; the verdicts are :data:`REPRODUCED`,
:data:`PARTLY`, :data:`NOT_REPRODUCED`, :data:`UNDECIDED` and :data:`UNTESTED`.

The seed rule every verdict on a number or an ordering follows is stated in
:mod:`tvae.book.seed_rule` (chapter 14 prints it, :data:`RULE`); its names are
re-exported here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import Markdown
from pandas.io.formats.style import Styler

from ..io import read_csv
from ..profiles import Profile, resolve
from .latent_dimension import METRIC_NAMES, main_metric, recon_summary, recon_vs_dim, vae_bce_at_total
from .reconstructions import denoising_orders, order_counts, run_seeds
from .registry import LABELS, PAPER_KINDS, RAW_DIM
from .seed_rule import (
    NOT_REPRODUCED,
    ONE_SEED,
    PARTLY,
    REPRODUCED,
    RULE,
    SPREAD_SDS,
    UNDECIDED,
    UNTESTED,
    diff_verdict,
    order_verdict,
    spread,
    within_spread,
)
from .table1 import PAPER_TABLE1, PROTOCOLS, table1, table1_findings
from .text import bullets, signed
from .text import pm as _pm
from .variational_gap import likelihood_summary, likelihood_table


def read_result(P: Profile, name: str, root: str | Path = "results") -> pd.DataFrame | None:
    """``results/<P.results_name>/<name>.csv`` as a DataFrame, or None if no chapter wrote it
    yet under this profile and these overrides."""
    return read_csv(Path(root) / P.results_name / f"{name}.csv")


GAP_KL_RANGE = (0.5, 2.0)
"""gap / KL(q || prior) within this range counts as 'roughly equal' (experiment 6's claim)."""


def _verdict(claim: str, experiment: str, verdict: str, evidence: str) -> dict:
    return {"experiment": experiment, "claim": claim, "verdict": verdict, "evidence": evidence}


def _share(n_ok: int, n: int) -> str:
    return REPRODUCED if n and n_ok == n else (PARTLY if n_ok else NOT_REPRODUCED)


def _summary(df: pd.DataFrame) -> pd.DataFrame:
    """A chapter-05 table reduced over seeds (:func:`recon_summary`), unless it already is."""
    return df if "n_seeds" in df or ("seed" not in df and "test_bce_mean" not in df) else recon_summary(df)


def _same_total_diffs(s: pd.DataFrame, col: str) -> dict[str, tuple[float, float, bool]]:
    """Per transformer model of a summary ``s``: ``(mean over its points of (its seed mean -
    the VAE's at the same total size), the standard error of that mean difference, one seed)``,
    the VAE's mean and SD interpolated in log total size (:func:`vae_bce_at_total`)."""
    others = s[s.model != "vae"]
    vae_mean = vae_bce_at_total(s, col).loc[others.index]
    sd_col = col + "_sd"
    has_sd = sd_col in s and s[sd_col].notna().any()
    vae_sd = vae_bce_at_total(s.assign(**{sd_col: s[sd_col].fillna(0)}), sd_col).loc[others.index] \
        if has_sd else pd.Series(0.0, index=others.index)
    n_vae = int(s[s.model == "vae"].n_seeds.min()) if "n_seeds" in s else 1
    out = {}
    for m in dict.fromkeys(others.model):
        g = others[others.model == m]
        d = (g[col] - vae_mean[g.index]).dropna()
        if not len(d):
            continue
        n = int(g.n_seeds.min()) if "n_seeds" in g else 1
        one = min(n, n_vae) < 2
        var = 0.0 if one else float((g.loc[d.index, sd_col].fillna(0) ** 2 / n
                                     + vae_sd[d.index] ** 2 / n_vae).sum()) / len(d) ** 2
        out[m] = (float(d.mean()), math.sqrt(var), one)
    return out


RECON_EXPERIMENT = "exp. 1 (ch. 05)"
"""The ``experiment`` of the verdicts on reconstruction (:func:`recon_verdicts`)."""

TABLE1_EXPERIMENT = "Table 1 (ch. 08)"
"""The ``experiment`` of the verdicts on Table 1 (:func:`table1_verdicts`)."""

GENERATION_EXPERIMENT = "exp. 3 (ch. 07)"
"""The ``experiment`` of the paper's generation claims, decided in chapter 07
(:func:`tvae.book.generation.generation_verdicts`); its comparisons without a claim in the paper
carry another ``experiment`` and stay in chapter 07."""


def _seed_tail(one_seed: bool) -> str:
    """What ends a verdict's evidence: ``'; '`` + :data:`ONE_SEED` when it rests on one seed."""
    return f"; {ONE_SEED}" if one_seed else ""


def recon_verdicts(df: pd.DataFrame) -> list[dict]:
    """The paper's claims on experiment 1 checked against a :func:`recon_vs_dim` table (one row
    per seed; reduced here to seed means and SDs, :func:`recon_summary`), in the column of
    :func:`main_metric` (the original's best-epoch posterior-mean BCE when every run logged it).

    1. The VAE's error is lowest near 25 latent variables (:func:`_vae_best_dim_verdict`).
    2. The transformer models reconstruct better than the VAE at the same total latent size
       (:func:`_same_total_verdict`).
    3. Mostly TPS-TVAE and Affine-DTVAE (:func:`_mostly_verdict`).
    """
    s = _summary(df)
    col = main_metric(df)
    tail = _seed_tail("n_seeds" not in s or int(s.n_seeds.min()) < 2)
    diffs = _same_total_diffs(s, col)
    same_total, better_than_vae = _same_total_verdict(diffs, col)
    return [_vae_best_dim_verdict(s, col, tail), same_total,
            _mostly_verdict(diffs, better_than_vae, col, tail)]


def _vae_best_dim_verdict(s: pd.DataFrame, col: str, tail: str) -> dict:
    """Claim 1 of :func:`recon_verdicts` on a seed summary ``s``: reproduced when the VAE's best
    dim z (by seed mean of ``col``) is one of the two measured dims around 25 and is not the
    largest dim measured; the seed means and SDs of every dim are the evidence."""
    v = s[s.model == "vae"].sort_values("dim_z")
    claim = "The VAE's reconstruction error is lowest near 25 latent variables"
    if len(v) < 3:
        return _verdict(claim, RECON_EXPERIMENT, UNTESTED,
                        f"only {len(v)} VAE dims measured in this profile")
    sd_col = col + "_sd"
    best = int(v.loc[v[col].idxmin(), "dim_z"])
    dims = sorted(v.dim_z)
    below = [d for d in dims if d <= 25]
    above = [d for d in dims if d >= 25]
    near = {below[-1] if below else dims[0], above[0] if above else dims[-1]}
    ok = best in near and best != dims[-1]
    sds = v[sd_col] if sd_col in v else pd.Series(np.nan, index=v.index)
    return _verdict(claim, RECON_EXPERIMENT, REPRODUCED if ok else NOT_REPRODUCED,
                    f"VAE {METRIC_NAMES.get(col, col)} lowest at dim z = {best} among {dims}; "
                    "seed mean ± SD per dim: "
                    + ", ".join(f"{int(r.dim_z)}: {_pm(r[col], sds[i])}" for i, r in v.iterrows())
                    + tail)


def _same_total_verdict(diffs: dict[str, tuple[float, float, bool]], col: str
                        ) -> tuple[dict, set[str]]:
    """Claim 2 of :func:`recon_verdicts` on the differences of :func:`_same_total_diffs` (the
    VAE's curve interpolated, :func:`vae_bce_at_total`): per model, the seed rule's ordering
    (:func:`diff_verdict`) on the mean difference over its points; reproduced when it is for
    every model. Also returns the models decidedly better than the VAE."""
    claim = "Transformer models reconstruct better than the VAE (same dim z + dim u)"
    if not diffs:
        return _verdict(claim, RECON_EXPERIMENT, UNTESTED,
                        "no transformer model inside the VAE's range of total latent sizes"), set()
    parts, oks, better_than_vae = [], [], set()
    for m, (d, se, one) in diffs.items():
        verdict, evid = diff_verdict(-d, math.nan if one else se)
        oks.append(verdict == REPRODUCED)
        if verdict == REPRODUCED:
            better_than_vae.add(m)
        parts.append(f"{LABELS[m]} {signed(d)} nats ({verdict}; {evid})")
    return _verdict(claim, RECON_EXPERIMENT, _share(sum(oks), len(oks)),
                    f"mean {METRIC_NAMES.get(col, col)} minus the VAE's at the same total size: "
                    + "; ".join(parts)), better_than_vae


def _mostly_verdict(diffs: dict[str, tuple[float, float, bool]], better_than_vae: set[str],
                    col: str, tail: str) -> dict:
    """Claim 3 of :func:`recon_verdicts`: TPS-TVAE and Affine-DTVAE are the two transformer
    models with the largest advantage in claim 2 and both are better than the VAE by it (all
    three need a difference); partly when one of them is among the top two."""
    claim = "Mostly TPS-TVAE and Affine-DTVAE"
    if len(diffs) < 3:
        return _verdict(claim, RECON_EXPERIMENT, UNTESTED,
                        f"only {len(diffs)} transformer model(s) inside the VAE's range of total "
                        "latent sizes")
    ranked = sorted(diffs, key=lambda m: diffs[m][0])
    top2 = set(ranked[:2])
    want = {"tps-tvae", "affine-dtvae"}
    better = {m for m in want if m in better_than_vae}
    verdict = (REPRODUCED if top2 == want and better == want else
               PARTLY if top2 & want else NOT_REPRODUCED)
    return _verdict(claim, RECON_EXPERIMENT, verdict,
                    "largest advantage over the VAE at the same total size (mean "
                    f"{METRIC_NAMES.get(col, col)} difference ± SE): " + ", ".join(
                        f"{LABELS[m]} {signed(diffs[m][0])} nats" + ("" if diffs[m][2] else
                                                                 f" ± {diffs[m][1]:.1f}")
                        for m in ranked) + tail)


def _acc(g: pd.DataFrame, kind: str) -> tuple[float, float, int]:
    """``(seed mean, SD over seeds, n)`` of the test accuracy of one row of a Table 1 view."""
    r = g.loc[kind]
    return float(r.test), float(r.get("test_sd", math.nan)), int(r.get("n_seeds", 1))


def table1_verdicts(df: pd.DataFrame) -> list[dict]:
    """The paper's Table 1 checked against a :func:`table1` table (seed means and SDs):

    1. Per protocol, the paper rows whose CV mean lies within the seed rule's spread
       (:func:`_table1_number_verdicts`).
    2. At each dim every transformer model's test accuracy at least the VAE's
       (:func:`_separability_verdict`).
    3. "DTVAE > TVAE >= VAE at dim 8" (:func:`_dim8_verdict`).
    4. "TPS-TVAE best at dim 20" (:func:`_dim20_verdict`).

    Claims 2 to 4 are checked on the paper-C rows; a claim without the rows it needs is left out.
    """
    tail = _seed_tail("n_seeds" not in df or int(df[df.input.isin(PAPER_KINDS)].n_seeds.min()) < 2)
    out = _table1_number_verdicts(df, tail)
    d = df[(df.protocol == "paper-C") & (df.row_kind == "paper")]
    for v in (_separability_verdict(d, tail), _dim8_verdict(d[d.dim == 8].set_index("input")),
              _dim20_verdict(d[d.dim == 20].set_index("input"))):
        if v is not None:
            out.append(v)
    return out


def _table1_number_verdicts(df: pd.DataFrame, tail: str) -> list[dict]:
    """Claim 1 of :func:`table1_verdicts`, one verdict per protocol: the paper rows whose CV mean
    lies within the seed rule's spread (``within_2sd``: :func:`within_spread` with our SD over
    seeds and the paper's CV SD)."""
    out = []
    for protocol in PROTOCOLS:
        d = df[(df.protocol == protocol) & (df.row_kind == "paper")]
        if len(d):
            ok = d[d.within_2sd == True]  # noqa: E712 - True/False/None column
            out.append(_verdict(f"Table 1 numbers ({protocol})", TABLE1_EXPERIMENT,
                                _share(len(ok), len(d)),
                                f"{len(ok)} of {len(d)} rows with the paper's CV mean within "
                                f"{SPREAD_SDS:g} sqrt(SD_seeds^2 + SD_paper^2) of our seed mean; "
                                "median distance of the test accuracy from the paper's "
                                f"{d.diff_test.abs().median():.2f} points" + tail))
    return out


def _separability_verdict(d: pd.DataFrame, tail: str) -> dict | None:
    """Claim 2 of :func:`table1_verdicts` on the paper-C rows ``d``: at each dim every
    transformer model's test accuracy at least the VAE's (the seed rule's 'at least as good'
    ordering); None when no dim has the VAE and another model."""
    oks, parts = [], []
    for dim in sorted(set(d.dim) - {RAW_DIM}):
        g = d[d.dim == dim].set_index("input")
        if "vae" not in g.index:
            continue
        for k in PAPER_KINDS[1:]:
            if k in g.index:
                verdict, evid = order_verdict(_acc(g, k), _acc(g, "vae"), strict=False)
                oks.append(verdict == REPRODUCED)
                parts.append(f"{LABELS[k]} ({dim}) {_pm(*_acc(g, k)[:2], 2)} vs VAE "
                             f"{_pm(*_acc(g, 'vae')[:2], 2)}: {verdict}")
    if not oks:
        return None
    return _verdict("Transformer models' codes are at least as linearly separable as the VAE's",
                    TABLE1_EXPERIMENT, _share(sum(oks), len(oks)),
                    "test accuracy, paper-C, seed mean ± SD: " + "; ".join(parts) + tail)


def _dim8_verdict(g: pd.DataFrame) -> dict | None:
    """Claim 3 of :func:`table1_verdicts` on the paper-C rows at dim 8 ``g`` (indexed by input):
    Affine-DTVAE's test accuracy above Affine-TVAE's, Affine-TVAE's at least the VAE's (seed
    rule); None without those three rows."""
    if not {"affine-dtvae", "affine-tvae", "vae"} <= set(g.index):
        return None
    v1, e1 = order_verdict(_acc(g, "affine-dtvae"), _acc(g, "affine-tvae"))
    v2, e2 = order_verdict(_acc(g, "affine-tvae"), _acc(g, "vae"), strict=False)
    both = REPRODUCED if v1 == v2 == REPRODUCED else (
        NOT_REPRODUCED if NOT_REPRODUCED in (v1, v2) and REPRODUCED not in (v1, v2) else
        (UNDECIDED if v1 == UNDECIDED and v2 == REPRODUCED else PARTLY))
    return _verdict("DTVAE > TVAE >= VAE at dim 8 (test accuracy)", TABLE1_EXPERIMENT, both,
                    f"Affine-DTVAE {_pm(*_acc(g, 'affine-dtvae')[:2], 2)}, Affine-TVAE "
                    f"{_pm(*_acc(g, 'affine-tvae')[:2], 2)}, VAE {_pm(*_acc(g, 'vae')[:2], 2)} "
                    f"(paper 93.87, 88.39, 87.99); DTVAE > TVAE: {v1} ({e1}); TVAE >= VAE: "
                    f"{v2} ({e2})")


def _dim20_verdict(g: pd.DataFrame) -> dict | None:
    """Claim 4 of :func:`table1_verdicts` on the paper-C rows at dim 20 ``g`` (indexed by
    input): TPS-TVAE above each other paper model (seed rule); None without TPS-TVAE and a
    rival."""
    rivals = [k for k in PAPER_KINDS if k != "tps-tvae" and k in g.index]
    if "tps-tvae" not in g.index or not rivals:
        return None
    res = {k: order_verdict(_acc(g, "tps-tvae"), _acc(g, k)) for k in rivals}
    vs = [r[0] for r in res.values()]
    verdict = REPRODUCED if all(x == REPRODUCED for x in vs) else (
        NOT_REPRODUCED if NOT_REPRODUCED in vs else UNDECIDED)
    return _verdict("TPS-TVAE best at dim 20 (test accuracy)", TABLE1_EXPERIMENT, verdict,
                    f"TPS-TVAE {_pm(*_acc(g, 'tps-tvae')[:2], 2)} (paper "
                    f"{PAPER_TABLE1[('tps-tvae', 20)][2]:.2f}); against "
                    + "; ".join(f"{LABELS[k]} {_pm(*_acc(g, k)[:2], 2)}: {v} ({e})"
                                for k, (v, e) in res.items()))


def likelihood_verdicts(df: pd.DataFrame) -> list[dict]:
    """Experiment 6's claim, gap ~ KL(q(z|x) || p(z)), checked per configuration of a
    :func:`likelihood_table` table on its seed means (:func:`likelihood_summary`): 'roughly
    equal' = the seed mean of gap / KL within :data:`GAP_KL_RANGE` (its SD over seeds is given
    beside it)."""
    if not len(df):
        return []
    s = likelihood_summary(df)
    lo, hi = GAP_KL_RANGE
    ok = s[(s.gap_over_kl >= lo) & (s.gap_over_kl <= hi)]
    one = int(s.n_seeds.min()) < 2

    def ratio(r) -> str:
        return f"{r.gap_over_kl:.2f}" + ("" if one else f" ± {r.gap_over_kl_sd:.2f}")

    c = s.get("corr_gap_kl", pd.Series(dtype=float)).dropna()
    return [_verdict("The ELBO's gap is roughly the KL divergence of q(z given x) from p(z)",
                     "exp. 6 (ch. 10)", _share(len(ok), len(s)),
                     f"gap / KL (seed mean{'' if one else ' ± SD over seeds'}) within [{lo:g}, {hi:g}] "
                     f"for {len(ok)} of {len(s)} models (k = {int(s.k.iloc[0])}): "
                     + ", ".join(f"{r.label} {r.gap:.2f}/{r.kl:.2f} = {ratio(r)}" for r in s.itertuples())
                     + (f"; across digits gap and KL correlate with r from {c.min():.2f} to {c.max():.2f}"
                        if len(c) else "") + _seed_tail(one))]


def denoising_verdicts(df: pd.DataFrame) -> list[dict]:
    """The claim that transformer models denoise well, checked against chapter 06's
    ``denoising.csv`` (columns ``noise``, ``level``, ``model``, ``seed``, ``bce``): per transformer
    model, the noisy settings where its BCE against the clean digit beats the VAE's by the seed
    rule (:func:`tvae.book.reconstructions.denoising_orders`); a model counts when it does in
    more than half of them."""
    noisy = df[(df.noise != "clean") & (df.model != "noisy input")]
    if not len(noisy) or "VAE" not in set(noisy.model):
        return []
    orders = denoising_orders(df)
    n = len(next(iter(orders.values()), {}))
    wins = {m: sum(v == REPRODUCED for v, _ in o.values()) for m, o in orders.items()}
    n_ok = sum(w > n / 2 for w in wins.values())
    return [_verdict("Transformer models denoise well (better than the VAE)", "exp. 9 (ch. 06)",
                     _share(n_ok, len(orders)),
                     f"noisy settings (of {n}) where the model's BCE beats the VAE's by the seed rule: "
                     + ", ".join(f"{m} {order_counts(o)}" for m, o in orders.items())
                     + _seed_tail(run_seeds(df) < 2))]


def verdicts(recon: pd.DataFrame | None = None, table: pd.DataFrame | None = None,
             likelihood: pd.DataFrame | None = None, denoising: pd.DataFrame | None = None,
             generation: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every checked claim of the paper: columns ``experiment``, ``claim``, ``verdict``
    (:data:`REPRODUCED`, :data:`PARTLY`, :data:`NOT_REPRODUCED`, :data:`UNDECIDED`,
    :data:`UNTESTED`) and
    ``evidence`` (the numbers behind it). Tables that are None are skipped. ``generation``:
    chapter 07's ``generation_verdicts.csv`` (decided there); its claims
    (:data:`GENERATION_EXPERIMENT`) are appended, its comparisons on which the paper makes no
    claim are left to chapter 07."""
    rows: list[dict] = []
    for frame, fn in ((recon, recon_verdicts), (table, table1_verdicts), (likelihood, likelihood_verdicts),
                      (denoising, denoising_verdicts)):
        if frame is not None:
            rows += fn(frame)
    if generation is not None:
        claims = generation[generation.experiment == GENERATION_EXPERIMENT]
        rows += claims[["experiment", "claim", "verdict", "evidence"]].to_dict("records")
    return pd.DataFrame(rows, columns=["experiment", "claim", "verdict", "evidence"])


# ------------------------------------------------------------ chapter 14's page ----
COMPUTED = {"recon_vs_dim": recon_vs_dim, "table1": table1, "likelihood": likelihood_table}
"""The tables chapter 14 needs: computed through the model cache (and written) when their
chapter (05, 08, 10) has not run under the profile."""

READ_ONLY = ("denoising", "training", "generation_verdicts")
"""Tables chapter 14 shows only when their chapter (06, 04, 07) wrote them."""


def load_results(P: Profile, root: str | Path = "results") -> tuple[dict[str, pd.DataFrame | None], str]:
    """``({name: table or None}, a Markdown sentence saying what was read and what computed)``:
    the tables of :data:`COMPUTED` (read, else computed now) and of :data:`READ_ONLY` (read,
    else None) under ``P``."""
    results, recomputed = {}, []
    for name, fn in COMPUTED.items():
        results[name] = read_result(P, name, root)
        if results[name] is None:
            results[name] = fn(P)
            recomputed.append(name)
    for name in READ_ONLY:
        results[name] = read_result(P, name, root)
    found = [f"`{name}.csv`" for name, df in results.items() if df is not None and name not in recomputed]
    msg = f"Read from `{P.results_dir(root)}`: " + (", ".join(found) if found else "nothing") + "."
    if recomputed:
        msg += (" Computed now (their chapters had not run under this profile): "
                + ", ".join(recomputed) + ".")
    return results, msg


def profile_caution(P: Profile) -> str:
    """A Markdown warning for a page made by a profile other than ``paper`` (empty for it)."""
    if P.name == "paper":
        return ""
    full = resolve("paper")
    n = "60,000" if P.train_size is None else f"{P.train_size:,}"
    return (f"> **Read with care.** This page was produced by the *{P.name}* profile: {n} training "
            f"digits and {P.epochs} epoch(s) per model instead of the paper's 60,000 digits and "
            f"{full.epochs} epochs, and fewer dimensions and test digits. The verdicts below "
            "describe these runs; they are evidence about the paper's claims only under the "
            "*paper* profile, whose results are committed in `results/paper/`.")


VERDICT_COLOURS = {REPRODUCED: "background-color: #d7f5dd", PARTLY: "background-color: #fff3c4",
                   UNDECIDED: "background-color: #e3ecfb", NOT_REPRODUCED: "background-color: #fbd9d9",
                   UNTESTED: "background-color: #eeeeee"}
"""The background of each verdict in chapter 14's table (green to red, grey: untested)."""


def verdict_counts(v: pd.DataFrame) -> str:
    """``'N claims checked: a reproduced, b partly, ...'`` for a :func:`verdicts` table."""
    counts = v.verdict.value_counts()
    return (f"{len(v)} claims checked: "
            + ", ".join(f"{counts.get(k, 0)} {k}" for k in VERDICT_COLOURS) + ".")


def verdicts_view(v: pd.DataFrame, *, colour: bool = True) -> Styler:
    """A :func:`verdicts` table for a page: the evidence wrapped and left-aligned, no index,
    each verdict on its :data:`VERDICT_COLOURS` background when ``colour``."""
    style = v.style
    if colour:
        style = style.map(lambda x: VERDICT_COLOURS.get(x, ""), subset=["verdict"])
    return style.set_properties(subset=["evidence"], **{"text-align": "left",
                                                        "white-space": "normal"}).hide(axis="index")


def table1_paper_view(t: pd.DataFrame) -> pd.DataFrame:
    """Chapter 08's Table 1 (:func:`~tvae.book.table1.table1`) as chapter 14 shows it: the test
    accuracy of every paper, as-run and 'ours' row under each protocol, the paper's, and
    paper-C minus the paper's (blank: rows the paper lacks)."""
    rows = t[t.row_kind.isin(["paper", "as-run", "ours"])]
    wide = rows.pivot_table(index=["label"], columns="protocol", values="test", sort=False)
    wide["paper"] = rows.drop_duplicates("label").set_index("label").paper_test
    wide["paper-C minus paper"] = wide["paper-C"] - wide["paper"]
    return wide.rename_axis("input")


def table1_summary(t: pd.DataFrame) -> list[str]:
    """Chapter 08's sentences chapter 14 repeats: reproduction, as-run rows, ranking, modern
    option (:func:`~tvae.book.table1.table1_findings`)."""
    f = table1_findings(t)
    return f["reproduction"] + f["as_run"] + f["ranking"] + f["modern"]


def c_choice_sentence(t: pd.DataFrame) -> str:
    """How much of each Table 1 row's test accuracy is owed to the choice of C (common-C minus
    paper-C, the rows moved by a point or more), and the modern (Adam) rows against their
    Adadelta twins."""
    d = t[t.row_kind != "modern"].pivot_table(index="label", columns="protocol", values="test",
                                              sort=False)
    shift = (d["common-C"] - d["paper-C"]).sort_values()
    c_common = t[t.protocol == "common-C"].C.iloc[0]
    big = shift[shift.abs() >= 1.0]
    text = (f"Changing from the paper's C to the common C = {c_common:g} moves the test accuracy by "
            f"{shift.min():+.2f} to {shift.max():+.2f} points across rows")
    text += (("; by a point or more for " + ", ".join(f"{k} ({x:+.2f})" for k, x in big.items()) + ".")
             if len(big) else ", less than a point everywhere.")
    m = t[(t.row_kind == "modern") & (t.protocol == "paper-C")]
    for row in m.itertuples():
        base = t[(t.input == row.input.removesuffix("+adam")) & (t.dim == row.dim)
                 & (t.protocol == "paper-C")]
        if len(base):
            text += (f" Trained with Adam instead of Adadelta, {row.label.removesuffix(', Adam')} "
                     f"reaches {row.test:.2f}% against {base.test.iloc[0]:.2f}% (paper: "
                     f"{row.paper_test:.2f}%).")
    return text


LIKELIHOOD_SHOWN = {"log_likelihood": "log p(x)", "elbo": "ELBO", "gap": "gap", "kl": "KL(q, prior)",
                    "gap_over_kl": "gap / KL"}
"""The columns of chapter 10's ``likelihood.csv`` chapter 14 shows, and their headings."""


def likelihood_view(lk: pd.DataFrame) -> pd.DataFrame:
    """Chapter 10's likelihood table as chapter 14 shows it: the seed means
    (:func:`likelihood_summary`) of :data:`LIKELIHOOD_SHOWN`."""
    return (likelihood_summary(lk).set_index("label")[list(LIKELIHOOD_SHOWN)]
            .rename(columns=LIKELIHOOD_SHOWN).rename_axis("model"))


def denoising_section(den: pd.DataFrame | None) -> list:
    """What chapter 14 shows on denoising, in order, for ``display(*...)``: the introductory
    line (Markdown), the table (:func:`denoising_view`, one decimal) and the evidence of
    :func:`denoising_verdicts` as bullets; only a line saying so when chapter 06 wrote no
    ``denoising.csv`` (``den`` None)."""
    if den is None:
        return [Markdown("Chapter 06 has not written `denoising.csv` under this profile, so there "
                         "is no denoising table to discuss here.")]
    return [Markdown("BCE of the reconstruction of a corrupted test digit against the clean one, "
                     f"nats per digit, mean over {run_seeds(den)} training seed(s):"),
            denoising_view(den).style.format(precision=1),
            Markdown(bullets(x["evidence"] for x in denoising_verdicts(den)))]


def denoising_view(den: pd.DataFrame) -> pd.DataFrame:
    """Chapter 06's ``denoising.csv`` as chapter 14 shows it: BCE against the clean digit,
    noisy settings x models."""
    noisy = den[den.noise != "clean"].assign(setting=lambda f: f.noise + " " + f.level.map("{:g}".format))
    return noisy.pivot_table(index="setting", columns="model", values="bce", sort=False)


def cost_sentence(tr: pd.DataFrame | None) -> str:
    """What training the profile's models cost (chapter 04's ``training.csv``), or that it was
    not written."""
    if tr is None:
        return "Chapter 04 has not written `training.csv` under this profile."
    return (f"The {len(tr)} models of this profile took {tr.train_seconds.sum() / 60:.1f} minutes "
            f"of training loops on this machine (chapter 04), {tr.ms_per_batch.median():.0f} ms "
            "per batch of 100 digits in the median.")


__all__ = ["REPRODUCED", "PARTLY", "NOT_REPRODUCED", "UNTESTED", "UNDECIDED", "SPREAD_SDS", "ONE_SEED",
           "RULE", "spread", "within_spread", "order_verdict", "diff_verdict", "GAP_KL_RANGE", "read_result",
           "recon_verdicts", "table1_verdicts", "likelihood_verdicts", "denoising_verdicts", "verdicts",
           "COMPUTED", "READ_ONLY", "load_results",
           "profile_caution", "VERDICT_COLOURS", "verdict_counts", "verdicts_view", "table1_paper_view",
           "table1_summary", "c_choice_sentence", "LIKELIHOOD_SHOWN", "likelihood_view",
           "denoising_view", "cost_sentence"]
