"""The static explorer's files: each model's decoder and warp exported to a JavaScript file that
the rendered book decodes in the reader's browser, with no kernel and no server.

:func:`write_static` writes, beside ``explorer.js`` (the decoder in plain JavaScript,
``tvae/static/``), one ``model-<name>.js`` per model (:func:`export_model`: weights as base64
float16, or float32 when float16 would move a pixel by more than ``tol``) and ``manifest.js``.
:func:`static_html` is the HTML block that mounts it; the assets are loaded by
``<script src>`` with relative URLs (no fetch/XHR), so the page also works from ``file://``.
"""

from __future__ import annotations

import base64
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from .. import warps
from ..book.registry import LABELS
from ..io import write_text
from ..models import DTVAE, VAE
from ..warps import control_grid, tps_basis
from .numpy_decoder import export_arrays, numpy_decode
from .pose import D, ExplorerModel, H, PoseSpec, W

EXPORT_FORMAT = 2
"""Version of the exported model files (``window.TVAE_MODELS[name]``). 2: the files name the
warp sampling convention (``sampling``, see :mod:`tvae.warps`); a format-1 file (none named)
used the ``torch`` convention."""

STATIC_FILES = ("explorer.js", "explorer.css")
"""The explorer's fixed assets in ``tvae/static/``, copied as they are by :func:`write_static`."""


def _linear_layers(model: VAE) -> list[nn.Linear]:
    """The decoder's Linear layers, checking the structure the exporters assume:
    ``Linear, ReLU, ..., Linear`` (a sigmoid follows in ``decode_upright``)."""
    mods = [m for m in model.decoder.modules() if not isinstance(m, nn.Sequential)]
    lin = [m for m in mods if isinstance(m, nn.Linear)]
    expected = []
    for i in range(len(lin)):
        expected.append(nn.Linear)
        if i < len(lin) - 1:
            expected.append(nn.ReLU)
    if [type(m) for m in mods] != expected or lin[-1].out_features != D:
        raise ValueError("unexpected decoder structure "
                         f"{[type(m).__name__ for m in mods]}; the explorer exports Linear/ReLU "
                         "stacks ending in a 784-unit Linear layer")
    return lin


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def _weights_json(model: VAE, dtype: str) -> list[dict]:
    np_dtype = {"float16": "<f2", "float32": "<f4"}[dtype]
    out = []
    for lin in _linear_layers(model):
        wt = lin.weight.detach().cpu().numpy().T.astype(np_dtype)     # (in, out) row-major
        out.append({"in": lin.in_features, "out": lin.out_features, "w": _b64(wt),
                    "b": _b64(lin.bias.detach().cpu().numpy().astype(np_dtype))})
    return out


