"""Chapter 09, experiment 5 (pose priors): upright against posed samples, the quality of posed
samples (:mod:`tvae.quality`), what each learned prior ``N(b, W W^T)`` allows, the test ELBOs
against the VAE's, the paper's four findings checked, and the sentences the chapter prints.

Conventions, stated once:

- The models are :func:`tvae.book.registry.pose_prior_sets` (Affine-TVAE and TPS-TVAE at dim z
  20, one per prior, trained at the profile's seed only: one training seed, so no finding of
  this chapter is decisive), and the VAE at dim z 20 of :func:`tvae.book.registry.main_models`,
  whose ELBO the Gaussian priors' ELBOs can be compared with (they pay the KL of the pose).
- Samples are drawn from a CPU generator seeded with ``P.seed`` per model, so the upright row
  and the posed row of a model hold the same codes ``z``.
- An affine pose ``A`` maps output positions to the positions read in the upright image
  (:func:`tvae.evaluate.affine_pose_summary` decomposes it).

Written to ``results/<profile>/``: ``sample_quality_pose_priors.csv`` (:data:`tvae.quality.COLUMNS`),
``pose_priors.csv`` (one row per prior and the VAE; :data:`PRIOR_COLUMNS`),
``pose_prior_parameters.csv`` (the diagonal priors' mean and SD per parameter) and
``pose_prior_findings.csv`` (the paper's findings, this run's verdict, the numbers behind it).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from .. import evaluate as ev
from .. import figures as tf
from .. import quality as tq
from ..io import write_csv
from ..models import VAE
from ..profiles import Profile
from . import generation, registry, store
from .text import bullets

FIGURE_N = 16
"""Codes per model in the upright-against-posed figures."""

DESCRIBE_N = 500
"""Samples per model for the ink kept by posed samples."""

POSE_N = 2000
"""Poses sampled per affine prior for the rotation, shear and area spreads."""

DIAGONAL = ("identity-diag", "mean-diag", "reparam5-diag")
"""The diagonal affine priors, in the chapter's order."""

SIX = ["a11", "a12", "tx", "a21", "a22", "ty"]
"""Parameters of the six-entry affine priors: the 2x3 matrix row by row."""

FIVE = ["psi (deg)", "log Sx", "log Sy", "Tx", "Ty"]
"""Parameters of ``reparam5-diag``: rotation (shown in degrees), two log-scales, two
translations."""

POSE_COLUMNS = {"rotation std (deg)": "rotation_sd_deg", "shear std": "shear_sd",
                "anisotropy std": "anisotropy_sd", "log area std": "log_area_sd",
                "reflections (%)": "reflections_pct", "mean |t|": "translation_mean"}
"""CSV names of :func:`tvae.evaluate.affine_pose_summary`'s numbers."""

PRIOR_COLUMNS = ["model", "prior", "dim_z", "dim_u", "seed", "n_test", "test_elbo", "test_bce",
                 "kl_z", "kl_u", "elbo_minus_vae", "trace", "top_eigenvalue", "ink_kept_pct",
                 *POSE_COLUMNS.values()]
"""Columns of ``pose_priors.csv``: the test ELBO and its terms (nats per digit, one posterior
draw), ``elbo_minus_vae`` (> 0: a higher ELBO than the VAE's at the same dim z), the trace and
top eigenvalue of ``W W^T``, the ink of posed samples as a percentage of the upright ones', and
for the affine priors the spreads of :data:`POSE_COLUMNS`. The VAE's row has ``prior`` =
``none``."""

YES, NO = "yes in this run", "not in this run"
"""This run's verdict on a finding of the paper (one training seed: never decisive)."""


# ------------------------------------------------------------------------ models ----
def chapter_models(P: Profile) -> tuple[dict[str, VAE], dict[str, VAE]]:
    """``({prior label: Affine-TVAE}, {prior label: TPS-TVAE})``, trained."""
    aff, tps = registry.pose_prior_sets(P)
    return store.models(P, aff), store.models(P, tps)


