"""Chapter 03 (the models): the round trip through the approximate TPS inverse, the parameter
counts of the five architectures, the pose priors drawn with an illustrative ``W``, and the
sentences the chapter prints about them.

Conventions, stated once: every random draw comes from a CPU ``torch.Generator`` seeded with the
profile's seed (``P.seed``), one generator per computation, drawn in a fixed order. Images are
``(N, 1, 28, 28)`` grey levels; warp parameters follow :mod:`tvae.warps` (chapter 03, "Which way
the warp goes"). Nothing here is trained: the models are built untrained from the registry's
configurations (:func:`tvae.book.registry.architecture_configs`,
:func:`~tvae.book.registry.illustrative_prior_configs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from matplotlib.figure import Figure

from .. import figures as tf
from ..config import Config
from ..models import build_model, count_parameters
from ..profiles import Profile
from ..warps import affine_from_pose5, affine_warp, control_grid, make_warp
from . import store

# ------------------------------------------------------------------ round trip ----
ROUND_TRIP_N = 500
"""Test digits of the round-trip measurement (a mean error to about 1% of itself)."""

ROUND_TRIP_POSE_SD = (0.35, 0.1, 0.1, 0.1, 0.1)
"""Standard deviations of the random 5-parameter poses (rotation in radians, about 20 degrees;
log-scales; translation) of the affine round trip: a moderate pose, as a trained model gives."""

ROUND_TRIP_TPS_SD = 0.1
"""Standard deviation of the random control-point displacements of the TPS round trip
(normalised units), of the same order as the affine poses' displacements."""

ROUND_TRIP_SHOWN = 12
"""Digits in the round-trip figure."""

ERROR_COL = "mean |x - T^-1(T(x))| (sum over pixels)"
RELATIVE_COL = "relative to the ink of x (%)"
"""Columns of the round-trip table: the error summed over pixels, and as a share of the ink."""


@dataclass
class RoundTrip:
    """Digits warped and warped back: ``x`` ``(N, 1, 28, 28)``; ``warped`` and ``back``:
    ``{"affine" | "tps": images}``; ``table``: one row per warp (:func:`round_trip_table`)."""

    x: torch.Tensor
    warped: dict[str, torch.Tensor]
    back: dict[str, torch.Tensor]
    table: pd.DataFrame


def round_trip_poses(n: int, seed: int) -> dict[str, torch.Tensor]:
    """``n`` seeded random poses per warp: ``{"affine": (n, 6), "tps": (n, 18)}``
    (:data:`ROUND_TRIP_POSE_SD`, :data:`ROUND_TRIP_TPS_SD`)."""
    g = torch.Generator().manual_seed(seed)
    pose5 = torch.stack([torch.randn(n, generator=g) * ROUND_TRIP_POSE_SD[0]]
                        + [sd * torch.randn(n, generator=g) for sd in ROUND_TRIP_POSE_SD[1:]], 1)
    u_aff = affine_from_pose5(pose5).reshape(n, 6)
    u_tps = (control_grid(3) + ROUND_TRIP_TPS_SD * torch.randn(n, 9, 2, generator=g)).reshape(n, 18)
    return {"affine": u_aff, "tps": u_tps}


def round_trip_table(x: torch.Tensor, back: dict[str, torch.Tensor]) -> pd.DataFrame:
    """Per warp, the mean over digits of ``sum |x - T^-1(T(x))|`` over pixels, and of that sum as
    a percentage of the digit's ink ``sum x``: columns ``warp``, :data:`ERROR_COL`,
    :data:`RELATIVE_COL`."""
    rows = []
    for name, b in back.items():
        err = (b - x).abs().flatten(1).sum(1)
        rows.append({"warp": name, ERROR_COL: float(err.mean()),
                     RELATIVE_COL: float((err / x.flatten(1).sum(1)).mean() * 100)})
    return pd.DataFrame(rows)


