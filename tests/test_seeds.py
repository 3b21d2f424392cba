"""Seeds in the book layer (issue 10): the registry's seeds per point, the as-run VAE rows,
the mean and SD over seeds of chapters 05 and 08 (against hand computations), the CSVs' columns,
the seed rule of the verdicts on constructed cases, and the seed count reaching every chapter
(``make book SEEDS=1``)."""

from __future__ import annotations

import ast
import dataclasses
import math
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch

import tvae
from tvae import build_model
from tvae.book import discussion as D
from tvae.book import latent_dimension as ld
from tvae.book import registry as R
from tvae.book import table1 as T1
from tvae.profiles import Profile
from tvae.train import run_summary

REPO = Path(__file__).resolve().parent.parent
BOOK_PARAMETERS = ("profile", "seed", "epochs", "device", "data_dir", "seeds")
"""The parameters every chapter takes (the Makefile's PARAMS, as ``-p name value``)."""


# ------------------------------------------------------------------ the book's parameters ----
@pytest.mark.parametrize("chapter", sorted(p.name for p in (REPO / "book").glob("[0-9][0-9]_*.ipynb")))
def test_every_chapter_takes_the_seed_count(chapter):
    """A one-seed book (``-p seeds 1``) is one seed in every chapter: each chapter's parameters
    cell defines every book parameter and each ``tvae.resolve`` call passes them all on (a
    chapter without ``seeds`` once trained the whole three-seed profile in a one-seed build)."""
    nb = nbformat.read(REPO / "book" / chapter, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    cells = [ast.parse(c.source) for c in code]
    params = [tree for c, tree in zip(code, cells, strict=True) if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{chapter}: {len(params)} parameters cells"
    names = {t.id for node in params[0].body if isinstance(node, ast.Assign) for t in node.targets}
    assert set(BOOK_PARAMETERS) <= names, f"{chapter} lacks {set(BOOK_PARAMETERS) - names}"
    calls = [n for tree in cells for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and n.func.attr == "resolve"]
    assert calls, f"{chapter} never resolves its profile"
    for call in calls:
        passed = {k.arg for k in call.keywords} | {a.id for a in call.args if isinstance(a, ast.Name)}
        assert set(BOOK_PARAMETERS) <= passed, f"{chapter}: resolve() misses {set(BOOK_PARAMETERS) - passed}"


def test_record_reads_the_seed_count():
    """``make record SEEDS=1`` finds the one-seed run's results (``results/<profile>-seeds1``)."""
    sys.path.insert(0, str(REPO / "scripts"))
    import record

    P = record.resolve_profile("smoke", [("seeds", "1"), ("seed", "2")])
    assert (P.n_seeds, P.seed) == (1, 2)
    assert P.results_name == tvae.resolve("smoke", seeds=1, seed=2).results_name
    assert record.resolve_profile("smoke", [("seeds", "2")]).n_seeds == 2


# -------------------------------------------------------------------------- registry ----
@pytest.mark.parametrize(("name", "seeds", "n"),
                         [("smoke", None, 1), ("quick", None, 1), ("paper", None, 3), ("smoke", 2, 2)])
def test_registry_gives_n_seeds_models_per_point(name, seeds, n):
    P = tvae.resolve(name, seeds=seeds)
    assert P.seed_list == tuple(range(n))
    needed = {c.key() for c in R.needed_models(P)}
    for fn, points in ((R.exp1_models, [(k, z) for k in R.PAPER_KINDS for z in P.zdims]),
                       (R.table1_models, [(k, d) for k in R.ALL_KINDS for d in P.probe_dims])):
        got = fn(P)
        for k, z in points:
            seeds_here = sorted(c.seed for c in got if (c.model, c.zdim) == (k, z))
            assert seeds_here == list(range(n)), (fn.__name__, k, z)
        assert {c.key() for c in got} <= needed
    as_run = R.table1_as_run_models(P)
    assert len(as_run) == len(P.probe_dims) * n and {c.key() for c in as_run} <= needed
    # seed 0 of a point is the profile's own configuration (shared with the other chapters)
    assert P.config("vae", 20).key() in {c.key() for c in R.table1_models(P)}


def test_smoke_and_quick_do_not_grow_beyond_the_as_run_rows():
    for name in ("smoke", "quick"):
        P = tvae.resolve(name)
        one = {c.key() for c in R.needed_models(P)}
        assert len(one) == len(R.needed_models(dataclasses.replace(P, n_seeds=1)))
        three = R.needed_models(dataclasses.replace(P, n_seeds=3))
        extra = 2 * (len(R.exp1_models(P)) + len(R.table1_models(P)) + len(R.table1_as_run_models(P))
                     + len(R.generation_models(P)))
        # every extra seed is a new model, except the dim-20 TPS-TVAE / Affine-TVAE seeds 1 and 2
        # that the local-optima study trains anyway
        shared = {c.key() for c in R.local_optima_models(P)}
        new = [c for c in three if c.key() not in one]
        assert 0 < len(new) <= extra and not any(c.seed == 0 for c in new)
        assert all(c.key() not in shared for c in new)


def test_as_run_vae_configs_have_the_original_widths():
    P = tvae.resolve("paper")
    by_dim = {(c.zdim, c.seed): c for c in R.table1_as_run_models(P)}
    assert by_dim[(8, 0)].hidden == (512,) and by_dim[(20, 2)].hidden == (128,)
    assert R.label(by_dim[(8, 0)]) == "VAE z8 (hidden 512)"
    assert R.label(by_dim[(20, 2)]) == "VAE z20 (hidden 128, seed 2)"
    for (z, _), cfg in by_dim.items():
        assert cfg.model == "vae" and cfg.epochs == P.epochs and cfg.train_size is None
        m = build_model(cfg)
        width = R.AS_RUN_VAE_HIDDEN[z][0]
        trunk = [x for x in m.trunk.modules() if isinstance(x, torch.nn.Linear)]
        assert [(x.in_features, x.out_features) for x in trunk] == [(784, width)]   # one hidden layer
        assert (m.mu_z.in_features, m.mu_z.out_features) == (width, z)
        dec = [x for x in m.decoder.modules() if isinstance(x, torch.nn.Linear)]
        assert [(x.in_features, x.out_features) for x in dec] == [(z, width), (width, 784)]


# ------------------------------------------------------------------- means over seeds ----
def test_seed_table_against_a_hand_computation():
    base = dict(dim=8, protocol="paper-C", C=1.0, paper_cv_mean=87.70, paper_cv_std=0.93, paper_test=87.99,
                test_zu=math.nan, converged=True, row_kind="paper", label="VAE (8)", n_train=10, n_test=5,
                seconds=1.0, common_c_scores="")
    cv, test = [86.0, 88.0, 90.0], [85.0, 86.0, 90.0]
    rows = [dict(base, input="vae", seed=s, cv_mean=c, cv_std=0.5 + s, test=t)
            for s, c, t in zip((0, 1, 2), cv, test, strict=True)]
    rows.append(dict(base, input="pca", seed=math.nan, cv_mean=75.0, cv_std=1.0, test=75.5,
                     paper_cv_mean=75.09, paper_cv_std=1.32, paper_test=75.51, label="PCA (8)"))
    df = T1.seed_table(pd.DataFrame(rows)).set_index("input")
    v = df.loc["vae"]
    assert v.cv_mean == pytest.approx(88.0) and v.test == pytest.approx(87.0)
    assert v.cv_mean_sd == pytest.approx(2.0)                      # sqrt((4 + 0 + 4) / 2)
    assert v.test_sd == pytest.approx(math.sqrt(((85 - 87) ** 2 + 1 + 9) / 2))
    assert v.cv_std == pytest.approx(1.5) and v.n_seeds == 3 and v.seeds == "0;1;2"
    assert v.seconds == pytest.approx(3.0) and v.diff_cv == pytest.approx(88.0 - 87.70)
    # the seed rule: |88.0 - 87.70| <= 2 sqrt(2^2 + 0.93^2)
    assert v.within_2sd is True or v.within_2sd == True  # noqa: E712
    p = df.loc["pca"]
    assert p.n_seeds == 1 and p.seeds == "" and math.isnan(p.cv_mean_sd)
    assert list(df.reset_index().columns[:len(T1.TABLE1_COLUMNS)]) == T1.TABLE1_COLUMNS


def test_recon_summary_against_a_hand_computation():
    df = pd.DataFrame({"model": ["vae"] * 3 + ["tps-tvae"] * 3, "dim_z": [20] * 6,
                       "dim_u": [0] * 3 + [18] * 3,
                       "seed": [0, 1, 2] * 2, "bce_mean_best": [100.0, 102.0, 104.0, 90.0, 90.0, 93.0],
                       "bce_mean_last": [101.0, 103.0, 105.0, 91.0, 92.0, 96.0],
                       "bce_sampled_last": [110.0] * 6, "kl_z": [20.0] * 6, "active_z": [7, 8, 9, 5, 5, 5]})
    s = ld.recon_summary(df).set_index("model")
    assert s.loc["vae", "bce_mean_best"] == pytest.approx(102.0)
    assert s.loc["vae", "bce_mean_best_sd"] == pytest.approx(2.0)
    assert s.loc["tps-tvae", "bce_mean_last"] == pytest.approx(93.0)
    assert s.loc["tps-tvae", "bce_mean_last_sd"] == pytest.approx(math.sqrt((4 + 1 + 9) / 2))
    assert s.loc["vae", "active_z"] == pytest.approx(8.0) and s.loc["tps-tvae", "latent_total"] == 38
    assert (s.n_seeds == 3).all() and s.loc["vae", "bce_sampled_last_sd"] == 0.0
    assert ld.main_metric(df) == "bce_mean_best"
    assert ld.main_metric(df.assign(bce_mean_best=np.nan)) == "bce_mean_last"
    mean, sd, n = ld.seed_stats(pd.Series([3.0]))
    assert (mean, n) == (3.0, 1) and math.isnan(sd)                  # one seed: spread unknown


def test_run_summary_matches_the_history():
    hist = [{"epoch": 1, "test_bce_mean": 120.0}, {"epoch": 2, "test_bce_mean": 99.0},
            {"epoch": 3, "test_bce_mean": 99.0}, {"epoch": 4, "test_bce_mean": 101.5}]
    assert run_summary(hist) == {"test_bce_mean_last": 101.5, "test_bce_mean_min": 99.0,
                                   "test_bce_mean_min_epoch": 2}
    assert run_summary([{"epoch": 1, "test_elbo": -100.0}]) == {}   # trained before the metric


# ------------------------------------------------------------------------ seed rule ----
def test_within_spread_inside_outside_and_one_seed():
    assert D.spread(1.0, 0.0) == pytest.approx(2.0)
    assert D.spread(3.0, 4.0) == pytest.approx(10.0)                  # 2 sqrt(9 + 16)
    assert D.within_spread(90.0, 3.0, 99.9, 4.0) and not D.within_spread(90.0, 3.0, 100.1, 4.0)
    assert D.within_spread(90.0, math.nan, 91.0, 0.5)                 # one seed: the paper's SD alone
    assert not D.within_spread(90.0, math.nan, 91.1, 0.5)
    assert D.within_spread(90.0, math.nan, 90.0) and not D.within_spread(90.0, math.nan, 90.01)


def test_order_verdict_on_constructed_cases():
    # A - B = 3, SE = sqrt(1/3 + 1/3) = 0.816, 2 SE = 1.63: A better
    v, e = D.order_verdict((93.0, 1.0, 3), (90.0, 1.0, 3))
    assert v == D.REPRODUCED and "2 SE = 1.63" in e
    assert D.order_verdict((91.0, 1.0, 3), (90.0, 1.0, 3))[0] == D.UNDECIDED
    assert D.order_verdict((88.0, 1.0, 3), (90.0, 1.0, 3))[0] == D.NOT_REPRODUCED
    # 'at least as good': a small deficit within 2 SE is still reproduced
    assert D.order_verdict((89.0, 1.0, 3), (90.0, 1.0, 3), strict=False)[0] == D.REPRODUCED
    assert D.order_verdict((88.0, 1.0, 3), (90.0, 1.0, 3), strict=False)[0] == D.NOT_REPRODUCED
    # lower is better (BCE)
    assert D.order_verdict((85.0, 0.5, 3), (90.0, 0.5, 3), higher_is_better=False)[0] == D.REPRODUCED
    # one seed: the sign alone, and the evidence says so
    v, e = D.order_verdict((90.1, math.nan, 1), (90.0, math.nan, 1))
    assert v == D.REPRODUCED and e.endswith(D.ONE_SEED)
    assert "one seed" in D.RULE and "2 sqrt(SD_seeds^2 + SD_paper^2)" in D.RULE


def _table(tests: dict[str, tuple[float, float]], n: int, dim: int = 8) -> pd.DataFrame:
    rows = []
    for k, (t, sd) in tests.items():
        pcv, psd, pte = T1.PAPER_TABLE1[(k, dim)]
        rows.append(dict(input=k, dim=dim, protocol="paper-C", cv_mean=t, cv_std=0.5, test=t, test_sd=sd,
                         cv_mean_sd=sd, n_seeds=n, paper_cv_mean=pcv, paper_cv_std=psd, paper_test=pte,
                         diff_cv=t - pcv, diff_test=t - pte, row_kind="paper", label=f"{k} ({dim})",
                         within_2sd=D.within_spread(t, sd, pcv, psd), C=1.0))
    return pd.DataFrame(rows)


def test_table1_ordering_claims_with_the_seed_spread():
    tab = _table({"vae": (88.0, 0.3), "affine-tvae": (88.5, 0.3), "affine-dtvae": (93.5, 0.3)}, 3)
    v = D.verdicts(table=tab).set_index("claim")
    assert v.loc["DTVAE > TVAE >= VAE at dim 8 (test accuracy)", "verdict"] == D.REPRODUCED
    assert D.ONE_SEED not in v.loc["DTVAE > TVAE >= VAE at dim 8 (test accuracy)", "evidence"]
    close = _table({"vae": (88.0, 2.0), "affine-tvae": (88.5, 2.0), "affine-dtvae": (89.0, 2.0)}, 3)
    assert D.verdicts(table=close).set_index("claim").loc[
        "DTVAE > TVAE >= VAE at dim 8 (test accuracy)", "verdict"] == D.UNDECIDED
    one = _table({"vae": (88.0, math.nan), "affine-tvae": (88.5, math.nan),
                  "affine-dtvae": (93.5, math.nan)}, 1)
    ev = D.verdicts(table=one).set_index("claim").loc[
        "DTVAE > TVAE >= VAE at dim 8 (test accuracy)", "evidence"]
    assert D.ONE_SEED in ev
    tps = _table({"vae": (86.0, 0.2), "affine-tvae": (90.0, 0.2), "tps-tvae": (94.0, 0.2),
                  "affine-dtvae": (93.9, 0.2)}, 3, dim=20)
    v = D.verdicts(table=tps).set_index("claim").verdict
    assert v["TPS-TVAE best at dim 20 (test accuracy)"] == D.UNDECIDED          # 0.1 < 2 SE vs DTVAE
    tps.loc[tps.input == "affine-dtvae", "test"] = 92.0
    assert D.verdicts(table=tps).set_index("claim").verdict[
        "TPS-TVAE best at dim 20 (test accuracy)"] == D.REPRODUCED


def test_recon_verdicts_use_the_seed_spread():
    rows = []
    rng = np.random.default_rng(0)
    for m, du, bces in (("vae", 0, [150, 120, 100, 104]), ("affine-tvae", 6, [120, 105, 97, 96]),
                        ("tps-tvae", 18, [95, 92, 90, 88]), ("affine-dtvae", 6, [118, 104, 92, 91])):
        for z, b in zip((2, 10, 20, 40), bces, strict=True):
            for s, noise in enumerate(rng.normal(0, 0.2, 3)):
                rows.append({"model": m, "dim_z": z, "dim_u": du, "seed": s, "bce_mean_best": b + noise,
                             "bce_mean_last": b + 1.0})
    v = D.verdicts(recon=pd.DataFrame(rows))
    assert list(v.verdict) == [D.REPRODUCED] * 3
    assert "best-epoch posterior-mean BCE" in v.evidence.iloc[0] and "±" in v.evidence.iloc[0]
    assert not any(D.ONE_SEED in e for e in v.evidence)
    # a huge seed spread: the transformer models are no longer decidedly better
    noisy = pd.DataFrame(rows)
    noisy["bce_mean_best"] += np.tile([-40.0, 0.0, 40.0], len(noisy) // 3)
    assert D.verdicts(recon=noisy).verdict.iloc[1] == D.NOT_REPRODUCED


# ----------------------------------------------------------------- CSVs on tiny data ----
@pytest.fixture
def tiny2(tiny_profile) -> Profile:
    """The synthetic 200/50 MNIST, 1 epoch, two seeds per point, a private model cache."""
    return tiny_profile(n_seeds=2)


def test_csvs_with_two_seeds(tiny2, tmp_path):
    df = ld.recon_vs_dim(tiny2, out_dir=tmp_path)
    back = pd.read_csv(tmp_path / "recon_vs_dim.csv")
    assert list(back.columns[:len(ld.RECON_COLUMNS)]) == ld.RECON_COLUMNS
    assert sorted(zip(df.model, df.seed, strict=True)) == sorted(
        (k, s) for k in R.PAPER_KINDS for s in (0, 1))
    assert set(df.bce_mean_source) <= {"history", "computed"}
    a, b = (df[(df.model == "vae") & (df.seed == s)].bce_sampled_last.item() for s in (0, 1))
    assert a != b                                                    # two seeds, two models
    t = T1.table1(tiny2, kinds=("vae",), modern=False, out_dir=tmp_path)
    seeds = pd.read_csv(tmp_path / "table1_seeds.csv")
    assert list(seeds.columns[:len(T1.SEED_COLUMNS)]) == T1.SEED_COLUMNS
    assert list(pd.read_csv(tmp_path / "table1.csv").columns[:len(T1.TABLE1_COLUMNS)]) == T1.TABLE1_COLUMNS
    for inp, n in (("raw", 1), ("pca", 1), ("vae", 2), (T1.AS_RUN, 2)):
        assert (t[t.input == inp].n_seeds == n).all(), inp
        for protocol in T1.PROTOCOLS:
            per = seeds[(seeds.input == inp) & (seeds.protocol == protocol)]
            row = t[(t.input == inp) & (t.protocol == protocol)].iloc[0]
            assert len(per) == n
            assert row.test == pytest.approx(per.test.mean())
            assert row.cv_mean == pytest.approx(per.cv_mean.mean())
            if n == 2:
                assert row.test_sd == pytest.approx(per.test.std(ddof=1))
                assert row.cv_mean_sd == pytest.approx(per.cv_mean.std(ddof=1))
            else:
                assert math.isnan(row.test_sd) and per.seed.isna().all()


def test_mostly_tps_and_dtvae_needs_both_better_than_the_vae():
    rows = []
    for m, du, bces in (("vae", 0, [150, 120, 100, 104]), ("affine-tvae", 6, [160, 150, 140, 139]),
                        ("tps-tvae", 18, [95, 92, 90, 88]), ("affine-dtvae", 6, [150, 125, 104, 106])):
        for z, b in zip((2, 10, 20, 40), bces, strict=True):
            rows.append({"model": m, "dim_z": z, "dim_u": du, "bce_mean_last": float(b),
                         "latent_total": z + du})
    v = D.verdicts(recon=pd.DataFrame(rows)).set_index("claim").verdict
    # Affine-DTVAE is second of three but worse than the VAE: the claim holds only in part
    assert v["Mostly TPS-TVAE and Affine-DTVAE"] == D.PARTLY


def test_a_recon_table_from_before_seeds_is_upgraded():
    old = pd.DataFrame({"model": ["vae", "vae"], "dim_z": [2, 20], "dim_u": [0, 0],
                        "test_bce": [120.0, 100.0], "test_elbo": [-130.0, -110.0], "test_kl_z": [5.0, 9.0],
                        "test_bce_mean": [118.0, 97.0], "active_z": [2, 8]})
    new = ld.upgrade(old)
    assert list(new.bce_mean_last) == [118.0, 97.0] and list(new.bce_sampled_last) == [120.0, 100.0]
    assert new.bce_mean_best.isna().all() and (new.seed == 0).all()
    assert ld.main_metric(old) == "bce_mean_last"
    s = ld.recon_summary(old)
    assert list(s.bce_mean_last) == [118.0, 97.0] and (s.n_seeds == 1).all()
    assert ld.upgrade(new) is new
