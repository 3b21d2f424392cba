/* tvae-book: let long column names of output tables break after an underscore ("paper_cv_mean"
 * -> "paper_/cv_/mean") so that wide tables fit the content column (see tvae.css). Only text
 * nodes of header cells are touched. */
document.addEventListener("DOMContentLoaded", () => {
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
});
