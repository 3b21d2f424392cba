"""The latent explorer's Python side: pose parametrisation, export/import of the browser
weights, the numpy twin of the browser decoder, traversals, and the Jupyter widget's redraw
time (asserted loosely, < 200 ms, against the 50 ms target; the median is printed)."""

from __future__ import annotations

import dataclasses
import math
from importlib import resources

import numpy as np
import pytest
import torch

from tvae import MODELS, Config, build_model, warps
from tvae import explorer as E
from tvae.book.registry import LABELS
from tvae.cache import get_model

SMOKE = {"train_size": 300, "epochs": 1, "zdim": 8}


def smoke_models(mnist_root, cache_root) -> tuple[dict, object]:
    """One smoke-trained model of every kind (train 300 digits, 1 epoch, dim z 8) from a
    model cache under ``cache_root`` (shared by the explorer tests of one session)."""
    from tvae.data import load_dataset

    data = load_dataset("mnist", mnist_root, train_size=SMOKE["train_size"], seed=0)
    # The first 500 test digits only (the trainer evaluates the whole test set every epoch);
    # a distinct identity keeps these cache entries apart from full-test-set ones.
    data = dataclasses.replace(data, x_test=data.x_test[:500], y_test=data.y_test[:500],
                               identity=data.identity + "-test500")
    models = {}
    for kind in MODELS:
        cfg = Config(model=kind, zdim=SMOKE["zdim"], train_size=SMOKE["train_size"],
                     epochs=SMOKE["epochs"])
        models[kind], _ = get_model(cfg, data, root=cache_root, progress=False)
    return models, data


@pytest.fixture(scope="module")
def trained(mnist_root, tmp_path_factory):
    models, data = smoke_models(mnist_root, tmp_path_factory.getbasetemp() / "explorer-cache")
    return E.prepare(models, data.x_train), data


# ------------------------------------------------------------------ pose maps ----
def test_affine_params_round_trip():
    rng = np.random.default_rng(0)
    p = np.column_stack([rng.uniform(-170, 170, 50), rng.normal(0, 0.5, (50, 2)),
                         rng.normal(0, 0.7, 50), rng.normal(0, 5, (50, 2))])
    m = E.matrix_from_affine_params(p)
    assert np.allclose(E.affine_params_from_matrix(m), p, atol=1e-9)
    assert np.allclose(E.matrix_from_affine_params(np.zeros(6)), [[1, 0, 0], [0, 1, 0]])
    assert np.allclose(E.invert_affine_np(E.invert_affine_np(m)), m)


@pytest.mark.parametrize("sampling", list(warps.SAMPLINGS))
@pytest.mark.parametrize("kind", ["affine-tvae", "affine-dtvae"])
def test_affine_sliders_mean_what_they_say(kind, sampling):
    """+90 deg rotation turns a blob right of centre to above centre (counter-clockwise on the
    screen); +7 px shift x moves it 7 px right; for a TVAE and a DTVAE alike, under both
    sampling conventions (13.5 or 14 pixels per normalised unit)."""
    model = build_model(Config(model=kind, zdim=2, sampling=sampling))
    spec = E.PoseSpec("affine", kind.endswith("dtvae"), E.AFFINE_NAMES, E.AFFINE_UNITS,
                      np.zeros(6), np.ones(6), np.full(6, -100.0), np.full(6, 100.0), np.zeros(6),
                      px=E.pixels_per_unit(sampling))
    img = torch.zeros(1, 28, 28)
    img[0, 13:15, 19:21] = 1.0                                    # right of the centre (13.5, 13.5)

    def draw(values):
        u = torch.as_tensor(spec.to_u(np.asarray(values, dtype=float)), dtype=torch.float32)[None]
        warp = model.warp.apply_inverse if spec.inverse else model.warp.apply
        out = warp(img[None], u)[0, 0]
        rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
        mass = out.sum()
        return (out * rows).sum().item() / mass.item(), (out * cols).sum().item() / mass.item()

    r, c = draw([0, 0, 0, 0, 0, 0])
    assert (r, c) == pytest.approx((13.5, 19.5), abs=0.01)
    r, c = draw([90, 0, 0, 0, 0, 0])
    assert (r, c) == pytest.approx((7.5, 13.5), abs=0.01)       # above the centre
    r, c = draw([0, 0, 0, 0, 7, 0])
    assert (r, c) == pytest.approx((13.5, 26.5), abs=0.01)
    r, c = draw([0, math.log(0.5), math.log(0.5), 0, 0, 0])       # half size: nearer the centre
    assert (r, c) == pytest.approx((13.5, 16.5), abs=0.05)


