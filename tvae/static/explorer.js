/*
 * tvae latent explorer: the models' decoders and warps, decoded in the browser.
 *
 * Written for the static book (no kernel, no server): plain JavaScript with typed arrays,
 * nothing fetched from the network. Model files (model-<name>.js, written by
 * tvae.explorer.write_static) register themselves in window.TVAE_MODELS and are loaded on
 * demand with <script> elements (which, unlike fetch/XHR, also work from file://), relative
 * to this script's own URL. window.TVAE_MANIFEST (manifest.js) lists them.
 *
 * Every element `.tvae-explorer[data-tvae-explorer]` on the page becomes an explorer.
 *
 * The decoder mirrors tvae.explorer.numpy_decode (and PyTorch's model.decode):
 *   y' = sigmoid(W3 relu(W2 relu(W1 z + b1) + b2) + b3)             (784 grey levels)
 *   x' = grid_sample(y', grid(u))  bilinear, under the model's sampling convention
 * (tvae.warps: "lasagne" = align_corners=True and border padding, the default; "torch" =
 * align_corners=False and zero padding; format-1 files, which name none, are "torch"),
 * with grid(u) = the affine map u (TVAE) or u^-1 (DTVAE) applied to the pixel centres, the TPS
 * basis B @ P (TPS-TVAE) or the TPS through the points P onto the control grid (TPS-DTVAE,
 * a (K+3) linear solve per draw).
 *
 * Test hooks: window.tvaeDecode(name, z, u) -> Promise<Array(784)> (x'),
 * window.tvaeExplorer.{load, decode, poseToU, instances, timings}.
 */
