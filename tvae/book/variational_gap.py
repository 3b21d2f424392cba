"""Chapter 10, experiment 6: the importance-sampled log-likelihood against the ELBO on the same
draws, and their gap against KL(q(z|x) || p(z)); the sentences the chapter prints.

The estimate is the importance-weighted bound of Burda, Grosse & Salakhutdinov, *Importance
Weighted Autoencoders* (ICLR 2016): with ``k`` draws from q, ``log (1/k) sum_i w_i``, a lower
bound of ``log p(x)`` that rises with ``k`` (their theorem 1); ``k = 1`` is the ELBO.
Written to ``results/<profile>/likelihood.csv``. Units: per-digit nats.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from scipy.special import logsumexp

from ..config import Config
from ..io import write_csv
from ..priors import kl_std_normal
from ..profiles import Profile, resolve
from . import registry, store

if TYPE_CHECKING:  # pandas imports its Styler (and jinja2) only when a table is styled
    from pandas.io.formats.style import Styler

LIKELIHOOD_COLUMNS = ["model", "prior", "dim_z", "dim_u", "k", "n", "log_likelihood", "elbo", "gap",
                      "se_gap", "kl_z", "kl_u", "kl", "gap_over_kl", "corr_gap_kl", "label", "seed"]
"""The columns of ``likelihood.csv``."""


def log_weights(P: Profile, cfg: Config, *, batch_size: int = 250) -> dict[str, np.ndarray]:
    """Importance log-weights of ``cfg``'s model on the first ``P.ll_n`` test digits, with
    ``P.ll_k`` draws from q each (seeded with ``P.seed``; kept in memory,
    :func:`tvae.book.store.remember`).

    Returns ``lw`` ``(n, k)`` (nats: log p(x, z, u') - log q(z, u'|x)), ``kl_z`` and ``kl_u``
    ``(n,)`` (analytic KL of q(z|x), q(u'|x) from their standard normal priors; 0 for a flat
    pose), ``labels`` ``(n,)``."""
    return store.remember(("log_weights", P, cfg.key()), lambda: _log_weights(P, cfg, batch_size))


@torch.no_grad()
def _log_weights(P: Profile, cfg: Config, batch_size: int) -> dict[str, np.ndarray]:
    model = store.model(P, cfg)
    model.eval()
    x = store.test_x(P)[: P.ll_n]
    gen = torch.Generator(device=x.device).manual_seed(P.seed)
    lw, kl_z, kl_u = [], [], []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        lw.append(model.log_weights(xb, P.ll_k, gen).double().cpu())
        post = model.encode(xb)
        kl_z.append(kl_std_normal(post.mu_z, post.logsigma_z).double().cpu())
        kl_u.append(kl_std_normal(post.mu_u, post.logsigma_u).double().cpu()
                    if post.logsigma_u is not None else torch.zeros(len(xb), dtype=torch.float64))
    return {"lw": torch.cat(lw).numpy(), "kl_z": torch.cat(kl_z).numpy(), "kl_u": torch.cat(kl_u).numpy(),
            "labels": store.data(P).y_test[: len(x)].cpu().numpy()}


def log_mean_weight(lw: np.ndarray) -> np.ndarray:
    """``log (1/k) sum_i exp(lw[..., i])`` over the last axis (``scipy.special.logsumexp``
    minus ``log k``): the importance-sampled log-likelihood of each digit."""
    return logsumexp(lw, axis=-1) - math.log(lw.shape[-1])


def likelihood_digits(P: Profile, cfg: Config) -> pd.DataFrame:
    """Per test digit for ``cfg``: ``log_likelihood`` (importance sampling, ``P.ll_k`` draws),
    ``elbo`` (mean of the same draws' log-weights: a Monte Carlo ELBO), ``gap`` (their
    difference, >= 0 by Jensen's inequality), ``kl_z``, ``kl_u``, ``kl``, ``digit`` (class);
    ``label`` (without the seed), ``model``, ``prior``, ``seed`` (training) and ``index`` name it."""
    w = log_weights(P, cfg)
    ll, elbo = log_mean_weight(w["lw"]), w["lw"].mean(1)
    return pd.DataFrame({"label": registry.label(cfg, with_seed=False), "model": cfg.model,
                         "prior": cfg.prior, "seed": cfg.seed, "index": np.arange(len(ll)),
                         "digit": w["labels"], "log_likelihood": ll,
                         "elbo": elbo, "gap": ll - elbo, "kl_z": w["kl_z"], "kl_u": w["kl_u"],
                         "kl": w["kl_z"] + w["kl_u"]})


def likelihood_vs_k(P: Profile, cfg: Config, ks: Iterable[int] | None = None) -> pd.DataFrame:
    """Mean importance-sampled log-likelihood with the first ``k`` of the ``P.ll_k`` draws, for
    each ``k`` of ``ks`` (default: 1, 2, 5, 10, 20, 50... up to ``P.ll_k``). ``k = 1`` is the
    ELBO of one draw. Columns ``label``, ``model``, ``k``, ``log_likelihood``, ``se``."""
    w = log_weights(P, cfg)["lw"]
    if ks is None:
        ks = sorted({k for k in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if k <= P.ll_k}
                    | {P.ll_k})
    rows = []
    for k in ks:
        ll = log_mean_weight(w[:, :k])
        rows.append({"label": registry.label(cfg, with_seed=False), "model": cfg.model, "k": int(k),
                     "log_likelihood": float(ll.mean()),
                     "se": float(ll.std(ddof=1) / math.sqrt(len(ll))) if len(ll) > 1 else math.nan})
    return pd.DataFrame(rows)


def likelihood_table(P: Profile, *, configs: Iterable[Config] | None = None, write: bool = True,
                     out_dir: str | Path | None = None) -> pd.DataFrame:
    """Experiment 6: for each model of :func:`tvae.book.registry.likelihood_models` (every
    training seed of ``P.seed_list``; or ``configs``), on ``P.ll_n`` test digits with ``P.ll_k``
    importance samples: mean ``log_likelihood`` and ``elbo`` (same draws), ``gap`` and its
    standard error ``se_gap`` (sample standard deviation over the digits, over sqrt(n)), mean
    ``kl_z``, ``kl_u``, ``kl`` (= KL(q || prior) of all the latents integrated out),
    ``gap_over_kl`` (ratio of the means) and ``corr_gap_kl`` (Pearson correlation over digits);
    ``label`` names the configuration without its seed, ``seed`` the training seed. The paper
    claims gap ~ KL(q(z|x) || p(z)). Written to ``likelihood.csv`` when ``write``.
    ``attrs["seconds"]``: the wall time of the call."""
    t0 = time.perf_counter()
    configs = registry.likelihood_models(P) if configs is None else list(configs)
    rows = []
    for cfg in configs:
        d = likelihood_digits(P, cfg)
        corr = (float(np.corrcoef(d.gap, d.kl)[0, 1])
                if len(d) > 2 and d.gap.std() > 0 and d.kl.std() > 0 else math.nan)
        rows.append({"model": cfg.model, "prior": cfg.prior, "dim_z": cfg.zdim, "dim_u": cfg.udim,
                     "k": P.ll_k, "n": len(d), "log_likelihood": d.log_likelihood.mean(),
                     "elbo": d.elbo.mean(), "gap": d.gap.mean(),
                     "se_gap": d.gap.std() / math.sqrt(len(d)), "kl_z": d.kl_z.mean(),
                     "kl_u": d.kl_u.mean(), "kl": d.kl.mean(), "gap_over_kl": d.gap.mean() / d.kl.mean(),
                     "corr_gap_kl": corr, "label": registry.label(cfg, with_seed=False),
                     "seed": cfg.seed})
    df = pd.DataFrame(rows, columns=LIKELIHOOD_COLUMNS)
    if write:
        write_csv(df, Path(out_dir or P.results_dir()) / "likelihood.csv")
    df.attrs["seconds"] = time.perf_counter() - t0
    return df


SUMMARY_VALUES = ["log_likelihood", "elbo", "gap", "se_gap", "kl_z", "kl_u", "kl", "gap_over_kl",
                  "corr_gap_kl"]
"""The columns of ``likelihood.csv`` that :func:`likelihood_summary` averages over seeds."""


def likelihood_summary(df: pd.DataFrame) -> pd.DataFrame:
    """A :func:`likelihood_table` reduced over training seeds, one row per ``label`` (in order of
    appearance): ``model``, ``prior``, ``dim_z``, ``dim_u``, ``k``, ``n`` as in the table, the
    seed means of :data:`SUMMARY_VALUES`, ``gap_sd`` and ``gap_over_kl_sd`` (SD over seeds,
    ``n - 1``; NaN with one seed) and ``n_seeds``. Columns missing from ``df`` are left out
    (``gap`` and ``gap_over_kl`` are required)."""
    g = df.groupby("label", sort=False)
    first = [c for c in ("model", "prior", "dim_z", "dim_u", "k", "n") if c in df]
    out = g[first].first().join(g[[c for c in SUMMARY_VALUES if c in df]].mean())
    out["gap_sd"], out["gap_over_kl_sd"], out["n_seeds"] = g.gap.std(), g.gap_over_kl.std(), g.size()
    return out.reset_index()


def sampling_sentence(P: Profile) -> str:
    """How many draws and test digits the importance sampling of profile ``P`` uses, against the
    paper profile's (Markdown)."""
    full = resolve("paper")
    return (f"Importance sampling in this profile: **k = {P.ll_k}** draws per digit on the first "
            f"**{P.ll_n}** test digits (the *paper* profile uses k = {full.ll_k} on {full.ll_n}).")


def time_sentence(df: pd.DataFrame) -> str:
    """How long :func:`likelihood_table` took (``df.attrs["seconds"]``)."""
    return f"Computed in {df.attrs['seconds']:.0f} s."


VIEW_COLUMNS = ["label", "dim_u", "log_likelihood", "elbo", "gap", "se_gap", "kl_z", "kl_u", "kl",
                "gap_over_kl", "corr_gap_kl"]
"""The columns of ``likelihood.csv`` chapter 10 shows (the rest, ``k``, ``n`` and the model's
identity, are said in the text or in the label)."""


def likelihood_view(df: pd.DataFrame) -> Styler:
    """:func:`likelihood_table` as chapter 10 shows it: the seed means
    (:func:`likelihood_summary`) of :data:`VIEW_COLUMNS` indexed by label, with the SD over
    seeds of gap / KL and the seed count; nats with two decimals, the ratio gap / KL with three
    (it is compared with 1)."""
    s = likelihood_summary(df)[[*VIEW_COLUMNS, "gap_over_kl_sd", "n_seeds"]].set_index("label")
    fmt = {c: "{:.2f}" for c in VIEW_COLUMNS[2:]} | {"gap_over_kl": "{:.3f}", "gap_over_kl_sd": "{:.3f}"}
    return s.style.format(fmt, na_rep="")


def likelihood_seeds_view(df: pd.DataFrame) -> Styler:
    """Every run of a :func:`likelihood_table` (the numbers behind :func:`likelihood_view`'s
    means): label, training seed, log-likelihood, ELBO, gap, KL and gap / KL."""
    cols = ["label", "seed", "log_likelihood", "elbo", "gap", "kl", "gap_over_kl"]
    fmt = {c: "{:.2f}" for c in cols[2:]} | {"gap_over_kl": "{:.3f}"}
    return df[cols].set_index(["label", "seed"]).style.format(fmt)


def likelihood_findings(df: pd.DataFrame) -> list[str]:
    """Markdown sentences on experiment 6 (``df`` from :func:`likelihood_table`), on the seed
    means of each configuration (:func:`likelihood_summary`)."""
    if not len(df):
        return []
    df = likelihood_summary(df)
    k, n = int(df.k.iloc[0]), int(df.n.iloc[0])
    out = [f"With k = {k} importance samples on {n} test digits, the gap between the "
           "importance-sampled log-likelihood and the ELBO ranges from "
           f"{df.gap.min():.2f} nats ({df.label[df.gap.idxmin()]}) to {df.gap.max():.2f} nats "
           f"({df.label[df.gap.idxmax()]}), while KL(q || prior) ranges from {df.kl.min():.1f} to "
           f"{df.kl.max():.1f} nats."]
    r = df.gap_over_kl
    seeds = int(df.n_seeds.min())
    sd = df.gap_over_kl_sd.dropna()
    out.append(f"The ratio gap / KL lies between {r.min():.3f} and {r.max():.3f} (mean "
               f"{r.mean():.3f}); a ratio near 1 would be the paper's 'gap ~ KL(q(z|x) || p(z))'."
               + (f" These are means over {seeds} training seeds; the ratio's SD over seeds is "
                  f"at most {sd.max():.3f}." if seeds > 1 and len(sd) else
                  " One training seed per model: the spread over seeds is not measured here."))
    c = df.corr_gap_kl.dropna()
    if len(c):
        out.append(f"Across digits the gap and the KL are correlated with Pearson r between "
                   f"{c.min():.2f} and {c.max():.2f} depending on the model.")
    return out


def digits_and_curves(P: Profile) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-digit frames (:func:`likelihood_digits`) and log-likelihood-against-k curves
    (:func:`likelihood_vs_k`) of the models of training seed ``P.seed``
    (:func:`tvae.book.registry.likelihood_set`: the chapter's figures), concatenated."""
    configs = registry.likelihood_set(P)
    digits = pd.concat([likelihood_digits(P, c) for c in configs], ignore_index=True)
    curves = pd.concat([likelihood_vs_k(P, c) for c in configs], ignore_index=True)
    return digits, curves


def last_rise(curves: pd.DataFrame) -> pd.Series:
    """Per model label (in order of appearance), how much the mean log-likelihood estimate of
    ``curves`` (:func:`likelihood_vs_k` frames, concatenated) rises between its two largest
    ``k`` (nats; NaN for a model with one ``k``)."""
    return pd.Series({label: g.sort_values("k").log_likelihood.diff().iloc[-1]
                      for label, g in curves.groupby("label", sort=False)}, dtype=float)


def rise_sentence(curves: pd.DataFrame) -> str:
    """The rise of each model's estimate between the two largest ``k`` of ``curves``
    (:func:`last_rise`; Markdown): a rise well above zero says the measured gap is still
    growing with ``k``. Empty when ``curves`` has one ``k`` only."""
    ks = sorted(set(curves.k))
    if len(ks) < 2:
        return ""
    return (f"Rise of the estimate between k = {ks[-2]} and k = {ks[-1]}: " + ", ".join(
        f"{name} {v:+.2f} nats" for name, v in last_rise(curves).items()) + ".")


__all__ = ["LIKELIHOOD_COLUMNS", "log_weights", "log_mean_weight", "likelihood_digits",
           "likelihood_vs_k", "likelihood_table", "SUMMARY_VALUES", "likelihood_summary",
           "likelihood_findings", "digits_and_curves", "sampling_sentence", "time_sentence",
           "VIEW_COLUMNS", "likelihood_view", "likelihood_seeds_view", "last_rise", "rise_sentence"]
