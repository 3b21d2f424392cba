"""The book's models: every configuration a chapter uses, written here and nowhere else.

Each chapter's group of configurations is a function of the run profile ``P`` (a
:class:`tvae.profiles.Profile`, which supplies the epochs, training-set size, seed and the
dims of its sweeps). :func:`needed_models` is the ordered union of :data:`GROUPS`: the list
``scripts/train_models.py`` and chapter 04 train into the model cache, and the only models
:func:`tvae.book.store.trained` hands out under a book profile (so no chapter can start
training an unplanned model in the middle of a build). Chapters that show their models under
names get them as ``{name: Config}`` dicts from the ``*_set`` functions below, built from the
same lists. The display names (:data:`LABELS`) and colours (:data:`COLORS`) of every table and
figure are here too.
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import MODELS, Config, default_tps_start
from ..profiles import Profile, resolve

# ------------------------------------------------------------------- names, colours ----
PAPER_KINDS = ("vae", "affine-tvae", "tps-tvae", "affine-dtvae")
"""The paper's four models, in the order of its figures and Table 1."""

OUR_KINDS = ("tps-dtvae",)
"""Models that are ours, not the paper's (reported as extra rows, marked 'ours')."""

ALL_KINDS = PAPER_KINDS + OUR_KINDS

LABELS = {"vae": "VAE", "affine-tvae": "Affine-TVAE", "tps-tvae": "TPS-TVAE",
          "affine-dtvae": "Affine-DTVAE", "tps-dtvae": "TPS-DTVAE", "raw": "Raw MNIST", "pca": "PCA"}
"""Display names of the model kinds and the Table 1 baselines (every table, figure, explorer)."""

COLORS = {"vae": "tab:gray", "affine-tvae": "tab:blue", "tps-tvae": "tab:orange",
          "affine-dtvae": "tab:green", "tps-dtvae": "tab:red"}
"""One colour per model kind, shared by every plot of the book."""

RAW_DIM = 784
"""The 'dimension' of Table 1's raw-pixel row (the pixels themselves)."""

MAIN_DIM = 20
"""dim z of the book's main models (the five kinds are compared there)."""

MODERN_DIM = 8
"""dim z of the 'modern option' (Adam) comparison of chapter 08."""

MODERN_KINDS = ("vae", "affine-tvae")
"""Kinds retrained with Adam for the modern comparison of chapter 08."""

GENERATION_TOTALS = (10, 20)
"""Total latent sizes (dim z + dim u) of the VAE / Affine-TVAE / Affine-DTVAE generation
comparisons of chapter 07: the paper's slides label them by the whole code, so the affine
models get dim z = total - 6 there."""

AFFINE_PRIORS = (("identity-diag", None), ("mean-diag", None), ("reparam5-diag", None),
                 ("lowrank", 2), ("lowrank", 4), ("lowrank", 6))
"""Pose priors of experiment 5 for Affine-TVAE: ``(prior, rank)``."""

TPS_PRIORS = (("lowrank", 3), ("lowrank", 9), ("lowrank", 18))
"""Pose priors of experiment 5 for TPS-TVAE: ``(prior, rank)``."""

ROT_KINDS = ("vae", "affine-tvae", "affine-dtvae")
"""Kinds of chapter 12 (rotated MNIST)."""

MAP_KINDS = ("vae", "affine-tvae", "affine-dtvae", "tps-tvae")
"""Kinds whose 2-d codes the 2-d latent map maps (``book/11_latent_map``), in its order."""

AS_RUN_VAE_HIDDEN = {8: (512,), 20: (128,)}
"""Hidden layers of the VAE rows of Table 1 as the original code ran them (PAPER.md, "What the
original code did"): VAE(8) one hidden layer of 512 units, VAE(20) one of 128 units, not the
text's 2 x 256. Chapter 08 shows these 'as run' rows beside the 2 x 256 rows."""

INIT_ABLATION_KINDS = ("vae", "affine-tvae")
"""Kinds of chapter 05's initialisation ablation (:func:`init_ablation_models`): the VAE and
one transformer model, whose unused latent dimensions issue 10 asks about."""