def _check_vectors(em: ExplorerModel, digits_z: np.ndarray, digits_u: np.ndarray, n_random: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Test vectors ``(z, u)`` for the export's error check: the test digits' codes and
    ``n_random`` draws with ``z ~ N(0, I)`` and a pose from each slider's training spread."""
    rng = np.random.default_rng(seed)
    zs = [digits_z, rng.standard_normal((n_random, em.zdim))]
    spec = em.pose
    if spec.size:
        vals = spec.centre + spec.sd * rng.standard_normal((n_random, spec.size))
        vals = np.clip(vals, spec.lo, spec.hi)
        us = [digits_u, np.array([spec.to_u(v) for v in vals]).reshape(n_random, digits_u.shape[1])]
    else:
        us = [np.zeros((len(digits_z), 0)), np.zeros((n_random, 0))]
    return np.concatenate(zs), np.concatenate(us)


def _digits_json(spec: PoseSpec, digits: Tensor, labels: list[int] | None, dz: np.ndarray,
                 du: np.ndarray) -> dict:
    """The export's test digits ``(n, 784)``: their images (base64 uint8), ``labels`` (-1 when
    None), posterior-mean ``z`` ``dz``, posterior-mode ``u`` ``du`` and its slider ``values``
    and ``residual`` (:meth:`PoseSpec.from_u`)."""
    pairs = [spec.from_u(u) for u in du] if spec.size else [(np.zeros(0), np.zeros(0))] * len(dz)
    vals, res = [v for v, _ in pairs], [r for _, r in pairs]
    return {"n": len(dz), "images": _b64(np.round(digits.cpu().numpy() * 255).astype(np.uint8)),
            "labels": [int(v) for v in (labels if labels is not None else [-1] * len(dz))],
            "z": [[float(v) for v in r] for r in dz], "u": [[float(v) for v in r] for r in du],
            "values": [[float(v) for v in r] for r in vals],
            "residual": [[float(v) for v in r] for r in res]}


def _tps_json(model: VAE) -> dict:
    """What a TPS model's export adds (nothing for the others): the control ``grid`` size, the
    ``tps_basis`` ``(784, grid^2)`` (base64 float32), the ``control`` points and, for a DTVAE,
    the ridge of its inverse spline (:data:`tvae.warps.TPS_INVERSE_REG`)."""
    if not model.has_pose or model.warp.name != "tps":
        return {}
    g = model.config.grid
    out = {"grid": g,
           "tps_basis": _b64(tps_basis(g, H, W, model.config.sampling).numpy().astype("<f4")),
           "control": [float(v) for v in control_grid(g).reshape(-1)]}
    if isinstance(model, DTVAE):
        out["tps_inverse_reg"] = float(getattr(warps, "TPS_INVERSE_REG", 0.0))
    return out


def export_model(em: ExplorerModel, digits: Tensor, labels: list[int] | None = None, *,
                 dtype: str = "auto", tol: float = 0.5 / 255, n_random: int = 32,
                 seed: int = 0) -> dict:
    """Export ``em``'s decoder and warp to a JSON-ready dict (the payload of its JS file).

    Weights are stored transposed ``(in, out)`` row-major as base64 little-endian float16 or
    float32. ``dtype='auto'`` takes float16 when the exported decoder stays within ``tol`` (max
    abs grey-level error) of ``model.decode`` on the test vectors (the ``digits``' codes and
    ``n_random`` random draws), else float32. ``digits`` ``(n, 784)``: test digits offered by
    "encode test digit" (their images, posterior-mean ``z``, posterior-mode ``u`` and slider
    values are stored). The measured error is kept under ``check``.
    """
    model, spec = em.model, em.pose
    with torch.no_grad():
        post = model.encode(digits.cpu())
    dz = post.mu_z.double().numpy()
    du = post.u.double().numpy()
    base = {
        "format": EXPORT_FORMAT, "name": em.name, "label": em.label, "kind": model.config.model,
        "warp": model.warp.name if model.has_pose else None, "inverse": isinstance(model, DTVAE),
        "zdim": em.zdim, "sampling": model.config.sampling,
        "pose": spec.to_json(),
        "digits": _digits_json(spec, digits, labels, dz, du),
        **_tps_json(model),
    }
    zs, us = _check_vectors(em, dz, du, n_random, seed)
    with torch.no_grad():
        ref = model.decode(torch.as_tensor(zs, dtype=torch.float32),
                           torch.as_tensor(us, dtype=torch.float32) if model.has_pose else None
                           ).double().numpy()
    for cand in (["float16", "float32"] if dtype == "auto" else [dtype]):
        export = dict(base, dtype=cand, layers=_weights_json(model, cand))
        arrays = export_arrays(export)
        err = max(float(np.abs(numpy_decode(export, z, u, arrays)[1] - r).max())
                  for z, u, r in zip(zs, us, ref, strict=True))
        if err <= tol or cand == "float32":
            break
    export["check"] = {"max_abs_error": err, "vectors": len(zs), "tol": tol}
    return export


def model_js(export: dict) -> str:
    """The JavaScript file registering ``export`` as ``window.TVAE_MODELS[name]``."""
    return (f"/* tvae explorer model {export['name']} ({export['label']}), format {EXPORT_FORMAT}; "
            "written by tvae.explorer.write_static */\n"
            "(window.TVAE_MODELS = window.TVAE_MODELS || {})"
            f"[{json.dumps(export['name'])}] = {json.dumps(export, separators=(',', ':'))};\n")


def read_model_js(path: str | Path) -> dict:
    """Parse a file written by :func:`model_js` back into its export dict."""
    text = Path(path).read_text()
    start, end = text.index("= {") + 2, text.rindex("};") + 1
    return json.loads(text[start:end])


def model_file_name(name: str) -> str:
    """File name of a model's JS export, e.g. ``model-affine-tvae.js``."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return f"model-{safe}.js"


def write_static(models: dict[str, ExplorerModel], out_dir: str | Path, digits: Tensor,
                 labels: list[int] | None = None, *, dtype: str = "auto") -> dict[str, dict]:
    """Write the static explorer into ``out_dir``: ``explorer.js``, ``explorer.css``,
    ``manifest.js`` (the model list) and one ``model-<name>.js`` per model. ``digits``
    ``(n, 784)`` are the test digits offered by "encode test digit". Returns per model:
    ``file``, ``bytes`` (file size), ``weight_bytes`` (raw decoder weights), ``dtype``,
    ``params`` (decoder parameters) and ``max_abs_error`` (exported decoder vs ``model.decode``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for f in STATIC_FILES:
        write_text(out / f, resources.files("tvae").joinpath("static", f).read_text())
    summary, manifest = {}, []
    for name, em in models.items():
        exp = export_model(em, digits, labels, dtype=dtype)
        fname = model_file_name(name)
        write_text(out / fname, model_js(exp))
        params = sum(p.numel() for p in em.model.decoder.parameters())
        size = (out / fname).stat().st_size
        summary[name] = {"file": fname, "bytes": size, "dtype": exp["dtype"], "params": params,
                         "weight_bytes": params * (2 if exp["dtype"] == "float16" else 4),
                         "max_abs_error": exp["check"]["max_abs_error"]}
        manifest.append({"name": name, "label": em.label, "file": fname, "bytes": size,
                         "zdim": em.zdim})
    write_text(out / "manifest.js",
               "/* tvae explorer manifest, written by tvae.explorer.write_static */\n"
               f"window.TVAE_MANIFEST = {json.dumps({'format': EXPORT_FORMAT, 'models': manifest})};\n")
    return summary


def static_html(base_url: str = "explorer_static") -> str:
    """The HTML block mounting the static explorer; ``base_url`` is the (relative) URL of the
    folder written by :func:`write_static`."""
    tpl = resources.files("tvae").joinpath("static", "explorer.html").read_text()
    return tpl.replace("{base}", base_url.rstrip("/"))


def standalone_page(static_dir: str | Path, title: str = "tvae latent explorer") -> Path:
    """Write ``index.html`` beside ``static_dir`` (its parent folder) showing only the explorer;
    returns its path."""
    static_dir = Path(static_dir)
    page = static_dir.parent / "index.html"
    write_text(page, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                    "<link rel=\"icon\" href=\"data:,\">"
                    f"<title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n"
                    f"{static_html(static_dir.name)}\n</body></html>\n")
    return page


def summary_frame(summary: dict[str, dict]):
    """:func:`write_static`'s summary as a pandas DataFrame, one row per model: decoder
    parameters, storage dtype, raw weights and JS file sizes (kB), max abs error (grey levels,
    in units of 1/255) of the exported decoder against ``model.decode``."""
    return pd.DataFrame([{"model": LABELS.get(name, name), "decoder parameters": s["params"],
                          "stored as": s["dtype"], "weights (kB)": s["weight_bytes"] / 1000,
                          "JS file (kB)": s["bytes"] / 1000, "max error (x 1/255)": 255 * s["max_abs_error"]}
                         for name, s in summary.items()]).set_index("model")
