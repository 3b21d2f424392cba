"""Figures of the book. Every function draws with matplotlib and returns the
:class:`matplotlib.figure.Figure` it made (created through ``pyplot``, so ``plt.show()``
displays it in a notebook).

- :mod:`tvae.figures.images`: digits tiled in grids, rows and panels (one tiling,
  :func:`~tvae.figures.images.mosaic`), warp demonstrations, 2-d latent sweeps;
- :mod:`tvae.figures.diagrams`: the architectures' block diagrams;
- :mod:`tvae.figures.charts`: curves, maps and bars, with the figures of the experiments.

Everything is importable from ``tvae.figures`` itself (``import tvae.figures as tf``).
"""

from .charts import (
                     angle_scatter,
                     code_scatter,
                     grouped_bars,
                     plot_active_dims,
                     plot_gap_vs_kl,
                     plot_learning_curves,
                     plot_ll_vs_k,
                     plot_recon_vs_dim,
                     plot_table1,
                     spectra,
)
from .diagrams import architecture_diagram, architectures_overview, draw_architecture
from .images import (
                     SIDE,
                     apply_warp,
                     as_images,
                     control_grid_figure,
                     draw_lattice,
                     image_rows,
                     latent_sweep,
                     latent_sweeps,
                     mosaic,
                     panels,
                     reconstruction_rows,
                     sample_grid,
                     sweep_codes,
                     to_pixels,
                     warp_demo,
                     warp_map,
)

__all__ = ["SIDE", "as_images", "mosaic", "sample_grid", "image_rows", "panels", "reconstruction_rows",
           "to_pixels", "warp_map", "apply_warp", "draw_lattice", "warp_demo", "control_grid_figure",
           "draw_architecture", "architecture_diagram", "architectures_overview",
           "code_scatter", "sweep_codes", "latent_sweep", "latent_sweeps", "grouped_bars", "spectra",
           "angle_scatter", "plot_learning_curves", "plot_recon_vs_dim", "plot_active_dims",
           "plot_table1", "plot_gap_vs_kl", "plot_ll_vs_k"]