ARCHITECTURE_DIMS = (2, 20)
"""dims z at which chapter 03 counts the parameters of every kind (untrained models)."""


def label(cfg: Config, *, with_seed: bool = True) -> str:
    """A display name for a configuration, e.g. ``Affine-TVAE z20 (mean-diag, seed 1, adam)``:
    the kind and dim z, then whatever differs from the book's defaults (the training seed only
    when ``with_seed``: tables of seed means name a configuration without it)."""
    extra = []
    if cfg.prior != "flat":
        extra.append(cfg.prior + (f" r{cfg.rank}" if cfg.prior == "lowrank" else ""))
    if cfg.tps_start != default_tps_start(cfg.model):
        extra.append(f"{cfg.tps_start} start")
    if cfg.dataset != "mnist":
        extra.append(cfg.dataset)
    if cfg.optimizer != "adadelta":
        extra.append(cfg.optimizer)
    if cfg.likelihood != "bernoulli":
        extra.append(cfg.likelihood)
    if cfg.init != Config.__dataclass_fields__["init"].default:
        extra.append(f"{cfg.init} init")
    if cfg.hidden != Config.__dataclass_fields__["hidden"].default:
        extra.append("hidden " + "x".join(str(h) for h in cfg.hidden))
    if with_seed and cfg.seed != 0:
        extra.append(f"seed {cfg.seed}")
    s = f"{LABELS[cfg.model]} z{cfg.zdim}"
    return s + (f" ({', '.join(extra)})" if extra else "")


def prior_label(cfg: Config) -> str:
    """The pose prior of a configuration as chapter 09 names it: ``mean-diag``, ``lowrank r4``,
    ``lowrank r6 (full)`` (a rank equal to dim u)."""
    if cfg.prior != "lowrank":
        return cfg.prior
    return f"lowrank r{cfg.rank}" + (" (full)" if cfg.rank == cfg.udim else "")


# ---------------------------------------------------------------- trained models ----
def main_models(P: Profile, seed: int | None = None) -> list[Config]:
    """The five kinds at dim z 20 (flat pose prior) at training seed ``seed`` (default
    ``P.seed``): chapters 01, 04, 06, 10."""
    return [P.config(k, MAIN_DIM, seed=P.seed if seed is None else seed) for k in ALL_KINDS]


def intro_model(P: Profile) -> Config:
    """The model chapter 01 shows at work: Affine-TVAE at dim z 20, one of :func:`main_models`."""
    return next(c for c in main_models(P) if c.model == "affine-tvae")


def exp1_models(P: Profile) -> list[Config]:
    """Experiment 1 (chapter 05): the paper's four kinds at every dim z of ``P.zdims``, each at
    every seed of ``P.seed_list`` (the seed spread enters the chapter's verdicts)."""
    return [P.config(k, z, seed=s) for k in PAPER_KINDS for z in P.zdims for s in P.seed_list]


def init_ablation_models(P: Profile) -> list[Config]:
    """The initialisation ablation of chapter 05 (issue 10): VAE and Affine-TVAE at dim z 20
    with PyTorch's default initialisation (``init="torch"``), at every seed of ``P.seed_list``.
    Their Glorot-initialised twins (the faithful default) are the dim-20 models of
    :func:`exp1_models`; :func:`init_ablation_set` pairs them."""
    return [P.config(k, MAIN_DIM, init="torch", seed=s) for k in INIT_ABLATION_KINDS
            for s in P.seed_list]


def init_ablation_set(P: Profile) -> dict[tuple[str, str, int], Config]:
    """``{(kind, init, seed): Config}`` of the initialisation ablation, in the chapter's order:
    each kind of :data:`INIT_ABLATION_KINDS` under ``glorot`` (the default: the dim-20 models of
    :func:`exp1_models`, as every book profile trains dim z 20 there) then ``torch``
    (:func:`init_ablation_models`), each at every seed of ``P.seed_list``."""
    glorot = {(k, s): P.config(k, MAIN_DIM, seed=s) for k in INIT_ABLATION_KINDS for s in P.seed_list}
    torch_init = {(c.model, c.seed): c for c in init_ablation_models(P)}
    return {(k, init, s): runs[(k, s)] for k in INIT_ABLATION_KINDS
            for init, runs in (("glorot", glorot), ("torch", torch_init)) for s in P.seed_list}


