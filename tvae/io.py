"""Files: atomic writes, checkpoints and result tables.

Every file tvae writes (checkpoints, CSVs, IDX files, PNGs, the explorer's JavaScript) goes
through :func:`atomic_path`: the content is written to a temporary file beside the target,
flushed to disk, then renamed over the target. A reader (another chapter under ``make -j``, a
resumed run) sees the old file or the new one, never a partial one, and a writer killed
mid-write leaves only a temporary file that the next write to the same target removes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import torch

from .errors import CheckpointError

FORMAT_VERSION = 1
"""Checkpoint format version; checkpoints of another version are refused."""


# -------------------------------------------------------------------- atomic writes ----
@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """``with atomic_path(target) as tmp: <write tmp>``: on a clean exit ``tmp`` is fsynced
    and renamed over ``target`` (created with its folders); on an exception it is removed and
    ``target`` is left as it was. ``tmp`` is ``.<name>.<pid>.tmp`` in the target's folder (the
    same file system, so the rename is atomic; the pid tells whose it is)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale_temps(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _sweep_stale_temps(path: Path) -> None:
    """Remove temporary files left beside ``path`` by writers that were killed mid-write."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            pid = int(tmp.name.rsplit(".", 2)[-2])
            os.kill(pid, 0)          # the writer is alive: leave its file alone
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, PermissionError):
            pass


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_path`)."""
    return write_bytes(path, text.encode("utf-8"))


# ---------------------------------------------------------------------- checkpoints ----
def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write ``state`` (a checkpoint dict) to ``path`` with ``torch.save``, atomically."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_weights(module: torch.nn.Module, state: dict, mismatch: str) -> torch.nn.Module:
    """Load a checkpoint's weights (``state["model"]``) into ``module`` and put it in eval mode.
    Missing or mismatched weights are a :class:`CheckpointError`: ``mismatch`` (what does not
    match, then the fix, separated by ``'; '``) with the cause (the error's first two lines: for
    ``load_state_dict``, its title and the first mismatched key) inserted before the fix."""
    try:
        module.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as e:
        what, _, fix = mismatch.partition("; ")
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()][:2]   # the title, then the
        cause = type(e).__name__ + (": " + " ".join(lines) if lines else "")   # first detail
        raise CheckpointError(f"{what} ({cause}); {fix}") from e
    return module.eval()


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load and check a checkpoint dict; :class:`CheckpointError` if missing, unreadable or of
    an unknown format version."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; train one with `tvae train "
                              "--out PATH` or check the path")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}); "
                              "delete it and train again") from e
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path} is not a tvae checkpoint; pass a file written by "
                              "`tvae train`")
    if state["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {state['format_version']}, "
                              f"this tvae reads version {FORMAT_VERSION}; retrain it with this "
                              "version of tvae")
    return state


# --------------------------------------------------------------------------- tables ----
def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` to ``path`` as CSV without the index, atomically (a chapter reading it under
    ``make -j`` never sees a half-written table)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return Path(path)


def read_csv(path: str | Path) -> pd.DataFrame | None:
    """The CSV at ``path`` as a DataFrame, or None when there is no such file."""
    path = Path(path)
    return pd.read_csv(path) if path.is_file() else None


__all__ = ["FORMAT_VERSION", "atomic_path", "write_bytes", "write_text", "save_checkpoint",
           "read_checkpoint", "write_csv", "read_csv"]
