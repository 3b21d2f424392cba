"""Chapter 06, reconstructions and experiment 9 (denoising): corrupted test digits
reconstructed by each model and scored against the clean ones.

Written to ``results/<profile>/denoising.csv``. Units: ``bce`` per-digit nats, ``mse`` the
summed squared pixel error.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import torch

from .. import evaluate as ev
from ..io import write_csv
from ..models import VAE, count_parameters, log_bernoulli
from ..profiles import Profile
from . import registry, store
from .seed_rule import ONE_SEED, REPRODUCED, UNDECIDED, order_verdict

DENOISING_SETTINGS: tuple[tuple[str, float], ...] = (
    ("clean", 0.0), ("gaussian", 0.2), ("gaussian", 0.4), ("salt-pepper", 0.1),
    ("salt-pepper", 0.25), ("occlusion", 0.25), ("occlusion", 0.4))
"""Experiment 9: ``(noise kind, level)`` of :func:`tvae.evaluate.add_noise`; ``clean`` is the
uncorrupted test set."""


def chapter_models(P: Profile, seed: int | None = None) -> dict[str, VAE]:
    """``{display name: trained model}`` of :func:`tvae.book.registry.denoising_set` at training
    seed ``seed`` (default ``P.seed``): the paper's four kinds at dim z 20."""
    return store.models(P, registry.denoising_set(P, seed))


def seed_models(P: Profile) -> dict[int, dict[str, VAE]]:
    """``{training seed: chapter_models(P, seed)}`` for every seed of ``P.seed_list``."""
    return {s: chapter_models(P, s) for s in P.seed_list}


def denoising_table(P: Profile, models: Mapping[int, Mapping[str, VAE]], *, write: bool = True,
                    out_dir: str | Path | None = None) -> pd.DataFrame:
    """Experiment 9: reconstruct corrupted test digits and score against the clean ones.

    For each setting of :data:`DENOISING_SETTINGS` the profile's test digits
    (:func:`tvae.book.store.test_x`) are corrupted once, with noise seed ``P.seed``; each model
    of ``models`` (``{training seed: {label: model}}``, :func:`seed_models`) reconstructs them
    from its posterior mean (:func:`tvae.evaluate.reconstruction_error` with the clean digits as
    target). The row ``model = 'noisy input'`` scores the corrupted image itself (clipped like a
    decoder output; its ``seed`` is empty). Columns ``noise``, ``level``, ``model``, ``seed``
    (the model's training seed), ``bce`` (nats per digit), ``mse`` (summed squared pixel error),
    ``dim_z`` (0 for the noisy input), ``n_test``, ``profile``, ``noise_seed``. Written to
    ``<out_dir or P.results_dir()>/denoising.csv`` when ``write``."""
    xt = store.test_x(P)
    rows = []
    for kind, level in DENOISING_SETTINGS:
        noisy = xt if kind == "clean" else ev.add_noise(xt, kind, level, seed=P.seed)
        rows.append({"noise": kind, "level": level, "model": "noisy input", "seed": None,
                     "bce": float(-log_bernoulli(xt, noisy).double().mean()),
                     "mse": float((noisy - xt).pow(2).sum(1).double().mean()), "dim_z": 0})
        for seed, by_name in models.items():
            for name, m in by_name.items():
                rows.append({"noise": kind, "level": level, "model": name, "seed": seed,
                             **ev.reconstruction_error(m, noisy, target=xt), "dim_z": m.config.zdim})
    df = pd.DataFrame(rows).assign(n_test=len(xt), profile=P.results_name, noise_seed=P.seed)
    df["seed"] = df.seed.astype("Int64")
    if write:
        write_csv(df, Path(out_dir or P.results_dir()) / "denoising.csv")
    return df


def _setting(den: pd.DataFrame) -> pd.Series:
    """The setting name of each row of a :func:`denoising_table`: ``clean``, ``gaussian 0.2``..."""
    names = [k if k == "clean" else f"{k} {lv:g}" for k, lv in zip(den.noise, den.level, strict=True)]
    return pd.Series(names, index=den.index)


def denoising_seed_stats(den: pd.DataFrame) -> pd.DataFrame:
    """Per setting and model of a :func:`denoising_table` (in its order): ``mean``, ``sd`` (over
    training seeds, ``n - 1``; NaN with one seed) and ``n`` of the BCE against the clean digit,
    indexed by ``(setting, model)``."""
    g = den.assign(setting=_setting(den)).groupby(["setting", "model"], sort=False).bce
    return pd.DataFrame({"mean": g.mean(), "sd": g.std(), "n": g.count()})


def run_seeds(den: pd.DataFrame) -> int:
    """The fewest training seeds of a model of a :func:`denoising_table` (1 for a table written
    before seeds, without the ``seed`` column)."""
    runs = den[den.model != "noisy input"]
    return int(runs.groupby("model").seed.nunique().min()) if "seed" in den and len(runs) else 1