def table1_models(P: Profile) -> list[Config]:
    """Table 1 (chapter 08): the four paper kinds and TPS-DTVAE at every dim of ``P.probe_dims``,
    each at every seed of ``P.seed_list``."""
    return [P.config(k, d, seed=s) for d in P.probe_dims for k in ALL_KINDS for s in P.seed_list]


def table1_as_run_models(P: Profile) -> list[Config]:
    """Table 1's VAE rows as the original code ran them (:data:`AS_RUN_VAE_HIDDEN`): the VAE at
    each dim of ``P.probe_dims`` that has an as-run width, at every seed of ``P.seed_list``."""
    return [P.config("vae", d, hidden=AS_RUN_VAE_HIDDEN[d], seed=s)
            for d in P.probe_dims if d in AS_RUN_VAE_HIDDEN for s in P.seed_list]


def modern_models(P: Profile) -> list[Config]:
    """The 'modern option' of chapter 08: VAE and Affine-TVAE at dim z 8 trained with Adam
    (learning rate 1e-3), everything else as in the paper. Not the paper's setting."""
    return [P.config(k, MODERN_DIM, optimizer="adam") for k in MODERN_KINDS]


def generation_set(P: Profile, seed: int | None = None) -> dict[tuple[str, int], Config]:
    """Experiment 3 (chapter 07) as ``{(kind, dim z): Config}`` at training seed ``seed`` (one
    of ``P.seed_list``; default ``P.seed``, the models of the chapter's figures): VAE,
    Affine-TVAE and Affine-DTVAE at the same total latent size, 10 and 20 (the affine models at
    dim z 4 and 14), and at the same dim z, 10 and 20; Affine-TVAE and Affine-DTVAE at dim z 2
    (the continuous 2-d sweeps); Affine-TVAE at z 24 (30 latent numbers) against TPS-TVAE at z 12
    (30 too)."""
    seed = P.seed if seed is None else seed
    keys = [("vae", t) for t in GENERATION_TOTALS]
    keys += [(k, t - 6) for t in GENERATION_TOTALS for k in ("affine-tvae", "affine-dtvae")]
    keys += [(k, z) for z in (10, 20) for k in ("affine-tvae", "affine-dtvae")]
    keys += [(k, 2) for k in ("affine-tvae", "affine-dtvae")]
    keys += [("affine-tvae", 24), ("tps-tvae", 12)]
    return {(k, z): P.config(k, z, seed=seed) for k, z in keys}


def generation_models(P: Profile) -> list[Config]:
    """The configurations of :func:`generation_set` at every seed of ``P.seed_list`` (the
    sample-quality verdicts of chapter 07 use the spread over these training seeds), seed by
    seed in its order."""
    return [c for s in P.seed_list for c in generation_set(P, s).values()]


def pose_prior_sets(P: Profile) -> tuple[dict[str, Config], dict[str, Config]]:
    """Experiment 5 (chapter 09): ``({prior label: Config} of Affine-TVAE z 20, the same of
    TPS-TVAE z 20)``, under :data:`AFFINE_PRIORS` and :data:`TPS_PRIORS`, labelled by
    :func:`prior_label`."""
    aff = [P.config("affine-tvae", MAIN_DIM, prior=p, rank=r) for p, r in AFFINE_PRIORS]
    tps = [P.config("tps-tvae", MAIN_DIM, prior=p, rank=r) for p, r in TPS_PRIORS]
    return {prior_label(c): c for c in aff}, {prior_label(c): c for c in tps}


def pose_prior_models(P: Profile) -> list[Config]:
    """Experiment 5 (chapter 09): Affine-TVAE z 20 under the identity-centred, estimated-mean,
    5-d.o.f. diagonal priors and the rank-2/4/6 priors; TPS-TVAE z 20 under the rank-3/9/18
    priors."""
    aff, tps = pose_prior_sets(P)
    return [*aff.values(), *tps.values()]


