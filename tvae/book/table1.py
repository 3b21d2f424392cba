"""Chapter 08, Table 1 (experiment 4): a linear SVM on the posterior means of z of every model,
next to the paper's numbers, under two choices of the SVM's C; the 'modern option' (Adam); the
sentences the chapter prints.

Written to ``results/<profile>/table1.csv`` (per row and protocol, the mean and SD over the
profile's seeds) and ``table1_seeds.csv`` (one line per seed). Accuracies are percentages. The
paper's per-row C values were chosen while test scores were printed beside them (a selection on
the test set, PAPER.md); the common-C protocol (C chosen by cross-validation only) is the clean
comparison.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import evaluate as ev
from ..io import write_csv
from ..profiles import Profile
from ..runtime import configure_threads
from . import registry, store
from .latent_dimension import active_dims
from .registry import ALL_KINDS, LABELS, MODERN_DIM, MODERN_KINDS, OUR_KINDS, RAW_DIM
from .text import bullets, signed

if TYPE_CHECKING:  # pandas imports its Styler (and jinja2) only when a table is styled
    from pandas.io.formats.style import Styler

PAPER_TABLE1: dict[tuple[str, int], tuple[float, float, float]] = {
    ("raw", 784): (91.19, 0.74, 91.80),
    ("pca", 8): (75.09, 1.32, 75.51),
    ("vae", 8): (87.70, 0.93, 87.99),
    ("affine-tvae", 8): (89.30, 0.68, 88.39),
    ("tps-tvae", 8): (88.42, 0.58, 88.65),
    ("affine-dtvae", 8): (93.56, 0.64, 93.87),
    ("pca", 20): (85.62, 1.20, 86.52),
    ("vae", 20): (85.77, 1.22, 86.45),
    ("affine-tvae", 20): (90.80, 0.66, 90.51),
    ("tps-tvae", 20): (94.65, 0.46, 94.48),
    ("affine-dtvae", 20): (93.56, 0.61, 94.17),
}
"""The paper's Table 1: ``(input, dim) -> (CV mean %, CV std %, test %)`` (9-fold CV on the
60k training codes; test accuracy of a fit on all of them, on the 10k test codes)."""

TABLE1_COLUMNS = ["input", "dim", "protocol", "cv_mean", "cv_std", "test", "paper_cv_mean",
                  "paper_cv_std", "paper_test", "cv_mean_sd", "test_sd", "n_seeds"]
"""The leading columns of ``table1.csv``: ``cv_mean``, ``cv_std`` (the CV folds' SD) and ``test``
are means over seeds, ``cv_mean_sd`` and ``test_sd`` SDs over seeds (NaN for one seed),
``n_seeds`` how many seeds. Raw pixels and PCA do not depend on the seed: one probe, n_seeds 1."""

SEED_COLUMNS = ["input", "dim", "protocol", "seed", "cv_mean", "cv_std", "test", "C"]
"""The leading columns of ``table1_seeds.csv`` (one line per row, protocol and seed; the
baselines with an empty seed)."""

AS_RUN = "vae-as-run"
"""The ``input`` of Table 1's VAE rows as the original ran them (one hidden layer,
:data:`tvae.book.registry.AS_RUN_VAE_HIDDEN`), compared with the paper's VAE rows."""

PROTOCOLS = ("paper-C", "common-C")
"""Table 1 protocols: the paper's C per row (:func:`tvae.evaluate.paper_c`), and one C for
every row chosen by cross-validation (:func:`tvae.evaluate.choose_common_c`)."""

PCA_TEST_MEAN = {"paper-C": "own", "common-C": "train"}
"""How each protocol centres the test images of the PCA rows (:data:`tvae.evaluate.PCA_TEST_MEANS`):
on their own mean under paper-C, as the original code did; on the training images' mean under
common-C, the clean comparison, which uses no statistic of the test set. Only the PCA rows' test
accuracy depends on it (the training features, the CV and the common C do not)."""

REPRODUCE_SDS = 2.0
"""A Table 1 row 'reproduces' when the paper's CV mean is within this many SDs of our seed mean,
the SD combining ours over seeds and the paper's CV SD (the seed rule,
:data:`tvae.book.discussion.RULE`; the same number as its ``SPREAD_SDS``)."""


# ----------------------------------------------------------------------- rows, features ----
def _kind(name: str) -> str:
    """The paper's row a Table 1 ``input`` is compared with (``vae+adam`` and ``vae-as-run``:
    the VAE's)."""
    return "vae" if name == AS_RUN else name.removesuffix("+adam")


