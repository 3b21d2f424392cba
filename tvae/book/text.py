"""Small helpers for the sentences the chapters print (numbers formatted one way everywhere)."""

from __future__ import annotations

import math
from collections.abc import Iterable


def signed(x: float, digits: int = 1) -> str:
    """``x`` with its sign, e.g. ``+1.5`` or ``-0.25`` (``digits`` decimals)."""
    return f"{x:+.{digits}f}"


def pm(mean: float, sd: float | None, digits: int = 1) -> str:
    """``mean ± SD`` with ``digits`` decimals, e.g. ``'8.0 ± 1.0'``; just the mean when the SD is
    unknown (NaN or None: one seed)."""
    known = sd is not None and not math.isnan(sd)
    return f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if known else "")


def count(n: int, noun: str) -> str:
    """``'1 point'``, ``'3 points'``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def bullets(sentences: Iterable[str]) -> str:
    """Markdown bullet list, one sentence per item."""
    return "\n".join("- " + s for s in sentences)


__all__ = ["signed", "pm", "count", "bullets"]