def denoising_orders(den: pd.DataFrame) -> dict[str, dict[str, tuple[str, str]]]:
    """The seed rule (:func:`tvae.book.seed_rule.order_verdict`) on 'this transformer model
    denoises better than the VAE' in each noisy setting of a :func:`denoising_table`:
    ``{model: {setting: (verdict, evidence)}}``, lower BCE being better."""
    st = denoising_seed_stats(den)
    settings = [s for s in dict.fromkeys(st.index.get_level_values(0)) if s != "clean"]
    models = [m for m in dict.fromkeys(st.index.get_level_values(1)) if m not in ("noisy input", "VAE")]

    def stat(setting: str, model: str) -> tuple[float, float, int]:
        mean, sd, n = st.loc[(setting, model), ["mean", "sd", "n"]]
        return float(mean), float(sd), int(n)

    return {m: {s: order_verdict(stat(s, m), stat(s, "VAE"), higher_is_better=False) for s in settings}
            for m in models}


def order_counts(orders: dict[str, tuple[str, str]]) -> str:
    """``'a (b within the seed spread)'``: how many settings of one model's
    :func:`denoising_orders` are reproduced, and how many undecided (said only when some are)."""
    won = sum(v == REPRODUCED for v, _ in orders.values())
    undecided = sum(v == UNDECIDED for v, _ in orders.values())
    return f"{won}" + (f" ({undecided} {UNDECIDED})" if undecided else "")


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
    noisy input first), BCE against the clean digit, mean over the training seeds."""
    st = denoising_seed_stats(den)["mean"].unstack("model")
    kinds = [m for m in dict.fromkeys(den.model) if m != "noisy input"]
    return st.loc[list(dict.fromkeys(_setting(den))), ["noisy input", *kinds]].rename_axis(columns="model")


def denoising_seeds_view(den: pd.DataFrame) -> pd.DataFrame:
    """Every run of a :func:`denoising_table`: (model, training seed) x settings, BCE against the
    clean digit (the numbers behind :func:`denoising_view`'s means; one row per run, so the
    table keeps its width whatever the number of seeds)."""
    runs = den[den.model != "noisy input"].assign(setting=_setting(den))
    table = runs.pivot_table(index=["model", "seed"], columns="setting", values="bce", sort=False)
    return table[list(dict.fromkeys(runs.setting))].rename_axis(columns=None)


def denoising_caption(P: Profile, den: pd.DataFrame) -> str:
    """The caption of :func:`denoising_view` in chapter 06."""
    return (f"BCE against the clean digit, nats per digit, mean over {len(store.test_x(P)):,} test "
            f"digits and {run_seeds(den)} training seed(s) of each model (written to "
            f"`{P.results_dir() / 'denoising.csv'}`; every run in the table after the figure):")


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


def denoising_findings(den: pd.DataFrame) -> str:
    """Markdown on a :func:`denoising_table`, on the seed means (:func:`denoising_view`): the
    best denoiser of each noisy setting, the settings where each transformer model beats the
    VAE by the seed rule (:func:`denoising_orders`), the settings where each model's
    reconstruction is closer to the clean digit than the noisy input is (it denoises), and the
    mean increase of each model's error over its clean-input error."""
    table = denoising_view(den)
    noisy = table.drop(index="clean")
    kinds = [m for m in table.columns if m != "noisy input"]
    settings = list(noisy.index)
    wins = noisy[kinds].idxmin(axis=1)
    orders = denoising_orders(den)
    rule = ("on the sign alone, " + ONE_SEED if run_seeds(den) < 2
            else "by more than 2 standard errors of the difference of the seed means")
    excess = (noisy[kinds] - table.loc["clean", kinds]).mean()
    denoised = {k: [s for s in settings if noisy.loc[s, k] < noisy.loc[s, "noisy input"]]
                for k in kinds}
    msg = ["Best denoiser per setting (seed means): "
           + "; ".join(f"{s}: **{wins[s]}**" for s in settings) + ".",
           "",
           f"Settings (of {len(settings)}) where a transformer model beats the VAE ({rule}): "
           + ", ".join(f"{k} {order_counts(o)}" for k, o in orders.items()) + ".",
           "",
           "Settings where the reconstruction is closer to the clean digit than the noisy input is "
           "(the model denoises): "
           + "; ".join(f"{k} {len(v)} of {len(settings)} ({', '.join(v) or 'none'})"
                       for k, v in denoised.items()) + ".",
           "",
           "Mean increase of the error over the clean-input error (nats; smaller = more robust): "
           + ", ".join(f"{k} {v:.1f}" for k, v in excess.items()) + "."]
    return "\n".join(msg)


__all__ = ["DENOISING_SETTINGS", "chapter_models", "seed_models", "denoising_table", "denoising_seed_stats",
           "run_seeds", "denoising_orders", "order_counts", "DENOISING_EXAMPLES", "models_view",
           "reconstructions", "bce_floor", "clean_table", "clean_caption", "clean_findings",
           "denoising_view", "denoising_seeds_view", "denoising_caption", "denoising_bars",
           "denoising_examples", "denoising_findings"]
