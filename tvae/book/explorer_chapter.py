"""Chapter 13 (the latent explorer): the chapter's models, the tables it shows about their
sliders, the static explorer's files and the traversal geometry, and the sentences it prints.

The explorer itself (sliders, decoding, the static files, the traversals) is :mod:`tvae.explorer`;
this module only puts it to work for the chapter. Written to ``results/<profile>/``:
``explorer_traversals.csv`` (:func:`traversal_table`, one row per model and sweep).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import HTML, Markdown
from pandas.io.formats.style import Styler

from .. import explorer as X
from ..io import write_csv
from ..models import VAE
from ..profiles import Profile
from . import registry, store

N_POSE = 1000
"""Training digits whose encoded poses set the pose sliders (their centre, SD and, for a TPS,
principal modes): enough for stable standard deviations, a second of encoding per model."""

STATIC_DIGITS = 16
"""Test digits the static explorer offers to "encode this test digit" (their pixels travel in
every model file)."""

TRAVERSAL_VALUES = np.linspace(-3, 3, 7)
"""The sweep of every traversal: -3 to 3 prior (z) or training (pose) standard deviations, in 7
steps, the sliders' own range."""

BENCH_REDRAWS = 50
"""Slider positions timed by the widget's benchmark."""

REDRAW_TARGET_MS = 50
"""A redraw fast enough to follow a slider by hand (20 frames a second)."""

TPS_SHARE_MODES = 2
"""The leading principal directions whose share of the TPS pose variance the chapter reports."""

GEOMETRY = {"slant_range": "slant change (deg)", "shift": "centre shift (px)",
            "size_range": "size change (px)", "change": "pixel change"}
"""The columns of :func:`tvae.explorer.traversal_geometry` averaged by :func:`traversal_table`,
and their names in the table."""

TRAVERSAL_CSV = "explorer_traversals.csv"
"""File name of :func:`traversal_table` under ``results/<profile>/``."""


def chapter_models(P: Profile) -> dict[str, VAE]:
    """``{kind: trained model}`` of the chapter: the five kinds at dim z 8
    (:func:`tvae.book.registry.explorer_models`)."""
    return {c.model: store.model(P, c) for c in registry.explorer_models(P)}


def models_view(models: dict[str, X.ExplorerModel]) -> pd.DataFrame:
    """One row per explorer model: dim z, dim u, number of pose sliders, decoder parameters."""
    return pd.DataFrame([{"model": em.label, "dim z": em.zdim, "dim u": len(em.pose.u_mean),
                          "pose sliders": em.pose.size,
                          "decoder parameters": sum(p.numel() for p in em.model.decoder.parameters())}
                         for em in models.values()]).set_index("model")


def tps_shares(models: dict[str, X.ExplorerModel], k: int = TPS_SHARE_MODES) -> dict[str, float]:
    """``{label: share of the pose variance along the first k principal directions}`` of the TPS
    models (a fraction)."""
    return {em.label: em.pose.explained[:k].sum() for em in models.values() if em.pose.kind == "tps"}


def tps_share_sentence(models: dict[str, X.ExplorerModel], k: int = TPS_SHARE_MODES) -> str:
    """The chapter's sentence on :func:`tps_shares`."""
    words = {2: "two"}.get(k, str(k))
    return (f"Share of the pose variance along the first {words} principal directions: "
            + "; ".join(f"{label} {v:.0%}" for label, v in tps_shares(models, k).items())
            + " (of the 18 numbers of the spline).")


def pose_view(table: pd.DataFrame) -> Styler:
    """The slider table of :func:`tvae.explorer.pose_table` as the chapter shows it."""
    return table.style.format({"at the mean pose": "{:+.3f}", "SD over training digits": "{:.3f}",
                               "share of pose variance": "{:.1%}"}, na_rep="")


def write_explorer(models: dict[str, X.ExplorerModel], data, static_dir: str | Path | None
                   ) -> dict[str, dict] | None:
    """Write the static explorer (:func:`tvae.explorer.write_static`, offering the first
    :data:`STATIC_DIGITS` test digits of ``data``) into ``static_dir`` and return its summary;
    None, writing nothing, when ``static_dir`` is None."""
    if static_dir is None:
        return None
    digits, labels = data.x_test[:STATIC_DIGITS], data.y_test[:STATIC_DIGITS].tolist()
    return X.write_static(models, static_dir, digits, labels)


NO_STATIC = ("*This run was not given a `static_dir`, so the browser explorer was not written; the "
             "book's build passes one (see the Makefile).*")
"""What the chapter shows in place of the browser explorer when it was not written."""


