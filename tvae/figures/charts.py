"""Charts: curves, scatter plots and bars, including the figures of the book's experiments.

Every function draws with matplotlib and returns the :class:`matplotlib.figure.Figure` it made.
Models are drawn in the book's colours (:data:`tvae.book.registry.COLORS`) under its display
names (:data:`tvae.book.registry.LABELS`). Units: nats per digit, accuracies in %.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter

from ..book.registry import COLORS, LABELS, RAW_DIM
from ..book.training import curve_split
from .images import _figure

DIGIT_COLOURS = plt.get_cmap("tab10")
"""One colour per digit class (0-9) in the code maps."""


# --------------------------------------------------------------------- maps and bars ----
def code_scatter(codes: Mapping[str, np.ndarray], labels, title: str | None = None,
                 per_row: int = 2, size: float = 3.4, point: float = 4.0) -> Figure:
    """2-d code maps: one axes per model (label -> ``(N, 2)`` codes), points coloured by the
    digit class ``labels`` ``(N,)`` (tab10), with a shared class legend."""
    if not codes:
        raise ValueError("no code maps to draw")
    lab = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    n = len(codes)
    per_row = max(1, min(per_row, n))
    nrows = math.ceil(n / per_row)
    fig, axes = _figure(size * per_row + 0.8, size * nrows + (0.3 if title else 0), nrows, per_row)
    flat = list(axes.ravel())
    for ax, (name, c) in zip(flat, codes.items(), strict=False):
        c = np.asarray(c)
        if c.ndim != 2 or c.shape[1] != 2 or len(c) != len(lab):
            raise ValueError(f"codes of {name!r} must be (N, 2) with N = {len(lab)}, got {c.shape}")
        ax.scatter(c[:, 0], c[:, 1], c=DIGIT_COLOURS(lab % 10), s=point, alpha=0.7, linewidths=0)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$")
        ax.set_aspect("equal", adjustable="datalim")
        ax.tick_params(labelsize=8)
    for ax in flat[n:]:
        ax.remove()
    handles = [plt.Line2D([], [], ls="", marker="o", color=DIGIT_COLOURS(d), label=str(d))
               for d in range(10)]
    fig.legend(handles=handles, loc="center right", title="digit", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1 - 0.7 / fig.get_figwidth(), 1))
    return fig


def grouped_bars(values: Mapping[str, Mapping[str, float]], ylabel: str, title: str | None = None,
                 log: bool = False) -> Figure:
    """Grouped bar chart: ``values[group][series]`` (e.g. noise setting -> model -> error).
    One axes; groups on the x axis, one coloured bar per series."""
    if not values:
        raise ValueError("no values to draw")
    groups = list(values)
    series: list[str] = []
    for g in groups:
        series += [s for s in values[g] if s not in series]
    width = 0.8 / len(series)
    # wide enough for the groups and for the one-row legend above the axes
    wide = max(4.0, 1.5 * len(series) + 1.0, 0.9 * len(groups) * max(1, len(series) / 3) + 1.5)
    fig, axes = _figure(wide, 3.4)
    ax = axes[0, 0]
    for k, s in enumerate(series):
        xs = [i + (k - (len(series) - 1) / 2) * width for i, g in enumerate(groups) if s in values[g]]
        ys = [values[g][s] for g in groups if s in values[g]]
        ax.bar(xs, ys, width, label=s)
    ax.set_xticks(range(len(groups)), groups, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    # The legend sits between the title and the axes, in one row: it never covers a bar.
    ax.legend(fontsize=8, ncol=len(series), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def spectra(values: Mapping[str, Sequence[float]], ylabel: str = "eigenvalue",
            title: str | None = None, log: bool = True) -> Figure:
    """Sorted spectra (e.g. eigenvalues of prior covariances), one line per label, one axes."""
    if not values:
        raise ValueError("no spectra to draw")
    fig, axes = _figure(4.6, 3.2)
    ax = axes[0, 0]
    for label, v in values.items():
        v = np.sort(np.asarray(v, dtype=float))[::-1]
        ax.plot(np.arange(1, len(v) + 1), v, marker="o", ms=4, label=label)
    ax.set_xlabel("component (largest first)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def angle_scatter(pairs: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                  title: str | None = None, size: float = 3.2, *,
                  xlabel: str = "true angle (degrees)",
                  ylabel: str = "angle read from u (degrees)") -> Figure:
    """Recovered against true angles in degrees: one axes per label (label -> ``(true,
    recovered)``), both axes on ``[-180, 180]``, with the diagonals ``y = x`` and ``y = -x``;
    ``xlabel``/``ylabel`` name the axes (e.g. with the angles' sign convention)."""
    if not pairs:
        raise ValueError("no angle pairs to draw")
    n = len(pairs)
    fig, axes = _figure(size * n, size + 0.3 + (0.3 if title else 0), 1, n)
    for ax, (label, (t, r)) in zip(axes[0], pairs.items(), strict=True):
        t, r = np.asarray(t, dtype=float), np.asarray(r, dtype=float)
        ax.scatter(t, r, s=5, alpha=0.6, linewidths=0)
        ax.plot([-180, 180], [-180, 180], color="grey", lw=0.8, ls="--", label="y = x")
        ax.plot([-180, 180], [180, -180], color="grey", lw=0.8, ls=":", label="y = -x")
        ax.set_xlim(-180, 180)
        ax.set_ylim(-180, 180)
        ax.set_xticks([-180, -90, 0, 90, 180])
        ax.set_yticks([-180, -90, 0, 90, 180])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(label, fontsize=10)
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title, fontsize=11)
    # The reference lines' legend goes below the panels: every corner of a panel is on a line.
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