(function () {
  "use strict";
  if (window.tvaeExplorer && window.tvaeExplorer.version) { return; }

  var H = 28, W = 28, D = H * W, PX = W / 2, Z_RANGE = 3;
  var SCRIPT = document.currentScript;
  var BASE = SCRIPT && SCRIPT.src ? SCRIPT.src.replace(/[^/]*$/, "") : "";
  var prepared = {};   // name -> prepared model
  var loading = {};    // name -> Promise

  // ------------------------------------------------------------------ weights ----
  function b64bytes(s) {
    var bin = atob(s), n = bin.length, out = new Uint8Array(n);
    for (var i = 0; i < n; i++) { out[i] = bin.charCodeAt(i); }
    return out;
  }

  var F16 = null;
  function f16table() {
    if (F16) { return F16; }
    F16 = new Float32Array(65536);
    for (var h = 0; h < 65536; h++) {
      var sign = (h & 0x8000) ? -1 : 1, e = (h >> 10) & 31, f = h & 1023, v;
      if (e === 0) { v = f * Math.pow(2, -24); }
      else if (e === 31) { v = f ? NaN : Infinity; }
      else { v = (1 + f / 1024) * Math.pow(2, e - 15); }
      F16[h] = sign * v;
    }
    return F16;
  }

  function floats(b64, dtype) {
    var bytes = b64bytes(b64);
    if (dtype === "float32") { return new Float32Array(bytes.buffer); }
    if (dtype !== "float16") { throw new Error("unknown weight dtype " + dtype); }
    var half = new Uint16Array(bytes.buffer), t = f16table(), out = new Float32Array(half.length);
    for (var i = 0; i < half.length; i++) { out[i] = t[half[i]]; }
    return out;
  }

  function prepare(raw) {
    var m = {
      name: raw.name, label: raw.label, kind: raw.kind, warp: raw.warp, inverse: raw.inverse,
      aligned: (raw.sampling || "torch") === "lasagne",
      zdim: raw.zdim, pose: raw.pose, layers: [], grid: raw.grid || 0, check: raw.check,
      control: raw.control || null, reg: raw.tps_inverse_reg || 0, basis: raw.tps_basis ? floats(raw.tps_basis, "float32") : null,
      digits: raw.digits, digitImages: b64bytes(raw.digits.images)
    };
    for (var i = 0; i < raw.layers.length; i++) {
      var l = raw.layers[i];
      m.layers.push({nin: l["in"], nout: l.out, w: floats(l.w, raw.dtype), b: floats(l.b, raw.dtype),
                     h: new Float64Array(l.out)});
    }
    m.y = new Float64Array(D);
    m.x = new Float64Array(D);
    m.g = new Float64Array(2 * D);
    return m;
  }

  function load(name) {
    if (prepared[name]) { return Promise.resolve(prepared[name]); }
    if (loading[name]) { return loading[name]; }
    var reg = window.TVAE_MODELS || {};
    if (reg[name]) { prepared[name] = prepare(reg[name]); return Promise.resolve(prepared[name]); }
    var man = window.TVAE_MANIFEST, entry = null;
    if (man) { for (var i = 0; i < man.models.length; i++) { if (man.models[i].name === name) { entry = man.models[i]; } } }
    if (!entry) { return Promise.reject(new Error("unknown explorer model " + name)); }
    loading[name] = new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = BASE + entry.file;
      s.onload = function () {
        var r = (window.TVAE_MODELS || {})[name];
        if (!r) { reject(new Error(entry.file + " did not define model " + name)); return; }
        prepared[name] = prepare(r);
        resolve(prepared[name]);
      };
      s.onerror = function () { delete loading[name]; reject(new Error("could not load " + s.src)); };
      document.head.appendChild(s);
    });
    return loading[name];
  }

  // ------------------------------------------------------------------ decoder ----
  function decodeUpright(m, z) {
    var h = z, L = m.layers;
    for (var li = 0; li < L.length; li++) {
      var l = L[li], out = l.h, nin = l.nin, nout = l.nout, w = l.w, o;
      for (o = 0; o < nout; o++) { out[o] = l.b[o]; }
      for (var i = 0; i < nin; i++) {
        var hi = h[i];
        if (hi === 0) { continue; }
        var row = i * nout;
        for (o = 0; o < nout; o++) { out[o] += hi * w[row + o]; }
      }
      if (li < L.length - 1) { for (o = 0; o < nout; o++) { if (out[o] < 0) { out[o] = 0; } } }
      h = out;
    }
    for (var p = 0; p < D; p++) { m.y[p] = 1 / (1 + Math.exp(-h[p])); }
    return m.y;
  }

  function invertAffine(t) {
    var a = t[0], b = t[1], c = t[3], d = t[4], det = a * d - b * c;
    var ia = d / det, ib = -b / det, ic = -c / det, id = a / det;
    return [ia, ib, -(ia * t[2] + ib * t[5]), ic, id, -(ic * t[2] + id * t[5])];
  }

  function radial(d2) { return d2 * Math.log(Math.max(d2, 1e-20)); }

  // Solve A X = B in place (n x n, n x k), Gaussian elimination with partial pivoting.
  function solve(A, B, n, k) {
    for (var c = 0; c < n; c++) {
      var piv = c, best = Math.abs(A[c * n + c]), r, j;
      for (r = c + 1; r < n; r++) { var v = Math.abs(A[r * n + c]); if (v > best) { best = v; piv = r; } }
      if (best === 0) { throw new Error("singular TPS system"); }
      if (piv !== c) {
        for (j = 0; j < n; j++) { var t = A[c * n + j]; A[c * n + j] = A[piv * n + j]; A[piv * n + j] = t; }
        for (j = 0; j < k; j++) { var t2 = B[c * k + j]; B[c * k + j] = B[piv * k + j]; B[piv * k + j] = t2; }
      }
      for (r = c + 1; r < n; r++) {
        var f = A[r * n + c] / A[c * n + c];
        if (f === 0) { continue; }
        for (j = c; j < n; j++) { A[r * n + j] -= f * A[c * n + j]; }
        for (j = 0; j < k; j++) { B[r * k + j] -= f * B[c * k + j]; }
      }
    }
    for (var c2 = n - 1; c2 >= 0; c2--) {
      for (var j2 = 0; j2 < k; j2++) {
        var s = B[c2 * k + j2];
        for (var jj = c2 + 1; jj < n; jj++) { s -= A[c2 * n + jj] * B[jj * k + j2]; }
        B[c2 * k + j2] = s / A[c2 * n + c2];
      }
    }
    return B;
  }

  // Normalised coordinate of the centre of pixel i of n (tvae.warps.pixel_coords).
  function centre(m, i, n) { return m.aligned ? -1 + 2 * i / (n - 1) : (2 * i + 1) / n - 1; }

  // Where each output pixel samples y': m.g = [x0, y0, x1, y1, ...] in normalised coordinates.
  function samplingGrid(m, u) {
    var g = m.g, p, i, j;
    if (m.warp === "affine") {
      var t = m.inverse ? invertAffine(u) : u;
      for (i = 0; i < H; i++) {
        var gy = centre(m, i, H);
        for (j = 0; j < W; j++) {
          var gx = centre(m, j, W);
          p = i * W + j;
          g[2 * p] = t[0] * gx + t[1] * gy + t[2];
          g[2 * p + 1] = t[3] * gx + t[4] * gy + t[5];
        }
      }
      return g;
    }
    var K = m.grid * m.grid, B = m.basis, k;
    if (!m.inverse) {
      for (p = 0; p < D; p++) {
        var sx = 0, sy = 0;
        for (k = 0; k < K; k++) { sx += B[p * K + k] * u[2 * k]; sy += B[p * K + k] * u[2 * k + 1]; }
        g[2 * p] = sx; g[2 * p + 1] = sy;
      }
      return g;
    }
    // TPS through the points P = u onto the control grid (tvae.warps.tps_grid_between), with
    // the model's ridge on the kernel block (tvae.warps.TPS_INVERSE_REG).
    var n = K + 3, A = new Float64Array(n * n), R = new Float64Array(n * 2), a, b;
    for (a = 0; a < K; a++) {
      for (b = 0; b < K; b++) {
        var dx = u[2 * a] - u[2 * b], dy = u[2 * a + 1] - u[2 * b + 1];
        A[a * n + b] = radial(dx * dx + dy * dy) + (a === b ? m.reg : 0);
      }
      A[a * n + K] = 1; A[a * n + K + 1] = u[2 * a]; A[a * n + K + 2] = u[2 * a + 1];
      A[K * n + a] = 1; A[(K + 1) * n + a] = u[2 * a]; A[(K + 2) * n + a] = u[2 * a + 1];
      R[2 * a] = m.control[2 * a]; R[2 * a + 1] = m.control[2 * a + 1];
    }
    var C = solve(A, R, n, 2);
    for (i = 0; i < H; i++) {
      var y0 = centre(m, i, H);
      for (j = 0; j < W; j++) {
        var x0 = centre(m, j, W), ox = C[2 * K] + C[2 * (K + 1)] * x0 + C[2 * (K + 2)] * y0;
        var oy = C[2 * K + 1] + C[2 * (K + 1) + 1] * x0 + C[2 * (K + 2) + 1] * y0;
        for (k = 0; k < K; k++) {
          var ex = x0 - u[2 * k], ey = y0 - u[2 * k + 1], r = radial(ex * ex + ey * ey);
          ox += r * C[2 * k]; oy += r * C[2 * k + 1];
        }
        p = i * W + j;
        g[2 * p] = ox; g[2 * p + 1] = oy;
      }
    }
    return g;
  }

  // tvae.warps.grid_sample: F.grid_sample(img, grid, mode="bilinear") with align_corners=True
  // and border padding (m.aligned: the coordinate is clamped into the image) or with
  // align_corners=False and zero padding (corners outside the image contribute 0).
  function gridSample(m, img, g, out) {
    for (var p = 0; p < D; p++) {
      var ix, iy;
      if (m.aligned) {
        ix = Math.min(Math.max((g[2 * p] + 1) / 2 * (W - 1), 0), W - 1);
        iy = Math.min(Math.max((g[2 * p + 1] + 1) / 2 * (H - 1), 0), H - 1);
      } else {
        ix = ((g[2 * p] + 1) * W - 1) / 2; iy = ((g[2 * p + 1] + 1) * H - 1) / 2;
      }
      var x0 = Math.floor(ix), y0 = Math.floor(iy), wx1 = ix - x0, wy1 = iy - y0;
      var wx0 = 1 - wx1, wy0 = 1 - wy1, v = 0;
      var inx0 = x0 >= 0 && x0 < W, inx1 = x0 + 1 >= 0 && x0 + 1 < W;
      if (y0 >= 0 && y0 < H) {
        if (inx0) { v += img[y0 * W + x0] * wx0 * wy0; }
        if (inx1) { v += img[y0 * W + x0 + 1] * wx1 * wy0; }
      }
      if (y0 + 1 >= 0 && y0 + 1 < H) {
        if (inx0) { v += img[(y0 + 1) * W + x0] * wx0 * wy1; }
        if (inx1) { v += img[(y0 + 1) * W + x0 + 1] * wx1 * wy1; }
      }
      out[p] = v;
    }
    return out;
  }

  // Decode z (dim z) and u (dim u) -> {y: upright y', x: output x'} (Float64Array views, reused).
  function decodeModel(m, z, u) {
    var y = decodeUpright(m, z);
    if (!m.warp) { return {y: y, x: y}; }
    return {y: y, x: gridSample(m, y, samplingGrid(m, u), m.x)};
  }

  // ------------------------------------------------------------------ pose ----
  // Slider values -> u (tvae.explorer.PoseSpec.to_u).
  function poseToU(m, values, residual) {
    var P = m.pose, i, j;
    if (P.kind === "none") { return []; }
    if (P.kind === "affine") {
      var a = values[0] * Math.PI / 180, c = Math.cos(a), s = Math.sin(a);
      var sx = Math.exp(values[1]), sy = Math.exp(values[2]), sh = values[3], px = P.px || PX;
      // M = R(a) [[sx, sx*sh], [0, sy]], R(a) = [[c, s], [-s, c]]
      var v = [c * sx, c * sx * sh + s * sy, values[4] / px, -s * sx, -s * sx * sh + c * sy, values[5] / px];
      return m.inverse ? v : invertAffine(v);
    }
    var u = P.u_mean.slice();
    for (i = 0; i < P.modes.length; i++) {
      var w = values[i] * P.mode_sd[i];
      for (j = 0; j < u.length; j++) { u[j] += w * P.modes[i][j]; }
    }
    if (residual) { for (j = 0; j < u.length; j++) { u[j] += residual[j]; } }
    return u;
  }

  function gauss() {
    var a = 1 - Math.random(), b = Math.random();
    return Math.sqrt(-2 * Math.log(a)) * Math.cos(2 * Math.PI * b);
  }

  function median(a) {
    if (!a.length) { return NaN; }
    var s = a.slice().sort(function (p, q) { return p - q; }), h = s.length >> 1;
    return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
  }

  // ------------------------------------------------------------------ UI ----
  var timings = [];
  var instances = [];

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function fmt(v, unit) { return (v >= 0 ? "+" : "") + v.toFixed(2) + (unit ? " " + unit : ""); }

  function Explorer(root) {
    this.root = root;
    this.scale = 6;
    this.model = null;
    this.z = []; this.values = []; this.residual = null; this.digit = -1;
    root.innerHTML = "";
    var man = window.TVAE_MANIFEST;
    if (!man || !man.models || !man.models.length) {
      root.appendChild(el("p", "tvx-error", "The explorer's model list (manifest.js) did not load."));
      return;
    }
    var top = el("div", "tvx-top");
    top.appendChild(el("label", null, "model "));
    this.select = el("select", "tvx-model");
    for (var i = 0; i < man.models.length; i++) {
      var o = el("option", null, man.models[i].label);
      o.value = man.models[i].name;
      this.select.appendChild(o);
    }
    top.appendChild(this.select);
    this.info = el("span", "tvx-info", "");
    top.appendChild(this.info);
    root.appendChild(top);

    var imgs = el("div", "tvx-images");
    this.cIn = this.figure(imgs, "input x");
    this.cY = this.figure(imgs, "upright y\u2032");
    this.cX = this.figure(imgs, "output x\u2032");
    root.appendChild(imgs);
    this.small = document.createElement("canvas");
    this.small.width = W; this.small.height = H;

    var ctl = el("div", "tvx-controls");
    var zc = el("div", "tvx-col"), pc = el("div", "tvx-col");
    zc.appendChild(el("div", "tvx-head", "shape z (prior SD)"));
    pc.appendChild(el("div", "tvx-head", "pose"));
    this.zBox = el("div"); this.poseBox = el("div");
    zc.appendChild(this.zBox); pc.appendChild(this.poseBox);
    ctl.appendChild(zc); ctl.appendChild(pc);
    root.appendChild(ctl);

    var btns = el("div", "tvx-buttons"), self = this;
    function button(label, fn) {
      var b = el("button", "tvx-button", label);
      b.type = "button";
      b.addEventListener("click", fn);
      btns.appendChild(b);
      return b;
    }
    this.bRandZ = button("random z", function () { self.randomZ(); });
    this.bRandPose = button("random pose", function () { self.randomPose(); });
    this.bReset = button("reset", function () { self.reset(); });
    btns.appendChild(el("label", null, " test digit "));
    this.digitSel = el("select", "tvx-digit");
    btns.appendChild(this.digitSel);
    this.bEncode = button("encode this test digit", function () { self.encode(+self.digitSel.value); });
    root.appendChild(btns);
    this.timing = el("div", "tvx-timing", "");
    root.appendChild(this.timing);
    this.select.addEventListener("change", function () { self.use(self.select.value); });
    this.ready = this.use(man.models[0].name);
  }

  Explorer.prototype.figure = function (parent, caption) {
    var f = el("figure", "tvx-figure"), c = el("canvas");
    c.width = W * this.scale; c.height = H * this.scale;
    f.appendChild(c);
    f.appendChild(el("figcaption", null, caption));
    parent.appendChild(f);
    return c;
  };

  Explorer.prototype.use = function (name) {
    var self = this;
    this.info.textContent = " loading\u2026";
    return load(name).then(function (m) {
      self.model = m;
      self.z = new Float64Array(m.zdim);
      self.values = m.pose.centre.slice();
      self.residual = null;
      self.digit = -1;
      self.buildSliders();
      self.digitSel.innerHTML = "";
      for (var i = 0; i < m.digits.n; i++) {
        var o = el("option", null, "#" + i + (m.digits.labels[i] >= 0 ? " (a " + m.digits.labels[i] + ")" : ""));
        o.value = i;
        self.digitSel.appendChild(o);
      }
      self.info.textContent = " dim z = " + m.zdim + (m.warp ? ", " + m.warp + " warp" +
        (m.inverse ? " (x\u2032 = T\u1d64\u207b\u00b9(y\u2032))" : " (x\u2032 = T\u1d64(y\u2032))") : ", no warp");
      self.redraw();
      return m;
    }, function (err) {
      self.info.textContent = " " + err.message;
      self.info.className = "tvx-info tvx-error";
      throw err;
    });
  };

  Explorer.prototype.slider = function (box, label, lo, hi, value, unit, onInput) {
    var row = el("label", "tvx-slider"), name = el("span", "tvx-name", label);
    var inp = el("input"), val = el("span", "tvx-val", fmt(value, unit));
    inp.type = "range"; inp.min = lo; inp.max = hi; inp.step = (hi - lo) / 600;
    inp.value = value;
    inp.addEventListener("input", function () {
      var v = +inp.value;
      val.textContent = fmt(v, unit);
      onInput(v);
    });
    row.appendChild(name); row.appendChild(inp); row.appendChild(val);
    box.appendChild(row);
    return {input: inp, label: val, unit: unit, lo: lo, hi: hi};
  };

  Explorer.prototype.buildSliders = function () {
    var self = this, m = this.model, P = m.pose, i;
    this.zBox.innerHTML = ""; this.poseBox.innerHTML = "";
    this.zSliders = []; this.poseSliders = [];
    for (i = 0; i < m.zdim; i++) {
      (function (k) {
        self.zSliders.push(self.slider(self.zBox, "z" + (k + 1), -Z_RANGE, Z_RANGE, 0, "", function (v) {
          self.z[k] = v; self.redraw();
        }));
      })(i);
    }
    for (i = 0; i < P.names.length; i++) {
      (function (k) {
        var unit = P.units[k], label = P.names[k];
        if (P.kind === "tps") { label += " (" + Math.round(100 * P.explained[k]) + "%)"; }
        self.poseSliders.push(self.slider(self.poseBox, label, P.lo[k], P.hi[k], P.centre[k], unit, function (v) {
          self.values[k] = v; self.redraw();
        }));
      })(i);
    }
    if (!P.names.length) { this.poseBox.appendChild(el("div", "tvx-note", "(the VAE has no pose)")); }
    this.bRandPose.disabled = !P.names.length;
  };

  Explorer.prototype.syncSliders = function () {
    function put(s, v) { s.input.value = v; s.label.textContent = fmt(v, s.unit); }
    for (var i = 0; i < this.zSliders.length; i++) { put(this.zSliders[i], this.z[i]); }
    for (var j = 0; j < this.poseSliders.length; j++) { put(this.poseSliders[j], this.values[j]); }
  };

  function clip(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }

  Explorer.prototype.randomZ = function () {
    for (var i = 0; i < this.z.length; i++) { this.z[i] = clip(gauss(), -Z_RANGE, Z_RANGE); }
    this.syncSliders(); this.redraw();
  };

  Explorer.prototype.randomPose = function () {
    var P = this.model.pose;
    for (var i = 0; i < this.values.length; i++) {
      this.values[i] = clip(P.centre[i] + P.sd[i] * gauss(), P.lo[i], P.hi[i]);
    }
    this.residual = null;
    this.syncSliders(); this.redraw();
  };

  Explorer.prototype.reset = function () {
    this.z.fill(0);
    this.values = this.model.pose.centre.slice();
    this.residual = null; this.digit = -1;
    this.syncSliders(); this.redraw();
  };

  Explorer.prototype.encode = function (i) {
    var d = this.model.digits;
    for (var k = 0; k < this.z.length; k++) { this.z[k] = clip(d.z[i][k], -Z_RANGE, Z_RANGE); }
    this.values = d.values[i].slice();
    this.residual = d.residual[i].length ? d.residual[i].slice() : null;
    this.digit = i;
    this.syncSliders(); this.redraw();
  };

  // Paint 28 x 28 grey levels img[offset + p] / max (clipped to [0, 1]; black when img is null)
  // into canvas, enlarged without smoothing.
  Explorer.prototype.paint = function (canvas, img, offset, max) {
    var ctx = this.small.getContext("2d"), data = ctx.createImageData(W, H), px = data.data;
    for (var p = 0; p < D; p++) {
      var v = img ? Math.round(255 * Math.min(1, Math.max(0, img[offset + p] / max))) : 0;
      px[4 * p] = v; px[4 * p + 1] = v; px[4 * p + 2] = v; px[4 * p + 3] = 255;
    }
    ctx.putImageData(data, 0, 0);
    var c = canvas.getContext("2d");
    c.imageSmoothingEnabled = false;
    c.drawImage(this.small, 0, 0, canvas.width, canvas.height);
  };

  Explorer.prototype.redraw = function () {
    var m = this.model;
    if (!m) { return NaN; }
    var t0 = performance.now();
    var u = poseToU(m, this.values, this.residual);
    var r = decodeModel(m, this.z, u);
    this.paint(this.cY, r.y, 0, 1);
    this.paint(this.cX, r.x, 0, 1);
    this.paint(this.cIn, this.digit >= 0 ? m.digitImages : null, this.digit * D, 255);
    var ms = performance.now() - t0;
    timings.push(ms);
    var clipped = false;
    for (var i = 0; i < this.z.length; i++) { if (Math.abs(this.z[i]) >= Z_RANGE) { clipped = true; } }
    this.timing.textContent = "redraw " + ms.toFixed(1) + " ms (median " + median(timings).toFixed(1) +
      " ms over " + timings.length + ")" + (clipped ? "; some z at the slider limit" : "");
    return ms;
  };

  function mountAll() {
    var nodes = document.querySelectorAll(".tvae-explorer[data-tvae-explorer]");
    for (var i = 0; i < nodes.length; i++) {
      if (!nodes[i].tvaeExplorer) { nodes[i].tvaeExplorer = new Explorer(nodes[i]); instances.push(nodes[i].tvaeExplorer); }
    }
  }

  // ------------------------------------------------------------------ API ----
  function decode(name, z, u) {
    return load(name).then(function (m) {
      var r = decodeModel(m, Float64Array.from(z), u && u.length ? Array.prototype.slice.call(u) : m.pose.u_mean);
      return {y: Array.from(r.y), x: Array.from(r.x)};
    });
  }

  window.tvaeExplorer = {
    version: 1, load: load, decode: decode, instances: instances, timings: timings, mountAll: mountAll,
    poseToU: function (name, values, residual) {
      return load(name).then(function (m) { return poseToU(m, values, residual || null); });
    }
  };
  window.tvaeDecode = function (name, z, u) { return decode(name, z, u).then(function (r) { return r.x; }); };

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", mountAll); }
  else { mountAll(); }
})();