def explorer_block(static_dir: str | Path | None) -> HTML | Markdown:
    """The block that mounts the static explorer written into ``static_dir``
    (:func:`tvae.explorer.static_html`, by the folder's name, relative to the page), or the
    :data:`NO_STATIC` note."""
    if static_dir is None:
        return Markdown(NO_STATIC)
    return HTML(X.static_html(Path(static_dir).name))


def export_view(summary: dict[str, dict]) -> Styler:
    """The static explorer's files (:func:`tvae.explorer.summary_frame`) as the chapter shows them."""
    return X.summary_frame(summary).style.format(
        {"decoder parameters": "{:,}", "weights (kB)": "{:.0f}", "JS file (kB)": "{:.0f}",
         "max error (x 1/255)": "{:.3f}"})


def export_size_caption(summary: dict[str, dict], static_dir: str | Path) -> str:
    """How large the static explorer's model files are together, and its decoder script."""
    total = sum(s["bytes"] for s in summary.values())
    script = (Path(static_dir) / "explorer.js").stat().st_size
    return (f"The five model files take {total / 1e6:.1f} MB together; the decoder script itself is "
            f"{script / 1000:.0f} kB.")


def benchmark_sentence(bench: dict[str, float], threads: int) -> str:
    """The chapter's sentence on :meth:`tvae.explorer.Explorer.benchmark` (``median_ms``,
    ``p90_ms``) run with :data:`BENCH_REDRAWS` redraws on ``threads`` CPU threads."""
    return (f"Moving a slider through {BENCH_REDRAWS} positions here took a median of "
            f"**{bench['median_ms']:.1f} ms** per redraw (90th percentile {bench['p90_ms']:.1f} ms) on "
            f"{threads} CPU thread(s), against a target of {REDRAW_TARGET_MS} ms. This is the time spent "
            "in Python; the notebook front end adds the time to display the images.")


def traversal_table(models: dict[str, X.ExplorerModel], values: np.ndarray = TRAVERSAL_VALUES, *,
                    out_dir: str | Path | None = None) -> pd.DataFrame:
    """How far each traversal moves the ink: for every model and sweep (``z``, and ``pose`` for
    a model with a pose), the mean over the grid's rows of :func:`tvae.explorer.traversal_geometry`
    (columns :data:`GEOMETRY`), with the number of ``rows``; index ``model``, ``sweep``. Written
    to ``<out_dir>/explorer_traversals.csv`` when ``out_dir`` is given."""
    geo = []
    for em in models.values():
        for part, grid in (("z", X.z_traversal(em, values)), ("pose", X.pose_traversal(em, values))):
            if len(grid) == 0:
                continue
            g = pd.DataFrame(X.traversal_geometry(grid))
            geo.append({"model": em.label, "sweep": part, "rows": len(g),
                        **{name: g[col].mean() for col, name in GEOMETRY.items()}})
    table = pd.DataFrame(geo).set_index(["model", "sweep"])
    if out_dir is not None:
        write_csv(table.reset_index(), Path(out_dir) / TRAVERSAL_CSV)
    return table


def traversal_view(table: pd.DataFrame) -> Styler:
    """The traversal table of :func:`traversal_table` as the chapter shows it (2 decimals)."""
    return table.style.format("{:.2f}", subset=list(GEOMETRY.values()))


def slant_sentence(table: pd.DataFrame) -> str:
    """The models ordered by the mean slant change of their ``z`` sweeps (a table of
    :func:`traversal_table`), and the VAE's rank among them."""
    order = table.xs("z", level="sweep")["slant change (deg)"].sort_values()
    lines = [f"- {m}: {v:.1f} degrees" for m, v in order.items()]
    vae = registry.LABELS["vae"]
    return ("Mean slant change along a *z* sweep, smallest first, in this run:\n\n" + "\n".join(lines)
            + f"\n\nThe plain VAE ranks {list(order.index).index(vae) + 1} of {len(order)}. If the "
            "pose channel takes over the digit's slant, the transformer models' *z* sweeps should "
            "tilt the digit less than the VAE's; read this with the grids above, as one seed and "
            "one profile.")


__all__ = ["N_POSE", "STATIC_DIGITS", "TRAVERSAL_VALUES", "BENCH_REDRAWS", "REDRAW_TARGET_MS",
           "TPS_SHARE_MODES", "GEOMETRY", "TRAVERSAL_CSV", "NO_STATIC", "chapter_models",
           "models_view", "tps_shares", "tps_share_sentence", "pose_view", "write_explorer",
           "explorer_block", "export_view", "export_size_caption", "benchmark_sentence",
           "traversal_table", "traversal_view", "slant_sentence"]
