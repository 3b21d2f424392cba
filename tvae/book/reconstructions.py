"""Chapter 06, reconstructions and experiment 9 (denoising): corrupted test digits
reconstructed by each model and scored against the clean ones.

Written to ``results/<profile>/denoising.csv``. Units: ``bce`` per-digit nats, ``mse`` the
summed squared pixel error.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import evaluate as ev
from ..io import write_csv
from ..models import VAE, log_bernoulli
from ..profiles import Profile
from . import registry, store

DENOISING_SETTINGS: tuple[tuple[str, float], ...] = (
    ("clean", 0.0), ("gaussian", 0.2), ("gaussian", 0.4), ("salt-pepper", 0.1),
    ("salt-pepper", 0.25), ("occlusion", 0.25), ("occlusion", 0.4))
"""Experiment 9: ``(noise kind, level)`` of :func:`tvae.evaluate.add_noise`; ``clean`` is the
uncorrupted test set."""


def chapter_models(P: Profile) -> dict[str, VAE]:
    """``{display name: trained model}`` of the chapter: the paper's four kinds at dim z 20."""
    main = [c for c in registry.main_models(P) if c.model in registry.PAPER_KINDS]
    return store.models(P, registry.named(main))


def denoising_table(P: Profile, models: dict[str, VAE], *, write: bool = True,
                    out_dir: str | Path | None = None) -> pd.DataFrame:
    """Experiment 9: reconstruct corrupted test digits and score against the clean ones.

    For each setting of :data:`DENOISING_SETTINGS` the profile's test digits
    (:func:`tvae.book.store.test_x`) are corrupted with ``seed = P.seed``; each model
    (``{label: model}``) reconstructs them from its posterior mean
    (:func:`tvae.evaluate.reconstruction_error` with the clean digits as target). The row
    ``model = 'noisy input'`` scores the corrupted image itself (clipped like a decoder
    output). Columns ``noise``, ``level``, ``model``, ``bce`` (nats per digit), ``mse`` (summed
    squared pixel error), ``dim_z`` (0 for the noisy input), ``n_test``, ``profile``, ``seed``.
    Written to ``<out_dir or P.results_dir()>/denoising.csv`` when ``write``."""
    xt = store.test_x(P)
    rows = []
    for kind, level in DENOISING_SETTINGS:
        noisy = xt if kind == "clean" else ev.add_noise(xt, kind, level, seed=P.seed)
        rows.append({"noise": kind, "level": level, "model": "noisy input",
                     "bce": float(-log_bernoulli(xt, noisy).double().mean()),
                     "mse": float((noisy - xt).pow(2).sum(1).double().mean()), "dim_z": 0})
        for name, m in models.items():
            rows.append({"noise": kind, "level": level, "model": name,
                         **ev.reconstruction_error(m, noisy, target=xt), "dim_z": m.config.zdim})
    df = pd.DataFrame(rows).assign(n_test=len(xt), profile=P.results_name, seed=P.seed)
    if write:
        write_csv(df, Path(out_dir or P.results_dir()) / "denoising.csv")
    return df


__all__ = ["DENOISING_SETTINGS", "chapter_models", "denoising_table"]