def warp_round_trip(x: torch.Tensor, seed: int) -> RoundTrip:
    """Each digit of ``x`` ``(N, 1, 28, 28)`` warped by a random pose (:func:`round_trip_poses`)
    and warped back by the warp's inverse (exact for the affine warp, the approximate
    ``tvae.warps.tps_grid_between`` inverse for the TPS)."""
    warped, back = {}, {}
    for name, u in round_trip_poses(len(x), seed).items():
        w = make_warp(name)
        warped[name] = w.apply(x, u)
        back[name] = w.apply_inverse(warped[name], u)
    return RoundTrip(x, warped, back, round_trip_table(x, back))


def round_trip(P: Profile) -> RoundTrip:
    """The chapter's round trip: :func:`warp_round_trip` of the first :data:`ROUND_TRIP_N` test
    digits of the profile, seeded with ``P.seed``."""
    x = store.test_x(P)[:ROUND_TRIP_N].cpu().view(-1, 1, 28, 28)
    return warp_round_trip(x, P.seed)


def round_trip_sentence(trip: RoundTrip) -> str:
    """How much more of the ink the approximate TPS inverse loses than the exact affine one."""
    rel = trip.table.set_index("warp")[RELATIVE_COL]
    return ("Round-trip error of the approximate TPS inverse minus that of the exact affine "
            f"inverse: **{rel['tps'] - rel['affine']:+.1f}** percentage points of the digit's ink.")


def round_trip_view(trip: RoundTrip) -> pd.DataFrame:
    """The round-trip table as the chapter shows it (2 decimals)."""
    return trip.table.round(2)


def round_trip_figure(trip: RoundTrip, n: int = ROUND_TRIP_SHOWN) -> Figure:
    """The first ``n`` digits, warped, and warped back, for both warps (:func:`tvae.figures.image_rows`)."""
    w, b = trip.warped, trip.back
    return tf.image_rows({"$x$": trip.x[:n], "affine $T(x)$": w["affine"][:n],
                          r"affine $T^{-1}(T(x))$": b["affine"][:n], "TPS $T(x)$": w["tps"][:n],
                          r"TPS $T^{-1}(T(x))$ (approx.)": b["tps"][:n]},
                         title="Warping and warping back: exact affine inverse, approximate TPS inverse")


# ------------------------------------------------------------ parameter counts ----
BLOCKS = {"trunk": "encoder trunk", "mu_z": "z heads", "logsigma_z": "z heads", "pose": "pose head",
          "loc": "localisation net", "decoder": "decoder"}
"""The block of the parameter table each top-level submodule of a model belongs to."""

BLOCK_COLUMNS = ["encoder trunk", "z heads", "pose head", "localisation net", "decoder"]
"""The blocks in the table's order (encoder side first, as the data flows)."""


def parameter_counts(configs: list[Config]) -> pd.DataFrame:
    """The parameters of each configuration's (untrained) model, split by block: columns
    ``model``, ``dim z``, ``dim u``, :data:`BLOCK_COLUMNS` (0 where a model has no such block) and
    ``total`` (:func:`tvae.count_parameters`); one row per configuration, in order."""
    rows = []
    for cfg in configs:
        model = build_model(cfg)
        row = {"model": cfg.model, "dim z": cfg.zdim, "dim u": cfg.udim}
        for name, p in model.named_parameters():
            block = BLOCKS[name.split(".")[0]]
            row[block] = row.get(block, 0) + p.numel()
        row["total"] = count_parameters(model)
        rows.append(row)
    counts = pd.DataFrame(rows).fillna(0)
    counts[BLOCK_COLUMNS] = counts[BLOCK_COLUMNS].astype(int)
    return counts[["model", "dim z", "dim u", *BLOCK_COLUMNS, "total"]]


def size_sentence(counts: pd.DataFrame, zdim: int = 20) -> str:
    """What the pose head and the DTVAE's localisation network add to the VAE's size at
    ``dim z = zdim`` (a table of :func:`parameter_counts`)."""
    c = counts[counts["dim z"] == zdim].set_index("model")["total"]

    def extra(kind: str) -> str:
        d = c[kind] - c["vae"]
        return f"{d:,} ({d / c['vae'] * 100:.1f}%)"

    return (f"At dim z = {zdim} the pose head of the TVAE adds {extra('affine-tvae')} parameters "
            f"(affine) and {extra('tps-tvae')} (TPS) to the VAE's {c['vae']:,}: the TVAEs differ "
            "from the VAE in structure, hardly in size. The DTVAE's localisation network and pose "
            f"head add {extra('affine-dtvae')}, a real difference in capacity to keep in mind when "
            "its results are compared with the others'.")