def denoising_set(P: Profile, seed: int | None = None) -> dict[str, Config]:
    """Experiment 9 (chapter 06) as ``{display name: Config}`` at training seed ``seed`` (default
    ``P.seed``, the models of the chapter's pictures): the paper's four kinds at dim z 20, flat
    pose prior (:func:`main_models` without the TPS-DTVAE)."""
    return named([c for c in main_models(P, seed) if c.model in PAPER_KINDS])


def denoising_models(P: Profile) -> list[Config]:
    """The configurations of :func:`denoising_set` at every seed of ``P.seed_list`` (the
    denoising verdict uses the spread over these training seeds; every one of them is also a
    dim-20 point of :func:`exp1_models`, so they cost no extra training)."""
    return [c for s in P.seed_list for c in denoising_set(P, s).values()]


def likelihood_set(P: Profile, seed: int | None = None) -> list[Config]:
    """Experiment 6 (chapter 10) at training seed ``seed`` (default ``P.seed``, the models of the
    chapter's figures): the five kinds at dim z 20 with the flat prior (only z is integrated
    out), and Affine-TVAE z 20 with the estimated-mean diagonal pose prior (z and the pose code
    u' are both integrated out)."""
    seed = P.seed if seed is None else seed
    return main_models(P, seed) + [P.config("affine-tvae", MAIN_DIM, prior="mean-diag", seed=seed)]


def likelihood_models(P: Profile) -> list[Config]:
    """The configurations of :func:`likelihood_set` at every seed of ``P.seed_list`` (the verdict
    on the gap uses the spread over these training seeds), seed by seed."""
    return [c for s in P.seed_list for c in likelihood_set(P, s)]


def local_optima_set(P: Profile) -> dict[tuple[str, str, int], Config]:
    """Experiment 7 (chapter 11) as ``{(kind, warp start, seed): Config}``, in the chapter's
    order: Affine-TVAE at every seed of ``P.seeds``, then TPS-TVAE started at the identity and
    at twice the identity (the original implementation's start), at every seed."""
    out = {("affine-tvae", "identity", s): P.config("affine-tvae", MAIN_DIM, seed=s) for s in P.seeds}
    for start in ("identity", "double"):
        for s in P.seeds:
            out[("tps-tvae", start, s)] = P.config("tps-tvae", MAIN_DIM, seed=s, tps_start=start)
    return out


def local_optima_models(P: Profile) -> list[Config]:
    """The configurations of :func:`local_optima_set`, trained seed by seed (Affine-TVAE,
    TPS-TVAE, TPS-TVAE from the double start for each seed)."""
    runs = local_optima_set(P)
    out = []
    for s in P.seeds:
        out += [runs[("affine-tvae", "identity", s)], runs[("tps-tvae", "identity", s)],
                runs[("tps-tvae", "double", s)]]
    return out


def latent2d_models(P: Profile) -> list[Config]:
    """Experiment 8 (the 2-d latent map, ``book/11_latent_map``): the four paper kinds with a 2-d
    code."""
    return [P.config(k, 2) for k in PAPER_KINDS]


def latent2d_set(P: Profile) -> dict[str, Config]:
    """``{display name: Config}`` of the 2-d code maps (:data:`MAP_KINDS`)."""
    by_kind = {c.model: c for c in latent2d_models(P)}
    return {LABELS[k]: by_kind[k] for k in MAP_KINDS}


def explorer_models(P: Profile) -> list[Config]:
    """The latent explorer (chapter 13): the five kinds at dim z 8."""
    return [P.config(k, 8) for k in ALL_KINDS]


def rot_mnist_models(P: Profile) -> list[Config]:
    """Experiment 10 (chapter 12): VAE, Affine-TVAE and Affine-DTVAE at dim z 20 on rotated MNIST
    (1,500 training digits, ``P.rot_epochs`` epochs)."""
    return [P.config(k, MAIN_DIM, dataset="rot-mnist", train_size=None, epochs=P.rot_epochs)
            for k in ROT_KINDS]


