"""Chapter 14, discussion: every checked claim of the paper, with its verdict and the numbers
behind it, from the tables the other chapters wrote (``results/<profile>/*.csv``).

Each rule is stated in its function's docstring; the verdicts are :data:`REPRODUCED`,
:data:`PARTLY`, :data:`NOT_REPRODUCED` and :data:`UNTESTED`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..io import read_csv
from ..profiles import Profile
from .latent_dimension import vae_bce_at_total
from .registry import LABELS, PAPER_KINDS, RAW_DIM
from .table1 import PAPER_TABLE1, PROTOCOLS, REPRODUCE_SDS
from .text import signed


def read_result(P: Profile, name: str, root: str | Path = "results") -> pd.DataFrame | None:
    """``results/<P.results_name>/<name>.csv`` as a DataFrame, or None if no chapter wrote it
    yet under this profile and these overrides."""
    return read_csv(Path(root) / P.results_name / f"{name}.csv")


REPRODUCED, PARTLY, NOT_REPRODUCED, UNTESTED = "reproduced", "partly", "not reproduced", "not testable here"

GAP_KL_RANGE = (0.5, 2.0)
"""gap / KL(q || prior) within this range counts as 'roughly equal' (experiment 6's claim)."""


def _verdict(claim: str, experiment: str, verdict: str, evidence: str) -> dict:
    return {"experiment": experiment, "claim": claim, "verdict": verdict, "evidence": evidence}


def _share(n_ok: int, n: int) -> str:
    return REPRODUCED if n and n_ok == n else (PARTLY if n_ok else NOT_REPRODUCED)


def recon_verdicts(df: pd.DataFrame) -> list[dict]:
    """The paper's claims on experiment 1 checked against a :func:`recon_vs_dim` table.

    1. The VAE's test BCE is lowest near 25 latent variables: reproduced when the VAE's best
       dim z is one of the two measured dims around 25 and is not the largest dim measured.
    2. The transformer models reconstruct better than the VAE at the same total latent size
       (the VAE's curve interpolated, :func:`vae_bce_at_total`): per model, a negative mean
       difference.
    3. Mostly TPS-TVAE and Affine-DTVAE: they are the two transformer models with the largest
       advantage in 2 (the most negative mean difference from the VAE at the same total size;
       all three need a difference).
    """
    ex = "exp. 1 (ch. 05)"
    out = []
    v = df[df.model == "vae"].sort_values("dim_z")
    if len(v) >= 3:
        best = int(v.loc[v.test_bce.idxmin(), "dim_z"])
        dims = sorted(v.dim_z)
        below = [d for d in dims if d <= 25]
        above = [d for d in dims if d >= 25]
        near = {below[-1] if below else dims[0], above[0] if above else dims[-1]}
        ok = best in near and best != dims[-1]
        out.append(_verdict("The VAE's reconstruction error is lowest near 25 latent variables", ex,
                            REPRODUCED if ok else NOT_REPRODUCED,
                            f"VAE test BCE lowest at dim z = {best} among {dims} ({v.test_bce.min():.1f} "
                            f"nats; {v.test_bce.iloc[-1]:.1f} at dim z = {dims[-1]})"))
    else:
        out.append(_verdict("The VAE's reconstruction error is lowest near 25 latent variables", ex, UNTESTED,
                            f"only {len(v)} VAE dims measured in this profile"))
    others = df[df.model != "vae"]
    same = vae_bce_at_total(df).loc[others.index]
    diffs = {}
    for m in dict.fromkeys(others.model):
        d = (others.test_bce[others.model == m] - same[others.model == m]).dropna()
        if len(d):
            diffs[m] = d.mean()
    if diffs:
        n_ok = sum(d < 0 for d in diffs.values())
        out.append(_verdict("Transformer models reconstruct better than the VAE (same dim z + dim u)", ex,
                            _share(n_ok, len(diffs)),
                            "mean test BCE minus the VAE's at the same total size: "
                            + ", ".join(f"{LABELS[m]} {signed(d)} nats" for m, d in diffs.items())))
    else:
        out.append(_verdict("Transformer models reconstruct better than the VAE (same dim z + dim u)", ex,
                            UNTESTED, "no transformer model inside the VAE's range of total latent sizes"))
    if len(diffs) >= 3:
        ranked = sorted(diffs, key=diffs.get)
        top2 = set(ranked[:2])
        want = {"tps-tvae", "affine-dtvae"}
        out.append(_verdict("Mostly TPS-TVAE and Affine-DTVAE", ex,
                            REPRODUCED if top2 == want else (PARTLY if top2 & want else NOT_REPRODUCED),
                            "largest advantage over the VAE at the same total size (mean test BCE "
                            "difference): "
                            + ", ".join(f"{LABELS[m]} {signed(diffs[m])} nats" for m in ranked)))
    else:
        out.append(_verdict("Mostly TPS-TVAE and Affine-DTVAE", ex, UNTESTED,
                            f"only {len(diffs)} transformer model(s) inside the VAE's range of total "
                            "latent sizes"))
    return out


def table1_verdicts(df: pd.DataFrame) -> list[dict]:
    """The paper's Table 1 checked against a :func:`table1` table (paper rows, both protocols):
    rows within :data:`REPRODUCE_SDS` standard deviations; at each dim every transformer model's
    test accuracy above the VAE's; the best model at each dim the paper's best."""
    ex = "Table 1 (ch. 08)"
    out = []
    for protocol in PROTOCOLS:
        d = df[(df.protocol == protocol) & (df.row_kind == "paper")]
        if len(d):
            ok = d[d.within_2sd == True]  # noqa: E712 - True/False/None column
            out.append(_verdict(f"Table 1 numbers ({protocol})", ex, _share(len(ok), len(d)),
                                f"{len(ok)} of {len(d)} rows with CV mean within {REPRODUCE_SDS:g} paper "
                                "std; median distance of the test accuracy from the paper's "
                                f"{d.diff_test.abs().median():.2f} points"))
    d = df[(df.protocol == "paper-C") & (df.row_kind == "paper")]
    pairs, wins, parts = 0, 0, []
    for dim in sorted(set(d.dim) - {RAW_DIM}):
        g = d[d.dim == dim].set_index("input")
        if "vae" not in g.index:
            continue
        for k in PAPER_KINDS[1:]:
            if k in g.index:
                pairs += 1
                wins += bool(g.loc[k, "test"] > g.loc["vae", "test"])
                parts.append(f"{LABELS[k]} ({dim}) {signed(g.loc[k, 'test'] - g.loc['vae', 'test'], 2)}")
    if pairs:
        out.append(_verdict("Transformer models' codes are more linearly separable than the VAE's", ex,
                            _share(wins, pairs), "test accuracy minus the VAE's at the same dim (paper-C): "
                            + ", ".join(parts)))
    best_ok, best_parts = 0, []
    dims = sorted(set(d.dim) - {RAW_DIM})
    for dim in dims:
        g = d[(d.dim == dim) & d.input.isin(PAPER_KINDS)]
        if not len(g):
            continue
        ours = g.loc[g.test.idxmax(), "input"]
        paper = max(PAPER_KINDS, key=lambda k: PAPER_TABLE1.get((k, dim), (0, 0, -1))[2])
        best_ok += ours == paper
        best_parts.append(f"dim {dim}: ours {LABELS[ours]}, paper's {LABELS[paper]}")
    if best_parts:
        out.append(_verdict("The best model at each dim (Affine-DTVAE at 8, TPS-TVAE at 20)", ex,
                            _share(best_ok, len(best_parts)), "; ".join(best_parts)))
    return out


def likelihood_verdicts(df: pd.DataFrame) -> list[dict]:
    """Experiment 6's claim, gap ~ KL(q(z|x) || p(z)), checked per model of a
    :func:`likelihood_table` table: 'roughly equal' = ratio within :data:`GAP_KL_RANGE`."""
    if not len(df):
        return []
    lo, hi = GAP_KL_RANGE
    ok = df[(df.gap_over_kl >= lo) & (df.gap_over_kl <= hi)]
    return [_verdict("The ELBO's gap is roughly the KL divergence of q(z given x) from p(z)",
                     "exp. 6 (ch. 10)", _share(len(ok), len(df)),
                     f"gap / KL within [{lo:g}, {hi:g}] for {len(ok)} of {len(df)} models "
                     f"(k = {int(df.k.iloc[0])}): "
                     + ", ".join(f"{r.label} {r.gap:.2f}/{r.kl:.2f} = {r.gap_over_kl:.2f}"
                                 for r in df.itertuples())
                     + (f"; across digits gap and KL correlate with r from {c.min():.2f} to {c.max():.2f}"
                        if len(c := df.get("corr_gap_kl", pd.Series(dtype=float)).dropna()) else ""))]



def denoising_verdicts(df: pd.DataFrame) -> list[dict]:
    """The claim that transformer models denoise well, checked against chapter 06's
    ``denoising.csv`` (columns ``noise``, ``level``, ``model``, ``bce``): per transformer model,
    the noisy settings where its BCE against the clean digit is below the VAE's."""
    noisy = df[(df.noise != "clean") & (df.model != "noisy input")]
    if not len(noisy) or "VAE" not in set(noisy.model):
        return []
    t = noisy.pivot_table(index=["noise", "level"], columns="model", values="bce")
    models = [m for m in t.columns if m != "VAE"]
    wins = {m: int((t[m] < t["VAE"]).sum()) for m in models}
    n_ok = sum(w > len(t) / 2 for w in wins.values())
    return [_verdict("Transformer models denoise well (better than the VAE)", "exp. 9 (ch. 06)",
                     _share(n_ok, len(models)),
                     f"noisy settings (of {len(t)}) with a lower BCE than the VAE: "
                     + ", ".join(f"{m} {w}" for m, w in wins.items()))]


def verdicts(recon: pd.DataFrame | None = None, table: pd.DataFrame | None = None,
             likelihood: pd.DataFrame | None = None, denoising: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every checked claim of the paper: columns ``experiment``, ``claim``, ``verdict``
    (:data:`REPRODUCED`, :data:`PARTLY`, :data:`NOT_REPRODUCED`, :data:`UNTESTED`) and
    ``evidence`` (the numbers behind it). Tables that are None are skipped."""
    rows: list[dict] = []
    for frame, fn in ((recon, recon_verdicts), (table, table1_verdicts), (likelihood, likelihood_verdicts),
                      (denoising, denoising_verdicts)):
        if frame is not None:
            rows += fn(frame)
    return pd.DataFrame(rows, columns=["experiment", "claim", "verdict", "evidence"])


__all__ = ["REPRODUCED", "PARTLY", "NOT_REPRODUCED", "UNTESTED", "GAP_KL_RANGE", "read_result",
           "recon_verdicts", "table1_verdicts", "likelihood_verdicts", "denoising_verdicts", "verdicts"]
