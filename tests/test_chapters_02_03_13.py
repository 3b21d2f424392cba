"""Chapters 02, 03 and 13's modules (:mod:`tvae.book.background`, :mod:`tvae.book.architectures`,
:mod:`tvae.book.explorer_chapter`, :func:`tvae.explorer.pose_table`): every computation checked
on small inputs against an independent computation (numpy, hand counts, closed forms), and the
sentences against hand-made tables."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from IPython.display import HTML, Markdown

import tvae
from tvae import Config, build_model
from tvae import explorer as X
from tvae.book import architectures as arch
from tvae.book import background as bg
from tvae.book import explorer_chapter as xc
from tvae.book import registry, store
from tvae.warps import affine_warp, control_grid

H1 = 256
"""Hidden units of the book's MLPs (chapter 03's text), for the hand counts below."""


def mlp_params(*sizes: int) -> int:
    """Parameters of dense layers ``sizes[0] -> sizes[1] -> ...`` (weights and biases)."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


# ================================================================= chapter 02 ====
def test_ink_shares_against_counts():
    x = torch.tensor([[0.0, 0.5, 1.0, 1.0], [0.0, 0.0, 0.2, 0.0]])
    a = x.numpy()
    inked = np.count_nonzero(a > 0) / a.size * 100                        # 4 of 8
    grey = np.count_nonzero((a > 0) & (a < 1)) / np.count_nonzero(a > 0) * 100   # 2 of 4
    assert bg.ink_shares(x) == pytest.approx((inked, grey))
    assert (inked, grey) == (50.0, 50.0)
    assert bg.ink_sentence(x) == ("Over the 2 test digits, 50.0% of the pixels carry some ink, and of "
                                  "those 50.0% are strictly between 0 and 1 (grey, not white).")


def test_kl_check_closed_form_and_monte_carlo():
    seed, dim, n = 3, 4, 50_000
    c = bg.kl_check(seed, dim=dim, n=n)
    # the same Gaussian, drawn again, and its KL by the textbook formula in numpy
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(1, dim, generator=g).double().numpy()
    logsigma = (0.5 * torch.randn(1, dim, generator=g) - 0.5).double().numpy()
    closed = 0.5 * np.sum(mu ** 2 + np.exp(2 * logsigma) - 1 - 2 * logsigma)
    assert c["closed"] == pytest.approx(closed, rel=1e-5)
    assert 0 < c["se"] < 0.05
    assert abs(c["mc"] - c["closed"]) < 5 * c["se"]
    s = bg.kl_sentence({"closed": 1.23456, "mc": 1.2, "se": 0.0123})
    assert s == "Closed form: **1.235** nats; Monte Carlo: **1.200** ± 0.012 (one standard error)."


def test_reparam_gradient_against_numpy():
    seed, n = 1, 2000
    r = bg.reparam_gradient(seed, mu=0.7, sigma=1.3, n=n)
    eps = torch.randn(n, generator=torch.Generator().manual_seed(seed)).double().numpy()
    z = 0.7 + 1.3 * eps
    assert r["d_mu"] == pytest.approx(np.mean(2 * z), rel=1e-5)          # d/dmu z^2 = 2 z
    assert r["d_sigma"] == pytest.approx(np.mean(2 * z * eps), rel=1e-5)  # d/dsigma z^2 = 2 z eps
    assert (r["exact_mu"], r["exact_sigma"]) == pytest.approx((1.4, 2.6))
    big = bg.reparam_gradient(0)                                          # 200,000 draws: unbiased
    assert big["d_mu"] == pytest.approx(1.4, abs=0.05)
    assert big["d_sigma"] == pytest.approx(2.6, abs=0.05)
    assert bg.reparam_sentence(r).startswith(f"Reparametrised gradient: d/dmu = **{r['d_mu']:.3f}** "
                                             "(exact 1.400)")


