"""Chapters 08 (Table 1) and 10 (the variational gap), issues 12 and 15.

- The functions the chapters call for their tables (``*_view``, pandas Stylers) and sentences
  (Markdown strings), on small constructed frames, against what a hand computation prints:
  nothing is trained.
- The chapters' cells only call :mod:`tvae.book.table1` and :mod:`tvae.book.variational_gap`:
  short, no loops, conditions, definitions or f-strings; their table and figure cells collapsed.
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import sklearn

import tvae
from tvae import evaluate as ev
from tvae.book import table1 as T1
from tvae.book import variational_gap as vg
from tvae.book.text import bullets

REPO = Path(__file__).resolve().parent.parent


def _shown(styler) -> pd.DataFrame:
    """The text a Styler prints in each data cell (parsed from its HTML), with its data's index
    and columns."""
    html = styler.to_html()
    data = styler.data
    out = pd.DataFrame("", index=data.index, columns=data.columns, dtype=object)
    cells = re.findall(r'<td id="T_\w+?_row(\d+)_col(\d+)" class="data[^"]*" >(.*?)</td>', html)
    assert len(cells) == data.size
    for r, c, text in cells:
        out.iloc[int(r), int(c)] = text
    return out


def _css(styler) -> dict[tuple[int, int], str]:
    """The CSS of each styled data cell, by (row, column) position."""
    blocks = re.findall(r"#T_\w+?_row(\d+)_col(\d+) \{(.*?)\}", styler.to_html(), re.S)
    return {(int(r), int(c)): " ".join(css.split()) for r, c, css in blocks}


# ------------------------------------------------------------------------ chapter 08 ----
def _seed_table(n_seeds: int = 1) -> pd.DataFrame:
    """A small :func:`tvae.book.table1.seed_table`-like frame: Raw, PCA (8), VAE (8) (reproduces),
    Affine-TVAE (8) (does not), TPS-DTVAE (8) (ours), under both protocols."""
    sd = math.nan if n_seeds == 1 else 0.5
    rows = []
    for inp, dim, kind, label, cv, test, paper, ok, zu, conv in (
            ("raw", 784, "paper", "Raw MNIST (784)", 91.234, 91.5, (91.19, 0.74, 91.80), True, math.nan,
             True),
            ("pca", 8, "paper", "PCA (8)", 75.5, 75.0, (75.09, 1.32, 75.51), True, math.nan, True),
            ("vae", 8, "paper", "VAE (8)", 87.0, 87.25, (87.70, 0.93, 87.99), True, math.nan, False),
            ("affine-tvae", 8, "paper", "Affine-TVAE (8)", 80.0, 81.0, (89.30, 0.68, 88.39), False, 84.567,
             True),
            ("tps-dtvae", 8, "ours", "TPS-DTVAE (8)", 85.0, 85.5, (math.nan,) * 3, None, 90.0, True)):
        for protocol, c in (("paper-C", 0.01 if inp == "affine-tvae" else 1.0), ("common-C", 1.0)):
            rows.append({"input": inp, "dim": dim, "protocol": protocol, "cv_mean": cv, "cv_std": 0.934,
                         "test": test, "paper_cv_mean": paper[0], "paper_cv_std": paper[1],
                         "paper_test": paper[2],
                         "cv_mean_sd": math.nan if inp in ("raw", "pca") else sd,
                         "test_sd": math.nan if inp in ("raw", "pca") else sd,
                         "n_seeds": 1 if inp in ("raw", "pca") else n_seeds, "C": c, "test_zu": zu,
                         "converged": conv, "row_kind": kind, "label": label, "within_2sd": ok,
                         "seconds": 2.4 if inp == "raw" else 0.5})
    df = pd.DataFrame(rows)
    df["diff_cv"] = df.cv_mean - df.paper_cv_mean
    df["diff_test"] = df.test - df.paper_test
    return df


def test_main_view_prints_the_paper_layout():
    df = _seed_table(n_seeds=3)
    styler = T1.main_view(df, "paper-C")
    shown = _shown(styler)
    assert list(shown.columns) == ["C", "cv_mean", "cv_std", "test", "paper_cv_mean", "paper_cv_std",
                                   "paper_test", "reproduces"]
    assert list(shown.index) == ["Raw MNIST (784)", "PCA (8)", "VAE (8)", "Affine-TVAE (8)", "TPS-DTVAE (8)"]
    assert list(shown.C) == ["1", "1", "1", "0.01", "1"]                 # C as the paper writes it
    assert shown.loc["Raw MNIST (784)", "cv_mean"] == "91.23"            # baselines: one probe
    assert shown.loc["VAE (8)", "cv_mean"] == "87.00 ± 0.50"             # models: mean ± SD over seeds
    assert shown.loc["VAE (8)", "cv_std"] == "0.93"
    assert shown.loc["VAE (8)", "paper_test"] == "87.99"
    assert shown.loc["TPS-DTVAE (8)", "paper_cv_mean"] == ""             # no paper row: blank
    assert list(shown.reproduces) == ["yes", "yes", "yes", "no", "(ours: no paper row)"]
    css = _css(styler)
    col = list(shown.columns).index("reproduces")
    assert css[(2, col)] == "color: #1a7f37; font-weight: bold;"
    assert "#b00020" in css[(3, col)]
    assert (4, col) not in css                                           # the note stays plain
    common = _shown(T1.main_view(df, "common-C"))
    assert list(common.C) == ["1"] * 5


def test_details_view():
    shown = _shown(T1.details_view(_seed_table(n_seeds=3), "paper-C"))
    assert list(shown.columns) == ["n_seeds", "test_zu", "converged"]
    assert list(shown.n_seeds) == ["1", "1", "3", "3", "3"]
    assert list(shown.test_zu) == ["", "", "", "84.57", "90.00"]        # two decimals, blank without pose
    assert list(shown.converged) == ["yes", "yes", "no", "yes", "yes"]


def test_seeds_view_has_one_line_per_model_and_seed():
    rows = [{"input": "raw", "label": "Raw MNIST (784)", "seed": math.nan, "protocol": p,
             "cv_mean": 91.0, "test": 92.0} for p in T1.PROTOCOLS]
    for seed in (0, 1):
        for p, shift in zip(T1.PROTOCOLS, (0.0, 1.0), strict=True):
            rows.append({"input": "vae", "label": "VAE (8)", "seed": float(seed), "protocol": p,
                         "cv_mean": 80.123 + seed + shift, "test": 81.0 + seed + shift})
    styler = T1.seeds_view(pd.DataFrame(rows))
    shown = _shown(styler)
    assert list(shown.index) == [("VAE (8)", 0), ("VAE (8)", 1)]         # baselines left out
    assert shown.loc[("VAE (8)", 1), ("cv_mean", "paper-C")] == "81.12"
    assert shown.loc[("VAE (8)", 1), ("cv_mean", "common-C")] == "82.12"
    assert shown.loc[("VAE (8)", 0), ("test", "common-C")] == "82.00"


def test_setup_sentences():
    assert T1.svm_sentence() == (f"scikit-learn {sklearn.__version__}; `LinearSVC(dual={ev.SVM_DUAL!r}, "
                                 f"max_iter={ev.SVM_MAX_ITER})` on unscaled features.")
    assert T1.probe_data_sentence(6000, 1000) == (
        "Probe data in this profile: **6,000 training codes** for the cross-validation and the final "
        "fit, **1,000 test codes** for the test accuracy (the paper: 60,000 and 10,000).")


@pytest.mark.parametrize(("probe_train", "expected"), [(None, 100), (30, 30), (500, 100)])
def test_probe_sizes(monkeypatch, probe_train, expected):
    data = SimpleNamespace(x_train=np.zeros((100, 784)))
    monkeypatch.setattr(T1.store, "data", lambda P: data)
    monkeypatch.setattr(T1.store, "test_x", lambda P: np.zeros((7, 784)))
    assert T1.probe_sizes(SimpleNamespace(probe_train=probe_train)) == (expected, 7)


def test_run_sentences_count_each_raw_probe_once():
    df = _seed_table()
    df.attrs["seconds"] = 12.6
    # raw: the same C under both protocols, one probe of 2.4 s (not 4.8)
    one = T1.run_sentences(df, Path("results/x/table1.csv"))
    first, second = one.split("\n\n")
    assert first == ("Table 1 computed in **13 s** (of which the probes of the raw pixels, 784 features, "
                     "2 s); written to `results/x/table1.csv` (one line per seed in `table1_seeds.csv`).")
    assert second.startswith("**One seed per model in this profile:**")
    three = _seed_table(n_seeds=3)
    three.attrs["seconds"] = 12.6
    assert T1.run_sentences(three, "t.csv").count("\n\n") == 0


def test_row_verdicts_are_the_findings_in_order():
    df = _seed_table()
    f = T1.table1_findings(df)
    text = T1.row_verdicts(df)
    assert text == bullets(f["reproduction"] + f["as_run"] + f["ranking"])
    lines = text.splitlines()
    assert lines[0].startswith("- Every model number below rests on **one seed**")
    assert lines[-1].startswith("- **Ranking at dim 8**")
    # paper-C: Raw, PCA and VAE reproduce, the Affine-TVAE (80.00 against 89.30) does not
    assert "3 of 4 paper rows reproduce" in lines[1] and "Affine-TVAE (8) (80.00 vs 89.30, -9.30)" in lines[1]


def test_modern_view():
    df = pd.DataFrame({"model": ["VAE", "VAE"], "optimizer": ["adadelta", "adam"],
                       "test_elbo": [-100.456, -95.0], "test_bce": [80.0, 75.0], "test_kl_z": [20.0, 21.0],
                       "active_z": [6, 8], "test_paper_c": [87.0, 90.0], "c_paper": [1.0, 1.0],
                       "test_common_c": [88.0, 91.0], "c_common": [1.0, 1.0],
                       "test_zu": [math.nan, math.nan], "paper_test": [87.99, 87.99]})
    shown = _shown(T1.modern_view(df))
    assert list(shown.index) == [("VAE", "Adadelta (paper's)"), ("VAE", "Adam (modern)")]
    assert list(shown.columns) == [T1.MODERN_NAMES[c] for c in df.columns[2:]]
    assert shown.iloc[0]["test ELBO"] == "-100.46" and shown.iloc[1]["active dims"] == "8"
    assert shown.iloc[0]["acc. z+u"] == ""


# ------------------------------------------------------------------------ chapter 10 ----
def test_sampling_and_time_sentences():
    P, full = tvae.resolve("smoke"), tvae.resolve("paper")
    assert vg.sampling_sentence(P) == (
        f"Importance sampling in this profile: **k = {P.ll_k}** draws per digit on the first "
        f"**{P.ll_n}** test digits (the *paper* profile uses k = {full.ll_k} on {full.ll_n}).")
    df = pd.DataFrame()
    df.attrs["seconds"] = 41.5
    assert vg.time_sentence(df) == "Computed in 42 s."


def test_likelihood_view():
    df = pd.DataFrame({c: [1.23456, 2.0] for c in vg.LIKELIHOOD_COLUMNS})
    df["label"] = ["VAE z20", "Affine-TVAE z20"]
    df["dim_u"] = [0, 6]
    shown = _shown(vg.likelihood_view(df))
    assert list(shown.columns) == [*vg.VIEW_COLUMNS[1:], "gap_over_kl_sd", "n_seeds"]
    assert list(shown.index) == ["VAE z20", "Affine-TVAE z20"] and list(shown.n_seeds) == ["1", "1"]
    assert list(shown.gap_over_kl_sd) == ["", ""]                      # one seed: no SD
    assert shown.loc["VAE z20", "gap"] == "1.23" and shown.loc["VAE z20", "gap_over_kl"] == "1.235"
    assert list(shown.dim_u) == ["0", "6"]


def test_rise_between_the_two_largest_k():
    # rows out of order in k: the rise is taken after sorting; B has a single k (NaN)
    curves = pd.DataFrame({"label": ["A", "A", "A", "B", "C", "C"], "k": [10, 1, 5, 10, 5, 10],
                           "log_likelihood": [-90.0, -100.0, -93.5, -80.0, -70.25, -70.0]})
    rise = vg.last_rise(curves)
    assert list(rise.index) == ["A", "B", "C"]
    assert rise["A"] == pytest.approx(3.5) and math.isnan(rise["B"]) and rise["C"] == pytest.approx(0.25)
    assert vg.rise_sentence(curves[curves.label != "B"]) == (
        "Rise of the estimate between k = 5 and k = 10: A +3.50 nats, C +0.25 nats.")
    assert vg.rise_sentence(curves[curves.k == 10]) == ""               # one k: nothing to say


# --------------------------------------------------------------------- the cells ----
@pytest.mark.parametrize("name", ["08_table1", "10_variational_gap"])
def test_cells_only_call_the_chapter_module(name):
    cells = json.loads((REPO / "book" / f"{name}.ipynb").read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert sum("parameters" in c["metadata"].get("tags", []) for c in code) == 1
    for c in code:
        tags, src = c["metadata"].get("tags", []), "".join(c["source"])
        if "parameters" in tags or "import tvae" in src:
            continue
        lines = [line for line in src.splitlines() if line.strip()]
        assert len(lines) <= 2, f"{name}: a long cell: {src[:60]!r}"
        tree = ast.parse(src)
        for node in ast.walk(tree):
            assert not isinstance(node, ast.For | ast.If | ast.FunctionDef | ast.Lambda | ast.JoinedStr
                                  | ast.ListComp | ast.DictComp), f"{name}: {type(node).__name__} in {src!r}"
        shows = "tf." in src or "_view(" in src
        assert shows == ("hide-input" in tags), f"{name}: table and figure cells (only) collapse: {src!r}"
