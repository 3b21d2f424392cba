"""The static latent explorer in a real browser (Debian's Chromium driven by Playwright).

A standalone explorer page is built into a temporary folder from smoke-trained models of
every kind (the same export and template as the book's chapter 13), then opened once from
``file://`` and once through ``python -m http.server``. In each: sliders and buttons must
change the canvases, the browser's decoder must match PyTorch's ``model.decode`` within 1/255
for fixed ``(z, u)`` vectors with non-identity poses, the JavaScript pose map must match
:meth:`tvae.explorer.PoseSpec.to_u`, and the median redraw time is measured with
``performance.now()``. A screenshot goes to the test's temporary folder and, when
``TVAE_SCREENSHOT_DIR`` is set, there too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tvae import MODELS, Config
from tvae import explorer as E
from tvae.cache import get_model

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SMOKE = {"train_size": 300, "epochs": 1, "zdim": 8}
REPORT: dict[str, dict] = {}


@pytest.fixture(scope="module")
def site(mnist_root, tmp_path_factory):
    """``(folder, {name: ExplorerModel}, data, summary)``: a standalone explorer page
    (``folder/index.html`` + ``folder/explorer_static/``) of smoke models of every kind."""
    from tvae.data import load_dataset

    data = load_dataset("mnist", mnist_root, train_size=SMOKE["train_size"], seed=0)
    # The first 500 test digits only (the trainer evaluates the whole test set every epoch);
    # a distinct identity keeps these cache entries apart from full-test-set ones.
    data = dataclasses.replace(data, x_test=data.x_test[:500], y_test=data.y_test[:500],
                               identity=data.identity + "-test500")
    cache = tmp_path_factory.getbasetemp() / "explorer-cache"   # shared with test_explorer.py
    models = {}
    for kind in MODELS:
        cfg = Config(model=kind, zdim=SMOKE["zdim"], train_size=SMOKE["train_size"],
                     epochs=SMOKE["epochs"])
        models[kind], _ = get_model(cfg, data, root=cache, progress=False)
    ems = E.prepare(models, data.x_train)
    folder = tmp_path_factory.mktemp("explorer-site")
    summary = E.write_static(ems, folder / "explorer_static", data.x_test[:8], data.y_test[:8].tolist())
    E.standalone_page(folder / "explorer_static")
    return folder, ems, data, summary


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: install Debian's browser (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def http_url(site):
    """The page served by ``python -m http.server`` on a free local port."""
    folder = site[0]
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(folder)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("http.server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/index.html"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _test_vectors(em: E.ExplorerModel, x0: torch.Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed ``(z, u)`` pairs: z = 0, a seeded draw, a test digit's code; u = the mean pose,
    a rotated/scaled/sheared/shifted affine pose or a perturbed TPS pose, the digit's pose."""
    rng = np.random.default_rng(123)
    spec = em.pose
    with torch.no_grad():
        post = em.model.encode(x0[None])
    zs = [np.zeros(em.zdim), 1.5 * rng.standard_normal(em.zdim), post.mu_z[0].double().numpy()]
    if spec.size == 0:
        return [(z, np.zeros(0)) for z in zs]
    if spec.kind == "affine":
        bent = spec.to_u(spec.centre + np.array([30.0, 0.15, -0.1, 0.25, 2.0, -1.5]))
    else:
        bent = spec.u_mean + 0.12 * rng.standard_normal(len(spec.u_mean))
    us = [spec.u_mean, bent, post.u[0].double().numpy()]
    return [(z, u) for z in zs for u in us]


_CANVAS_PIXELS = """(i) => {
  const c = document.querySelectorAll('.tvae-explorer canvas')[i], k = c.width / 28, out = [];
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let r = 0; r < 28; r++) for (let q = 0; q < 28; q++) {
    out.push(d[4 * ((r * k + (k >> 1)) * c.width + q * k + (k >> 1))]);
  }
  return out;
}"""
"""The 28 x 28 grey levels (0-255) drawn in canvas ``i``, read at the centre of each cell."""


def _canvas(page, index: int) -> str:
    return page.evaluate("(i) => document.querySelectorAll('.tvae-explorer canvas')[i].toDataURL()", index)


def _wait_model(page, name: str) -> None:
    page.wait_for_function(
        "(n) => { const e = window.tvaeExplorer.instances[0]; return e && e.model && e.model.name === n; }",
        arg=name, timeout=15000)