def test_affine_demo_matrices():
    d = {k: v.numpy() for k, v in bg.affine_demo().items()}
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    np.testing.assert_allclose(d["identity"], [1, 0, 0, 0, 1, 0], atol=1e-7)
    np.testing.assert_allclose(d["rotation 30 deg"], [c, -s, 0, s, c, 0], atol=1e-6)
    np.testing.assert_allclose(d["scale 1.4 (zoom out)"], [1.4, 0, 0, 0, 1.4, 0], atol=1e-6)
    np.testing.assert_allclose(d["shear a12 = 0.4"], [1, 0.4, 0, 0, 1, 0])
    np.testing.assert_allclose(d["translation tx = 0.3"], [1, 0, 0.3, 0, 1, 0], atol=1e-7)


def test_tps_demo_points():
    d = bg.tps_demo(5)
    grid = control_grid(3)
    assert list(d) == ["identity", "random (sd 0.15)", "centre moved"]
    assert torch.equal(d["identity"], grid)
    moved = (d["centre moved"] - grid).abs().sum(1)
    assert moved.nonzero().flatten().tolist() == [4]                      # only the centre
    np.testing.assert_allclose((d["centre moved"] - grid)[4].numpy(), [0.35, 0.25], atol=1e-7)
    noise = torch.randn(9, 2, generator=torch.Generator().manual_seed(5))
    np.testing.assert_allclose(d["random (sd 0.15)"].numpy(), (grid + 0.15 * noise).numpy(), atol=1e-7)


# ================================================================= chapter 03 ====
def test_round_trip_table_against_numpy():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.random((3, 1, 28, 28)), dtype=torch.float32)
    back = {"affine": x * 0.9, "tps": x + 0.01}
    t = arch.round_trip_table(x, back)
    a = x.numpy().reshape(3, -1)
    for row, b in zip(t.itertuples(index=False), back.values(), strict=True):
        err = np.abs(b.numpy().reshape(3, -1) - a).sum(1)
        assert row[1] == pytest.approx(err.mean(), rel=1e-5)
        assert row[2] == pytest.approx(np.mean(err / a.sum(1)) * 100, rel=1e-5)
    assert t[arch.RELATIVE_COL].tolist() == pytest.approx([10.0, np.mean(0.01 * 784 / a.sum(1)) * 100],
                                                          rel=1e-4)
    trip = arch.RoundTrip(x, {}, back, t)
    rel = t[arch.RELATIVE_COL]
    assert arch.round_trip_sentence(trip) == (
        "Round-trip error of the approximate TPS inverse minus that of the exact affine inverse: "
        f"**{rel[1] - rel[0]:+.1f}** percentage points of the digit's ink.")
    assert arch.round_trip_view(trip).equals(t.round(2))


def test_warp_round_trip_affine_inverse_is_the_inverse_matrix():
    rng = np.random.default_rng(1)
    x = torch.as_tensor(rng.random((4, 1, 28, 28)) ** 3, dtype=torch.float32)
    trip = arch.warp_round_trip(x, seed=2)
    u = arch.round_trip_poses(4, 2)
    assert u["affine"].shape == (4, 6) and u["tps"].shape == (4, 18)
    m = u["affine"].double().numpy().reshape(4, 2, 3)
    assert (np.linalg.det(m[:, :, :2]) > 0).all()                        # a pose5 never reflects
    # the exact inverse, written with numpy: [A | t]^-1 = [A^-1 | -A^-1 t]
    inv = np.concatenate([np.linalg.inv(m[:, :, :2]), -np.linalg.inv(m[:, :, :2]) @ m[:, :, 2:]], 2)
    warped = affine_warp(x, torch.as_tensor(m, dtype=torch.float32))
    back = affine_warp(warped, torch.as_tensor(inv, dtype=torch.float32))
    np.testing.assert_allclose(trip.warped["affine"].numpy(), warped.numpy(), atol=1e-5)
    np.testing.assert_allclose(trip.back["affine"].numpy(), back.numpy(), atol=1e-4)
    assert list(trip.table.warp) == ["affine", "tps"]