def named(configs: list[Config]) -> dict[str, Config]:
    """``{display name of the kind: Config}`` for configurations of distinct kinds."""
    out = {LABELS[c.model]: c for c in configs}
    if len(out) != len(configs):
        raise ValueError("named() needs configurations of distinct kinds; use label() instead")
    return out


GROUPS: dict[str, Callable[[Profile], list[Config]]] = {
    "main (dim z 20)": main_models,
    "Table 1": table1_models,
    "Table 1, VAE as run (1 hidden layer)": table1_as_run_models,
    "Table 1, modern option (Adam)": modern_models,
    "likelihood": likelihood_models,
    "denoising (exp. 9)": denoising_models,
    "latent dimension (exp. 1)": exp1_models,
    "initialisation ablation (exp. 1)": init_ablation_models,
    "generation": generation_models,
    "2-d latent space": latent2d_models,
    "explorer": explorer_models,
    "pose priors": pose_prior_models,
    "local optima": local_optima_models,
    "rotated MNIST": rot_mnist_models,
}
"""Every group of models of the book, in training order: the main models and Table 1 first
(the book's headline results), then the groups of the other chapters."""


def model_groups(P: Profile) -> dict[str, list[Config]]:
    """``{group name: configurations}`` for every group of :data:`GROUPS` under ``P``."""
    return {name: fn(P) for name, fn in GROUPS.items()}


def needed_models(profile: Profile | str) -> list[Config]:
    """Every model configuration a chapter of the book uses under ``profile`` (a
    :class:`Profile` or a profile name), without duplicates, in training order: the book's
    order within a seed, seed 0 first, so that a run stopped part-way has already trained a
    complete one-seed book (the paper profile's three seeds span several sessions on a CPU)."""
    P = resolve(profile) if isinstance(profile, str) else profile
    seen: dict[str, Config] = {}
    for configs in model_groups(P).values():
        for c in configs:
            seen.setdefault(c.key(), c)
    return sorted(seen.values(), key=lambda c: c.seed)


# ------------------------------------------------------ untrained (chapter 03 only) ----
def architecture_configs(P: Profile) -> list[Config]:
    """Every kind of :data:`tvae.config.MODELS` at each dim of :data:`ARCHITECTURE_DIMS`:
    chapter 03 builds them untrained, to count their parameters."""
    return [P.config(k, z) for z in ARCHITECTURE_DIMS for k in MODELS]


def illustrative_prior_configs(P: Profile) -> dict[str, Config]:
    """Affine-TVAE z 20 under four pose priors, ``{prior label: Config}``: chapter 03 builds
    their pose heads untrained and sets their weights by hand to illustrate the priors."""
    cfgs = [P.config("affine-tvae", MAIN_DIM, prior=p, rank=r)
            for p, r in (("identity-diag", None), ("mean-diag", None), ("reparam5-diag", None),
                         ("lowrank", 2))]
    return {prior_label(c): c for c in cfgs}


__all__ = ["PAPER_KINDS", "OUR_KINDS", "ALL_KINDS", "LABELS", "COLORS", "RAW_DIM", "MAIN_DIM",
           "MODERN_DIM", "MODERN_KINDS", "GENERATION_TOTALS", "AFFINE_PRIORS", "TPS_PRIORS",
           "ROT_KINDS", "MAP_KINDS", "AS_RUN_VAE_HIDDEN", "ARCHITECTURE_DIMS", "GROUPS", "label",
           "prior_label", "named", "main_models", "intro_model", "exp1_models", "table1_models",
           "table1_as_run_models", "modern_models", "generation_set",
           "generation_models", "pose_prior_sets", "pose_prior_models", "likelihood_models",
           "likelihood_set", "denoising_set", "denoising_models",
           "local_optima_set", "local_optima_models", "latent2d_models", "latent2d_set",
           "explorer_models", "rot_mnist_models", "model_groups", "needed_models",
           "architecture_configs", "illustrative_prior_configs", "INIT_ABLATION_KINDS",
           "init_ablation_models", "init_ablation_set"]
