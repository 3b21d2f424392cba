"""Tests of tvae.figures: every function returns a Figure with the expected axes and images."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import tvae.figures as tf  # noqa: E402
from tvae import Config, build_model  # noqa: E402
from tvae.warps import control_grid  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def digits() -> torch.Tensor:
    """Six 28x28 'digits': a bright square at a different place in each, flat (6, 784)."""
    x = torch.zeros(6, 28, 28)
    for i in range(6):
        x[i, 4 + 2 * i:10 + 2 * i, 8:20] = 1.0
    return x.reshape(6, 784)


def n_images(fig: Figure) -> int:
    return sum(len(ax.images) for ax in fig.axes)


# ------------------------------------------------------------------------- helpers ----
def test_as_images_accepts_every_layout(digits):
    ref = digits.reshape(6, 28, 28).numpy()
    for form in (digits, digits.numpy(), digits.reshape(6, 28, 28), digits.reshape(6, 1, 28, 28)):
        np.testing.assert_array_equal(tf.as_images(form), ref)
    assert tf.as_images(digits[0]).shape == (1, 28, 28)
    assert tf.as_images(digits[0].reshape(28, 28)).shape == (1, 28, 28)
    with pytest.raises(ValueError, match="784"):
        tf.as_images(torch.zeros(3, 100))


def test_mosaic_places_tiles_and_pads(digits):
    m = tf.mosaic(digits[:5], ncol=3, pad=1, pad_value=0.5)
    assert m.shape == (2 * 29 - 1, 3 * 29 - 1)
    np.testing.assert_array_equal(m[29:57, 29:57], digits[4].reshape(28, 28).numpy())
    assert m[28, 0] == 0.5                      # padding line between the rows
    assert np.all(m[29:, 58:] == 0.5)           # empty sixth cell
    with pytest.raises(ValueError):
        tf.mosaic(np.zeros((0, 784)))


def test_to_pixels_maps_frame_to_pixel_edges():
    np.testing.assert_allclose(tf.to_pixels(np.array([[-1.0, -1.0], [1.0, 1.0]]), "torch"),
                               [[-0.5, -0.5], [27.5, 27.5]])
    # centre of pixel 0 in normalised coordinates (align_corners=False)
    np.testing.assert_allclose(tf.to_pixels(np.array([1 / 28 - 1]), "torch"), [0.0], atol=1e-12)


def test_to_pixels_maps_frame_to_border_pixel_centres_under_lasagne_sampling():
    """The default (``lasagne``, ``align_corners=True``): +-1 are the centres of pixels 0 and
    27, and pixel ``i`` sits at ``-1 + 2 i / 27``."""
    np.testing.assert_allclose(tf.to_pixels(np.array([[-1.0, -1.0], [1.0, 1.0]])),
                               [[0.0, 0.0], [27.0, 27.0]])
    np.testing.assert_allclose(tf.to_pixels(np.array([-1 + 2 * 5 / 27])), [5.0], atol=1e-12)


def test_warp_map_and_apply_warp_identity(digits):
    pts = np.array([[0.3, -0.2], [-0.7, 0.9]])
    np.testing.assert_allclose(tf.warp_map("affine", [1, 0, 0, 0, 1, 0])(pts), pts, atol=1e-12)
    grid = control_grid(3).reshape(-1).numpy()
    np.testing.assert_allclose(tf.warp_map("tps", grid)(pts), pts, atol=1e-6)
    np.testing.assert_allclose(tf.apply_warp("affine", digits, [1, 0, 0, 0, 1, 0]),
                               digits.reshape(6, 28, 28).numpy(), atol=1e-5)
    np.testing.assert_allclose(tf.apply_warp("tps", digits, grid),
                               digits.reshape(6, 28, 28).numpy(), atol=1e-4)
    # a translation by +0.5 in x reads the input to the right: the square moves left
    shifted = tf.apply_warp("affine", digits[:1], [1, 0, 0.5, 0, 1, 0])[0]
    assert shifted[:, :8].sum() > 0 and shifted[:, 14:].sum() == 0
    with pytest.raises(ValueError, match="warp kind"):
        tf.warp_map("bogus", [0])


# --------------------------------------------------------------------- image grids ----
def test_sample_grid(digits):
    fig = tf.sample_grid(digits, ncol=4, title="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 1 and n_images(fig) == 1
    assert fig.axes[0].images[0].get_array().shape == (2 * 29 - 1, 4 * 29 - 1)
    assert fig.axes[0].get_title() == "t"


def test_image_rows_and_reconstruction_rows(digits):
    fig = tf.image_rows({"a": digits, "b": digits[:3]}, title="rows")
    assert len(fig.axes) == 2 and n_images(fig) == 2
    assert [ax.get_ylabel() for ax in fig.axes] == ["a", "b"]
    fig = tf.reconstruction_rows(digits, {"VAE": digits, "TVAE": digits}, {"TVAE": digits})
    assert [ax.get_ylabel() for ax in fig.axes] == ["input x", "VAE: x'", "TVAE: x'", "TVAE: y'"]
    with pytest.raises(ValueError):
        tf.image_rows({})


def test_panels_removes_unused_axes(digits):
    fig = tf.panels({"a": digits, "b": digits, "c": digits}, ncol=3, per_row=2)
    assert len(fig.axes) == 3 and n_images(fig) == 3
    assert sorted(ax.get_title() for ax in fig.axes) == ["a", "b", "c"]


# -------------------------------------------------------------------------- warps ----
def test_warp_demo_affine_and_tps(digits):
    c = math.cos(0.5)
    fig = tf.warp_demo(digits[0], "affine", [[1, 0, 0, 0, 1, 0], [c, -math.sin(0.5), 0, math.sin(0.5), c, 0]],
                       ["identity", "rotation"])
    assert len(fig.axes) == 4 and n_images(fig) == 4
    # the lattice: 5 lines in each direction on every axes
    assert all(len(ax.lines) == 10 for ax in fig.axes)
    grid = control_grid(3).reshape(-1)
    fig = tf.warp_demo(digits[0], "tps", [grid, grid + 0.1], ["identity", "shift"], lines=3)
    assert len(fig.axes) == 4 and n_images(fig) == 4
    assert all(len(ax.collections) == 1 for ax in fig.axes)   # control points drawn
    with pytest.raises(ValueError):
        tf.warp_demo(digits[0], "affine", [[1, 0, 0, 0, 1, 0]], ["a", "b"])


def test_control_grid_figure(digits):
    pts = control_grid(3) + 0.1
    fig = tf.control_grid_figure(digits[1], pts, title="tps")
    assert len(fig.axes) == 3 and n_images(fig) == 3
    assert len(fig.axes[1].texts) == 9     # one arrow per control point


# ------------------------------------------------------------- architecture diagrams ----
@pytest.mark.parametrize("kind, boxes", [("vae", 5), ("affine-tvae", 8), ("tps-tvae", 8),
                                         ("affine-dtvae", 11), ("tps-dtvae", 11)])
def test_architecture_diagram(kind, boxes):
    fig = tf.architecture_diagram(kind)
    ax = fig.axes[0]
    assert len(fig.axes) == 1
    kinds = [type(p).__name__ for p in ax.patches]
    assert kinds.count("FancyBboxPatch") == boxes
    assert kinds.count("FancyArrowPatch") >= boxes - 1
    text = " ".join(t.get_text() for t in ax.texts)
    if kind != "vae":
        assert kind.split("-")[0] in text


def test_architectures_overview_and_bad_kind():
    fig = tf.architectures_overview()
    assert len(fig.axes) == 3
    with pytest.raises(ValueError, match="unknown architecture"):
        tf.architecture_diagram("gan")


# ------------------------------------------------------------------ curves and maps ----
def test_code_scatter():
    rng = np.random.default_rng(0)
    codes = {k: rng.normal(size=(30, 2)) for k in ("a", "b", "c")}
    labels = np.arange(30) % 10
    fig = tf.code_scatter(codes, labels, per_row=2)
    assert len(fig.axes) == 3
    assert all(len(ax.collections) == 1 for ax in fig.axes)
    assert len(fig.legends) == 1
    with pytest.raises(ValueError):
        tf.code_scatter({"a": rng.normal(size=(30, 3))}, labels)


def test_sweep_codes_follow_the_normal_quantiles():
    z = tf.sweep_codes(5, edge=0.1)
    assert z.shape == (25, 2)
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor([0.1, 0.9]))
    torch.testing.assert_close(z[0], torch.tensor([q[0], q[1]]))      # top left: z1 low, z2 high
    torch.testing.assert_close(z[-1], torch.tensor([q[1], q[0]]))     # bottom right
    assert torch.all(z[1:5, 0] > z[0:4, 0])                           # z1 grows along a row
    with pytest.raises(ValueError):
        tf.sweep_codes(1)


def test_latent_sweep():
    torch.manual_seed(0)
    model = build_model(Config(model="affine-tvae", zdim=2))
    fig = tf.latent_sweep(model, n=4, title="sweep")
    assert len(fig.axes) == 1 and n_images(fig) == 1
    assert fig.axes[0].images[0].get_array().shape == (4 * 28, 4 * 28)
    fig = tf.latent_sweep(model, n=3, pose="mean")
    assert n_images(fig) == 1
    with pytest.raises(ValueError, match="dim z = 2"):
        tf.latent_sweep(build_model(Config(model="vae", zdim=3)))


def test_grouped_bars_spectra_angle_scatter():
    fig = tf.grouped_bars({"g1": {"a": 1.0, "b": 2.0}, "g2": {"a": 3.0}}, "err")
    assert len(fig.axes) == 1 and len(fig.axes[0].patches) == 3
    fig = tf.spectra({"p": [3.0, 1.0, 2.0]})
    assert len(fig.axes) == 1
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_ydata(), [3.0, 2.0, 1.0])
    fig = tf.angle_scatter({"a": ([0, 90], [0, 80]), "b": ([10], [20])})
    assert len(fig.axes) == 2 and all(len(ax.collections) == 1 for ax in fig.axes)


def _inside(inner, outer) -> bool:
    return inner.x0 >= outer.x0 and inner.x1 <= outer.x1 and inner.y0 >= outer.y0 and inner.y1 <= outer.y1


def test_legends_cover_no_data():
    # grouped bars: the legend sits above the axes, in one row; angle scatter: below the panels
    fig = tf.grouped_bars({"g1": {"a": 1.0, "b": 2.0, "c": 3.0}, "g2": {"a": 3.0}}, "err", title="t")
    r = fig.canvas.get_renderer()
    leg, box = fig.axes[0].get_legend().get_window_extent(r), fig.axes[0].get_window_extent(r)
    assert leg.y0 >= box.y1 - 1 and _inside(leg, fig.bbox)
    fig = tf.angle_scatter({"a": ([0, 90], [0, 80]), "b": ([10], [20])})
    r = fig.canvas.get_renderer()
    leg = fig.legends[0].get_window_extent(r)
    assert all(leg.y1 <= ax.get_window_extent(r).y0 for ax in fig.axes)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["y = x", "y = -x"]
    fig = tf.spectra({"p": [3.0, 1.0, 2.0, 0.5, 0.2]})
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= 5]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_latent_sweeps_side_by_side():
    torch.manual_seed(0)
    models = {"a": build_model(Config(model="vae", zdim=2)),
              "b": build_model(Config(model="affine-dtvae", zdim=2))}
    fig = tf.latent_sweeps(models, n=3, title="two")
    assert len(fig.axes) == 2 and n_images(fig) == 2
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    with pytest.raises(ValueError, match="dim z = 2"):
        tf.latent_sweeps({"c": build_model(Config(model="vae", zdim=4))})


def test_warp_limits_cover_points_outside_the_frame(digits):
    far = control_grid(3) * 2          # the original implementation's 2x start
    fig = tf.control_grid_figure(digits[0], far)
    lo, hi = fig.axes[1].get_xlim()
    assert lo < tf.to_pixels(np.array([-2.0]))[0] and hi > tf.to_pixels(np.array([2.0]))[0]