def test_parameter_counts_against_hand_counts():
    cfgs = [Config(model=k, zdim=3) for k in ("vae", "affine-tvae", "tps-tvae", "affine-dtvae")]
    t = arch.parameter_counts(cfgs)
    assert list(t.columns) == ["model", "dim z", "dim u", *arch.BLOCK_COLUMNS, "total"]
    assert list(t.model) == ["vae", "affine-tvae", "tps-tvae", "affine-dtvae"]
    row = t.set_index("model")
    assert row.loc["vae", "encoder trunk"] == mlp_params(784, H1, H1)
    assert row.loc["vae", "z heads"] == 2 * mlp_params(H1, 3)
    assert row.loc["vae", "decoder"] == mlp_params(3, H1, H1, 784)
    assert row.loc["vae", "pose head"] == 0 and row.loc["vae", "localisation net"] == 0
    assert row.loc["affine-tvae", "pose head"] == mlp_params(H1, 6)
    assert row.loc["tps-tvae", "pose head"] == mlp_params(H1, 18)
    assert row.loc["affine-dtvae", "localisation net"] > 0
    for cfg, (_, r) in zip(cfgs, t.iterrows(), strict=True):
        by_hand = sum(p.numel() for p in build_model(cfg).parameters())
        assert r[arch.BLOCK_COLUMNS].sum() == r["total"] == by_hand


def test_size_sentence_on_a_hand_made_table():
    counts = pd.DataFrame({"model": ["vae", "affine-tvae", "tps-tvae", "affine-dtvae", "vae"],
                           "dim z": [20, 20, 20, 20, 2], "total": [1000, 1100, 1250, 1500, 7]})
    s = arch.size_sentence(counts)
    assert s.startswith("At dim z = 20 the pose head of the TVAE adds 100 (10.0%) parameters (affine) "
                        "and 250 (25.0%) (TPS) to the VAE's 1,000:")
    assert "network and pose head add 500 (50.0%), a real" in s


class FakeHead:
    """What :func:`tvae.book.architectures.prior_check` reads of a pose head."""

    def __init__(self, code_dim: int, cov: np.ndarray, b: np.ndarray):
        self.code_dim, self._cov, self.b = code_dim, torch.as_tensor(cov), torch.as_tensor(b)

    def covariance(self) -> torch.Tensor:
        return self._cov


def test_prior_check_against_numpy():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.4, (6, 2))
    b = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    u = rng.normal(size=(5000, 2)) @ w.T + b
    row = arch.prior_check("lowrank r2", FakeHead(2, w @ w.T, b), torch.as_tensor(u))
    det = u[:, 0] * u[:, 4] - u[:, 1] * u[:, 3]
    a = u[:, 0]
    skew = np.mean((a - a.mean()) ** 3) / a.std(ddof=1) ** 3
    assert row["rank of cov(u)"] == np.linalg.matrix_rank(np.cov(u.T)) == 2
    assert row["reflections det<0 (%)"] == pytest.approx(np.mean(det < 0) * 100)
    assert row["skewness of a11"] == pytest.approx(skew, rel=1e-9)
    assert row["max |cov(u) - W W^T|"] == pytest.approx(np.abs(np.cov(u.T) - w @ w.T).max(), rel=1e-9)
    assert row["max |mean(u) - b|"] == pytest.approx(np.abs(u.mean(0) - b).max(), rel=1e-9)
    five = arch.prior_check("reparam5-diag", FakeHead(5, np.eye(6), b), torch.as_tensor(u))
    assert "max |cov(u) - W W^T|" not in five


def test_illustrative_priors():
    P = tvae.resolve("smoke")
    draws = arch.illustrative_priors(registry.illustrative_prior_configs(P), seed=0, n=4000)
    assert list(draws.heads) == ["identity-diag", "mean-diag", "reparam5-diag", "lowrank r2"]
    h = draws.heads
    np.testing.assert_allclose(h["reparam5-diag"].w.detach().numpy(), arch.ILLUSTRATIVE_W5, atol=1e-7)
    np.testing.assert_allclose(h["mean-diag"].b.detach().numpy(), arch.ILLUSTRATIVE_MEAN, atol=1e-7)
    np.testing.assert_allclose(h["identity-diag"].covariance().detach().numpy(), 0.15 ** 2 * np.eye(6),
                               atol=1e-7)
    assert tuple(h["lowrank r2"].w.shape) == (6, 2)
    c = draws.checks.set_index("prior")
    linear = c.drop(index="reparam5-diag")
    assert (linear["rank of cov(u)"] == linear["dim u'"]).all()
    assert (linear["max |cov(u) - W W^T|"] < 0.005).all()        # Monte Carlo error, 4,000 draws
    assert (linear["max |mean(u) - b|"] < 0.02).all()
    assert c.loc["reparam5-diag", "reflections det<0 (%)"] == 0  # det = S_x S_y > 0
    assert arch.prior_checks_view(draws).equals(draws.checks.round(4))