# ---------------------------------------------------------- the book's experiments ----
def plot_learning_curves(histories: dict[str, pd.DataFrame], terms: tuple[str, ...] = ("elbo", "bce", "kl_z"),
                         colors: dict[str, str] | None = None) -> Figure:
    """One panel per ELBO term (nats per digit) against the epoch: test (solid) and train
    (dashed) for each history (``{label: history_frame(...)}``), on the per-epoch evaluation
    subsets (:func:`tvae.book.training.curve_split`); the last epoch's evaluation on more digits is drawn as
    separate stars (test) and crosses (train)."""
    titles = {"elbo": "ELBO", "bce": "reconstruction term (BCE)", "kl_z": r"KL$(q(z|x)\,\|\,p(z))$",
              "kl_u": "KL on the pose"}
    fig, axes = plt.subplots(1, len(terms), figsize=(4.2 * len(terms) + 2.2, 3.4), squeeze=False)
    sizes: dict[str, set] = {"curve": set(), "final": set()}
    for ax, term in zip(axes[0], terms, strict=True):
        for i, (name, h) in enumerate(histories.items()):
            c = (colors or {}).get(name, f"C{i}")
            for split, style, alpha in (("test", "o-", 1.0), ("train", "x--", 0.6)):
                curve, final = curve_split(h, split)
                ax.plot(curve.epoch, curve[f"{split}_{term}"], style, ms=3, color=c, alpha=alpha,
                        label=name if split == "test" else None)
                # the last epoch's evaluation on other (more) digits: a separate marker, not joined
                ax.plot(final.epoch, final[f"{split}_{term}"], "*" if split == "test" else "+",
                        ms=9, color=c, alpha=alpha, linestyle="none")
                if f"n_eval_{split}" in h:
                    sizes["curve"].add((split, int(curve[f"n_eval_{split}"].iloc[0])))
                    sizes["final"].update((split, int(n)) for n in final[f"n_eval_{split}"])
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"{titles.get(term, term).split(' (')[0]} (nats per digit)")
        ax.set_title(titles.get(term, term), fontsize=10)
        ax.grid(alpha=0.3)
    def _n(kind: str, split: str) -> str:
        return "/".join(f"{n:,}" for sp, n in sorted(sizes[kind]) if sp == split)

    legend = "solid: test, dashed: train"
    if sizes["curve"]:
        legend += f"\n(first {_n('curve', 'test')} test,\n{_n('curve', 'train')} train digits)"
    if sizes["final"]:
        legend += (f"\nstars, crosses: last epoch\non {_n('final', 'test') or _n('curve', 'test')} test, "
                   f"{_n('final', 'train') or _n('curve', 'train')} train")
    # The legend sits right of the last panel (in the margin tight_layout leaves), where it
    # cannot cover a point.
    fig.tight_layout(rect=(0, 0, 1 - 2.2 / (4.2 * len(terms) + 2.2), 1))
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(1.03, 1.0),
               bbox_transform=axes[0][-1].transAxes, fontsize=8, title=legend, title_fontsize=8,
               frameon=False)
    return fig


