"""Chapters 07 and 09 (:mod:`tvae.book.generation`, :mod:`tvae.book.pose_priors`): the generation
models at every training seed of the profile, the CSVs with one row per model x training seed,
their means and SDs over training seeds against hand computations, the generation claims decided
by the seed rule on constructed cases (one seed: not decisive), and chapter 09's tables and
findings."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import tvae
import tvae.quality as q
from tvae import build_model
from tvae.book import discussion as D
from tvae.book import generation as gen
from tvae.book import pose_priors as pp
from tvae.book import registry as R
from tvae.book import store
from tvae.classifier import ClassifierConfig


# -------------------------------------------------------------------------- registry ----
@pytest.mark.parametrize(("name", "seeds", "n"),
                         [("smoke", None, 1), ("quick", None, 1), ("paper", None, 3), ("smoke", 2, 2)])
def test_generation_models_at_every_training_seed(name, seeds, n):
    P = tvae.resolve(name, seeds=seeds)
    points = list(R.generation_set(P))
    assert len(points) == 14
    got = R.generation_models(P)
    assert len(got) == len(points) * n
    for k, z in points:
        assert sorted(c.seed for c in got if (c.model, c.zdim) == (k, z)) == list(range(n)), (k, z)
    assert {c.key() for c in got} <= {c.key() for c in R.needed_models(P)}
    for s in P.seed_list:
        assert {c.seed for c in R.generation_set(P, s).values()} == {s}
    # the figures' models (the default seed) are the profile's own configurations
    assert R.generation_set(P) == R.generation_set(P, P.seed)
    assert R.generation_set(P)[("tps-tvae", 12)].key() == P.config("tps-tvae", 12).key()


def test_sampling_seeds_per_profile():
    assert gen.sample_seeds(tvae.resolve("smoke")) == (0,)
    assert gen.sample_seeds(tvae.resolve("quick")) == (0, 1, 2)         # one training seed
    assert gen.sample_seeds(tvae.resolve("paper")) == (0,)              # three training seeds
    assert gen.sample_seeds(tvae.resolve("quick", seeds=2, seed=4)) == (4,)
    assert pp.sample_seeds(tvae.resolve("paper")) == (0, 1, 2)          # chapter 09: one training seed


# --------------------------------------------------------------- untrained stand-ins ----
@pytest.fixture
def untrained(monkeypatch):
    """The store hands out untrained models (seeded by their configuration's seed) and random
    test digits: the chapters' tables without training anything."""
    def model(P, cfg):
        torch.manual_seed(1000 + cfg.seed)
        return build_model(cfg).eval()

    x = torch.rand(60, 784, generator=torch.Generator().manual_seed(0)) ** 4
    monkeypatch.setattr(store, "model", model)
    monkeypatch.setattr(store, "test_x", lambda P, name="mnist": x)
    store.forget()
    yield x
    store.forget()


def binary_entropy(x: torch.Tensor) -> float:
    p = np.clip(x.detach().double().numpy(), 1e-6, 1 - 1e-6)
    return float((-(p * np.log(p) + (1 - p) * np.log(1 - p))).mean())


def test_sample_table_has_a_row_per_training_seed(untrained, tmp_path):
    P = tvae.resolve("smoke", seeds=2)
    df = gen.sample_table(P, out_dir=tmp_path)
    back = pd.read_csv(tmp_path / "generation_samples.csv")
    assert list(back.columns) == gen.SAMPLE_COLUMNS and len(back) == 1 + 14 * 2
    models = back[back.label != gen.REAL]
    assert (models.groupby("label").seed.agg(sorted).map(list) == [[0, 1]] * 14).all()
    assert back[back.label == gen.REAL].seed.isna().all()
    # one row by hand: the entropy and ink of the same samples
    cfg = R.generation_set(P, 1)[("affine-tvae", 4)]
    x = gen.samples(store.model(P, cfg), gen.DESCRIBE_N, P.seed)
    row = df[(df.label == "Affine-TVAE, dim z 4") & (df.seed == 1)].iloc[0]
    assert row.entropy_x == pytest.approx(binary_entropy(x), rel=1e-5)
    assert row.ink_x == pytest.approx(float(x.double().sum(1).mean()), rel=1e-6)
    assert row.dim_u == 6
    other = df[(df.label == "Affine-TVAE, dim z 4") & (df.seed == 0)].iloc[0]
    assert other.entropy_x != row.entropy_x                 # two seeds, two models
    # the summary: mean and SD over the two training seeds
    s = gen.seed_summary(df[df.label != gen.REAL], ["label"], ("entropy_x",)).set_index("label")
    pair = df[df.label == "VAE, dim z 20"].entropy_x
    assert s.loc["VAE, dim z 20", "entropy_x"] == pytest.approx(pair.mean())
    sd = abs(pair.iloc[0] - pair.iloc[1]) / math.sqrt(2)                 # the SD of two numbers
    assert s.loc["VAE, dim z 20", "entropy_x_sd"] == pytest.approx(sd)
    assert (s.n_seeds == 2).all()
    assert "mean ± SD over 2 training seeds" in gen.sample_sentences(df)


TINY_CLASSIFIER = ClassifierConfig(channels=(4, 8), hidden=16, epochs=3, batch_size=30, lr=1e-2,
                                   lr_decay=0.7, train_size=300, seed=0)


def test_quality_csv_has_a_row_per_training_seed(untrained, tmp_path, mnist300_short):
    ref = q.get_reference(mnist300_short, q.QualitySettings(60, TINY_CLASSIFIER),
                          classifier_data=mnist300_short, root=tmp_path / "cache")
    P = tvae.resolve("smoke", seeds=2)
    df = gen.quality_table(P, ref, out_dir=tmp_path)
    back = pd.read_csv(tmp_path / "sample_quality.csv")
    assert list(back.columns) == list(q.COLUMNS)
    models = back[back.kind == "model"]
    assert len(back) == 3 + 14 * 2 and len(models) == 28
    assert (models.groupby("label")["model seed"].agg(sorted).map(list) == [[0, 1]] * 14).all()
    assert set(models["sample seed"]) == {0} and set(models.pose) == {"mean", "none"}
    # mean and SD over the training seeds, from the CSV by hand
    s = gen.quality_summary(df).set_index("label")
    two = models[models.label == "Affine-DTVAE, dim z 14"].frechet.to_numpy()
    assert s.loc["Affine-DTVAE, dim z 14", "frechet"] == pytest.approx(two.mean())
    assert s.loc["Affine-DTVAE, dim z 14", "frechet_sd"] == pytest.approx(two.std(ddof=1))
    assert (s.n_seeds == 2).all()
    shown = gen.quality_display(df)
    assert list(shown.index[:3]) == [r["label"] for r in ref.rows] and "±" in shown.frechet.iloc[3]


def test_quality_summary_averages_sampling_seeds_first():
    rows = [{"label": "A", "kind": "model", "pose": "mean", "model seed": ms, "sample seed": ss,
             **{c: v for c in gen.QUALITY_METRICS}}
            for ms, ss, v in ((0, 0, 1.0), (0, 1, 3.0), (1, 0, 6.0), (1, 1, 6.0), (2, 0, 1.0), (2, 1, 1.0))]
    s = gen.quality_summary(pd.DataFrame(rows)).iloc[0]
    # per trained model 2, 6, 1: their mean and SD (not the SD of the six rows)
    assert s.frechet == pytest.approx(3.0) and s.n_seeds == 3
    assert s.frechet_sd == pytest.approx(np.std([2.0, 6.0, 1.0], ddof=1))


# ------------------------------------------------------------------------ verdicts ----
def _constructed(frechet: dict[str, float], entropy: dict[str, float], seeds: int, spread: float):
    """Quality and ink tables of the chapter's labels: seed s of a label is its value +
    spread * (s - mean seed)."""
    offsets = [spread * (s - (seeds - 1) / 2) for s in range(seeds)]
    P = tvae.resolve("smoke")
    labels = {gen.name(k, z): (k, z) for k, z in R.generation_set(P)}
    qrows, drows = [], []
    for label, (k, z) in labels.items():
        for s, off in enumerate(offsets):
            qrows.append({"label": label, "kind": "model", "pose": "mean", "model seed": s,
                          "sample seed": 0, **{c: 0.5 for c in gen.QUALITY_METRICS},
                          "frechet": frechet.get(label, 100.0) + off})
            drows.append({"label": label, "model": k, "dim_z": z, "seed": s, "ink_x": 100.0,
                          "entropy_x": entropy.get(label, 0.5) + off / 100})
    return pd.DataFrame(qrows), pd.DataFrame(drows)


def test_generation_claims_by_the_seed_rule():
    tvae_better = {gen.name("affine-tvae", z): 50.0 for z in (4, 14, 10, 20)}
    sharper = {gen.name("affine-tvae", 4): 0.3, gen.name("affine-tvae", 14): 0.3}   # 2 of 4 pairs
    dtvae_worse = {gen.name("affine-dtvae", z): 200.0 for z in (2, 4, 10, 14, 20)}
    quality, desc = _constructed({**tvae_better, **dtvae_worse, gen.name("tps-tvae", 12): 100.0},
                                 sharper, seeds=3, spread=1.0)
    v = gen.generation_verdicts(quality, desc)
    assert list(v.columns) == gen.VERDICT_COLUMNS
    assert list(v.verdict) == [D.REPRODUCED, D.PARTLY, gen.REVERSED, D.UNDECIDED]
    assert D.ONE_SEED not in " ".join(v.evidence) and "mean ± SD over 3 training seeds" in v.evidence[0]
    assert "2 SE = " in v.evidence[0] and "ink: " in v.evidence[1]
    # a seed spread larger than the differences: nothing is decided
    quality, desc = _constructed(tvae_better, sharper, seeds=3, spread=400.0)
    assert gen.generation_verdicts(quality, desc).verdict[0] == D.UNDECIDED
    # the VAE better at every pair, beyond the spread
    quality, desc = _constructed({gen.name("vae", t): 10.0 for t in (10, 20)}, {}, seeds=3, spread=1.0)
    assert gen.generation_verdicts(quality, desc).verdict[0] == D.NOT_REPRODUCED


def test_one_training_seed_is_not_decisive(tmp_path):
    quality, desc = _constructed({gen.name("affine-tvae", z): 50.0 for z in (4, 14, 10, 20)}, {},
                                 seeds=1, spread=0.0)
    P = tvae.resolve("smoke")
    v = gen.verdict_table(P, quality, desc, out_dir=tmp_path)
    assert v.verdict[0] == D.REPRODUCED                      # decided on the sign alone...
    assert all(D.ONE_SEED in e for e in v.evidence)          # ...and said not to be decisive
    assert "not decisive" in gen.seeds_note(P)
    back = pd.read_csv(tmp_path / "generation_verdicts.csv")
    assert list(back.columns) == gen.VERDICT_COLUMNS and list(back.verdict) == list(v.verdict)


# ------------------------------------------------------------------------- chapter 09 ----
def test_prior_table_against_the_vae(untrained, tmp_path):
    P = tvae.resolve("smoke")
    df = pp.prior_table(P, out_dir=tmp_path)
    back = pd.read_csv(tmp_path / "pose_priors.csv")
    assert list(back.columns) == pp.PRIOR_COLUMNS and len(back) == 6 + 3 + 1
    vae = back[back.model == "vae"].iloc[0]
    assert vae.prior == "none" and vae.elbo_minus_vae == 0.0
    priors = back[back.model != "vae"]
    np.testing.assert_allclose(priors.elbo_minus_vae, priors.test_elbo - vae.test_elbo, rtol=1e-12)
    np.testing.assert_allclose(priors.test_elbo, -(priors.test_bce + priors.kl_z + priors.kl_u), rtol=1e-5)
    assert priors[priors.model == "tps-tvae"].rotation_sd_deg.isna().all()
    assert priors[priors.model == "affine-tvae"].rotation_sd_deg.notna().all()
    # the trace is that of W W^T of the pose head
    aff, _ = R.pose_prior_sets(P)
    m = store.model(P, aff["lowrank r4"])
    w = m.pose.w.detach().double()
    row = df[(df.model == "affine-tvae") & (df.prior == "lowrank r4")].iloc[0]
    assert row.trace == pytest.approx(float((w @ w.T).trace()), rel=1e-6)   # float32 head
    assert "of 9 models have a higher ELBO than the VAE" in pp.elbo_sentence(df)
    params = pp.parameter_table(P, out_dir=tmp_path)
    assert list(pd.read_csv(tmp_path / "pose_prior_parameters.csv").columns) == ["prior", "parameter",
                                                                               "mean_b", "sd"]
    assert len(params) == 6 + 6 + 5


def test_pose_prior_findings_on_a_constructed_run(tmp_path):
    aff = ["identity-diag", "mean-diag", "reparam5-diag", "lowrank r2", "lowrank r4", "lowrank r6 (full)"]
    tps = ["lowrank r3", "lowrank r9", "lowrank r18 (full)"]
    trace = [0.5, 0.2, 0.1, 0.1, 0.2, 0.4] + [0.1, 0.2, 0.3]
    ink = [90, 95, 97, 99, 98, 80] + [99, 97, 90]
    rot = [5.0, 3.0, 8.0, 1.0, 1.0, 1.0] + [math.nan] * 3
    priors = pd.DataFrame({"model": ["affine-tvae"] * 6 + ["tps-tvae"] * 3, "prior": aff + tps,
                           "trace": trace, "ink_kept_pct": ink, "rotation_sd_deg": rot})
    sd = {"a11": 0.1, "a12": 0.3, "tx": 0.5, "a21": 0.1, "a22": 0.1, "ty": 0.1}
    params = pd.DataFrame([{"prior": "mean-diag", "parameter": k, "mean_b": 0.0, "sd": v}
                           for k, v in sd.items()])
    f = pp.findings_table(tvae.resolve("smoke"), priors, params, out_dir=tmp_path)
    assert list(f.verdict) == [pp.YES] * 5                  # tx is in other units: a12 is the largest
    priors.loc[priors.prior == "identity-diag", "trace"] = 0.1
    priors.loc[priors.prior == "lowrank r18 (full)", "ink_kept_pct"] = 100
    f = pp.findings(priors, params)
    assert list(f.verdict) == [pp.NO, pp.YES, pp.YES, pp.YES, pp.NO]
    assert "none is decisive" in pp.findings_sentences(f)
    written = pd.read_csv(tmp_path / "pose_prior_findings.csv")
    assert list(written.columns) == ["finding", "verdict", "evidence"] and len(written) == 5


def test_discussion_takes_the_generation_claims_only():
    """Chapter 14's verdict table appends chapter 07's claims; the comparisons the paper makes
    no claim on stay in chapter 07, whatever their verdict (also 'within the seed spread')."""
    gv = pd.DataFrame([
        {"experiment": gen.EXPERIMENT, "claim": "better upright digits", "verdict": D.REPRODUCED,
         "evidence": "a"},
        {"experiment": gen.QUESTION, "claim": "DTVAE vs TVAE", "verdict": gen.HOLDS, "evidence": "b"},
        {"experiment": gen.QUESTION, "claim": "TPS vs affine", "verdict": D.UNDECIDED, "evidence": "d"},
        {"experiment": gen.EXPERIMENT, "claim": "sharper than VAE", "verdict": D.UNDECIDED,
         "evidence": "c"}])
    v = D.verdicts(generation=gv)
    assert v.claim.tolist() == ["better upright digits", "sharper than VAE"]
    assert v.verdict.tolist() == [D.REPRODUCED, D.UNDECIDED]
    assert D.verdicts().empty