def test_prior_sentences_on_a_hand_made_table():
    checks = pd.DataFrame([
        {"prior": "identity-diag", "dim u'": 6, "rank of cov(u)": 6, "reflections det<0 (%)": 0.5,
         "skewness of a11": 0.0, "max |cov(u) - W W^T|": 0.001, "max |mean(u) - b|": 0.002},
        {"prior": "lowrank r2", "dim u'": 2, "rank of cov(u)": 3, "reflections det<0 (%)": 1.25,
         "skewness of a11": 0.0, "max |cov(u) - W W^T|": 0.003, "max |mean(u) - b|": 0.001},
        {"prior": "reparam5-diag", "dim u'": 5, "rank of cov(u)": 6, "reflections det<0 (%)": 0.0,
         "skewness of a11": -0.456}])
    s = arch.prior_sentences(arch.PriorDraws({}, checks))
    assert ("$W W^\\top$ 0.0030, between the sample mean and $b$ 0.0020; covariance rank equal to "
            "$\\dim u'$ for 1 of 2 (identity-diag).") in s
    assert ("covariance rank 6 with $\\dim u'$ = 5, skewness of $a_{11}$ -0.46, reflections 0.00% "
            "(linear priors: up to 1.25%).") in s


def test_prior_pose_rows_with_no_spread_is_the_mean_pose():
    P = tvae.resolve("smoke")
    cfg = registry.illustrative_prior_configs(P)["identity-diag"]
    head = build_model(cfg).pose
    with torch.no_grad():
        head.w.zero_()                                   # u = b = the identity for every draw
    digit = torch.as_tensor(np.random.default_rng(0).random(784) ** 3, dtype=torch.float32)
    rows = arch.prior_pose_rows(digit, {"identity-diag": head}, seed=0, n=3)
    assert rows["input"].shape == (1, 1, 28, 28)
    assert rows["identity-diag"].shape == (3, 1, 28, 28)
    np.testing.assert_allclose(rows["identity-diag"].numpy(),
                               np.broadcast_to(digit.numpy().reshape(1, 1, 28, 28), (3, 1, 28, 28)),
                               atol=1e-5)


# ================================================================= chapter 13 ====
def explorer_model(kind: str, spec: X.PoseSpec, zdim: int = 2) -> X.ExplorerModel:
    return X.ExplorerModel(kind, registry.LABELS[kind], build_model(Config(model=kind, zdim=zdim)), spec)


AFFINE_SPEC = X.PoseSpec("affine", names=("rotation", "shift x"), units=("deg", "px"),
                         centre=np.array([1.5, -0.25]), sd=np.array([10.0, 2.0]), u_mean=np.zeros(6))
TPS_SPEC = X.PoseSpec("tps", names=("mode 1", "mode 2", "mode 3"), units=("", "", ""),
                      centre=np.zeros(3), sd=np.ones(3), u_mean=np.zeros(18),
                      explained=np.array([0.5, 0.25, 0.125]))


def test_pose_table_of_hand_made_sliders():
    models = {"vae": explorer_model("vae", X.PoseSpec("none")),
              "affine-tvae": explorer_model("affine-tvae", AFFINE_SPEC),
              "tps-tvae": explorer_model("tps-tvae", TPS_SPEC)}
    t = X.pose_table(models)
    assert list(t.index) == [("Affine-TVAE", "rotation (deg)"), ("Affine-TVAE", "shift x (px)"),
                             ("TPS-TVAE", "mode 1"), ("TPS-TVAE", "mode 2"), ("TPS-TVAE", "mode 3")]
    assert t["at the mean pose"].tolist() == [1.5, -0.25, 0.0, 0.0, 0.0]
    assert t["SD over training digits"].tolist() == [10.0, 2.0, 1.0, 1.0, 1.0]
    share = t["share of pose variance"]
    assert share.iloc[:2].isna().all() and share.iloc[2:].tolist() == [0.5, 0.25, 0.125]
    assert xc.tps_shares(models) == {"TPS-TVAE": 0.75}
    assert xc.tps_share_sentence(models) == ("Share of the pose variance along the first two principal "
                                             "directions: TPS-TVAE 75% (of the 18 numbers of the spline).")
    html = xc.pose_view(t).to_html()
    assert "+1.500" in html and "50.0%" in html