def probe_rows(P: Profile, *, kinds: Iterable[str] = ALL_KINDS, modern: bool = True,
               baselines: bool = True, as_run: bool = True) -> list[dict]:
    """The rows of Table 1 as dicts ``input``, ``dim``, ``seed`` (None for the baselines),
    ``row_kind`` ('paper' | 'as-run' | 'ours' | 'modern'), ``config`` (None for the baselines),
    ``label``: the models at every seed of ``P.seed_list``; 'as-run' = the VAE with the original
    code's one hidden layer (only with ``as_run`` and ``'vae'`` among ``kinds``)."""
    kinds = tuple(kinds)
    configs = {(c.model, c.zdim, c.seed): c for c in registry.table1_models(P)}
    as_run_cfgs = {(c.zdim, c.seed): c for c in registry.table1_as_run_models(P)}
    rows = []
    if baselines:
        rows.append({"input": "raw", "dim": RAW_DIM, "seed": None, "row_kind": "paper", "config": None,
                     "label": "Raw MNIST (784)"})
    for d in P.probe_dims:
        if baselines:
            rows.append({"input": "pca", "dim": d, "seed": None, "row_kind": "paper", "config": None,
                         "label": f"PCA ({d})"})
        for k in kinds:
            for s in P.seed_list:
                rows.append({"input": k, "dim": d, "seed": s,
                             "row_kind": "ours" if k in OUR_KINDS else "paper",
                             "config": configs[(k, d, s)], "label": f"{LABELS[k]} ({d})"})
            if k == "vae" and as_run and (d, P.seed) in as_run_cfgs:
                for s in P.seed_list:
                    cfg = as_run_cfgs[(d, s)]
                    width = "x".join(str(h) for h in cfg.hidden)
                    rows.append({"input": AS_RUN, "dim": d, "seed": s, "row_kind": "as-run",
                                 "config": cfg, "label": f"VAE ({d}), as run: hidden {width}"})
    if modern:
        for cfg in registry.modern_models(P):
            rows.append({"input": f"{cfg.model}+adam", "dim": cfg.zdim, "seed": cfg.seed,
                         "row_kind": "modern", "config": cfg,
                         "label": f"{LABELS[cfg.model]} ({cfg.zdim}), Adam"})
    return rows


