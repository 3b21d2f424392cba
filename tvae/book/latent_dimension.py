"""Chapter 05, experiment 1: test reconstruction error against the latent size, and the
sentences the chapter prints about it.

Written to ``results/<profile>/recon_vs_dim.csv``. Units: errors and ELBOs are per-digit nats
(the Bernoulli cross-entropy summed over the 784 pixels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import evaluate as ev
from ..io import write_csv
from ..models import VAE
from ..priors import kl_std_normal
from ..profiles import Profile
from . import registry, store
from .registry import LABELS
from .text import count, signed

RECON_COLUMNS = ["model", "dim_z", "dim_u", "test_bce", "test_elbo", "seed"]
"""The leading columns of ``recon_vs_dim.csv``."""

ACTIVE_NATS = 0.01
"""A latent dimension is *active* when its mean KL(q || prior) over the test digits exceeds this
(nats); the others carry (almost) no information about the digit."""


@torch.no_grad()
def kl_per_dim(model: VAE, x: torch.Tensor, batch_size: int = 2000) -> np.ndarray:
    """Mean over ``x`` ``(N, 784)`` of KL(q(z_j|x) || N(0, 1)) for each dimension j of z:
    ``(dim z,)`` nats (:func:`tvae.priors.kl_std_normal` of each dimension alone)."""
    model.eval()
    total = None
    for i in range(0, len(x), batch_size):
        post = model.encode(x[i:i + batch_size])
        kl = kl_std_normal(post.mu_z.unsqueeze(-1), post.logsigma_z.unsqueeze(-1))  # (B, dim z)
        kl = kl.double().sum(0)
        total = kl if total is None else total + kl
    return (total / len(x)).cpu().numpy()


def active_dims(model: VAE, x: torch.Tensor) -> int:
    """How many dimensions of z are active on ``x`` (see :data:`ACTIVE_NATS`)."""
    return int((kl_per_dim(model, x) > ACTIVE_NATS).sum())


def recon_vs_dim(P: Profile, *, write: bool = True, out_dir: str | Path | None = None) -> pd.DataFrame:
    """Experiment 1: test reconstruction error against the latent size.

    For VAE, Affine-TVAE, TPS-TVAE and Affine-DTVAE at each dim z of ``P.zdims``, on the
    profile's test digits (:func:`tvae.book.store.test_x`): ``test_bce`` = mean BCE term of the
    ELBO (one posterior draw, nats per digit), ``test_elbo``; extra columns ``test_kl_z``,
    ``test_kl_u``, ``test_bce_mean`` (BCE of the posterior-mean reconstruction),
    ``latent_total`` (dim z + dim u), ``n_test``, ``train_size``, ``epochs``, ``label``,
    ``active_z`` (dimensions of z whose mean KL exceeds :data:`ACTIVE_NATS`).
    Written to ``<out_dir or P.results_dir()>/recon_vs_dim.csv`` when ``write``.
    """
    x = store.test_x(P)
    rows = []
    for cfg in registry.exp1_models(P):
        model = store.model(P, cfg)
        t = ev.elbo_terms(model, x, seed=cfg.seed)
        r = ev.reconstruction_error(model, x)
        rows.append({"model": cfg.model, "dim_z": cfg.zdim, "dim_u": cfg.udim, "test_bce": t["bce"],
                     "test_elbo": t["elbo"], "seed": cfg.seed, "test_kl_z": t["kl_z"],
                     "test_kl_u": t["kl_u"], "test_bce_mean": r["bce"],
                     "latent_total": cfg.zdim + cfg.udim, "n_test": len(x),
                     "train_size": len(store.data_for(P, cfg).x_train), "epochs": cfg.epochs,
                     "label": LABELS[cfg.model], "active_z": active_dims(model, x)})
    df = pd.DataFrame(rows)
    if write:
        write_csv(df, Path(out_dir or P.results_dir()) / "recon_vs_dim.csv")
    return df


def vae_bce_at_total(df: pd.DataFrame, column: str = "test_bce") -> pd.Series:
    """For each row of a :func:`recon_vs_dim` table, the VAE's ``column`` at the same total
    latent size (dim z + dim u), linearly interpolated in log(total size) between the VAE's
    measured dims; NaN outside their range."""
    v = df[df.model == "vae"].sort_values("latent_total")
    lx = np.log(v.latent_total.to_numpy(float))
    out = np.interp(np.log(df.latent_total.to_numpy(float)), lx, v[column].to_numpy(float),
                    left=np.nan, right=np.nan)
    return pd.Series(out, index=df.index, name=f"vae_{column}_same_total")


def _optimum_sentence(v: pd.DataFrame) -> str:
    """The VAE's best latent size (``v``: the VAE's rows, sorted by dim z)."""
    best = v.loc[v.test_bce.idxmin()]
    dims = ", ".join(str(d) for d in v.dim_z)
    shape = ("the error rises again beyond it" if best.dim_z < v.dim_z.max() else
             "the error still falls at the largest dim we trained, so no interior optimum is visible")
    return (f"**VAE optimum.** Among dim z = {dims}, the VAE's test BCE is lowest at dim z = "
            f"{best.dim_z} ({best.test_bce:.1f} nats); {shape}. The paper places the optimum "
            f"near 25 latent variables.")


def recon_findings(df: pd.DataFrame) -> list[str]:
    """Markdown sentences on experiment 1, every number taken from ``df`` (a
    :func:`recon_vs_dim` table): the VAE's best latent size, and how the transformer models
    compare with the VAE at the same dim z and at the same total latent size."""
    out = []
    v = df[df.model == "vae"].sort_values("dim_z")
    if len(v):
        out.append(_optimum_sentence(v))
    others = df[df.model != "vae"]
    if not (len(v) and len(others)):
        return out
    merged = others.merge(v[["dim_z", "test_bce"]], on="dim_z", suffixes=("", "_vae"))
    same_total = vae_bce_at_total(df).loc[others.index]
    parts, parts_total = [], []
    for m, g in merged.groupby("model", sort=False):
        d = g.test_bce - g.test_bce_vae
        parts.append(f"{LABELS[m]} {signed(d.mean())} nats ({(d < 0).sum()} of {len(d)} dims better)")
        t = (others.loc[others.model == m, "test_bce"] - same_total[others.model == m]).dropna()
        if len(t):
            parts_total.append(f"{LABELS[m]} {signed(t.mean())} nats ({count(len(t), 'point')})")
    out.append("**Against the VAE at the same dim z** (mean difference in test BCE, negative = "
               "better than the VAE): " + "; ".join(parts) + ".")
    if parts_total:
        out.append("**Against the VAE at the same total latent size** dim z + dim u (the VAE's "
                   "curve interpolated): " + "; ".join(parts_total) + ".")
    else:
        out.append("No transformer model falls inside the VAE's range of total latent sizes, "
                   "so no same-size comparison is possible in this profile.")
    rank = df.groupby("model").test_bce.mean().sort_values()
    out.append("**Ranking by mean test BCE over the dims:** " + " < ".join(
        f"{LABELS[m]} ({b:.1f})" for m, b in rank.items()) + ". The paper: transformer models "
               "reconstruct better than the VAE, mostly TPS-TVAE and Affine-DTVAE.")
    return out


__all__ = ["RECON_COLUMNS", "ACTIVE_NATS", "kl_per_dim", "active_dims", "recon_vs_dim",
           "vae_bce_at_total", "recon_findings"]