def test_models_view_counts_the_decoder():
    models = {"vae": explorer_model("vae", X.PoseSpec("none"), zdim=3),
              "affine-tvae": explorer_model("affine-tvae", AFFINE_SPEC, zdim=3)}
    v = xc.models_view(models)
    assert v.loc["VAE", "decoder parameters"] == mlp_params(3, H1, H1, 784)
    assert v.loc["Affine-TVAE", "dim u"] == 6 and v.loc["Affine-TVAE", "pose sliders"] == 2
    assert v.loc["VAE", "pose sliders"] == 0


def ink_geometry(img: np.ndarray) -> tuple[float, float, float, float]:
    """Centroid, slant (degrees, top leaning right positive) and RMS radius of a grey image, from
    its weighted covariance (numpy's, independently of :func:`tvae.explorer.image_geometry`)."""
    yy, xx = np.mgrid[0:28, 0:28]
    w = img.reshape(-1)
    cov = np.cov(np.stack([xx.reshape(-1), yy.reshape(-1)]), aweights=w, bias=True)
    cx, cy = np.average(xx.reshape(-1), weights=w), np.average(yy.reshape(-1), weights=w)
    return cx, cy, math.degrees(math.atan2(-cov[0, 1], cov[1, 1])), math.sqrt(cov[0, 0] + cov[1, 1])


def test_traversal_table_against_an_independent_geometry(tmp_path):
    torch.manual_seed(0)
    model = build_model(Config(model="vae", zdim=2)).eval()
    ems = X.prepare({"vae": model}, torch.rand(20, 784))
    values = np.array([-2.0, 0.0, 2.0])
    t = xc.traversal_table(ems, values, out_dir=tmp_path)
    assert list(t.index) == [("VAE", "z")]
    assert list(t.columns) == ["rows", *xc.GEOMETRY.values()]
    slants, shifts, sizes, changes = [], [], [], []
    for i in range(2):                                   # each z dimension swept, the other at 0
        z = torch.zeros(3, 2)
        z[:, i] = torch.as_tensor(values, dtype=torch.float32)
        with torch.no_grad():
            imgs = model.decode_upright(z).double().numpy()
        g = np.array([ink_geometry(im) for im in imgs])
        slants.append(g[:, 2].max() - g[:, 2].min())
        sizes.append(g[:, 3].max() - g[:, 3].min())
        c = g[:, :2]
        shifts.append(max(np.hypot(*(c[a] - c[b])) for a in range(3) for b in range(3)))
        changes.append(np.abs(imgs[-1] - imgs[0]).mean())
    r = t.loc[("VAE", "z")]
    assert r["rows"] == 2
    assert r["slant change (deg)"] == pytest.approx(np.mean(slants), rel=1e-4, abs=1e-6)
    assert r["centre shift (px)"] == pytest.approx(np.mean(shifts), rel=1e-4, abs=1e-6)
    assert r["size change (px)"] == pytest.approx(np.mean(sizes), rel=1e-4, abs=1e-6)
    assert r["pixel change"] == pytest.approx(np.mean(changes), rel=1e-4, abs=1e-7)
    written = pd.read_csv(tmp_path / xc.TRAVERSAL_CSV)
    assert list(written.columns) == ["model", "sweep", "rows", *xc.GEOMETRY.values()]
    np.testing.assert_allclose(written.iloc[0, 2:].astype(float), t.iloc[0].astype(float), rtol=1e-12)
    assert "{:.2f}".format(r["pixel change"]) in xc.traversal_view(t).to_html()


