"""The book layer: what each chapter of ``book/`` computes, and the sentences it prints.

- :mod:`tvae.book.registry`: every model configuration of the book (the only place they are
  written), their display names and colours;
- :mod:`tvae.book.store`: the one accessor for a profile's data and trained models, and the
  one in-process memory (:func:`~tvae.book.store.remember`, :func:`~tvae.book.store.forget`);
- one module per chapter with computations: :mod:`~tvae.book.background` (02),
  :mod:`~tvae.book.architectures` (03), :mod:`~tvae.book.training` (04),
  :mod:`~tvae.book.latent_dimension` (05), :mod:`~tvae.book.reconstructions` (06),
  :mod:`~tvae.book.generation` (07), :mod:`~tvae.book.table1` (08),
  :mod:`~tvae.book.pose_priors` (09), :mod:`~tvae.book.variational_gap` (10),
  :mod:`~tvae.book.local_optima` (11), :mod:`~tvae.book.latent_map` (11, the 2-d latent map's
  page), :mod:`~tvae.book.rotated` (12), :mod:`~tvae.book.explorer_chapter` (13, putting
  :mod:`tvae.explorer` to work), :mod:`~tvae.book.discussion` (14, the verdicts on the paper's
  claims);
- :mod:`tvae.book.text`: number formatting shared by the sentences.

The seed rule of every verdict is in :mod:`tvae.book.seed_rule`, plots in :mod:`tvae.figures`,
file writing in :mod:`tvae.io`. The submodules are imported explicitly (``from tvae.book
import registry, store``), so that this package costs nothing to import until a chapter needs
a part of it.
"""
