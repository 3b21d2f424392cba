"""The seed rule: the one rule of every verdict of the book on a number or an ordering of the
paper (chapter 14 prints it, :data:`RULE`; :mod:`tvae.book.discussion` applies it to every claim,
chapter 05 to its initialisation ablation).

A number of ours is the mean over the profile's seeds, its spread the SD over
seeds (``n - 1`` in the denominator). *A paper number is reproduced* when it lies within
:data:`SPREAD_SDS` SDs of the difference of two independent estimates: ``|ours - paper| <= 2
sqrt(SD_seeds^2 + SD_paper^2)``, where ``SD_paper`` is the paper's own SD where it gives one (Table
1's CV SD) and 0 otherwise (:func:`within_spread`). *An ordering* "A better than B" is reproduced
when A's seed mean beats B's by more than 2 standard errors of the difference of the means,
``2 sqrt(SD_A^2 / n_A + SD_B^2 / n_B)``, not reproduced when B beats A by more than that, and
undecided between (:func:`order_verdict`); "A at least as good as B" is reproduced unless B beats A
by more than that. With one seed the seed SD is unknown: the spread counts it as 0, the verdict
is decided on the sign alone, and its evidence says that it rests on one seed and is not
decisive.
"""

from __future__ import annotations

import math

from .text import signed

REPRODUCED, PARTLY, NOT_REPRODUCED, UNTESTED = "reproduced", "partly", "not reproduced", "not testable here"
UNDECIDED = "within the seed spread"
"""An ordering whose seed means differ by less than 2 standard errors (see the seed rule)."""

SPREAD_SDS = 2.0
"""Width of the seed rule's spread in SDs: about a 95% band for a difference of two estimates."""

ONE_SEED = "rests on one seed, not decisive"
"""What a verdict's evidence says when it rests on one seed (the seed spread unknown)."""

RULE = (f"A paper number is *reproduced* when it lies within {SPREAD_SDS:g} SD of ours, the SD "
        "combining our SD over seeds with the paper's own SD where it gives one: |ours - paper| <= "
        f"{SPREAD_SDS:g} sqrt(SD_seeds^2 + SD_paper^2), ours being the mean over seeds. An ordering "
        "'A better than B' is *reproduced* when A's seed mean beats B's by more than "
        f"{SPREAD_SDS:g} standard errors of the difference, sqrt(SD_A^2/n_A + SD_B^2/n_B), *not "
        "reproduced* when B beats A by more than that, and *within the seed spread* otherwise; "
        "'A at least as good as B' is reproduced unless B beats A by more than that. With one "
        "seed the spread of the seeds is unknown: the verdict follows the paper's SD (numbers) "
        "or the sign (orderings) alone and says that it rests on one seed and is not decisive.")
"""The seed rule in one paragraph (chapter 14 prints it; the module docstring explains it)."""


def _nan0(x: float) -> float:
    return 0.0 if x is None or math.isnan(x) else float(x)


def spread(sd_seeds: float, paper_sd: float = math.nan) -> float:
    """Half-width of the seed rule's band: ``SPREAD_SDS * sqrt(SD_seeds^2 + SD_paper^2)``, an
    unknown (NaN) SD counting as 0."""
    return SPREAD_SDS * math.hypot(_nan0(sd_seeds), _nan0(paper_sd))


def within_spread(mean: float, sd_seeds: float, paper: float, paper_sd: float = math.nan) -> bool:
    """Whether the paper's number lies within :func:`spread` of our seed mean (the seed rule)."""
    return bool(abs(mean - paper) <= spread(sd_seeds, paper_sd))


def order_verdict(a: tuple[float, float, int], b: tuple[float, float, int], *,
                  strict: bool = True, higher_is_better: bool = True) -> tuple[str, str]:
    """The seed rule on the claim 'A better than B' (``strict``) or 'A at least as good as B':
    ``a`` and ``b`` are ``(seed mean, SD over seeds, n seeds)``. Returns ``(verdict, evidence)``,
    the evidence naming the difference, the 2-SE threshold, and :data:`ONE_SEED` when either
    side has one seed."""
    diff = (a[0] - b[0]) * (1 if higher_is_better else -1)  # > 0: A better
    one = min(a[2], b[2]) < 2
    se = math.nan if one else math.sqrt(_nan0(a[1]) ** 2 / a[2] + _nan0(b[1]) ** 2 / b[2])
    return diff_verdict(diff, se, strict=strict)


def diff_verdict(diff: float, se: float, *, strict: bool = True) -> tuple[str, str]:
    """The seed rule on a difference ``diff`` (> 0: the claim's direction) with standard error
    ``se`` (NaN: one seed, decided on the sign alone): see :func:`order_verdict`."""
    one = math.isnan(se)
    thr = 0.0 if one else SPREAD_SDS * se
    if strict:
        verdict = REPRODUCED if diff > thr else (NOT_REPRODUCED if diff < -thr else UNDECIDED)
    else:
        verdict = REPRODUCED if diff >= -thr else NOT_REPRODUCED
    ev = f"difference {signed(diff, 2)} (better = positive)"
    ev += f", {ONE_SEED}" if one else f", 2 SE = {thr:.2f}"
    return verdict, ev


__all__ = ["REPRODUCED", "PARTLY", "NOT_REPRODUCED", "UNTESTED", "UNDECIDED", "SPREAD_SDS", "ONE_SEED",
           "RULE", "spread", "within_spread", "order_verdict", "diff_verdict"]
