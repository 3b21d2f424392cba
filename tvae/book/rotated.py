"""Chapter 12, experiment 10: rotated MNIST (1,500 training digits, each rotated by its own
uniform angle): the models' reconstructions, their upright images and whether the pose carries
the angle; the sentences the chapter prints.

Angles are in degrees, positive counter-clockwise as displayed (:func:`tvae.data.rotate`). The
angle a model's pose gives a digit follows the book's one statement of the warp direction
(chapter 03, "Which way the warp goes"): :func:`pose_angle`. Written to
``results/<profile>/rotated_mnist.csv`` (:data:`MODEL_COLUMNS`, one row per model) and
``rotated_angles.csv`` (:data:`ANGLE_COLUMNS`, one row per model and range of angles).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from ..evaluate import circular_correlation, elbo_terms, reconstruct, reconstruction_error, wrap_degrees
from ..io import write_csv
from ..models import DTVAE, VAE, count_parameters
from ..profiles import Profile
from ..warps import pose5_from_affine
from . import registry, store
from .training import history_frame

DATASET = "rot-mnist"
"""The dataset of the chapter (:func:`tvae.data.load_dataset`)."""

SHOWN = 16
"""Test digits shown in the reconstruction figure."""

SAMPLES = 36
"""Upright samples shown per model (a 6 x 6 panel)."""

ANGLE_BINS = ((0, 45), (45, 90), (90, 135), (135, 180))
"""Ranges of the true angle's magnitude |a| (degrees) for the angular errors; the last one
includes 180. A flat affine pose can express |a| < 90 only (its entries stay within 1 of the
identity's), so the first two ranges are the ones a pose can reach."""

REACHABLE = 90
"""Angles (degrees) below which a bounded affine pose can express the rotation."""

ANGLE_FIGURE = {"title": "The pose's angle against the true angle (counter-clockwise on the screen)",
                "xlabel": "true angle $a$ (degrees)", "ylabel": r"pose's angle $\hat a$ (degrees)"}
"""Title and axis labels of the angle plot (:func:`tvae.figures.angle_scatter`): both angles
in the digit's terms, positive counter-clockwise on the screen (:func:`pose_angle`)."""

MODEL_COLUMNS = ["model", "dim z", "dim u", "test ELBO", "test BCE (sampled z)", "KL z",
                 "test BCE (posterior mean)", "test squared error", "profile", "seed", "n_test",
                 "epochs"]
"""The columns of ``rotated_mnist.csv`` (unchanged since the chapter first wrote it)."""

ANGLE_COLUMNS = ["model", "range", "digits", "reference", "error", "circular_corr", "axial_corr",
                 "beyond_90_pct", "profile", "seed"]
"""The columns of ``rotated_angles.csv``: per model and range of ``|a|`` (``"0-45"``...), the
digits in the range, the ``reference`` mean ``|a|`` (the error of a pose that ignores the
angle) and the model's mean angular ``error`` ``|wrap(â - a)|`` (degrees); per model (the same
in its rows) the circular and axial correlations of â with a over all the digits; the share
of digits rotated beyond 90 degrees (%)."""


# ------------------------------------------------------------------ models and data ----
def chapter_models(P: Profile) -> dict[str, VAE]:
    """``{display name: trained model}`` of :func:`tvae.book.registry.rot_mnist_models`: VAE,
    Affine-TVAE, Affine-DTVAE, in that order."""
    return store.models(P, registry.named(registry.rot_mnist_models(P)))


def histories(P: Profile) -> dict[str, pd.DataFrame]:
    """``{display name: per-epoch history}`` of the chapter's models
    (:func:`tvae.book.training.history_frame`)."""
    configs = registry.named(registry.rot_mnist_models(P))
    return {name: history_frame(store.checkpoint(P, cfg)) for name, cfg in configs.items()}


def evaluation_digits(P: Profile) -> tuple[Tensor, Tensor]:
    """The first ``P.test_size`` rotated test digits ``(M, 784)`` (all when None) and their
    true angles ``(M,)`` (float64, degrees)."""
    rot = store.data(P, DATASET)
    n = P.test_size or len(rot.x_test)
    return rot.x_test[:n], rot.meta["angles_test"][:n].double()


def describe(P: Profile) -> str:
    """One sentence: training digits, epochs, evaluation digits, dim z, parameter counts."""
    rot = store.data(P, DATASET)
    xt, _ = evaluation_digits(P)
    sizes = ", ".join(f"{name} {count_parameters(m):,}" for name, m in chapter_models(P).items())
    return (f"{len(rot.x_train):,} rotated training digits, {P.rot_epochs} epochs; evaluation on "
            f"the first {len(xt):,} rotated test digits; dim z = {registry.MAIN_DIM}. Trainable "
            f"parameters: {sizes}.")


# ---------------------------------------------------------------------- the figures ----
def reconstruction_rows(P: Profile) -> dict[str, Tensor]:
    """``{row label: images}`` of :data:`SHOWN` rotated test digits: the input, each model's
    ``x'``, the Affine-TVAE's upright ``y'``, the DTVAE's straightened input ``y = T_u(x)``
    and its ``y'``."""
    models = chapter_models(P)
    vae, aff, dt = models
    x = evaluation_digits(P)[0][:SHOWN]
    recs = {name: reconstruct(m, x) for name, m in models.items()}
    return {"input $x$": x, f"{vae}: $x'$": recs[vae]["x_rec"], f"{aff}: $x'$": recs[aff]["x_rec"],
            f"{aff}: $y'$": recs[aff]["y_rec"], f"{dt}: $y = T_u(x)$": recs[dt]["y"],
            f"{dt}: $y'$": recs[dt]["y_rec"], f"{dt}: $x'$": recs[dt]["x_rec"]}


def upright_samples(P: Profile) -> dict[str, Tensor]:
    """``{display name: SAMPLES upright samples y'}``, ``z ~ N(0, I)`` seeded with ``P.seed``."""
    return {name: m.sample(SAMPLES, torch.Generator().manual_seed(P.seed), upright=True)
            for name, m in chapter_models(P).items()}


# ----------------------------------------------------------------------- the table ----
def model_table(P: Profile, *, write: bool = True, out_dir: str | Path | None = None) -> pd.DataFrame:
    """One row per model (:data:`MODEL_COLUMNS`): test ELBO and its terms (one posterior draw
    seeded with ``P.seed``), BCE and squared error of the posterior-mean reconstruction, on
    the rotated test digits of :func:`evaluation_digits`. Written to ``rotated_mnist.csv`` when
    ``write``."""
    xt, _ = evaluation_digits(P)
    rows = []
    for name, m in chapter_models(P).items():
        terms = elbo_terms(m, xt, seed=P.seed)
        rec = reconstruction_error(m, xt)
        rows.append({"model": name, "dim z": m.config.zdim, "dim u": m.config.udim,
                     "test ELBO": terms["elbo"], "test BCE (sampled z)": terms["bce"],
                     "KL z": terms["kl_z"], "test BCE (posterior mean)": rec["bce"],
                     "test squared error": rec["mse"], "profile": P.results_name, "seed": P.seed,
                     "n_test": len(xt), "epochs": P.rot_epochs})
    df = pd.DataFrame(rows, columns=MODEL_COLUMNS)
    if write:
        write_csv(df, Path(out_dir or P.results_dir()) / "rotated_mnist.csv")
    return df


# ----------------------------------------------------------------------- the angles ----
def pose_angle(model: VAE, u: Tensor) -> Tensor:
    """The rotation (degrees, counter-clockwise on the screen) that affine poses ``u``
    ``(B, 6)`` of ``model`` give their digits, following chapter 03's statement of the warp
    direction: ``psi`` (:func:`tvae.warps.pose5_from_affine`) for a TVAE, whose ``u`` reads the
    upright canvas from the observed frame, and ``-psi`` for a DTVAE, whose ``u`` reads the
    observed digit from the upright frame. For a digit turned counter-clockwise by ``a`` from
    upright and a pose that is a pure rotation, both give ``a``."""
    psi = torch.rad2deg(pose5_from_affine(u.double().view(-1, 2, 3))[:, 0])
    return -psi if isinstance(model, DTVAE) else psi


def angles(P: Profile) -> tuple[Tensor, dict[str, Tensor]]:
    """``(true angles wrapped to (-180, 180], {display name: angle of the pose})`` on the
    test digits of :func:`evaluation_digits`, for the models with an affine pose (kept in memory)."""
    return store.remember(("rotated_angles", P), lambda: _angles(P))


def _angles(P: Profile) -> tuple[Tensor, dict[str, Tensor]]:
    xt, true = evaluation_digits(P)
    out = {name: pose_angle(m, reconstruct(m, xt)["u"].cpu())
           for name, m in chapter_models(P).items() if m.config.warp == "affine"}
    return wrap_degrees(true).cpu(), out


def angle_pairs(P: Profile) -> dict[str, tuple]:
    """``{display name: (true angles, pose angles)}`` as numpy arrays, for
    :func:`tvae.figures.angle_scatter`."""
    true, recovered = angles(P)
    return {name: (true.numpy(), r.numpy()) for name, r in recovered.items()}


def angle_table(P: Profile, *, write: bool = True, out_dir: str | Path | None = None) -> pd.DataFrame:
    """One row per model and range of :data:`ANGLE_BINS` (:data:`ANGLE_COLUMNS`). Written to
    ``rotated_angles.csv`` when ``write``."""
    true, recovered = angles(P)
    mag = true.abs()
    beyond = float((mag >= REACHABLE).double().mean() * 100)
    rows = []
    for name, r in recovered.items():
        circ = circular_correlation(true, r)
        axial = circular_correlation(2 * true, 2 * r)   # a and a + 180 count as one orientation
        for lo, hi in ANGLE_BINS:
            sel = (mag >= lo) & ((mag < hi) if hi < 180 else (mag <= hi))
            rows.append({"model": name, "range": f"{lo}-{hi}", "digits": int(sel.sum()),
                         "reference": float(mag[sel].mean()),
                         "error": float(wrap_degrees(r[sel] - true[sel]).abs().mean()),
                         "circular_corr": circ, "axial_corr": axial, "beyond_90_pct": beyond,
                         "profile": P.results_name, "seed": P.seed})
    df = pd.DataFrame(rows, columns=ANGLE_COLUMNS)
    if write:
        write_csv(df, Path(out_dir or P.results_dir()) / "rotated_angles.csv")
    return df


def error_table(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (:func:`angle_table`) as the chapter shows it: one row per range, the digits, the
    reference and each model's error."""
    wide = df.pivot(index="range", columns="model", values="error")
    wide.columns = [f"{m} error" for m in wide.columns]
    first = df.drop_duplicates("range").set_index("range")[["digits", "reference"]]
    order = [f"{lo}-{hi}" for lo, hi in ANGLE_BINS]
    models = [f"{m} error" for m in df.model.unique()]
    return first.join(wide[models]).loc[order]


def correlation_findings(df: pd.DataFrame) -> str:
    """Markdown: the circular and axial correlations of each model, and the share of digits
    beyond the pose's reach."""
    per = df.drop_duplicates("model")
    return ("Circular correlation with the true angle: "
            + ", ".join(f"{r.model} **{r.circular_corr:+.2f}**" for r in per.itertuples())
            + "; axial correlation (angles doubled, so that a and a + 180 degrees count as the "
            "same orientation): " + ", ".join(f"{r.model} **{r.axial_corr:+.2f}**" for r in per.itertuples())
            + f". {per.beyond_90_pct.iloc[0]:.1f}% of the test digits are rotated by more than "
            f"{REACHABLE} degrees either way.")


def error_findings(df: pd.DataFrame) -> str:
    """Markdown: per model, the mean angular error on the digits the pose can reach (|a| < 90,
    the ranges' errors weighted by their digits) against the reference, and whether it is below
    half of it."""
    lines = []
    for name, g in df[df["range"].isin([f"{lo}-{hi}" for lo, hi in ANGLE_BINS if hi <= REACHABLE])
                      ].groupby("model", sort=False):
        e = float((g.error * g.digits).sum() / g.digits.sum())
        ref = float((g.reference * g.digits).sum() / g.digits.sum())
        lines.append(f"- {name}: mean error {e:.1f} degrees on digits rotated by less than "
                     f"{REACHABLE} degrees, against {ref:.1f} for a pose that ignores the angle; "
                     + ("below" if e < 0.5 * ref else "not below") + " half the reference.")
    return "\n".join(lines)


__all__ = ["DATASET", "SHOWN", "SAMPLES", "ANGLE_BINS", "REACHABLE", "MODEL_COLUMNS",
           "ANGLE_COLUMNS", "ANGLE_FIGURE", "chapter_models", "histories", "evaluation_digits", "describe",
           "reconstruction_rows", "upright_samples", "model_table", "pose_angle", "angles",
           "angle_pairs", "angle_table", "error_table", "correlation_findings", "error_findings"]