# ------------------------------------------------------------------ pose priors ----
ILLUSTRATIVE_SD = 0.15
"""The illustrative standard deviation of each entry of ``u`` under the diagonal priors (and
the scale of the random rank-2 ``W``): a visible spread, far from degenerate warps."""

ILLUSTRATIVE_W5 = (0.3, 0.15, 0.15, 0.15, 0.15)
"""The illustrative ``W`` of ``reparam5-diag``: 0.3 radians (about 17 degrees) of rotation,
0.15 for the log-scales and the translation."""

ILLUSTRATIVE_MEAN = (1.15, 0.0, 0.1, 0.0, 1.15, -0.05)
"""The illustrative mean pose ``b`` of ``mean-diag``: a slight zoom-out and shift away from the
identity, since a learned mean is what sets the prior apart from ``identity-diag``."""

PRIOR_DRAWS = 20_000
"""Draws of ``u`` per prior for the numerical checks: sample covariances to about 0.001."""

PRIOR_POSES_SHOWN = 12
"""Poses per prior in the figure of one digit."""

RANK_TOL = 1e-6
"""An eigenvalue of a sample covariance counts towards its rank above this fraction of the
largest one (float64 round-off is far below it)."""


def illustrative_heads(configs: dict[str, Config], g: torch.Generator) -> dict[str, torch.nn.Module]:
    """The pose heads of ``configs`` (:func:`tvae.book.registry.illustrative_prior_configs`),
    built untrained, with ``W`` (and ``b`` for ``mean-diag``) set by hand: :data:`ILLUSTRATIVE_W5`
    for ``reparam5-diag``, :data:`ILLUSTRATIVE_SD` times a random matrix drawn from ``g`` for a
    low-rank prior, :data:`ILLUSTRATIVE_SD` on the diagonal otherwise."""
    heads = {}
    for label, cfg in configs.items():
        head = build_model(cfg).pose
        with torch.no_grad():
            if label == "reparam5-diag":
                head.w.copy_(torch.tensor(list(ILLUSTRATIVE_W5)))
            elif label.startswith("lowrank"):
                head.w.copy_(ILLUSTRATIVE_SD * torch.randn(*head.w.shape, generator=g))
            else:
                head.w.fill_(ILLUSTRATIVE_SD)
            if label == "mean-diag":
                head.b.copy_(torch.tensor(list(ILLUSTRATIVE_MEAN)))
        heads[label] = head
    return heads


def prior_check(label: str, head: torch.nn.Module, u: torch.Tensor) -> dict:
    """What the draws ``u`` ``(n, 6)`` (float64) of an affine pose head say: the rank of their
    covariance, the share of reflections (``det A < 0``, %), the skewness of ``a11``; for a
    linear prior also the largest gaps between the sample covariance and ``W W^T`` and between
    the sample mean and ``b``."""
    emp = torch.cov(u.T)
    det = u[:, 0] * u[:, 4] - u[:, 1] * u[:, 3]
    a11 = u[:, 0]
    skew = float(((a11 - a11.mean()) ** 3).mean() / a11.std() ** 3)
    eig = torch.linalg.eigvalsh(emp)
    row = {"prior": label, "dim u'": head.code_dim,
           "rank of cov(u)": int((eig > RANK_TOL * eig.max()).sum()),
           "reflections det<0 (%)": float((det < 0).double().mean() * 100), "skewness of a11": skew}
    if label != "reparam5-diag":
        wwt = head.covariance().detach().double()
        row["max |cov(u) - W W^T|"] = float((emp - wwt).abs().max())
        row["max |mean(u) - b|"] = float((u.mean(0) - head.b.detach().double()).abs().max())
    return row


@dataclass
class PriorDraws:
    """The illustrative pose priors: ``heads`` ``{label: pose head}``
    (:func:`illustrative_heads`) and ``checks``, one row of :func:`prior_check` per prior."""

    heads: dict[str, torch.nn.Module]
    checks: pd.DataFrame


