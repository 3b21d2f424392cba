/* tvae-book page layout helpers (loaded on every page by scripts/book_assets.py; see tvae.css).
 *
 * 1. Long column names of output tables may break after an underscore ("paper_cv_mean" ->
 *    "paper_/cv_/mean"), so that wide tables fit the content column. Only text nodes of header
 *    cells are touched.
 * 2. A table still wider than the content column marks its cell "tvae-wide": on wide screens
 *    the cell then also takes the right sidebar's width (tvae.css), as sphinx-book-theme's
 *    `full-width` cell tag does, measured instead of tagged by hand. Re-measured on resize.
 */
(() => {
  const tables = () => document.querySelectorAll("div.cell_output table");

  function breakHeaders() {
    for (const th of document.querySelectorAll("div.cell_output table thead th")) {
      for (const node of [...th.childNodes]) {
        if (node.nodeType !== Node.TEXT_NODE || !node.nodeValue.includes("_")) continue;
        const parts = node.nodeValue.split(/(?<=_)/);
        const frag = document.createDocumentFragment();
        parts.forEach((p, i) => {
          frag.append(p);
          if (i < parts.length - 1) frag.append(document.createElement("wbr"));
        });
        node.replaceWith(frag);
      }
    }
  }

  function widen() {
    const cells = new Set([...tables()].map(t => t.closest("div.cell")).filter(Boolean));
    for (const cell of cells) cell.classList.remove("tvae-wide");
    for (const cell of cells) {
      const column = cell.getBoundingClientRect().width;
      const widest = Math.max(...[...cell.querySelectorAll("div.cell_output table")]
        .map(t => t.getBoundingClientRect().width));
      if (widest > column + 1) cell.classList.add("tvae-wide");
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    breakHeaders();
    widen();
    let pending = null;
    window.addEventListener("resize", () => {
      clearTimeout(pending);
      pending = setTimeout(widen, 100);
    });
  });
})();