def probe_features(P: Profile, row: dict, *, with_pose: bool = False, pca_test_mean: str = "train"
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features of one Table 1 row: ``(train (n, d), train labels (n,), test (m, d), test labels
    (m,))``, float64. Training features are the first ``P.probe_train`` training digits of the
    profile's data (all of them when None), test features the profile's test digits.
    ``raw``: the 784 pixels; ``pca``: a PCA fitted on those training images, the test images
    centred as ``pca_test_mean`` says (:data:`PCA_TEST_MEAN`); models: posterior means of z (with
    the pose u appended when ``with_pose``). Kept in memory (:func:`tvae.book.store.remember`)."""
    cfg = row["config"]
    centring = pca_test_mean if row["input"] == "pca" else None
    key = ("features", P, row["input"], row["dim"], cfg.key() if cfg is not None else None, with_pose,
           centring)
    return store.remember(key, lambda: _features(P, row, with_pose, pca_test_mean))


def _features(P: Profile, row: dict, with_pose: bool, pca_test_mean: str = "train"):
    data = store.data(P)
    n = len(data.x_train) if P.probe_train is None else min(P.probe_train, len(data.x_train))
    xtr, xte = data.x_train[:n], store.test_x(P)
    ytr = data.y_train[:n].cpu().numpy()
    yte = data.y_test[: len(xte)].cpu().numpy()
    if row["input"] == "raw":
        ftr, fte = xtr.cpu().double().numpy(), xte.cpu().double().numpy()
    elif row["input"] == "pca":
        ftr, fte = ev.pca_features(xtr.cpu().double().numpy(), xte.cpu().double().numpy(), row["dim"],
                                   seed=P.seed, test_mean=pca_test_mean)
    else:
        model = store.model(P, row["config"])
        ftr = ev.codes(model, xtr, with_pose=with_pose)
        fte = ev.codes(model, xte, with_pose=with_pose)
    return ftr, ytr, fte, yte


def common_c(P: Profile, rows: list[dict] | None = None) -> tuple[float, dict[float, float]]:
    """The common-C protocol's C: the value of :data:`tvae.evaluate.C_GRID` with the best mean
    3-fold CV accuracy over the training features of the paper's rows (Raw, PCA and the four
    paper models at the profile's first seed; our TPS-DTVAE, the as-run VAE and the modern Adam
    rows do not vote; at most 10,000 codes per row). Returns the C and the mean accuracy (%) of
    each candidate."""
    rows = probe_rows(P) if rows is None else rows
    voters = [r for r in rows if r["row_kind"] == "paper" and r["seed"] in (None, P.seed)] or rows
    feats = [probe_features(P, r)[0] for r in voters]
    y = probe_features(P, voters[0])[1]
    return ev.choose_common_c(feats, y, seed=P.seed)


# ----------------------------------------------------------------------------- table ----
def _probe_task(P: Profile, row: dict, c: float, pca_test_mean: str = "train") -> tuple:
    """The arguments of :func:`tvae.evaluate.probe` for one row at one C: its features (a PCA row's test
    images centred as ``pca_test_mean`` says), the z+u features of a pose model (else None)
    and C."""
    pose = row["config"] is not None and row["config"].udim > 0
    zu = probe_features(P, row, with_pose=True) if pose else None
    return probe_features(P, row, pca_test_mean=pca_test_mean), zu, c


def _table_row(row: dict, protocol: str, c: float, res: dict, n_train: int, n_test: int,
               scores: dict[float, float]) -> dict:
    """One line of ``table1_seeds.csv`` (see :func:`table1`)."""
    paper = PAPER_TABLE1.get((_kind(row["input"]), row["dim"])) if row["row_kind"] != "ours" else None
    pcv, psd, pte = paper if paper else (math.nan, math.nan, math.nan)
    return {"input": row["input"], "dim": row["dim"], "protocol": protocol,
            "seed": math.nan if row["seed"] is None else row["seed"],
            "cv_mean": res["cv_mean"], "cv_std": res["cv_std"], "test": res["test"], "C": c,
            "pca_test_mean": PCA_TEST_MEAN[protocol] if row["input"] == "pca" else "",
            "paper_cv_mean": pcv, "paper_cv_std": psd, "paper_test": pte,
            "test_zu": res.get("test_zu", math.nan), "converged": res["converged"],
            "row_kind": row["row_kind"], "label": row["label"], "n_train": n_train, "n_test": n_test,
            "seconds": res["seconds"],
            "common_c_scores": "; ".join(f"{k:g}:{v:.2f}" for k, v in scores.items())
            if protocol == "common-C" else ""}


def seed_table(per_seed: pd.DataFrame) -> pd.DataFrame:
    """``table1_seeds`` lines reduced over seeds: one line per (input, dim, protocol) with the
    mean over seeds of ``cv_mean``, ``cv_std``, ``test`` and ``test_zu``, the SD over seeds
    (``n - 1``; NaN for one seed) of ``cv_mean`` and ``test`` (``cv_mean_sd``, ``test_sd``),
    ``n_seeds``, ``seeds`` (e.g. '0;1;2', empty for the baselines), ``converged`` (every seed's
    fit), ``seconds`` (summed), the rest from the first seed; then ``diff_cv``, ``diff_test``
    (seed mean minus the paper's) and ``within_2sd``: whether the paper's CV mean lies within the
    seed rule's spread (:func:`tvae.book.discussion.within_spread`; 'paper' and 'as-run' rows
    only, None for the others)."""
    from .discussion import within_spread  # discussion imports this module

    out = []
    for _, g in per_seed.groupby(["input", "dim", "protocol"], sort=False):
        r = g.iloc[0].to_dict()
        n = len(g)
        for col in ("cv_mean", "cv_std", "test", "test_zu"):
            r[col] = float(g[col].mean())
        r["cv_mean_sd"] = float(g.cv_mean.std(ddof=1)) if n > 1 else math.nan
        r["test_sd"] = float(g.test.std(ddof=1)) if n > 1 else math.nan
        r["n_seeds"] = n
        r["seeds"] = ";".join(str(int(x)) for x in g.seed.dropna())
        r["converged"] = bool(g.converged.all())
        r["seconds"] = float(g.seconds.sum())
        r["diff_cv"] = r["cv_mean"] - r["paper_cv_mean"]
        r["diff_test"] = r["test"] - r["paper_test"]
        r["within_2sd"] = (within_spread(r["cv_mean"], r["cv_mean_sd"], r["paper_cv_mean"],
                                         r["paper_cv_std"])
                           if r["row_kind"] in ("paper", "as-run") and not math.isnan(r["paper_cv_mean"])
                           else None)
        del r["seed"]
        out.append(r)
    df = pd.DataFrame(out)
    return df[TABLE1_COLUMNS + [c for c in df.columns if c not in TABLE1_COLUMNS]]


def table1(P: Profile, *, kinds: Iterable[str] = ALL_KINDS, modern: bool = True,
           as_run: bool = True, write: bool = True, out_dir: str | Path | None = None,
           log: Callable[[str], None] | None = None, jobs: int | None = None) -> pd.DataFrame:
    """Table 1 (experiment 4): a linear SVM (scikit-learn ``LinearSVC``, unscaled features) on
    Raw pixels, PCA and the posterior means of z of each model at each dim of ``P.probe_dims``
    and each seed of ``P.seed_list`` (with the as-run VAE rows when ``as_run``).

    Per row, protocol and seed (``table1_seeds.csv``, :data:`SEED_COLUMNS` first): ``cv_mean``,
    ``cv_std`` (9-fold CV on the training features, %), ``test`` (a fit on all of them scored on
    the test features, %), ``C``; the paper's three numbers (NaN for rows it does not have);
    ``pca_test_mean`` (PCA rows: how the test images were centred, :data:`PCA_TEST_MEAN`; empty
    for the others), ``test_zu`` (test accuracy on z and u together, pose models only), ``converged``,
    ``row_kind`` ('paper', 'as-run' = the VAE with the original's one hidden layer, 'ours' =
    TPS-DTVAE, 'modern' = Adam-trained, not the paper's setting), ``label``, ``n_train``,
    ``n_test``, ``seconds`` (probe time, features excluded), ``common_c_scores`` (the CV accuracy
    of each candidate C, common-C rows, as text). A probe whose C (and, for PCA, test centring)
    is the same under both protocols is computed once. The features are computed here; the
    probes run in ``jobs`` processes (default: this process's thread budget,
    :func:`tvae.runtime.configure_threads`, so ``make -jN`` keeps its cores), largest first,
    each logged as it finishes.

    Returns those lines reduced over seeds (:func:`seed_table`, ``table1.csv``,
    :data:`TABLE1_COLUMNS` first); both CSVs are written when ``write``. The frame's ``attrs``
    carry the common C and its candidates' scores as numbers: ``attrs["common_c"]`` (float),
    ``attrs["common_c_scores"]`` (``{C: accuracy %}``), and ``attrs["seconds"]``, the wall time
    of the whole call (features included).
    """
    t0 = time.perf_counter()
    rows = probe_rows(P, kinds=kinds, modern=modern, as_run=as_run)
    c_common, scores = common_c(P, rows)
    if log:
        log(common_c_sentence(c_common, scores, markdown=False))
    lines, keys, tasks, names = [], {}, [], []
    for r in rows:
        for protocol in PROTOCOLS:
            c = ev.paper_c(_kind(r["input"]), r["dim"]) if protocol == "paper-C" else c_common
            centring = PCA_TEST_MEAN[protocol] if r["input"] == "pca" else "train"
            key = (r["input"], r["dim"], r["seed"], c, centring)
            if key not in keys:                   # a probe shared by both protocols runs once
                keys[key] = len(tasks)
                tasks.append(_probe_task(P, r, c, centring))
                seed = "" if r["seed"] is None else f" s{r['seed']}"
                names.append(f"{r['label'] + seed:<32} {protocol:<9} C={c:<5g}")
            lines.append((r, protocol, c, keys[key]))
    done: dict[int, dict] = {}
    for i, res in ev.run_probes(tasks, configure_threads() if jobs is None else jobs):
        done[i] = res
        if log:
            log(f"{names[i]} CV {res['cv_mean']:6.2f} ± {res['cv_std']:4.2f}  test {res['test']:6.2f}  "
                f"({res['seconds']:.1f} s)")
    out = [_table_row(r, protocol, c, done[i], len(tasks[i][0][1]), len(tasks[i][0][3]), scores)
           for r, protocol, c, i in lines]
    per_seed = pd.DataFrame(out)
    per_seed = per_seed[SEED_COLUMNS + [c for c in per_seed.columns if c not in SEED_COLUMNS]]
    df = seed_table(per_seed)
    if write:
        d = Path(out_dir or P.results_dir())
        write_csv(per_seed, d / "table1_seeds.csv")
        write_csv(df, d / "table1.csv")
    df.attrs.update(common_c=c_common, common_c_scores=dict(scores),
                    seconds=time.perf_counter() - t0)
    return df


def _row_order(name: str) -> int:
    order = ["raw", "pca", "vae", AS_RUN, *ALL_KINDS[1:]]
    base = name.removesuffix("+adam")
    return order.index(base) if base in order else len(order)


def table1_view(df: pd.DataFrame, protocol: str = "paper-C",
                row_kinds=("paper", "as-run", "ours"), details: bool = False) -> pd.DataFrame:
    """Table 1 of one protocol as the paper prints it: one row per input, our seed means of the
    CV mean and the test accuracy as ``mean ± SD over seeds`` strings, the CV std and C next to
    the paper's, and 'reproduces' (the seed rule). ``details=True``: the same rows with
    ``n_seeds``, the z+u test accuracy and whether every final SVM fit converged within
    :data:`tvae.evaluate.SVM_MAX_ITER` iterations (a second table, so the main one fits a page)."""
    d = df[(df.protocol == protocol) & df.row_kind.isin(row_kinds)].copy()
    if "n_seeds" not in d:
        d["n_seeds"], d["cv_mean_sd"], d["test_sd"] = 1, math.nan, math.nan
    d = d.assign(_o=d.input.map(_row_order), _d=d.dim.where(d.input != "raw", 0))
    d = d.sort_values(["_d", "_o"], kind="stable")
    note = d.row_kind.map({"ours": "(ours: no paper row)", "modern": "(modern: not the paper's setting)"})
    d["reproduces"] = d.within_2sd.map({True: "yes", False: "no"}).fillna(note)
    d["converged"] = d.converged.map({True: "yes", False: "no"})
    # ours as "mean ± SD over seeds" in one column each, so the table fits a page's column (the
    # differences to the paper are in the CSV and the sentences below the table)
    d["cv_mean"] = [_pm(m, sd) for m, sd in zip(d.cv_mean, d.cv_mean_sd, strict=True)]
    d["test"] = [_pm(m, sd) for m, sd in zip(d.test, d.test_sd, strict=True)]
    cols = ["label", "C", "cv_mean", "cv_std", "test", "paper_cv_mean", "paper_cv_std", "paper_test",
            "reproduces"]
    if details:
        cols = ["label", "n_seeds", "test_zu", "converged"]
    return d[cols].set_index("label")


VIEW_FORMATS = {"cv_std": "{:.2f}", "paper_cv_mean": "{:.2f}", "paper_cv_std": "{:.2f}",
                "paper_test": "{:.2f}", "C": "{:g}"}
"""How the main table's numeric columns are printed (``cv_mean`` and ``test`` arrive from
:func:`table1_view` as 'mean ± SD over seeds' text): two decimals, like the paper's table, and C
as written in the paper (0.01, 1, 10)."""

VERDICT_COLOURS = {"yes": "color: #1a7f37; font-weight: bold", "no": "color: #b00020"}
"""CSS of the 'reproduces' column's two verdicts (green yes, red no), so the eye finds them;
the explanatory notes of the rows without a paper row stay plain."""


def main_view(df: pd.DataFrame, protocol: str = "paper-C") -> Styler:
    """The main table of one protocol as chapter 08 shows it: :func:`table1_view`'s columns,
    numbers formatted by :data:`VIEW_FORMATS`, missing values blank, the 'reproduces' verdicts
    coloured (:data:`VERDICT_COLOURS`)."""
    return (table1_view(df, protocol).style.format(VIEW_FORMATS, na_rep="")
            .map(lambda v: VERDICT_COLOURS.get(v, ""), subset=["reproduces"]))


def details_view(df: pd.DataFrame, protocol: str = "paper-C") -> Styler:
    """The second table of one protocol (chapter 08): per row the number of seeds, the z+u
    probe's test accuracy (two decimals, blank for the models without a pose) and whether every
    final SVM fit converged (:func:`table1_view` with ``details=True``)."""
    return table1_view(df, protocol, details=True).style.format({"test_zu": "{:.2f}"}, na_rep="")


def seeds_view(per_seed: pd.DataFrame) -> Styler:
    """The model rows of ``table1_seeds.csv`` (as read back, or :func:`table1`'s per-seed lines)
    one line per row label and seed, the CV mean and the test accuracy under each protocol side
    by side, two decimals. The baselines (no seed) are left out: the main table has them."""
    m = per_seed[per_seed.seed.notna()].astype({"seed": int})
    return (m.pivot_table(index=["label", "seed"], columns="protocol", values=["cv_mean", "test"],
                          sort=False)
            .style.format(precision=2))


# ------------------------------------------------------------------------- sentences ----
def _pm(mean: float, sd: float) -> str:
    """``mean ± SD`` with two decimals (the mean alone when the SD is unknown)."""
    return f"{mean:.2f}" + ("" if sd is None or math.isnan(sd) else f" ± {sd:.2f}")



def common_c_sentence(c: float, scores: dict[float, float], *, markdown: bool = True) -> str:
    """The common C and the mean 3-fold CV accuracy of each candidate (:func:`common_c`)."""
    if not markdown:
        return ("common C = " + str(c) + " (3-fold CV accuracy per candidate: "
                + ", ".join(f"C={k:g}: {a:.2f}%" for k, a in scores.items()) + ")")
    return (f"The common C is **{c:g}** (mean 3-fold CV accuracy of each candidate C over all rows, "
            "%: " + ", ".join(f"{k:g} → {a:.2f}" for k, a in scores.items()) + ").")


def svm_sentence() -> str:
    """Which scikit-learn and which ``LinearSVC`` settings the probe runs with (Markdown): the
    one difference from the paper's protocol the chapter cannot avoid."""
    import sklearn  # only for its version

    return (f"scikit-learn {sklearn.__version__}; `LinearSVC(dual={ev.SVM_DUAL!r}, "
            f"max_iter={ev.SVM_MAX_ITER})` on unscaled features.")


def probe_sizes(P: Profile) -> tuple[int, int]:
    """How many training codes (the first ``P.probe_train`` training digits, all when None) and
    test codes the probe of profile ``P`` uses (:func:`probe_features`)."""
    n_all = len(store.data(P).x_train)
    n_train = n_all if P.probe_train is None else min(P.probe_train, n_all)
    return n_train, len(store.test_x(P))


def probe_data_sentence(n_train: int, n_test: int) -> str:
    """The probe's data (:func:`probe_sizes`) against the paper's 60,000 and 10,000 codes."""
    return (f"Probe data in this profile: **{n_train:,} training codes** for the cross-validation "
            f"and the final fit, **{n_test:,} test codes** for the test accuracy "
            "(the paper: 60,000 and 10,000).")


def run_sentences(df: pd.DataFrame, csv_path: str | Path) -> str:
    """What the run of :func:`table1` cost and where it went (Markdown): the wall time
    (``df.attrs["seconds"]``), of which the raw pixels' probes (each probe counted once, summed
    over seeds), and the CSV written; with one seed per paper model, a second paragraph saying
    that no verdict of the chapter is decisive."""
    once = df.drop_duplicates(["input", "dim", "C"])
    raw_s = once[once.input == "raw"].seconds.sum()
    out = (f"Table 1 computed in **{df.attrs['seconds']:.0f} s** (of which the probes of the raw "
           f"pixels, {RAW_DIM} features, {raw_s:.0f} s); written to `{csv_path}` (one line per "
           "seed in `table1_seeds.csv`).")
    if int(df[df.row_kind == "paper"].n_seeds.max()) == 1:
        out += ("\n\n**One seed per model in this profile:** the SD over seeds is unknown (empty), "
                "and no verdict of this chapter is decisive (the paper profile trains three).")
    return out


def _reproduction_sentence(d: pd.DataFrame, protocol: str) -> str:
    ok = d[d.within_2sd == True]  # noqa: E712 - the column holds True/False/None
    bad = d[d.within_2sd == False]  # noqa: E712
    c = sorted(set(d.C))
    cs = f"C = {c[0]:g}" if len(c) == 1 else "the paper's C per row"
    s = (f"**{protocol}** ({cs}): {len(ok)} of {len(d)} paper rows reproduce (the paper's CV mean "
         f"within {REPRODUCE_SDS:g} sqrt(SD_seeds^2 + SD_paper^2) of our seed mean)")
    s += (": " + ", ".join(f"{r.label} ({r.cv_mean:.2f} vs {r.paper_cv_mean:.2f})"
                           for r in ok.itertuples()) if len(ok) else "")
    s += ". Not reproduced: " + (", ".join(
        f"{r.label} ({r.cv_mean:.2f} vs {r.paper_cv_mean:.2f}, {signed(r.diff_cv, 2)})"
        for r in bad.itertuples()) if len(bad) else "none") + "."
    return s


def table1_findings(df: pd.DataFrame) -> dict[str, list[str]]:
    """Markdown sentences on Table 1 (``df`` from :func:`table1`), by topic:
    ``reproduction`` (which paper rows reproduce under each protocol, the departures),
    ``ranking`` (our test accuracies at each dim, paper-C, seed means ± SD), ``as_run`` (which
    VAE, 2 x 256 or the original's one hidden layer, is nearer the paper's VAE row) and
    ``modern`` (Adam against Adadelta, one sentence per modern row). A sentence resting on one
    seed says so."""
    out: dict[str, list[str]] = {"reproduction": [], "ranking": [], "as_run": [], "modern": []}
    one = "n_seeds" not in df or int(df.n_seeds.max()) < 2
    if one:
        out["reproduction"].append("Every model number below rests on **one seed** (this profile): "
                                   "its spread over seeds is unknown, so no verdict here is decisive.")
    for protocol in PROTOCOLS:
        d = df[(df.protocol == protocol) & (df.row_kind == "paper")]
        if len(d):
            out["reproduction"].append(_reproduction_sentence(d, protocol))
    d = df[(df.protocol == "paper-C") & (df.row_kind != "modern")]
    for dim in sorted(set(d.dim) - {RAW_DIM}):
        g = d[d.dim == dim].sort_values("test", ascending=False)
        if len(g):
            out["ranking"].append(f"**Ranking at dim {dim}** (our test accuracy, paper-C, seed mean"
                                  + ("" if one else " ± SD") + "): " + " > ".join(
                f"{r.label} {_pm(r.test, getattr(r, 'test_sd', math.nan))}" for r in g.itertuples()) + ".")
    for dim in sorted(set(d.dim) - {RAW_DIM}):
        g = d[(d.dim == dim) & d.input.isin(["vae", AS_RUN])].set_index("input")
        if len(g) == 2:
            a, b = g.loc["vae"], g.loc[AS_RUN]
            near = "the as-run VAE" if abs(b.diff_cv) < abs(a.diff_cv) else "the 2 x 256 VAE"
            out["as_run"].append(
                f"**VAE ({dim})**: CV mean {_pm(a.cv_mean, a.get('cv_mean_sd', math.nan))} with 2 x 256 "
                f"hidden units, {_pm(b.cv_mean, b.get('cv_mean_sd', math.nan))} as the original ran it "
                f"({b.label.split('hidden ')[-1]} units), the paper {a.paper_cv_mean:.2f}: {near} is "
                "nearer the paper (paper-C).")
    m = df[(df.row_kind == "modern")]
    for r in m[m.protocol == "paper-C"].itertuples():
        base = df[(df.input == r.input.removesuffix("+adam")) & (df.dim == r.dim)
                  & (df.protocol == "paper-C")]
        if len(base):
            b = base.iloc[0]
            out["modern"].append(
                f"**Modern option, {r.label}:** test accuracy {r.test:.2f}% with Adam against "
                f"{b.test:.2f}% with Adadelta (our paper-setting run) and {r.paper_test:.2f}% in "
                f"the paper, both with C = {r.C:g}.")
    return out


def row_verdicts(df: pd.DataFrame) -> str:
    """Chapter 08's verdict, row by row (a Markdown list): :func:`table1_findings`' reproduction,
    as-run and ranking sentences, in that order (the modern option has its own section)."""
    f = table1_findings(df)
    return bullets(f["reproduction"] + f["as_run"] + f["ranking"])


# ------------------------------------------------------------------- modern option ----
def modern_comparison(P: Profile, table: pd.DataFrame) -> pd.DataFrame:
    """The 'modern option' of chapter 08: for each kind of :data:`MODERN_KINDS` at dim z
    :data:`MODERN_DIM`, the paper's Adadelta run and the Adam run side by side. ``table``: the
    output of :func:`table1` (with its modern rows).

    Columns: ``model`` (display name), ``optimizer``, ``test_elbo``, ``test_bce``, ``test_kl_z``
    (last epoch, nats per digit), ``active_z`` (see
    :data:`tvae.book.latent_dimension.ACTIVE_NATS`, on the profile's test digits),
    ``test_paper_c``, ``c_paper``, ``test_common_c``, ``c_common``, ``test_zu`` (paper C, z and
    u), ``paper_test`` (the paper's test accuracy, Adadelta), accuracies in %."""
    paper_runs = {c.model: c for c in registry.table1_models(P)
                  if c.zdim == MODERN_DIM and c.seed == P.seed}
    adam_runs = {c.model: c for c in registry.modern_models(P)}
    rows = []
    for kind in MODERN_KINDS:
        for cfg in (paper_runs[kind], adam_runs[kind]):
            model, ck = store.trained(P, cfg)
            last = ck["history"][-1] if ck["history"] else {}
            name = kind + ("+adam" if cfg.optimizer == "adam" else "")
            probe = table[(table.input == name) & (table.dim == MODERN_DIM)].set_index("protocol")
            # (the Adadelta rows are seed means when the profile has several seeds)
            rows.append({"model": LABELS[kind], "optimizer": cfg.optimizer,
                         "test_elbo": last.get("test_elbo", math.nan),
                         "test_bce": last.get("test_bce", math.nan),
                         "test_kl_z": last.get("test_kl_z", math.nan),
                         "active_z": active_dims(model, store.test_x(P)),
                         "test_paper_c": probe.loc["paper-C", "test"], "c_paper": probe.loc["paper-C", "C"],
                         "test_common_c": probe.loc["common-C", "test"],
                         "c_common": probe.loc["common-C", "C"],
                         "test_zu": probe.loc["paper-C", "test_zu"],
                         "paper_test": PAPER_TABLE1[(kind, MODERN_DIM)][2]})
    return pd.DataFrame(rows)


MODERN_NAMES = {"test_elbo": "test ELBO", "test_bce": "test BCE", "test_kl_z": "KL(z)",
                "active_z": "active dims", "test_paper_c": "acc. paper-C", "c_paper": "C",
                "test_common_c": "acc. common-C", "c_common": "common C", "test_zu": "acc. z+u",
                "paper_test": "paper's acc."}
"""Column headings of the modern option's table: short, so that it fits the page's column."""

OPTIMIZER_NAMES = {"adadelta": "Adadelta (paper's)", "adam": "Adam (modern)"}
"""How the modern option's table names each optimiser (saying which one is the paper's)."""


def modern_view(df: pd.DataFrame) -> Styler:
    """:func:`modern_comparison` as chapter 08 shows it: one row per model and optimiser
    (:data:`OPTIMIZER_NAMES`), the headings of :data:`MODERN_NAMES`, two decimals, blanks for
    missing values."""
    view = df.assign(optimizer=df.optimizer.map(OPTIMIZER_NAMES)).rename(columns=MODERN_NAMES)
    return view.set_index(["model", "optimizer"]).style.format(precision=2, na_rep="")


def modern_findings(df: pd.DataFrame) -> list[str]:
    """Markdown sentences comparing the Adadelta and Adam runs of :func:`modern_comparison`."""
    out = []
    for name, g in df.groupby("model", sort=False):
        a = g[g.optimizer == "adadelta"].iloc[0]
        b = g[g.optimizer == "adam"].iloc[0]
        s = (f"**{name} ({MODERN_DIM})**: with Adam the test ELBO is {b.test_elbo:.1f} nats against "
             f"{a.test_elbo:.1f} with Adadelta ({signed(b.test_elbo - a.test_elbo)}); the code carries "
             f"{b.test_kl_z:.1f} nats against {a.test_kl_z:.1f}, in {b.active_z} active dimensions against "
             f"{a.active_z}. The probe's test accuracy goes from {a.test_paper_c:.2f}% (Adadelta) to "
             f"{b.test_paper_c:.2f}% (Adam) with the paper's C = {a.c_paper:g}, and from "
             f"{a.test_common_c:.2f}% to {b.test_common_c:.2f}% with the common C = {a.c_common:g}; "
             f"the paper reports {a.paper_test:.2f}%.")
        if not math.isnan(a.test_zu):
            s += (f" With the pose appended (z+u, paper's C): {a.test_zu:.2f}% (Adadelta), "
                  f"{b.test_zu:.2f}% (Adam).")
        out.append(s)
    return out


__all__ = ["PAPER_TABLE1", "TABLE1_COLUMNS", "SEED_COLUMNS", "AS_RUN", "PROTOCOLS", "PCA_TEST_MEAN",
           "REPRODUCE_SDS",
           "probe_rows", "seed_table",
           "probe_features", "common_c", "table1", "table1_view", "common_c_sentence",
           "table1_findings", "modern_comparison", "modern_findings", "VIEW_FORMATS",
           "VERDICT_COLOURS", "MODERN_NAMES", "OPTIMIZER_NAMES", "main_view", "details_view",
           "seeds_view", "svm_sentence", "probe_sizes", "probe_data_sentence", "run_sentences",
           "row_verdicts", "modern_view"]
