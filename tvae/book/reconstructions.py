"""Chapter 06, reconstructions and experiment 9 (denoising): corrupted test digits
reconstructed by each model and scored against the clean ones.

Written to ``results/<profile>/denoising.csv``. Units: ``bce`` per-digit nats, ``mse`` the
summed squared pixel error.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from .. import evaluate as ev
from ..io import write_csv
from ..models import VAE, count_parameters, log_bernoulli
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


DENOISING_EXAMPLES: tuple[tuple[str, float], ...] = (("gaussian", 0.4), ("salt-pepper", 0.25),
                                                     ("occlusion", 0.4))
"""The settings of :data:`DENOISING_SETTINGS` chapter 06 shows as pictures: the stronger level
of each kind of noise."""


def models_view(models: dict[str, VAE]) -> pd.DataFrame:
    """One row per model of ``{display name: model}``: dim z, dim u, parameter count, config."""
    return pd.DataFrame([{"model": name, "dim z": m.config.zdim, "dim u": m.config.udim,
                          "parameters": count_parameters(m), "config": m.config.label()}
                         for name, m in models.items()])


def reconstructions(models: dict[str, VAE], x: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    """``{name: tvae.evaluate.reconstruct(model, x)}``: each model's deterministic
    reconstruction of ``x`` (posterior mean of z, the encoder's pose) and its stages."""
    return {name: ev.reconstruct(m, x) for name, m in models.items()}


def bce_floor(x: torch.Tensor) -> float:
    """The lowest BCE any reconstruction of the grey digits ``x`` can reach, nats per digit: the
    entropy of the grey levels, sum_i H(x_i), reached by ``x' = x``."""
    return float(-log_bernoulli(x, x).mean())


def clean_table(P: Profile, models: dict[str, VAE]) -> pd.DataFrame:
    """Each model's test reconstruction error on the profile's clean test digits
    (:func:`tvae.evaluate.reconstruction_error`): ``model``, ``dim z``, ``dim u``, ``dim z + dim
    u``, ``test BCE (nats)``, ``test squared error``."""
    xt = store.test_x(P)
    clean = pd.DataFrame([{"model": name, "dim z": m.config.zdim, "dim u": m.config.udim,
                           "dim z + dim u": m.config.zdim + m.config.udim,
                           **ev.reconstruction_error(m, xt)} for name, m in models.items()])
    return clean.rename(columns={"bce": "test BCE (nats)", "mse": "test squared error"})


def clean_caption(P: Profile) -> str:
    """How many test digits :func:`clean_table` averages over, and the BCE floor
    (:func:`bce_floor`) on them."""
    xt = store.test_x(P)
    return (f"{len(xt):,} test digits; BCE floor (entropy of the grey levels): "
            f"**{bce_floor(xt):.1f} nats**.")


def clean_findings(clean: pd.DataFrame) -> str:
    """Markdown: the model with the lowest error of a :func:`clean_table`, and each other
    model's error against the VAE's."""
    bce = clean.set_index("model")["test BCE (nats)"]
    vae = float(bce["VAE"])
    lines = [f"- {name}: {b:.1f} nats ({b - vae:+.1f} relative to the VAE's {vae:.1f})"
             for name, b in bce.items() if name != "VAE"]
    return f"Lowest test reconstruction error in this run: **{bce.idxmin()}**.\n\n" + "\n".join(lines)


def denoising_view(den: pd.DataFrame) -> pd.DataFrame:
    """A :func:`denoising_table` as settings (``clean``, ``gaussian 0.2``, ...) x models (the
    noisy input first), BCE against the clean digit."""
    den = den.assign(setting=[k if k == "clean" else f"{k} {lv:g}"
                              for k, lv in zip(den.noise, den.level, strict=True)])
    table = den.pivot(index="setting", columns="model", values="bce")
    kinds = [m for m in dict.fromkeys(den.model) if m != "noisy input"]
    return table.loc[list(dict.fromkeys(den.setting)), ["noisy input", *kinds]]


def denoising_caption(P: Profile) -> str:
    """The caption of :func:`denoising_view` in chapter 06."""
    return (f"BCE against the clean digit, nats per digit, mean over {len(store.test_x(P)):,} test "
            f"digits (written to `{P.results_dir() / 'denoising.csv'}`):")


def denoising_bars(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """``{noisy setting: {model: BCE}}`` of a :func:`denoising_view` (the bars of chapter 06's
    figure: no clean row, no noisy-input column)."""
    noisy = table.drop(index="clean").drop(columns="noisy input")
    return {s: noisy.loc[s].to_dict() for s in noisy.index}


def denoising_examples(P: Profile, models: dict[str, VAE], n: int = 12
                       ) -> dict[str, dict[str, torch.Tensor]]:
    """``{figure title: {row name: images}}`` for each setting of :data:`DENOISING_EXAMPLES`:
    the first ``n`` clean test digits, the same digits corrupted as in :func:`denoising_table`
    (same seed), and each model's reconstruction of them."""
    xt = store.test_x(P)
    out = {}
    for kind, level in DENOISING_EXAMPLES:
        noisy = ev.add_noise(xt, kind, level, seed=P.seed)[:n]
        rows = {"clean": xt[:n], f"{kind} {level:g}": noisy}
        rows.update({name: r["x_rec"] for name, r in reconstructions(models, noisy).items()})
        out[f"Denoising: {kind} noise, level {level:g}"] = rows
    return out


def denoising_findings(table: pd.DataFrame) -> str:
    """Markdown on a :func:`denoising_view`: the best denoiser of each noisy setting, the
    settings where each transformer model beats the VAE, the settings where each model's
    reconstruction is closer to the clean digit than the noisy input is (it denoises), and the
    mean increase of each model's error over its clean-input error."""
    noisy = table.drop(index="clean")
    kinds = [m for m in table.columns if m != "noisy input"]
    settings = list(noisy.index)
    wins = noisy[kinds].idxmin(axis=1)
    beat_vae = {k: int((noisy[k] < noisy["VAE"]).sum()) for k in kinds if k != "VAE"}
    excess = (noisy[kinds] - table.loc["clean", kinds]).mean()
    denoised = {k: [s for s in settings if noisy.loc[s, k] < noisy.loc[s, "noisy input"]]
                for k in kinds}
    msg = ["Best denoiser per setting: " + "; ".join(f"{s}: **{wins[s]}**" for s in settings) + ".",
           "",
           f"Settings (of {len(settings)}) where a transformer model beats the VAE: "
           + ", ".join(f"{k} {v}" for k, v in beat_vae.items()) + ".",
           "",
           "Settings where the reconstruction is closer to the clean digit than the noisy input is "
           "(the model denoises): "
           + "; ".join(f"{k} {len(v)} of {len(settings)} ({', '.join(v) or 'none'})"
                       for k, v in denoised.items()) + ".",
           "",
           "Mean increase of the error over the clean-input error (nats; smaller = more robust): "
           + ", ".join(f"{k} {v:.1f}" for k, v in excess.items()) + "."]
    return "\n".join(msg)


__all__ = ["DENOISING_SETTINGS", "chapter_models", "denoising_table", "DENOISING_EXAMPLES", "models_view",
           "reconstructions", "bce_floor", "clean_table", "clean_caption", "clean_findings", "denoising_view",
           "denoising_caption", "denoising_bars", "denoising_examples", "denoising_findings"]