def test_slant_sentence_orders_the_models():
    idx = pd.MultiIndex.from_tuples([("VAE", "z"), ("Affine-TVAE", "z"), ("Affine-TVAE", "pose"),
                                     ("TPS-TVAE", "z")], names=["model", "sweep"])
    t = pd.DataFrame({"slant change (deg)": [3.0, 5.0, 40.0, 1.04]}, index=idx)
    s = xc.slant_sentence(t)
    assert s.startswith("Mean slant change along a *z* sweep, smallest first, in this run:\n\n"
                        "- TPS-TVAE: 1.0 degrees\n- VAE: 3.0 degrees\n- Affine-TVAE: 5.0 degrees\n\n"
                        "The plain VAE ranks 2 of 3.")


def test_the_static_explorer_sentences(tmp_path):
    assert xc.write_explorer({}, None, None) is None
    block = xc.explorer_block(None)
    assert isinstance(block, Markdown) and block.data == xc.NO_STATIC
    static = tmp_path / "explorer_static"
    static.mkdir()
    (static / "explorer.js").write_text("x" * 2500)
    summary = {"a": {"bytes": 1_200_000}, "b": {"bytes": 300_000}}
    assert xc.export_size_caption(summary, static) == ("The five model files take 1.5 MB together; "
                                                       "the decoder script itself is 2 kB.")
    html = xc.explorer_block(str(static))
    assert isinstance(html, HTML) and "explorer_static" in html.data and str(tmp_path) not in html.data
    s = xc.benchmark_sentence({"median_ms": 12.345, "p90_ms": 20.0}, threads=2)
    assert s.startswith("Moving a slider through 50 positions here took a median of **12.3 ms** per "
                        "redraw (90th percentile 20.0 ms) on 2 CPU thread(s), against a target of 50 ms.")


def test_chapter_models_are_the_registry_explorer_models(monkeypatch):
    P = tvae.resolve("smoke")
    asked = []
    monkeypatch.setattr(store, "model", lambda P, cfg: asked.append(cfg) or SimpleNamespace(cfg=cfg))
    models = xc.chapter_models(P)
    assert [c.key() for c in asked] == [c.key() for c in registry.explorer_models(P)]
    assert list(models) == list(registry.ALL_KINDS)


# ============================================================== the notebooks ====
MY_CHAPTERS = ("02_background", "03_models", "13_explorer")

VISIBLE_LINES = 3
"""The most lines of a visible code cell of these chapters (the imports and parameters aside):
one or two calls into their modules, and a display."""


@pytest.mark.parametrize("name", MY_CHAPTERS)
def test_chapter_cells_only_call_their_module(name):
    """Every computation and sentence lives in the chapter's module: a visible code cell is at
    most :data:`VISIBLE_LINES` lines and holds no loop, no function and no f-string; a cell that
    draws a figure (``plt.show``) is collapsed."""
    import ast
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parent.parent / "book" / f"{name}.ipynb").read_text())
    for cell in (c for c in nb["cells"] if c["cell_type"] == "code"):
        src, tags = "".join(cell["source"]), cell["metadata"].get("tags", [])
        if "parameters" in tags or "import tvae" in src:
            continue
        if "plt.show()" in src:
            assert "hide-input" in tags, f"{name}: a figure cell is not collapsed: {src[:60]!r}"
        if "hide-input" in tags:
            continue
        lines = [line for line in src.splitlines() if line.strip()]
        assert len(lines) <= VISIBLE_LINES, f"{name}: a long visible cell: {src[:60]!r}"
        nodes = list(ast.walk(ast.parse(src)))
        assert not any(isinstance(n, (ast.For, ast.While, ast.FunctionDef, ast.JoinedStr, ast.ListComp,
                                      ast.DictComp)) for n in nodes), f"{name}: {src[:60]!r}"


def test_warp_direction_section_kept():
    from pathlib import Path

    ch03 = (Path(__file__).resolve().parent.parent / "book" / "03_models.ipynb").read_text()
    assert ch03.count("(warp-direction)=") == 1 and "## Which way the warp goes" in ch03