def test_pose_spec_round_trip(trained):
    ems, data = trained
    for name, em in ems.items():
        spec = em.pose
        if spec.size == 0:
            assert name == "vae"
            continue
        assert np.allclose(spec.to_u(spec.centre), spec.u_mean, atol=1e-9), name
        us = E.encode_poses(em.model, data.x_test[:20])
        for u in us:
            vals, res = spec.from_u(u)
            assert np.all((vals >= spec.lo) & (vals <= spec.hi))
            assert np.allclose(spec.to_u(vals, res), u, atol=1e-9), name
        if spec.kind == "tps":
            assert np.allclose(spec.modes @ spec.modes.T, np.eye(spec.size), atol=1e-9)
            assert np.all(np.diff(spec.mode_sd) <= 1e-12)
            assert 0 < spec.explained.sum() <= 1 + 1e-9
        restored = E.PoseSpec.from_json(spec.to_json())
        assert np.allclose(restored.to_u(spec.centre + 0.3), spec.to_u(spec.centre + 0.3))


# ------------------------------------------------------------------ export ----
def test_export_round_trip_and_numpy_decoder(trained, tmp_path):
    ems, data = trained
    summary = E.write_static(ems, tmp_path / "explorer_static", data.x_test[:8], data.y_test[:8].tolist())
    man = (tmp_path / "explorer_static" / "manifest.js").read_text()
    assert all(f'"{k}"' in man for k in MODELS)
    for f in ("explorer.js", "explorer.css"):
        assert (tmp_path / "explorer_static" / f).stat().st_size > 1000
    rng = np.random.default_rng(1)
    for name, em in ems.items():
        s = summary[name]
        assert s["dtype"] == "float16" and s["max_abs_error"] < 0.5 / 255
        exp = E.read_model_js(tmp_path / "explorer_static" / s["file"])
        assert exp["name"] == name and exp["zdim"] == 8 and exp["dtype"] == "float16"
        arrays = E.export_arrays(exp)
        lins = [m for m in em.model.decoder.modules() if isinstance(m, torch.nn.Linear)]
        assert len(arrays["layers"]) == len(lins) == 3
        for (wt, b), lin in zip(arrays["layers"], lins, strict=True):
            assert np.array_equal(wt, lin.weight.detach().half().float().numpy().T)
            assert np.array_equal(b, lin.bias.detach().half().float().numpy())
        assert np.array_equal(arrays["digits"]["images"],
                              np.round(data.x_test[:8].numpy() * 255).astype(np.uint8))
        assert arrays["digits"]["labels"] == data.y_test[:8].tolist()
        # The numpy twin of the browser decoder vs model.decode, with non-identity poses.
        spec = em.pose
        for trial in range(4):
            z = rng.standard_normal(8) * (1 + trial)
            u = None
            if spec.size:
                vals = spec.centre + spec.sd * rng.standard_normal(spec.size)
                if spec.kind == "affine":
                    vals[0] += 30.0 * (trial + 1)                 # a visible rotation
                u = spec.to_u(vals) + (0.08 * rng.standard_normal(len(spec.u_mean))
                                       if spec.kind == "tps" else 0)
            _, x = E.numpy_decode(exp, z, u, arrays)
            with torch.no_grad():
                ref = em.model.decode(torch.tensor(z, dtype=torch.float32)[None],
                                      None if u is None else torch.tensor(u, dtype=torch.float32)[None])
            err = np.abs(x - ref[0].double().numpy()).max()
            assert err < 1 / 255, (name, trial, err)
    frame = E.summary_frame(summary)
    assert list(frame.index) == [LABELS[k] for k in MODELS]
    assert (frame["JS file (kB)"] > frame["weights (kB)"]).all()
    print("\n" + frame.to_string())


def test_float32_when_float16_is_too_coarse(trained):
    ems, data = trained
    em = ems["tps-dtvae"]
    exp = E.export_model(em, data.x_test[:4], tol=0.0)
    # Left: float32 rounding of PyTorch's own float32 TPS solve (see the float64 test below).
    assert exp["dtype"] == "float32" and exp["check"]["max_abs_error"] < 1e-3
    exp16 = E.export_model(em, data.x_test[:4], dtype="float16")
    assert exp16["dtype"] == "float16" and exp16["check"]["max_abs_error"] < 0.5 / 255
    assert len(E.model_js(exp16)) < 0.6 * len(E.model_js(exp))


