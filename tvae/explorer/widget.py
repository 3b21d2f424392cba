"""The Jupyter explorer (ipywidgets 8) for a live kernel: a model dropdown, one slider per ``z``
dimension (over +-3 prior standard deviations), pose sliders (:mod:`tvae.explorer.pose`), the
upright ``y'`` and the output ``x'`` side by side, and buttons for a random ``z``, a random
pose, a reset and "encode test digit". Decoding runs in PyTorch on the CPU.
"""

from __future__ import annotations

import io
import time

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..models import VAE
from .pose import D, ExplorerModel, H, W, decode_pair, prepare

Z_RANGE = 3.0
"""``z`` sliders span ``[-3, 3]`` prior standard deviations."""


def png_bytes(img: np.ndarray, scale: int = 6) -> bytes:
    """A grey image ``(784,)`` or ``(28, 28)`` in [0, 1] as PNG bytes, enlarged ``scale`` times
    (nearest neighbour), white ink on black."""
    a = np.clip(np.asarray(img, dtype=np.float32).reshape(H, W) * 255 + 0.5, 0, 255).astype(np.uint8)
    if scale > 1:
        a = a.repeat(scale, 0).repeat(scale, 1)
    buf = io.BytesIO()
    Image.fromarray(a, mode="L").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class Explorer:
    """The Jupyter explorer (ipywidgets 8). Build it with :func:`show`.

    ``models``: :class:`ExplorerModel` by name; ``x_test`` ``(N, 784)``, ``y_test`` ``(N,)``:
    digits for "encode test digit". ``widget`` is the root widget; ``times_ms`` holds the
    duration of every redraw (decode + PNG encoding + widget update), in milliseconds.
    """

    def __init__(self, models: dict[str, ExplorerModel], x_test: Tensor, y_test: Tensor | None = None,
                 scale: int = 6, seed: int = 0):
        import ipywidgets as w  # here: only the live widget needs it, not the exports

        if not models:
            raise ValueError("the explorer needs at least one model")
        self.models, self.x_test, self.y_test, self.scale = models, x_test.cpu(), y_test, scale
        self.rng = np.random.default_rng(seed)
        self.times_ms: list[float] = []
        self._hold = False
        self._sliders: list = []
        self.residual = np.zeros(0)
        side = f"{H * scale}px"
        self.dropdown = w.Dropdown(options=[(em.label, k) for k, em in models.items()],
                                   description="model")
        self.img_in = w.Image(format="png", layout=w.Layout(width=side, height=side))
        self.img_y = w.Image(format="png", layout=w.Layout(width=side, height=side))
        self.img_x = w.Image(format="png", layout=w.Layout(width=side, height=side))
        self.caption_in = w.HTML("input x (none)")
        self.z_box, self.pose_box = w.VBox(), w.VBox()
        auto = w.Layout(width="auto")
        self.b_random_z = w.Button(description="random z", layout=auto)
        self.b_random_pose = w.Button(description="random pose", layout=auto)
        self.b_reset = w.Button(description="reset", layout=auto)
        self.index = w.BoundedIntText(value=0, min=0, max=len(self.x_test) - 1, description="test digit",
                                      layout=w.Layout(width="170px"))
        self.b_encode = w.Button(description="encode this test digit", layout=auto)
        self.status = w.HTML()
        self.b_random_z.on_click(lambda _: self.random_z())
        self.b_random_pose.on_click(lambda _: self.random_pose())
        self.b_reset.on_click(lambda _: self.reset())
        self.b_encode.on_click(lambda _: self.encode(self.index.value))
        self.dropdown.observe(lambda _: self._switch_model(), names="value")

        def figure(img, caption):
            return w.VBox([img, caption if isinstance(caption, w.Widget) else w.HTML(caption)])

        self.widget = w.VBox([
            self.dropdown,
            w.HBox([figure(self.img_in, self.caption_in), figure(self.img_y, "upright y&#8242;"),
                    figure(self.img_x, "output x&#8242;")]),
            w.HBox([w.VBox([w.HTML("<b>shape z</b> (prior SD)"), self.z_box]),
                    w.VBox([w.HTML("<b>pose</b>"), self.pose_box])]),
            w.HBox([self.b_random_z, self.b_random_pose, self.b_reset, self.index, self.b_encode]),
            self.status])
        self._switch_model()

    # ---------------------------------------------------------------- state ----
    @property
    def current(self) -> ExplorerModel:
        return self.models[self.dropdown.value]

    def _switch_model(self) -> None:
        import ipywidgets as w  # here: only the live widget needs it, not the exports

        em = self.current
        style = {"description_width": "110px"}
        lay = w.Layout(width="360px")
        self.z_sliders = [w.FloatSlider(0.0, min=-Z_RANGE, max=Z_RANGE, step=0.01, description=f"z{i + 1}",
                                        style=style, layout=lay, continuous_update=True)
                          for i in range(em.zdim)]
        spec = em.pose
        self.pose_sliders = []
        for i in range(spec.size):
            unit = f" ({spec.units[i]})" if spec.units[i] else ""
            step = float((spec.hi[i] - spec.lo[i]) / 600)
            self.pose_sliders.append(w.FloatSlider(
                float(spec.centre[i]), min=float(spec.lo[i]), max=float(spec.hi[i]), step=step,
                description=spec.names[i] + unit, style=style, layout=lay, readout_format=".2f"))
        for s in self.z_sliders + self.pose_sliders:
            s.observe(self._on_slider, names="value")
        for old in self._sliders:                    # the previous model's sliders
            old.close()
        self._sliders = self.z_sliders + self.pose_sliders
        self.z_box.children = self.z_sliders
        self.pose_box.children = self.pose_sliders or [w.HTML("(the VAE has no pose)")]
        self.residual = np.zeros(len(spec.u_mean))
        self._show_input(None)
        self.redraw()

    def _on_slider(self, _change) -> None:
        if not self._hold:
            self.redraw()

    def _set(self, z: np.ndarray | None = None, values: np.ndarray | None = None,
             residual: np.ndarray | None = None) -> None:
        """Set sliders without redrawing each time, then redraw once."""
        self._hold = True
        try:
            if z is not None:
                for s, v in zip(self.z_sliders, z, strict=True):
                    s.value = float(np.clip(v, -Z_RANGE, Z_RANGE))
            if values is not None:
                for s, v in zip(self.pose_sliders, values, strict=True):
                    s.value = float(np.clip(v, s.min, s.max))
            if residual is not None:
                self.residual = np.asarray(residual, dtype=np.float64)
        finally:
            self._hold = False
        self.redraw()

    def z(self) -> np.ndarray:
        """Current ``z`` ``(dim z,)``."""
        return np.array([s.value for s in self.z_sliders])

    def u(self) -> np.ndarray:
        """Current warp parameters ``u`` ``(dim u,)`` (empty for the VAE)."""
        return self.current.pose.to_u(np.array([s.value for s in self.pose_sliders]), self.residual)

    # -------------------------------------------------------------- actions ----
    def random_z(self) -> None:
        """``z ~ N(0, I)`` (clipped to the sliders' +-3)."""
        self._set(z=self.rng.standard_normal(self.current.zdim))

    def random_pose(self) -> None:
        """Each pose slider drawn from a normal with its training centre and SD (independently)."""
        spec = self.current.pose
        if spec.size:
            self._set(values=spec.centre + spec.sd * self.rng.standard_normal(spec.size),
                      residual=np.zeros(len(spec.u_mean)))

    def reset(self) -> None:
        """``z = 0`` and the mean pose."""
        spec = self.current.pose
        self._show_input(None)
        self._set(z=np.zeros(self.current.zdim), values=spec.centre, residual=np.zeros(len(spec.u_mean)))

    def encode(self, index: int) -> None:
        """Start from test digit ``index``: ``z`` = its posterior mean, ``u`` = its pose."""
        em = self.current
        x = self.x_test[index:index + 1]
        with torch.no_grad():
            post = em.model.encode(x)
        vals, res = em.pose.from_u(post.u[0].double().numpy())
        self._show_input(index)
        self._set(z=post.mu_z[0].numpy(), values=vals, residual=res)

    def _show_input(self, index: int | None) -> None:
        if index is None:
            self.img_in.value = png_bytes(np.zeros(D), self.scale)
            self.caption_in.value = "input x (none)"
        else:
            self.img_in.value = png_bytes(self.x_test[index].numpy(), self.scale)
            lab = f", label {int(self.y_test[index])}" if self.y_test is not None else ""
            self.caption_in.value = f"input x (test digit {index}{lab})"

    # --------------------------------------------------------------- drawing ----
    def redraw(self) -> float:
        """Decode the current sliders and update both images; returns the time taken (ms)."""
        t0 = time.perf_counter()
        em = self.current
        z = torch.as_tensor(self.z(), dtype=torch.float32)[None]
        u = torch.as_tensor(self.u(), dtype=torch.float32)[None] if em.pose.size else None
        y, x = decode_pair(em.model, z, u)
        self.img_y.value = png_bytes(y[0].numpy(), self.scale)
        self.img_x.value = png_bytes(x[0].numpy(), self.scale)
        ms = (time.perf_counter() - t0) * 1000
        self.times_ms.append(ms)
        clipped = np.any(np.abs(self.z()) >= Z_RANGE)
        self.status.value = (f"redraw {ms:.1f} ms (median {np.median(self.times_ms):.1f} ms over "
                             f"{len(self.times_ms)})" + ("; some z at the slider limit" if clipped else ""))
        return ms

    def benchmark(self, n: int = 50) -> dict[str, float]:
        """Move the first ``z`` slider through ``n`` values (each move redraws, as a reader's
        drag does) and return ``{'median_ms', 'p90_ms', 'max_ms', 'n'}`` of those redraws."""
        start = len(self.times_ms)
        for v in np.linspace(-2, 2, n):
            self.z_sliders[0].value = float(v)
        t = np.array(self.times_ms[start:])
        return {"median_ms": float(np.median(t)), "p90_ms": float(np.percentile(t, 90)),
                "max_ms": float(t.max()), "n": len(t)}

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def show(models: dict[str, VAE | ExplorerModel] | list[VAE], data, n_pose: int = 1000) -> Explorer:
    """The Jupyter explorer for ``models`` (``{name: model}`` or a list), with pose sliders set
    from ``data.x_train`` (the first ``n_pose`` digits) and "encode test digit" over
    ``data.x_test``. Displays itself as a notebook's last expression."""
    ems = prepare(models, data.x_train, n_pose)
    return Explorer(ems, data.x_test, getattr(data, "y_test", None))
