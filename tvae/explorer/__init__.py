"""Latent explorer: move ``z`` and the pose ``u`` by hand and watch the decoder draw.

Two front ends share one description of each model (:class:`ExplorerModel`):

- :func:`show` builds an ipywidgets explorer for a live Jupyter kernel (:mod:`.widget`).
  Decoding runs in PyTorch on the CPU.
- :func:`write_static` exports each model's decoder and warp to a JavaScript file beside
  ``explorer.js``, the decoder written in plain JavaScript (``tvae/static/``), so that the
  rendered book decodes in the reader's browser with no kernel and no server (:mod:`.export`);
  :func:`static_html` is the HTML block that mounts it.

The modules, each importable on its own, everything importable from ``tvae.explorer``:

- :mod:`tvae.explorer.pose`: the pose sliders in meaningful terms (:class:`PoseSpec`: affine
  rotation, scales, shear and shift; TPS principal modes), :func:`prepare`, :func:`decode_pair`,
  :func:`pose_table`;
- :mod:`tvae.explorer.traversals`: ``z`` and pose sweeps, their ink geometry and figure;
- :mod:`tvae.explorer.export`: the static explorer's files (weights, manifest, HTML);
- :mod:`tvae.explorer.numpy_decoder`: :func:`numpy_decode`, the exported decoder in numpy, the
  reference that the JavaScript mirrors line by line (the browser test compares both with
  ``model.decode``);
- :mod:`tvae.explorer.widget`: the Jupyter explorer (:class:`Explorer`, :func:`show`).
"""

from .export import (
                     EXPORT_FORMAT,
                     STATIC_FILES,
                     export_model,
                     model_file_name,
                     model_js,
                     read_model_js,
                     standalone_page,
                     static_html,
                     summary_frame,
                     write_static,
)
from .numpy_decoder import (
                            export_arrays,
                            export_sampling,
                            grid_sample_np,
                            numpy_decode,
                            pixel_grid_np,
                            sampling_grid_np,
)
from .pose import (
                   AFFINE_HALF_RANGE,
                   AFFINE_NAMES,
                   AFFINE_UNITS,
                   POSE_SD_RANGE,
                   PX,
                   TPS_MODES,
                   D,
                   ExplorerModel,
                   H,
                   PoseSpec,
                   W,
                   affine_params_from_matrix,
                   decode_pair,
                   encode_poses,
                   invert_affine_np,
                   matrix_from_affine_params,
                   pixels_per_unit,
                   pose_spec,
                   pose_table,
                   prepare,
)
from .traversals import (
                         image_geometry,
                         plot_traversals,
                         pose_row_labels,
                         pose_traversal,
                         traversal_geometry,
                         z_traversal,
)
from .widget import Z_RANGE, Explorer, png_bytes, show

__all__ = ["ExplorerModel", "PoseSpec", "Explorer", "show", "prepare", "pose_spec", "pose_table",
           "decode_pair", "z_traversal", "pose_traversal", "plot_traversals", "export_model", "export_arrays",
           "numpy_decode", "model_js", "read_model_js", "write_static", "static_html",
           "standalone_page", "affine_params_from_matrix", "matrix_from_affine_params", "png_bytes",
           "summary_frame", "image_geometry", "traversal_geometry",
           # also reached as attributes by the tests and chapters
           "AFFINE_HALF_RANGE", "AFFINE_NAMES", "AFFINE_UNITS", "D", "EXPORT_FORMAT", "H", "PX",
           "POSE_SD_RANGE", "STATIC_FILES", "TPS_MODES", "W", "Z_RANGE", "encode_poses",
           "export_sampling", "grid_sample_np", "invert_affine_np", "model_file_name",
           "pixel_grid_np", "pixels_per_unit", "pose_row_labels", "sampling_grid_np"]