def test_numpy_decoder_is_exact_in_float64(trained):
    """With float32 weights, the numpy twin of the browser decoder equals a float64 copy of
    the model's ``decode`` up to the float32 rounding of the stored TPS basis: same layers,
    warps, TPS solve and bilinear sampling."""
    import copy

    ems, data = trained
    rng = np.random.default_rng(2)
    for name, em in ems.items():
        exp = E.export_model(em, data.x_test[:4], dtype="float32", n_random=0)
        arrays = E.export_arrays(exp)
        m64 = copy.deepcopy(em.model).double()
        real = E.encode_poses(em.model, data.x_test[:5]) if em.pose.size else None
        for i in range(10):
            z = rng.standard_normal(8) * 2
            u = None
            if em.pose.size and i % 2:                      # the poses of real test digits
                u = real[i // 2]
            elif em.pose.size:
                vals = np.clip(em.pose.centre + 2 * em.pose.sd * rng.standard_normal(em.pose.size),
                               em.pose.lo, em.pose.hi)
                u = em.pose.to_u(vals) + (0.1 * rng.standard_normal(len(em.pose.u_mean))
                                          if em.pose.kind == "tps" else 0)
            y, x = E.numpy_decode(exp, z, u, arrays)
            with torch.no_grad():
                ref = m64.decode(torch.tensor(z)[None], None if u is None else torch.tensor(u)[None])
                ref_y = m64.decode_upright(torch.tensor(z)[None])
            # 1e-6: the exported TPS basis is float32, the float64 model's is float64.
            assert np.abs(x - ref[0].numpy()).max() < 1e-6, name
            assert np.abs(y - ref_y[0].numpy()).max() < 1e-9, name


@pytest.mark.parametrize("sampling", list(warps.SAMPLINGS))
def test_numpy_ports_match_tvae_warps(sampling):
    """The numpy twins of the browser's warp code against :mod:`tvae.warps` (the one place the
    conventions and the TPS system are written), for both sampling conventions, without a
    trained model: the pixel grid, the affine grid (u and u^-1), the TPS grid through the
    exported basis, the per-draw inverse TPS solve with its ridge, and the bilinear sampler at
    points inside and far outside the image."""
    rng = np.random.default_rng(5)
    g = torch.tensor(E.pixel_grid_np(sampling))
    assert torch.allclose(g, warps.pixel_coords(28, 28, sampling, dtype=torch.float64), atol=1e-15)
    theta = np.eye(2, 3) + 0.2 * rng.standard_normal((2, 3))
    for inverse in (False, True):
        exp = {"warp": "affine", "inverse": inverse, "sampling": sampling}
        t = torch.tensor(theta)[None]
        ref = warps.affine_grid(warps.invert_affine(t) if inverse else t, 28, 28, sampling)
        np.testing.assert_allclose(E.sampling_grid_np(exp, theta.reshape(6)),
                                   ref[0].reshape(-1, 2).numpy(), atol=1e-12)
    c = warps.control_grid(3, dtype=torch.float64)
    pts = c + 0.15 * torch.tensor(rng.standard_normal((9, 2)))
    basis = warps.tps_basis(3, 28, 28, sampling, dtype=torch.float64).numpy()
    exp = {"warp": "tps", "inverse": False, "sampling": sampling}
    np.testing.assert_allclose(E.sampling_grid_np(exp, pts.reshape(-1).numpy(), basis),
                               warps.tps_grid(pts[None], 28, 28, sampling)[0].reshape(-1, 2).numpy(),
                               atol=1e-12)
    exp = {"warp": "tps", "inverse": True, "sampling": sampling, "tps_inverse_reg": warps.TPS_INVERSE_REG,
           "control": c.reshape(-1).tolist()}
    ref = warps.tps_grid_between(pts[None], c[None], 28, 28, reg=warps.TPS_INVERSE_REG, sampling=sampling)
    np.testing.assert_allclose(E.sampling_grid_np(exp, pts.reshape(-1).numpy()),
                               ref[0].reshape(-1, 2).numpy(), atol=1e-10)
    img = rng.random(784)
    grid = 2.5 * (rng.random((784, 2)) * 2 - 1)
    ref = warps.grid_sample(torch.tensor(img).reshape(1, 1, 28, 28),
                            torch.tensor(grid).reshape(1, 28, 28, 2), sampling).reshape(-1).numpy()
    np.testing.assert_allclose(E.grid_sample_np(img, grid, sampling), ref, atol=1e-12)
    assert E.export_sampling({}) == "torch"          # format-1 files


def test_static_html_uses_relative_urls(tmp_path):
    html = E.static_html("explorer_static")
    assert 'src="explorer_static/explorer.js"' in html and 'src="explorer_static/manifest.js"' in html
    assert "http:" not in html and "https:" not in html
    js = (resources.files("tvae") / "static" / "explorer.js").read_text()
    for forbidden in ("fetch(", "XMLHttpRequest", "http://", "https://", "import("):
        assert forbidden not in js


# -------------------------------------------------------------- traversals ----
def test_traversals(trained):
    ems, _ = trained
    values = np.array([-3.0, 0.0, 3.0])
    for name, em in ems.items():
        zg = E.z_traversal(em, values)
        assert zg.shape == (8, 3, 28, 28)
        z = torch.zeros(1, 8)
        z[0, 2] = 3.0
        with torch.no_grad():
            ref = em.model.decode_at_mean_pose(z).reshape(28, 28).numpy()
        assert np.allclose(zg[2, 2], ref, atol=1e-6)
        pg = E.pose_traversal(em, values)
        assert pg.shape == (em.pose.size, 3, 28, 28)
        if em.pose.size:
            with torch.no_grad():
                centre = em.model.decode_at_mean_pose(torch.zeros(1, 8)).reshape(28, 28).numpy()
            assert np.allclose(pg[:, 1], centre, atol=1e-5), name   # offset 0 = the mean pose
            moved = [np.abs(pg[i, 2] - pg[i, 0]).max() for i in range(em.pose.size)]
            assert max(moved) > 1e-3, name                          # the sweep changes the image
        fig = E.plot_traversals(em, values)
        assert len(fig.axes) == (1 if name == "vae" else 2)
        import matplotlib.pyplot as plt
        plt.close(fig)


# --------------------------------------------------------------- Jupyter ----
def test_jupyter_explorer_redraw_time_and_buttons(trained):
    ems, data = trained
    torch.set_num_threads(1)
    ex = E.Explorer(ems, data.x_test, data.y_test)
    medians = {}
    for name in ems:
        ex.dropdown.value = name
        assert len(ex.z_sliders) == 8 and len(ex.pose_sliders) == ems[name].pose.size
        before = ex.img_x.value
        ex.z_sliders[0].value = 2.0
        assert ex.img_x.value != before                          # a slider move redraws
        bench = ex.benchmark(40)
        medians[name] = bench["median_ms"]
        assert bench["n"] == 40
        assert bench["median_ms"] < 200, bench
        ex.encode(5)
        with torch.no_grad():
            post = ems[name].model.encode(data.x_test[5:6])
        assert np.allclose(ex.z(), np.clip(post.mu_z[0].numpy(), -3, 3), atol=1e-6)
        if ems[name].pose.size and ems[name].pose.kind == "tps":
            assert np.allclose(ex.u(), post.u[0].double().numpy(), atol=1e-6)
        y, x = E.decode_pair(ems[name].model, torch.tensor(ex.z(), dtype=torch.float32)[None],
                             torch.tensor(ex.u(), dtype=torch.float32)[None] if ems[name].pose.size else None)
        assert ex.img_x.value == E.png_bytes(x[0].numpy())
        ex.random_z()
        assert np.any(ex.z() != 0)
        ex.reset()
        assert np.all(ex.z() == 0)
        if ems[name].pose.size:
            assert np.allclose([s.value for s in ex.pose_sliders], ems[name].pose.centre, atol=1e-9)
    print("\nJupyter redraw median (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in medians.items()))


def test_decode_pair_matches_decode(trained):
    ems, data = trained
    for em in ems.values():
        with torch.no_grad():
            post = em.model.encode(data.x_test[:6])
            y, x = E.decode_pair(em.model, post.mu_z, post.u if em.model.has_pose else None)
            assert torch.allclose(x, em.model.decode(post.mu_z, post.u if em.model.has_pose else None))
            assert torch.allclose(y, em.model.decode_upright(post.mu_z))


def test_image_geometry_measures_slant_shift_and_size():
    img = np.zeros((28, 28))
    for r in range(6, 22):                       # a stroke leaning right at the top: "/"
        img[r, 14 + (14 - r) // 2] = 1.0
    g = E.image_geometry(img)
    assert g["slant"] > 20 and abs(g["cx"] - 14) < 1 and abs(g["cy"] - 13.5) < 0.01
    mirrored = E.image_geometry(img[:, ::-1])
    assert mirrored["slant"] == pytest.approx(-g["slant"], abs=1e-9)
    upright = np.zeros((28, 28))
    upright[6:22, 14] = 1.0
    assert E.image_geometry(upright)["slant"] == pytest.approx(0.0, abs=1e-9)
    shifted = np.roll(upright, 3, axis=1)
    row = np.stack([upright, shifted])[None]                # one traversal row of two images
    geo = E.traversal_geometry(row)[0]
    assert geo["shift"] == pytest.approx(3.0) and geo["slant_range"] == pytest.approx(0.0, abs=1e-9)
    assert geo["size_range"] == pytest.approx(0.0, abs=1e-9)
    assert geo["change"] == pytest.approx(2 * 16 / 784)