def reference_vae(P: Profile) -> VAE:
    """The VAE at dim z 20 (:func:`tvae.book.registry.main_models`), the ELBO's reference."""
    return store.model(P, registry.named(registry.main_models(P))["VAE"])


def count_sentence(P: Profile) -> str:
    aff, tps = registry.pose_prior_sets(P)
    return (f"Affine-TVAE and TPS-TVAE, dim z = {registry.MAIN_DIM}: {len(aff)} affine and "
            f"{len(tps)} TPS models, trained at seed {P.seed} (one training seed).")


def upright_and_posed(model: VAE, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` upright images ``y'`` and the same codes warped by poses sampled from the prior."""
    up = model.sample(n, torch.Generator().manual_seed(seed), upright=True)
    posed = model.sample(n, torch.Generator().manual_seed(seed), pose="prior")
    return up, posed


# ----------------------------------------------------------------------- figures ----
def pairs_figure(P: Profile, models: dict[str, VAE], title: str):
    """Two rows per model: upright ``y'`` and ``x'`` posed by the prior, :data:`FIGURE_N` codes."""
    rows = {}
    for label, m in models.items():
        rows[f"{label}: upright"], rows[f"{label}: posed"] = upright_and_posed(m, FIGURE_N, P.seed)
    return tf.image_rows(rows, title=title)


def diagonal_figure(P: Profile):
    aff, _ = chapter_models(P)
    return pairs_figure(P, {k: aff[k] for k in DIAGONAL},
                        "Affine-TVAE, diagonal priors: upright y' and x' with a sampled pose")


def affine_rank_figure(P: Profile):
    aff, _ = chapter_models(P)
    return pairs_figure(P, {k: m for k, m in aff.items() if k not in DIAGONAL},
                        "Affine-TVAE, covariance of rank 2, 4 and 6: upright and posed")


def tps_rank_figure(P: Profile):
    _, tps = chapter_models(P)
    return pairs_figure(P, tps, "TPS-TVAE, covariance of rank 3, 9 and 18: upright and posed")


def _eigenvalues(model: VAE) -> torch.Tensor:
    return torch.linalg.eigvalsh(model.pose.covariance().detach().double().cpu())


def spectra_figures(P: Profile):
    """The sorted eigenvalues of ``W W^T`` of the affine priors (``reparam5-diag`` left out: other
    units) and of the TPS priors: two figures."""
    aff, tps = chapter_models(P)
    spec = lambda group: {k: _eigenvalues(m).clamp_min(1e-12).numpy() for k, m in group.items()  # noqa: E731
                          if k != "reparam5-diag"}
    return (tf.spectra(spec(aff), title=r"Affine priors: eigenvalues of $WW^\top$"),
            tf.spectra(spec(tps), title=r"TPS priors: eigenvalues of $WW^\top$"))


# ------------------------------------------------------------- posed sample quality ----
def sample_seeds(P: Profile) -> tuple[int, ...]:
    """Sampling seeds of the posed-sample quality rows: ``P.seed`` in the smoke profile, three
    from ``P.seed`` otherwise (the models have one training seed: this is the only spread)."""
    return tuple(P.seed + i for i in range(1 if P.name == "smoke" else 3))


def posed_quality(P: Profile, ref: tq.Reference | None = None, *, write: bool = True,
                  out_dir: str | Path | None = None) -> pd.DataFrame:
    """:func:`tvae.quality.quality_table` of every prior's model at the mean pose and posed from
    its prior, at each sampling seed of :func:`sample_seeds`; ``ref`` defaults to
    :func:`tvae.quality.profile_reference`. Written to ``sample_quality_pose_priors.csv`` when
    ``write``."""
    ref = tq.profile_reference(P) if ref is None else ref
    aff, tps = chapter_models(P)
    entries = [tq.Entry(f"{family} {label}", m, pose, s)
               for family, group in (("Affine-TVAE", aff), ("TPS-TVAE", tps))
               for label, m in group.items() for pose in ("mean", "prior") for s in sample_seeds(P)]
    df = tq.quality_table(entries, ref)
    if write:
        write_csv(df, Path(out_dir or P.results_dir()) / "sample_quality_pose_priors.csv")
    return df


def quality_display(df: pd.DataFrame) -> pd.DataFrame:
    """The posed-sample quality table as the chapter shows it: the reference rows, then one row
    per model and sampling mode, each metric the mean over the sampling seeds
    (:func:`tvae.book.generation.quality_display`; one training seed, so no SD)."""
    return generation.quality_display(df)


# ------------------------------------------------------------------- the priors ----
def _elbo_row(P: Profile, m: VAE, xt: torch.Tensor) -> dict:
    t = ev.elbo_terms(m, xt, seed=P.seed)
    return {"model": m.config.model, "dim_z": m.config.zdim, "dim_u": m.config.udim,
            "seed": m.config.seed, "n_test": len(xt), "test_elbo": t["elbo"], "test_bce": t["bce"],
            "kl_z": t["kl_z"], "kl_u": t["kl_u"]}


def prior_table(P: Profile, *, write: bool = True, out_dir: str | Path | None = None) -> pd.DataFrame:
    """One row per prior (:data:`PRIOR_COLUMNS`) and a last row for the VAE at dim z 20: the test
    ELBO and its terms on the profile's test digits, the ELBO minus the VAE's, the spread the
    prior allows (trace and top eigenvalue of ``W W^T``), the ink kept by :data:`DESCRIBE_N` posed
    samples, and for the affine priors the spreads of :data:`POSE_N` sampled poses. Written to
    ``pose_priors.csv`` when ``write``."""
    xt = store.test_x(P)
    aff, tps = chapter_models(P)
    vae = _elbo_row(P, reference_vae(P), xt)
    rows = []
    for group in (aff, tps):
        for label, m in group.items():
            cov = m.pose.covariance().detach().double().cpu()
            up, posed = upright_and_posed(m, DESCRIBE_N, P.seed)
            row = {**_elbo_row(P, m, xt), "prior": label, "trace": float(cov.trace()),
                   "top_eigenvalue": float(_eigenvalues(m)[-1]),
                   "ink_kept_pct": float(posed.sum() / up.sum() * 100)}
            row["elbo_minus_vae"] = row["test_elbo"] - vae["test_elbo"]
            if m.config.model == "affine-tvae":
                u = m.sample_pose(POSE_N, torch.Generator().manual_seed(P.seed), "prior").detach()
                row.update({POSE_COLUMNS[k]: v for k, v in ev.affine_pose_summary(u).items()})
            rows.append(row)
    rows.append({**vae, "prior": "none", "elbo_minus_vae": 0.0})
    df = pd.DataFrame(rows, columns=PRIOR_COLUMNS)
    if write:
        write_csv(df, Path(out_dir or P.results_dir()) / "pose_priors.csv")
    return df


ELBO_SHOWN = {"dim_u": "dim u", "test_elbo": "ELBO", "test_bce": "BCE", "kl_z": "KL(z)",
              "kl_u": "KL(u')", "elbo_minus_vae": "ELBO − VAE"}
"""The first table of :func:`prior_display`: the test ELBO and its terms (nats per digit)."""

SPREAD_SHOWN = {"trace": "trace", "top_eigenvalue": "top eig.", "ink_kept_pct": "ink kept %",
                "rotation_sd_deg": "rotation SD °", "shear_sd": "shear SD",
                "anisotropy_sd": "anisotropy SD", "log_area_sd": "log-area SD",
                "reflections_pct": "reflections %", "translation_mean": "mean |t|"}
"""The second table of :func:`prior_display`: what each prior lets the pose do (short headers,
so the table fits the page's content column; the CSV keeps the full column names)."""


def prior_display(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The prior table as the chapter shows it, in two tables that each fit the page (model and
    prior as the index, 3 decimals): the ELBO and its terms (:data:`ELBO_SHOWN`), and the spread
    the prior allows with the ink it keeps (:data:`SPREAD_SHOWN`; the VAE's row has none)."""
    out = df.assign(model=df.model.map(registry.LABELS)).set_index(["model", "prior"]).round(3)
    spread = out[out.index.get_level_values("prior") != "none"]
    return (out[list(ELBO_SHOWN)].rename(columns=ELBO_SHOWN),
            spread[[c for c in SPREAD_SHOWN if c in out]].rename(columns=SPREAD_SHOWN))


def parameter_table(P: Profile, *, write: bool = True, out_dir: str | Path | None = None
                    ) -> pd.DataFrame:
    """The diagonal priors in detail: per prior of :data:`DIAGONAL` and parameter (:data:`SIX`,
    or :data:`FIVE` for ``reparam5-diag``, its rotation in degrees), the prior mean ``b`` and SD
    (square root of the diagonal of ``W W^T``). Columns ``prior``, ``parameter``, ``mean_b``,
    ``sd``. Written to ``pose_prior_parameters.csv`` when ``write``."""
    aff, _ = chapter_models(P)
    rows = []
    for label in DIAGONAL:
        head = aff[label].pose
        b = head.b.detach().double().cpu().clone()
        sd = head.covariance().diag().sqrt().detach().double().cpu()
        if label == "reparam5-diag":
            b[0], sd[0] = torch.rad2deg(b[0]), torch.rad2deg(sd[0])
        names = FIVE if label == "reparam5-diag" else SIX
        rows += [{"prior": label, "parameter": n, "mean_b": bi, "sd": si}
                 for n, bi, si in zip(names, b.tolist(), sd.tolist(), strict=True)]
    df = pd.DataFrame(rows)
    if write:
        write_csv(df, Path(out_dir or P.results_dir()) / "pose_prior_parameters.csv")
    return df


def parameter_display(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two tables: the six-entry priors side by side, and ``reparam5-diag``."""
    wide = df.pivot(index="parameter", columns="prior", values=["mean_b", "sd"]).round(3)
    six = wide.loc[SIX, [(v, k) for k in DIAGONAL[:2] for v in ("mean_b", "sd")]]
    return six, wide.loc[FIVE, [("mean_b", "reparam5-diag"), ("sd", "reparam5-diag")]]


# ------------------------------------------------------------------- findings ----
def _verdict(ok: bool) -> str:
    return YES if ok else NO


def findings(priors: pd.DataFrame, params: pd.DataFrame) -> pd.DataFrame:
    """The paper's findings on the pose priors against this run (one training seed; each verdict
    is :data:`YES` or :data:`NO`, never decisive): columns ``finding``, ``verdict``, ``evidence``.

    1. Identity-centred prior: a larger variance (trace of ``W W^T``) than the estimated mean's.
    2. Estimated mean, diagonal: the largest SD of the four linear entries is a12 (horizontal
       shear).
    3. The five-parameter prior: a larger spread of the sampled rotation angle than mean-diag's.
    4. The full rank is the most extreme: the largest trace among the ranks (reported, affine
       and TPS).
    5. A smaller rank as a compromise: some smaller rank keeps more ink than the full rank
       (affine and TPS)."""
    aff = priors[priors.model == "affine-tvae"].set_index("prior")
    tps = priors[priors.model == "tps-tvae"].set_index("prior")
    ranks = aff.drop(list(DIAGONAL))
    six = params[params.prior == "mean-diag"].set_index("parameter").sd
    tr, rot = aff.trace, aff.rotation_sd_deg
    top = six[["a11", "a12", "a21", "a22"]].idxmax()   # the linear part; tx, ty in other units

    def rank_list(g: pd.DataFrame) -> str:
        return ", ".join(f"{k} {r.trace:.3f} / {r.ink_kept_pct:.0f}%" for k, r in g.iterrows())

    smaller = {name: bool(g.ink_kept_pct.iloc[:-1].max() > g.ink_kept_pct.iloc[-1])
               for name, g in (("affine", ranks), ("TPS", tps))}
    rows = [
        ("Identity-centred vs estimated mean: the identity-centred prior has the larger variance",
         _verdict(tr["identity-diag"] > tr["mean-diag"]),
         f"trace of W W^T: identity-diag {tr['identity-diag']:.3f}, mean-diag {tr['mean-diag']:.3f}"),
        ("Mean-diag gives mostly horizontal shear (a12 the largest SD of the linear entries)",
         _verdict(top == "a12"),
         f"largest SD {top} ({six[top]:.3f}); a12 {six['a12']:.3f}, a21 {six['a21']:.3f}"),
        ("The five-parameter prior adds rotation (a larger spread of the angle than mean-diag)",
         _verdict(rot["reparam5-diag"] > rot["mean-diag"]),
         f"SD of the rotation angle of sampled poses: mean-diag {rot['mean-diag']:.1f} deg, "
         f"reparam5-diag {rot['reparam5-diag']:.1f} deg"),
        ("The full rank is the most extreme (the largest trace of W W^T)",
         _verdict(tr[ranks.index].idxmax() == ranks.index[-1] and tps.trace.idxmax() == tps.index[-1]),
         f"trace / ink kept: affine {rank_list(ranks)}; TPS {rank_list(tps)}; largest at "
         f"{tr[ranks.index].idxmax()} (affine) and {tps.trace.idxmax()} (TPS)"),
        ("A smaller rank is a compromise: it keeps more ink than the full rank (the closest "
         "measurement of a by-eye judgement)",
         _verdict(all(smaller.values())),
         "; ".join(f"{name}: {_verdict(ok)}" for name, ok in smaller.items())),
    ]
    return pd.DataFrame(rows, columns=["finding", "verdict", "evidence"])


def findings_table(P: Profile, priors: pd.DataFrame, params: pd.DataFrame, *, write: bool = True,
                   out_dir: str | Path | None = None) -> pd.DataFrame:
    """:func:`findings`, written to ``pose_prior_findings.csv`` when ``write``."""
    df = findings(priors, params)
    if write:
        write_csv(df, Path(out_dir or P.results_dir()) / "pose_prior_findings.csv")
    return df


def findings_sentences(df: pd.DataFrame) -> str:
    """The findings as Markdown bullets: the finding, the numbers, this run's verdict."""
    return (bullets(f"**{r.finding}.** {r.evidence[0].upper() + r.evidence[1:]}: **{r.verdict}**."
                    for r in df.itertuples())
            + "\n\nOne training seed per prior: these verdicts describe this run, none is decisive.")


def elbo_sentence(priors: pd.DataFrame) -> str:
    """The test ELBOs of the Gaussian priors against the VAE's at the same dim z."""
    vae = priors[priors.model == "vae"].iloc[0]
    g = priors[priors.model != "vae"]
    lo, hi = g.loc[g.elbo_minus_vae.idxmin()], g.loc[g.elbo_minus_vae.idxmax()]
    above = int((g.elbo_minus_vae > 0).sum())
    return (f"Test ELBO of the VAE at dim z {int(vae.dim_z)}: {vae.test_elbo:.2f} nats. The pose "
            f"priors' ELBOs minus the VAE's range from {lo.elbo_minus_vae:+.2f} nats "
            f"({registry.LABELS[lo.model]} {lo.prior}) to {hi.elbo_minus_vae:+.2f} nats "
            f"({registry.LABELS[hi.model]} {hi.prior}); {above} of {len(g)} models have a higher "
            "ELBO than the VAE (one posterior draw per digit, one training seed).")


__all__ = ["FIGURE_N", "DESCRIBE_N", "POSE_N", "DIAGONAL", "SIX", "FIVE", "POSE_COLUMNS",
           "PRIOR_COLUMNS", "YES", "NO", "chapter_models", "reference_vae", "count_sentence",
           "upright_and_posed", "pairs_figure", "diagonal_figure", "affine_rank_figure",
           "tps_rank_figure", "spectra_figures", "sample_seeds", "posed_quality", "quality_display",
           "prior_table",
           "prior_display", "parameter_table", "parameter_display", "findings", "findings_table",
           "findings_sentences", "elbo_sentence"]
