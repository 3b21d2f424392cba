"""Tests of :mod:`tvae.quality` and :mod:`tvae.classifier`: every metric against an independent
computation (closed forms, brute-force numpy, scipy), the classifier through the model cache,
the cached reference, the table and its CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import scipy.ndimage
import torch

import tvae.cache
import tvae.quality as q
from tvae import Config, ConfigError, build_model
from tvae.cache import classifier_entry_path, get_classifier
from tvae.classifier import CLASSIFIER_VERSION, ClassifierConfig, embed


# ------------------------------------------------------------ Fréchet distance ----
def test_frechet_of_a_set_with_itself_is_zero():
    f = torch.randn(500, 12, generator=torch.Generator().manual_seed(0)) @ torch.randn(12, 12)
    mu, cov = q.gaussian_fit(f)
    assert abs(q.frechet_distance(mu, cov, mu, cov)) < 1e-9 * np.trace(cov)


def test_frechet_matches_the_closed_form_of_diagonal_gaussians():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=7), rng.normal(size=7)
    s1, s2 = rng.uniform(0.1, 3, 7), rng.uniform(0.1, 3, 7)
    expected = ((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum()
    got = q.frechet_distance(mu1, np.diag(s1 ** 2), mu2, np.diag(s2 ** 2))
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_matches_scipy_sqrtm_on_full_covariances():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    c1, c2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    cross = scipy.linalg.sqrtm(c1 @ c2).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * cross)
    assert q.frechet_distance(mu1, c1, mu2, c2) == pytest.approx(expected, rel=1e-8)
    # symmetric in its two arguments
    assert q.frechet_distance(mu2, c2, mu1, c1) == pytest.approx(expected, rel=1e-8)


def test_gaussian_fit_is_numpy_mean_and_unbiased_cov():
    f = np.random.default_rng(3).normal(size=(40, 3))
    mu, cov = q.gaussian_fit(torch.from_numpy(f).float())
    np.testing.assert_allclose(mu, f.astype(np.float32).mean(0), rtol=1e-6)
    np.testing.assert_allclose(cov, np.cov(f.astype(np.float32).T, ddof=1), rtol=1e-5)
    with pytest.raises(ConfigError):
        q.gaussian_fit(np.zeros((1, 3)))


# ------------------------------------------------------- k-NN and precision/recall ----
def brute_sq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(2)


def brute_radii(a: np.ndarray, k: int) -> np.ndarray:
    # k-th nearest other point: column k of the sorted distances, column 0 being the point itself
    return np.sqrt(np.sort(brute_sq(a, a), 1)[:, k])


@pytest.mark.parametrize("k", [1, 3, 5])
def test_knn_radii_against_brute_force(k):
    a = np.random.default_rng(4).normal(size=(53, 6)).astype(np.float32)   # features are float32
    got = q.knn_radii(torch.from_numpy(a), k, chunk=7).numpy()     # several chunks
    np.testing.assert_allclose(got, brute_radii(a.astype(np.float64), k), rtol=1e-12)


def test_knn_radii_count_duplicates_at_distance_zero():
    a = np.repeat(np.random.default_rng(5).normal(size=(5, 3)), 4, axis=0)   # 4 copies each
    assert np.all(q.knn_radii(a, 3).numpy() == 0)
    assert np.all(q.knn_radii(a, 4).numpy() > 0)
    # 12 copies: more ties than screened candidates (k + 1 + RADIUS_SPARE = 8), so every row
    # takes the full float64 recomputation, which must agree with brute force
    b = np.repeat(np.random.default_rng(5).normal(size=(3, 3)).astype(np.float32), 12, axis=0)
    for k in (3, 11, 12):
        np.testing.assert_allclose(q.knn_radii(b, k).numpy(), brute_radii(b.astype(np.float64), k),
                                   rtol=1e-12)


def test_precision_recall_of_a_set_against_itself_is_one():
    f = torch.randn(300, 8, generator=torch.Generator().manual_seed(6))
    assert q.precision_recall(f, f, 3, chunk=64) == (1.0, 1.0)
    dup = torch.cat([f[:50]] * 3)            # duplicates: radii 0, still every point in its ball
    assert q.precision_recall(dup, dup, 2) == (1.0, 1.0)


def test_precision_recall_against_brute_force():
    rng = np.random.default_rng(7)
    real = rng.normal(size=(120, 5)).astype(np.float32).astype(np.float64)
    fake = (rng.normal(size=(90, 5)) * 1.5 + 0.5).astype(np.float32).astype(np.float64)
    k = 3
    d2 = brute_sq(fake, real)
    rr, rg = brute_radii(real, k), brute_radii(fake, k)
    precision = np.mean((d2 <= rr[None, :] ** 2).any(1))
    recall = np.mean((d2 <= rg[:, None] ** 2).any(0))
    assert 0 < precision < 1 and 0 < recall < 1         # a case that tests something
    got = q.precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k, chunk=16)
    assert got == pytest.approx((precision, recall), abs=1e-12)


def test_precision_recall_of_far_sets_is_zero():
    real = torch.randn(50, 4, generator=torch.Generator().manual_seed(8))
    assert q.precision_recall(real, real + 100.0) == (0.0, 0.0)


# ------------------------------------------------------------ labels, confidence ----
def test_label_kl_by_hand():
    assert q.label_kl(np.arange(1000) % 10) == pytest.approx(0.0, abs=1e-15)
    assert q.label_kl(np.zeros(7, int)) == pytest.approx(np.log(10))
    # p = (1/2, 1/4, 1/4, 0, ...): sum p log(10 p)
    expected = 0.5 * np.log(5) + 2 * 0.25 * np.log(2.5)
    assert q.label_kl(torch.tensor([3, 3, 1, 7])) == pytest.approx(expected)
    with pytest.raises(ConfigError):
        q.label_kl(np.array([], int))


def test_mean_confidence_by_hand():
    p = torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]])
    assert q.mean_confidence(p) == pytest.approx((0.9 + 0.7 + 0.5) / 3)


# ---------------------------------------------------- nearest training digit ----
def test_nearest_distances_against_brute_force_images():
    g = torch.Generator().manual_seed(9)
    ref = torch.rand(700, 784, generator=g) ** 3
    x = torch.rand(60, 784, generator=g) ** 3
    expected = np.sqrt(brute_sq(x.double().numpy(), ref.double().numpy()).min(1))
    got = q.nearest_distances(x, ref, chunk=16).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_nearest_distances_exact_with_ties_and_exclusion():
    # every reference row twice: the screening cannot separate the two best, so the certified
    # fallback (a full float64 search) runs; leaving a row's own copies out is respected
    g = torch.Generator().manual_seed(10)
    base = torch.rand(40, 20, generator=g)
    ref = torch.cat([base, base])
    x = torch.cat([base[:10] + 0.01, torch.rand(5, 20, generator=g)])
    expected = np.sqrt(brute_sq(x.double().numpy(), ref.double().numpy()).min(1))
    got = q.nearest_distances(x, ref, candidates=1, chunk=4).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # leave-one-out on the reference itself: nearest *other* row
    ref2 = torch.rand(30, 20, generator=g)
    d2 = brute_sq(ref2.double().numpy(), ref2.double().numpy())
    np.fill_diagonal(d2, np.inf)
    got = q.nearest_distances(ref2, ref2, exclude=torch.arange(30), candidates=2, chunk=8)
    np.testing.assert_allclose(got.numpy(), np.sqrt(d2.min(1)), rtol=1e-12)
    # ties at a non-zero distance with a row left out: the float64 re-screening must honour it
    shifted = base + 0.01
    ref3 = torch.cat([base, shifted, shifted])
    d2 = brute_sq(base.double().numpy(), ref3.double().numpy())
    d2[np.arange(40), np.arange(40)] = np.inf
    got = q.nearest_distances(base, ref3, exclude=torch.arange(40), candidates=1, chunk=16)
    np.testing.assert_allclose(got.numpy(), np.sqrt(d2.min(1)), rtol=1e-12)
    # -1: nothing left out (distance 0 to itself)
    ex = torch.full((30,), -1)
    assert torch.all(q.nearest_distances(ref2, ref2, exclude=ex) == 0)


# ------------------------------------------------------------------- baselines ----
def test_blur_matches_scipy_gaussian_filter():
    x = torch.rand(3, 784, generator=torch.Generator().manual_seed(11))
    expected = np.stack([scipy.ndimage.gaussian_filter(im.reshape(28, 28).double().numpy(), 1.0,
                                                       mode="constant", truncate=3.0)
                         for im in x])
    np.testing.assert_allclose(q.blur(x, 1.0).reshape(-1, 28, 28).numpy(), expected, atol=1e-6)


def test_class_means_by_hand():
    x = torch.arange(12.0).reshape(6, 2).repeat(1, 392)
    y = torch.tensor([0, 1, 0, 1, 2, 3] + [])
    y = torch.cat([y, torch.arange(4, 10)])
    x = torch.cat([x, torch.zeros(6, 784)])
    m = q.class_means(x, y, 23)
    assert m.shape == (23, 784)
    assert torch.equal(m[0], (x[0] + x[2]) / 2) and torch.equal(m[10], m[0])
    assert torch.equal(m[1], (x[1] + x[3]) / 2) and torch.equal(m[22], m[2])


# ---------------------------------------------------- classifier and the cache ----
TINY_CLASSIFIER = ClassifierConfig(channels=(4, 8), hidden=16, epochs=3, batch_size=30, lr=1e-2,
                                   lr_decay=0.7, train_size=300, seed=0)
"""A classifier of 30 steps on 300 digits (about 50% test accuracy, a second of training)."""


@pytest.fixture
def count_classifier_training(monkeypatch) -> list:
    calls: list = []
    real = tvae.cache._train_classifier

    def counting(config, *args, **kwargs):
        calls.append(config.key())
        return real(config, *args, **kwargs)

    monkeypatch.setattr(tvae.cache, "_train_classifier", counting)
    return calls


def test_classifier_is_trained_once_then_loaded(tmp_path, mnist300_short, count_classifier_training):
    net, state = get_classifier(TINY_CLASSIFIER, mnist300_short, root=tmp_path)
    again, state2 = get_classifier(TINY_CLASSIFIER, mnist300_short, root=tmp_path)
    assert count_classifier_training == [TINY_CLASSIFIER.key()]
    for (k, a), (_, b) in zip(net.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    path = classifier_entry_path(TINY_CLASSIFIER, mnist300_short.identity, tmp_path)
    assert path.is_file() and path.name.endswith(f"-c{CLASSIFIER_VERSION}.pt")
    assert TINY_CLASSIFIER.key() in path.name and mnist300_short.identity in path.name
    assert not list(tmp_path.glob(".*.tmp"))                  # atomic: no temporary left
    # its reported accuracy is its accuracy on the data's test digits (500 here)
    _, p = embed(again, mnist300_short.x_test)
    assert state2["test_accuracy"] == pytest.approx(float((p.argmax(1) == mnist300_short.y_test)
                                                          .double().mean()))
    assert state2["test_accuracy"] > 0.3                      # it learned something (chance: 10%)
    # another seed is another entry
    other = ClassifierConfig(**{**TINY_CLASSIFIER.to_dict(), "seed": 1})
    assert classifier_entry_path(other, mnist300_short.identity, tmp_path) != path


def test_classifier_training_is_seeded(tmp_path, mnist300_short):
    a, _ = get_classifier(TINY_CLASSIFIER, mnist300_short, root=tmp_path / "a")
    b, _ = get_classifier(TINY_CLASSIFIER, mnist300_short, root=tmp_path / "b")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(),
                                                 strict=True))


def test_classifier_config_is_validated():
    with pytest.raises(ConfigError, match="channels"):
        ClassifierConfig(channels=(4,))
    with pytest.raises(ConfigError, match="mnist"):
        ClassifierConfig(dataset="fashion-mnist")
    with pytest.raises(ConfigError, match="epochs"):
        ClassifierConfig(epochs=-1)
    assert ClassifierConfig(lr=1).key() == ClassifierConfig(lr=1.0).key()


# ------------------------------------------------ reference, rows, table, CSV ----
SETTINGS = q.QualitySettings(n=100, classifier=TINY_CLASSIFIER)


def tiny_model(**kw):
    torch.manual_seed(0)
    return build_model(Config(**{**dict(model="vae", zdim=3, hidden=(16, 16), train_size=300,
                                        epochs=0), **kw}))


def test_reference_is_computed_once_and_cached(tmp_path, mnist300_short, monkeypatch):
    calls = []
    real = q.reference_rows
    monkeypatch.setattr(q, "reference_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
    ref = q.get_reference(mnist300_short, SETTINGS, classifier_data=mnist300_short, root=tmp_path)
    ref2 = q.get_reference(mnist300_short, SETTINGS, classifier_data=mnist300_short, root=tmp_path)
    assert calls == [1]
    assert torch.equal(ref.test_features, ref2.test_features) and ref.rows == ref2.rows
    assert len(list(tmp_path.glob("quality-*.pt"))) == 1
    # the cached statistics are those of the first n test digits
    feats, _ = embed(ref.classifier, mnist300_short.x_test[:100])
    assert torch.equal(ref2.test_features, feats)
    np.testing.assert_allclose(ref2.test_radii.numpy(), brute_radii(feats.double().numpy(), 3),
                               rtol=1e-9)
    rows = {r["label"]: r for r in ref.rows}
    floor = rows["training digits"]
    assert floor["nn_train_l2"] > 0            # its own copy is left out
    assert rows["class pixel means"]["recall"] == 0.0   # 10 distinct images: no variety
    assert rows["class pixel means"]["n"] == 100
    # another n is another entry
    q.get_reference(mnist300_short, q.QualitySettings(60, TINY_CLASSIFIER),
                    classifier_data=mnist300_short, root=tmp_path)
    assert len(list(tmp_path.glob("quality-*.pt"))) == 2


def test_table_rows_are_seeded_and_written_atomically(tmp_path, mnist300_short):
    ref = q.get_reference(mnist300_short, SETTINGS, classifier_data=mnist300_short, root=tmp_path)
    vae = tiny_model()
    tvae_ = tiny_model(model="affine-tvae", prior="mean-diag")
    entries = [("VAE", vae, "mean", 0), q.Entry("VAE", vae, "mean", 1),
               ("Affine", tvae_, "mean", 0), ("Affine", tvae_, "prior", 0)]
    df = q.quality_table(entries, ref)
    assert list(df.columns) == list(q.COLUMNS)
    assert list(df["kind"]) == ["reference"] * 3 + ["model"] * 4
    assert list(df["pose"].iloc[3:]) == ["none", "none", "mean", "prior"]
    models = df[df["kind"] == "model"]
    assert models[["precision", "recall"]].stack().between(0, 1).all()
    assert (models["label_kl"] >= 0).all() and (models["label_kl"] <= np.log(10) + 1e-12).all()
    # a row is its own metrics recomputed by hand from the same samples
    x = vae.sample(100, torch.Generator().manual_seed(0), pose="mean")
    m = q.sample_metrics(x, ref)
    row = df.iloc[3]
    for col in ("frechet", "confidence", "label_kl", "precision", "recall", "nn_train_l2"):
        assert row[col] == m[col], col
    assert df.iloc[4]["frechet"] != row["frechet"]          # another sample seed, other samples
    again = q.quality_table(entries[:1], ref, references=False)
    assert again.iloc[0]["frechet"] == row["frechet"]

    import tvae
    P = tvae.resolve("smoke")
    path = q.write_table(df, P, root=tmp_path / "results")
    assert path == tmp_path / "results" / "smoke" / "sample_quality.csv"
    back = pd.read_csv(path)
    assert len(back) == 7 and np.allclose(back["frechet"], df["frechet"])
    assert not list(path.parent.glob(".*.tmp"))

    import matplotlib.pyplot as plt
    fig = q.figure(df, title="tiny")
    assert len(fig.axes) == 2
    plt.close(fig)


def test_sampling_modes_are_checked():
    vae = tiny_model()
    flat = tiny_model(model="affine-tvae")
    with pytest.raises(ConfigError, match="no pose"):
        q.sample_images(vae, 4, "prior")
    with pytest.raises(ConfigError, match="flat pose prior"):
        q.sample_images(flat, 4, "prior")
    with pytest.raises(ConfigError, match="unknown sampling mode"):
        q.sample_images(flat, 4, "upright")
    a = q.sample_images(flat, 4, "mean", seed=3)
    assert torch.equal(a, flat.sample(4, torch.Generator().manual_seed(3), pose="mean"))


def test_shift_images_against_a_loop():
    from tvae.classifier import shift_images

    x = torch.rand(6, 784, generator=torch.Generator().manual_seed(12))
    got = shift_images(x, 2, torch.Generator().manual_seed(5))
    d = torch.randint(0, 5, (2, 6), generator=torch.Generator().manual_seed(5)) - 2
    img = x.reshape(6, 28, 28)
    for i in range(6):
        expected = torch.zeros(28, 28)
        for r in range(28):
            for c in range(28):
                rr, cc = r + int(d[0, i]), c + int(d[1, i])
                if 0 <= rr < 28 and 0 <= cc < 28:
                    expected[r, c] = img[i, rr, cc]
        assert torch.equal(got[i].reshape(28, 28), expected)
    assert torch.equal(shift_images(x, 0, torch.Generator()), x)


def test_settings_per_profile():
    import tvae

    paper, quick, smoke = (q.settings(tvae.resolve(p)) for p in ("paper", "quick", "smoke"))
    assert paper.n == 10_000 and paper.classifier == ClassifierConfig() and paper.k == 3
    assert quick.n == 2_000 and quick.classifier == ClassifierConfig()
    assert smoke.n == 500 and smoke.classifier.train_size == 600