@pytest.mark.parametrize("mode", ["file", "http"])
def test_explorer_in_chromium(site, browser, http_url, mode, tmp_path):
    folder, ems, data, summary = site
    url = (folder / "index.html").as_uri() if mode == "file" else http_url
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto(url)
    page.wait_for_function("window.tvaeExplorer && window.tvaeExplorer.instances.length === 1 "
                           "&& window.tvaeExplorer.timings.length > 0", timeout=15000)
    names = page.evaluate("window.TVAE_MANIFEST.models.map(m => m.name)")
    assert names == list(MODELS)

    errors, redraw = {}, {}
    for name in names:
        em = ems[name]
        page.select_option(".tvx-model", name)
        _wait_model(page, name)
        sliders = page.locator(".tvae-explorer input[type=range]")
        assert sliders.count() == em.zdim + em.pose.size

        # A slider move redraws: the output canvas (index 2) changes, and so does the label.
        before = _canvas(page, 2)
        sliders.nth(0).focus()
        page.keyboard.press("End")
        assert _canvas(page, 2) != before, f"{name}: moving z1 did not change x'"
        assert page.locator(".tvx-val").nth(0).inner_text() == "+3.00"
        if em.pose.size:
            before_y, before_x = _canvas(page, 1), _canvas(page, 2)
            sliders.nth(em.zdim).focus()
            page.keyboard.press("End")
            assert _canvas(page, 2) != before_x, f"{name}: the first pose slider did not move x'"
            assert _canvas(page, 1) == before_y, f"{name}: a pose slider changed the upright y'"

        # Buttons: a test digit appears in the input canvas and sets z and u; the canvas then
        # shows PyTorch's decoding of that digit's (z clipped to the sliders, u) up to the
        # canvas's 8-bit rounding; reset clears both.
        blank_input = _canvas(page, 0)
        page.select_option(".tvx-digit", "3")
        page.get_by_role("button", name="encode this test digit").click()
        assert _canvas(page, 0) != blank_input
        z_js = page.evaluate("Array.from(window.tvaeExplorer.instances[0].z)")
        with torch.no_grad():
            post = em.model.encode(data.x_test[3:4])
            z_ref = post.mu_z.clamp(-3, 3)
            x_ref = em.model.decode(z_ref, post.u if em.pose.size else None)[0].double().numpy()
        assert np.allclose(z_js, z_ref[0].double().numpy(), atol=1e-6)
        shown = np.array(page.evaluate(_CANVAS_PIXELS, 2)) / 255
        assert np.abs(shown - x_ref).max() < 1.5 / 255, f"{name}: encoded digit drawn wrongly"
        if em.pose.size:
            # Random pose: new slider values, the same y', and x' = PyTorch's decoding of them.
            state = ("() => { const e = window.tvaeExplorer.instances[0]; "
                     "return [Array.from(e.z), e.values]; }")
            before_y, (_, before_vals) = _canvas(page, 1), page.evaluate(state)
            page.get_by_role("button", name="random pose").click()
            z_now, vals = page.evaluate(state)
            assert vals != before_vals and _canvas(page, 1) == before_y
            with torch.no_grad():
                x_now = em.model.decode(torch.tensor([z_now], dtype=torch.float32),
                                        torch.tensor(em.pose.to_u(np.array(vals)), dtype=torch.float32)[None])
            shown = np.array(page.evaluate(_CANVAS_PIXELS, 2)) / 255
            assert np.abs(shown - x_now[0].double().numpy()).max() < 1.5 / 255
        page.get_by_role("button", name="reset").click()
        assert _canvas(page, 0) == blank_input
        assert page.evaluate("Array.from(window.tvaeExplorer.instances[0].z)") == [0.0] * em.zdim
        before = _canvas(page, 2)
        page.get_by_role("button", name="random z").click()
        assert _canvas(page, 2) != before

        # Redraw time: 30 key presses on z2 from 0 (far from the slider's end, so that every
        # press is an input event and a redraw).
        page.get_by_role("button", name="reset").click()
        n0 = page.evaluate("window.tvaeExplorer.timings.length")
        sliders.nth(1).focus()
        for _ in range(30):
            page.keyboard.press("ArrowRight")
        times = page.evaluate("(n) => window.tvaeExplorer.timings.slice(n)", n0)
        assert len(times) == 30
        redraw[name] = float(np.median(times))
        assert redraw[name] < 50, f"{name}: median redraw {redraw[name]:.1f} ms"

        # The browser's decoder against PyTorch's, and its pose map against Python's.
        vectors = _test_vectors(em, data.x_test[0])
        x_js = np.array(page.evaluate(
            "([n, zu]) => Promise.all(zu.map(([z, u]) => window.tvaeDecode(n, z, u)))",
            [name, [[z.tolist(), u.tolist()] for z, u in vectors]]))
        zs = torch.tensor(np.stack([z for z, _ in vectors]), dtype=torch.float32)
        us = torch.tensor(np.stack([u for _, u in vectors]), dtype=torch.float32)
        with torch.no_grad():
            ref = em.model.decode(zs, us if em.pose.size else None).double().numpy()
        assert x_js.shape == (len(vectors), 784)
        worst = float(np.abs(x_js - ref).max())
        assert worst < 1 / 255, f"{name}: browser vs PyTorch max abs error {worst * 255:.3f}/255"
        errors[name] = worst
        if em.pose.size:
            rng = np.random.default_rng(7)
            vals = em.pose.centre + em.pose.sd * rng.standard_normal(em.pose.size) + 0.1
            res = 0.01 * rng.standard_normal(len(em.pose.u_mean)) if em.pose.kind == "tps" else None
            u_js = page.evaluate("([n, v, r]) => window.tvaeExplorer.poseToU(n, v, r)",
                                 [name, vals.tolist(), None if res is None else res.tolist()])
            assert np.allclose(u_js, em.pose.to_u(vals, res), atol=1e-12)

    shot = tmp_path / f"explorer-{mode}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("TVAE_SCREENSHOT_DIR"):
        out = Path(os.environ["TVAE_SCREENSHOT_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, out / shot.name)
    page.close()
    assert not problems, problems
    REPORT[mode] = {"max_abs_error_x255": {k: round(v * 255, 4) for k, v in errors.items()},
                    "median_redraw_ms": {k: round(v, 2) for k, v in redraw.items()},
                    "file_bytes": {k: s["bytes"] for k, s in summary.items()}}
    print(f"\nexplorer in Chromium via {mode}: " + json.dumps(REPORT[mode]))