def illustrative_priors(configs: dict[str, Config], seed: int, n: int = PRIOR_DRAWS) -> PriorDraws:
    """Each prior of ``configs`` with its illustrative ``W`` (:func:`illustrative_heads`), checked
    on ``n`` draws. One generator seeded with ``seed`` gives, prior after prior, the random ``W``
    (low rank only) and the codes ``u' ~ N(0, I)``."""
    g = torch.Generator().manual_seed(seed)
    heads, rows = {}, []
    for label, cfg in configs.items():
        head = illustrative_heads({label: cfg}, g)[label]
        with torch.no_grad():
            u = head.to_warp(torch.randn(n, head.code_dim, generator=g)).double()
        heads[label] = head
        rows.append(prior_check(label, head, u))
    return PriorDraws(heads, pd.DataFrame(rows))


def prior_checks_view(draws: PriorDraws) -> pd.DataFrame:
    """The table of :func:`prior_check` rows as the chapter shows it (4 decimals)."""
    return draws.checks.round(4)


def prior_sentences(draws: PriorDraws) -> str:
    """Two bullets: what the draws of the linear priors and of ``reparam5-diag`` show."""
    checks = draws.checks.set_index("prior")
    linear = checks.drop(index="reparam5-diag")
    five = checks.loc["reparam5-diag"]
    rank_ok = [label for label, r in linear.iterrows() if r["rank of cov(u)"] == r["dim u'"]]
    five_dim = int(five["dim u'"])
    return (f"- Linear priors: largest difference between the sample covariance and $W W^\\top$ "
            f"{linear['max |cov(u) - W W^T|'].max():.4f}, between the sample mean and $b$ "
            f"{linear['max |mean(u) - b|'].max():.4f}; covariance rank equal to $\\dim u'$ for "
            f"{len(rank_ok)} of {len(linear)} ({', '.join(rank_ok)}).\n"
            f"- Five-parameter prior: covariance rank {int(five['rank of cov(u)'])} with $\\dim u'$ = "
            f"{five_dim}, skewness of $a_{{11}}$ {five['skewness of a11']:.2f}, reflections "
            f"{five['reflections det<0 (%)']:.2f}% (linear priors: up to "
            f"{linear['reflections det<0 (%)'].max():.2f}%).")


def prior_pose_rows(digit: torch.Tensor, heads: dict[str, torch.nn.Module], seed: int,
                    n: int = PRIOR_POSES_SHOWN) -> dict[str, torch.Tensor]:
    """One digit ``(784,)`` under ``n`` poses drawn from each prior (a generator seeded with
    ``seed``, prior after prior): ``{"input": (1, 1, 28, 28), label: (n, 1, 28, 28)}``."""
    digit = digit.cpu().view(1, 1, 28, 28)
    rows = {"input": digit}
    g = torch.Generator().manual_seed(seed)
    for label, head in heads.items():
        with torch.no_grad():
            u = head.to_warp(torch.randn(n, head.code_dim, generator=g))
        rows[label] = affine_warp(digit.expand(n, -1, -1, -1), u.reshape(n, 2, 3))
    return rows


__all__ = ["ROUND_TRIP_N", "ROUND_TRIP_POSE_SD", "ROUND_TRIP_TPS_SD", "ROUND_TRIP_SHOWN", "ERROR_COL",
           "RELATIVE_COL", "RoundTrip", "round_trip_poses", "round_trip_table", "warp_round_trip",
           "round_trip", "round_trip_sentence", "round_trip_view", "round_trip_figure", "BLOCKS",
           "BLOCK_COLUMNS", "parameter_counts", "size_sentence", "ILLUSTRATIVE_SD",
           "ILLUSTRATIVE_W5", "ILLUSTRATIVE_MEAN", "PRIOR_DRAWS", "PRIOR_POSES_SHOWN", "RANK_TOL",
           "illustrative_heads", "prior_check", "PriorDraws", "illustrative_priors",
           "prior_checks_view", "prior_sentences", "prior_pose_rows"]