def plot_recon_vs_dim(df: pd.DataFrame, column: str = "bce_mean_best") -> Figure:
    """Experiment 1's figure: ``column`` (nats per digit) against dim z + dim u (left) and
    against dim z (right), one line per model. ``df``: one row per model and dim z (a
    :func:`tvae.book.latent_dimension.recon_summary` table, seed means); where it has
    ``<column>_sd`` (the SD over seeds) each point gets an error bar of +- 1 SD."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for m, g in df.groupby("model", sort=False):
        g = g.sort_values("dim_z")
        sd = g[column + "_sd"] if column + "_sd" in g and g[column + "_sd"].notna().any() else None
        for ax, x in zip(axes, ("latent_total", "dim_z"), strict=True):
            ax.errorbar(g[x], g[column], yerr=sd, fmt="o-", capsize=3, color=COLORS.get(m),
                        label=LABELS.get(m, m))
    axes[0].set_xlabel("dim z + dim u (latent numbers per digit)")
    axes[1].set_xlabel("dim z")
    axes[0].set_ylabel(f"test {column} (nats per digit)")
    axes[1].set_xticks(sorted(set(df["dim_z"])))
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=df.model.nunique(),
               fontsize=8, frameon=False, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig


def plot_active_dims(df: pd.DataFrame) -> Figure:
    """Experiment 1's use of the code: active dimensions of z (left; see
    :data:`tvae.book.latent_dimension.ACTIVE_NATS`) and KL(q(z|x) || p(z)) (right) against
    dim z, one line per model (``df``: a :func:`tvae.book.latent_dimension.recon_vs_dim` table)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for m, g in df.groupby("model", sort=False):
        g = g.sort_values("dim_z")
        axes[0].plot(g.dim_z, g.active_z, "o-", color=COLORS[m], label=LABELS[m])
        axes[1].plot(g.dim_z, g.kl_z if "kl_z" in g else g.test_kl_z, "o-", color=COLORS[m],
                     label=LABELS[m])
    top = df.dim_z.max()
    axes[0].plot([0, top], [0, top], "k:", lw=1, label="all dimensions active")
    axes[0].set_ylabel("active dimensions of $z$")
    axes[0].yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].set_ylabel(r"$\mathrm{KL}(q(z|x)\,\|\,p(z))$ (nats per digit)")
    for ax in axes:
        ax.set_xlabel("dim z")
        ax.set_xticks(sorted(df.dim_z.unique()))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_table1(df: pd.DataFrame, protocol: str = "paper-C") -> Figure:
    """Our test accuracy against the paper's for every Table 1 row of ``protocol``: one marker
    per row, coloured by input (model or baseline), shaped by its dimension; the diagonal is
    perfect agreement. Legends outside the axes, so no label covers a point."""
    d = df[(df.protocol == protocol) & df.paper_test.notna() & (df.row_kind == "paper")]
    colors = {"raw": "black", "pca": "tab:purple", **COLORS}
    markers = {8: "o", 20: "s", RAW_DIM: "D"}
    fig, ax = plt.subplots(figsize=(7.2, 5))
    lo = min(d.test.min(), d.paper_test.min()) - 2
    hi = max(d.test.max(), d.paper_test.max()) + 2
    ax.plot([lo, hi], [lo, hi], "k:", lw=1)
    for r in d.itertuples():
        ax.plot(r.paper_test, r.test, markers.get(r.dim, "^"), color=colors.get(r.input, "k"), ms=7,
                mec="white", mew=0.6, alpha=0.9)
    inputs = list(dict.fromkeys(d.input))
    by_input = [Line2D([], [], ls="", marker="o", color=colors.get(i, "k"), label=LABELS.get(i, i))
                for i in inputs]
    by_dim = [Line2D([], [], ls="", marker=markers.get(k, "^"), color="0.4",
                     label=f"dim {k}" + (" (pixels)" if k == RAW_DIM else ""))
              for k in sorted(set(d.dim))]
    first = ax.legend(handles=by_input, fontsize=8, title="input", title_fontsize=8,
                      loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.add_artist(first)
    ax.legend(handles=by_dim, fontsize=8, title="dimension", title_fontsize=8,
              loc="lower left", bbox_to_anchor=(1.02, 0.0))
    ax.set_xlabel("paper's test accuracy (%)")
    ax.set_ylabel("our test accuracy (%)")
    name = {"paper-C": "the paper's C per row", "common-C": "one C for every row"}.get(protocol, protocol)
    ax.set_title(f"Table 1, ours vs the paper's ({name})", fontsize=10)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _label_styles(frame: pd.DataFrame) -> dict[str, dict]:
    """``{label: matplotlib style}`` for the labels of ``frame`` (columns ``label``, ``model``):
    the kind's colour; the first label of a kind solid with round markers, later ones (other
    priors, seeds...) dashed or dotted with other markers, so that no two lines look alike."""
    styles, seen = {}, {}
    for name, kind in dict.fromkeys(zip(frame.label, frame.model, strict=True)):
        n = seen[kind] = seen.get(kind, -1) + 1
        styles[name] = {"color": COLORS.get(kind, "k"), "ls": ("-", "--", ":", "-.")[n % 4],
                        "marker": ("o", "s", "^", "D")[n % 4]}
    return styles


def plot_gap_vs_kl(digits: pd.DataFrame, max_points: int = 400) -> Figure:
    """Per-digit gap (log-likelihood minus ELBO) against KL(q || prior), one panel per model
    (``digits``: concatenated :func:`tvae.book.variational_gap.likelihood_digits` frames), with
    the line gap = KL."""
    labels = list(dict.fromkeys(digits.label))
    styles = _label_styles(digits)
    ncol = min(3, len(labels))
    nrow = math.ceil(len(labels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3.5 * nrow), squeeze=False)
    for ax, name in zip(axes.flat, labels, strict=False):
        g = digits[digits.label == name].iloc[:max_points]
        ax.scatter(g.kl, g.gap, s=8, alpha=0.5, color=styles[name]["color"], marker=styles[name]["marker"])
        # Axes span the points; the line gap = KL is drawn across them (clipped to the axes).
        kl_top, gap_top = 1.1 * max(g.kl.max(), 1e-3), 1.1 * max(g.gap.max(), 1e-3)
        top = max(kl_top, gap_top)
        ax.plot([0, top], [0, top], "k:", lw=1, label="gap = KL")
        ax.set_xlim(0, kl_top)
        ax.set_ylim(0, gap_top)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(r"KL$(q\,\|\,\mathrm{prior})$ (nats)")
        ax.set_ylabel(r"$\log p(x)$ $-$ ELBO (nats)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(labels):]:
        ax.axis("off")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_ll_vs_k(curves: pd.DataFrame) -> Figure:
    """Mean importance-sampled log-likelihood against the number of samples k (log scale),
    one line per model, relative to k = 1 (the one-draw ELBO)."""
    styles = _label_styles(curves)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, g in curves.groupby("label", sort=False):
        g = g.sort_values("k")
        base = g.log_likelihood.iloc[0]
        ax.plot(g.k, g.log_likelihood - base, label=name, ms=4, **styles[name])
    ax.set_xscale("log")
    ax.set_xticks(sorted(set(curves.k)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("importance samples k")
    ax.set_ylabel("mean log-likelihood estimate\nminus its k = 1 value (nats)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


__all__ = ["code_scatter", "grouped_bars", "spectra", "angle_scatter", "plot_learning_curves",
           "plot_recon_vs_dim", "plot_active_dims", "plot_table1", "plot_gap_vs_kl", "plot_ll_vs_k"]
