// Served with the ipywidgets JavaScript (book/widgets_js/), loaded before embed-amd.js.
//
// The ipywidgets html-manager typesets widget labels with the MathJax 2 API
// (MathJax.Hub.Queue) whenever window.MathJax exists, but Sphinx loads MathJax 3, which has no
// Hub: on a page with both equations and widgets the widgets fail with "Cannot read properties
// of undefined (reading 'Queue')". This gives MathJax 3 a minimal Hub.Queue that forwards to
// typesetPromise. The MathJax 3 object is created when its (deferred or async) script runs, so
// the global is watched rather than patched once; the configuration object that precedes it is
// left alone.
(function () {
  "use strict";
  var hub = {
    Queue: function (job) {
      var mj = window.MathJax;
      var el = job && job[2];
      var ready = (mj && mj.startup && mj.startup.promise) || Promise.resolve();
      ready.then(function () {
        if (mj && mj.typesetPromise) return mj.typesetPromise(el ? [el] : undefined);
      }).catch(function () {});
    },
  };
  function patch(mj) {
    if (mj && typeof mj === "object" && typeof mj.version === "string" &&
        mj.version.charAt(0) === "3" && !mj.Hub) {
      mj.Hub = hub;
    }
  }
  var current = window.MathJax;
  patch(current);
  try {
    Object.defineProperty(window, "MathJax", {
      configurable: true,
      enumerable: true,
      get: function () { return current; },
      set: function (value) { current = value; patch(value); },
    });
  } catch (e) { /* not configurable: leave it */ }
  // MathJax 3 fills in its global before setting it in some builds: patch once more when ready.
  document.addEventListener("DOMContentLoaded", function () { patch(window.MathJax); });
})();
