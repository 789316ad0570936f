// The page of `nanocnn serve`: a drawing pad for mouse, pen and touch, and the views the JSON API returns
// (prediction, probabilities, prepared input, saliency, feature maps). Plain ES2020, no dependencies.
"use strict";

const PAD = 280;       // the pad's side in CSS pixels (narrow screens shrink it; strokes scale with it)
const STROKE = 20;     // pen width in pad CSS pixels: a digit as tall as the pad then has MNIST's proportions
const SEND = 140;      // the drawing goes to the server as SEND x SEND grey pixels
const INK = "#111";

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const ctx = pad.getContext("2d");
const state = {
  info: null,          // GET /api/info
  inked: false,        // anything on the pad (a stroke or a test image)?
  generation: 0,       // bumped by Clear and by loading a test image: older answers are dropped
  busy: false,         // a /api/predict request is in flight (one at a time)
  again: false,        // the pad changed meanwhile: send it once the answer is in
  rank: -1,            // the last mistake shown
  last: null,          // the stroke's last point, in canvas pixels; null between strokes
  featureCells: [],    // per conv layer, its canvases (made once: the shapes never change)
};

// ---- the pad -------------------------------------------------------------------------------------

function setUpPad() {
  const scale = Math.min(window.devicePixelRatio || 1, 3);
  pad.width = pad.height = Math.round(PAD * scale);   // sharp strokes on high-density screens
  clearPad();
}

function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  state.inked = false;
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}

function line(from, to) {
  ctx.strokeStyle = INK;
  ctx.lineWidth = STROKE * pad.width / PAD;
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(from[0], from[1]);
  ctx.lineTo(to[0], to[1]);
  ctx.stroke();
  state.inked = true;
}

pad.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  event.preventDefault();                 // with touch-action: none in the CSS, a stroke never scrolls
  pad.setPointerCapture(event.pointerId);
  state.last = point(event);
  line(state.last, state.last);           // a tap leaves a dot
  if (!$("sample-note").hidden) {         // drawing over a test image: the views now show a drawing
    $("sample-info").textContent = "";
    inputNote(false);
  }
  schedule();
});

pad.addEventListener("pointermove", (event) => {
  if (state.last === null) return;
  event.preventDefault();
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const e of events.length ? events : [event]) {   // every sample of a fast stroke, not one per frame
    const p = point(e);
    line(state.last, p);
    state.last = p;
  }
  schedule();
});

for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => {
    if (state.last === null) return;
    state.last = null;
    schedule();
  });
}

// The pad's pixels, downscaled to SEND x SEND, as grey values row by row.
function padPixels() {
  const small = document.createElement("canvas");
  small.width = small.height = SEND;
  const sctx = small.getContext("2d", { willReadFrequently: true });
  sctx.imageSmoothingQuality = "high";
  sctx.drawImage(pad, 0, 0, SEND, SEND);
  const rgba = sctx.getImageData(0, 0, SEND, SEND).data;
  const grey = new Array(SEND * SEND);
  for (let i = 0; i < grey.length; i++) grey[i] = rgba[4 * i];   // the pad is grey: red is the grey value
  return grey;
}

// ---- talking to the server -----------------------------------------------------------------------

async function api(path, body) {
  const options = body === undefined ? {} :
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error("the server does not answer: is nanocnn serve still running?");
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || `the server answered ${response.status}`);
  return answer;
}

// aria-busy on the prediction card: true while an answer is awaited (screen readers, and tests, wait for it).
function busy(on) {
  $("prediction-card").setAttribute("aria-busy", on ? "true" : "false");
}

function showStatus(message) {
  const status = $("status");
  status.textContent = message || "";
  status.hidden = !message;
}

// Send the pad when it changed: at most one request in flight, then the latest drawing.
function schedule() {
  if (!state.inked) return;
  if (state.busy) {
    state.again = true;
    return;
  }
  state.busy = true;
  state.again = false;
  busy(true);
  const generation = state.generation;
  api("/api/predict", { width: SEND, height: SEND, pixels: padPixels() })
    .then((result) => {
      if (generation === state.generation) render(result);
      showStatus("");
    })
    .catch((error) => showStatus(error.message))
    .finally(() => {
      state.busy = false;
      const more = state.again && state.inked;   // cleared meanwhile: nothing more to send
      state.again = false;
      if (more) schedule();
      else busy(false);
    });
}

async function loadSample(query, describe) {
  const generation = ++state.generation;
  state.again = false;                    // a drawing still waiting to be sent is replaced by the sample
  busy(true);
  try {
    const result = await api(`/api/sample?${query}`);
    if (generation !== state.generation) return;
    drawOnPad(result.input);
    render(result);
    $("sample-info").textContent = describe(result);
    inputNote(true);
    showStatus("");
  } catch (error) {
    showStatus(error.message);
  } finally {
    if (!state.busy) busy(false);
  }
}

// The input's caption: how a drawing is prepared, or that a test image comes prepared.
function inputNote(sample) {
  $("drawing-note").hidden = sample;
  $("sample-note").hidden = !sample;
}

// A test image on the pad, dark on white like the strokes, so that it can be drawn over.
function drawOnPad(rows) {
  const H = rows.length, W = rows[0].length;
  const small = document.createElement("canvas");
  small.width = W;
  small.height = H;
  const sctx = small.getContext("2d");
  const image = sctx.createImageData(W, H);
  rows.flat().forEach((v, i) => {
    const grey = Math.round(255 * (1 - v));
    image.data.set([grey, grey, grey, 255], 4 * i);
  });
  sctx.putImageData(image, 0, 0);
  clearPad();
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(small, 0, 0, pad.width, pad.height);
  state.inked = true;
}

// ---- the views -----------------------------------------------------------------------------------

// 0.98765 -> "98.8%"; the ends read ">99.9%" and "<0.1%" (a network is never 100% sure, nor 0%).
const percent = (p) => (p >= 0.9995 ? ">99.9%" : p < 0.0005 ? (p > 0 ? "<0.1%" : "0%") : `${(100 * p).toFixed(1)}%`);

function makeBars(K) {
  const list = $("probabilities");
  list.replaceChildren();
  for (let k = 0; k < K; k++) {
    const row = document.createElement("div");
    row.className = "bar-row";
    row.setAttribute("role", "listitem");
    row.innerHTML = '<span class="class"></span><span class="track"><span class="bar"></span></span><span class="pct"></span>';
    row.querySelector(".class").textContent = String(k);
    list.append(row);
  }
}

function render(result) {
  const K = state.info ? state.info.num_classes : (result.probabilities || []).length;
  if ($("probabilities").children.length !== K) makeBars(K);
  $("prediction").textContent = result.prediction === null ? "" : String(result.prediction);
  const top = result.top || [];
  $("confidence").textContent = result.prediction === null ? "Nothing drawn: no prediction." :
    `${percent(top[0].probability)} sure` +
    (top.length > 1 ? `; next: ${top.slice(1).map((t) => `${t.class} (${percent(t.probability)})`).join(", ")}` : "");
  [...$("probabilities").children].forEach((row, k) => {
    const p = result.probabilities ? result.probabilities[k] : 0;
    row.querySelector(".bar").style.width = `${(100 * p).toFixed(2)}%`;
    row.querySelector(".pct").textContent = result.probabilities ? percent(p) : "";
    row.classList.toggle("top", k === result.prediction);
    row.setAttribute("aria-label", `class ${k}: ${percent(p)}`);
  });
  $("timing").textContent = result.prediction === null ? "" : `Computed in ${result.ms.toFixed(1)} ms.`;
  paintInput(result.input);
  paintSaliency(result.input, result.saliency);
  paintFeatures(result.features);
}

function paint(canvas, W, H, colour) {   // colour(i) -> [r, g, b] for pixel i, row by row
  canvas.width = W;
  canvas.height = H;
  const c = canvas.getContext("2d");
  const image = c.createImageData(W, H);
  for (let i = 0; i < W * H; i++) image.data.set([...colour(i), 255], 4 * i);
  c.putImageData(image, 0, 0);
}

function paintInput(rows) {
  const flat = rows.flat();
  paint($("input"), rows[0].length, rows.length, (i) => {
    const g = Math.round(255 * flat[i]);
    return [g, g, g];
  });
}

// The input dimmed to grey, then red where the gradient is positive and blue where negative. The values are
// the gradient divided by its largest magnitude, in [-1, 1]; a raw gradient is speckled with small values,
// so those under 0.08 are left out and the colour is full from 0.5 up.
function paintSaliency(rows, saliency) {
  const flat = rows.flat(), values = saliency ? saliency.values.flat() : null;
  paint($("saliency"), rows[0].length, rows.length, (i) => {
    const base = 25 + 70 * flat[i];
    const v = values ? values[i] : 0, a = Math.min(1, Math.max(0, (Math.abs(v) - 0.08) / 0.42));
    const hue = v > 0 ? [255, 70, 50] : [60, 150, 255];
    return hue.map((h) => Math.round(base + (h - base) * a));
  });
}

// magma, as the feature-map plots use: (position, [r, g, b]) stops, interpolated.
const MAGMA = [[0, [0, 0, 4]], [0.25, [80, 18, 123]], [0.5, [183, 55, 121]], [0.75, [252, 137, 97]], [1, [252, 253, 191]]];
const MAGMA_LUT = Array.from({ length: 256 }, (_, v) => {
  const t = v / 255;
  const j = Math.min(MAGMA.length - 2, Math.floor(t * (MAGMA.length - 1)));
  const [t0, c0] = MAGMA[j], [t1, c1] = MAGMA[j + 1];
  return c0.map((c, n) => Math.round(c + (c1[n] - c) * (t - t0) / (t1 - t0)));
});

function featureCells(features) {
  if (state.featureCells.length === features.length) return state.featureCells;
  const box = $("features");
  box.replaceChildren();
  state.featureCells = features.map((layer) => {
    const [F, H, W] = layer.shape;
    const section = document.createElement("section");
    section.className = "layer";
    const title = document.createElement("h3");
    title.textContent = `${layer.name}`;
    const shape = document.createElement("span");
    shape.className = "shape";
    shape.textContent = ` ${F} maps of ${H}\u00d7${W}`;
    title.append(shape);
    const grid = document.createElement("div");
    grid.className = "maps";
    grid.style.setProperty("--cell", `${W * Math.ceil(40 / W)}px`);   // a whole multiple: crisp pixels
    const cells = [];
    for (let f = 0; f < F; f++) {
      const canvas = document.createElement("canvas");
      canvas.width = W;
      canvas.height = H;
      canvas.title = `filter ${f}`;
      grid.append(canvas);
      cells.push(canvas);
    }
    section.append(title, grid);
    box.append(section);
    return cells;
  });
  return state.featureCells;
}

function paintFeatures(features) {
  if (!features) {   // a blank pad: dark squares, no maps
    for (const cells of state.featureCells) {
      for (const canvas of cells) {
        const c = canvas.getContext("2d");
        c.fillStyle = "#000004";
        c.fillRect(0, 0, canvas.width, canvas.height);
      }
    }
    return;
  }
  featureCells(features).forEach((cells, n) => {
    const [, H, W] = features[n].shape;
    const bytes = Uint8Array.from(atob(features[n].maps), (ch) => ch.charCodeAt(0));
    cells.forEach((canvas, f) => paint(canvas, W, H, (i) => MAGMA_LUT[bytes[f * H * W + i]]));
  });
}

function clearViews() {
  state.generation++;
  clearPad();
  $("sample-info").textContent = "";
  inputNote(false);
  const H = state.info ? state.info.input_shape[1] : 28, W = state.info ? state.info.input_shape[2] : 28;
  const zeros = Array.from({ length: H }, () => new Array(W).fill(0));
  render({ prediction: null, probabilities: null, top: [], input: zeros, saliency: null, features: null, ms: 0 });
}

// ---- start ---------------------------------------------------------------------------------------

$("clear").addEventListener("click", clearViews);
$("random").addEventListener("click", () => loadSample("kind=random",
  (r) => `Test image ${r.index.toLocaleString("en")}: label ${r.label}, predicted ${r.prediction}` +
    (r.label === r.prediction ? " (right)" : " (wrong)")));
$("mistake").addEventListener("click", () => {
  state.rank = (state.rank + 1) % state.info.samples.mistakes;
  loadSample(`kind=mistake&rank=${state.rank}`, (r) =>
    `Mistake ${r.rank + 1} of ${r.mistakes} (most confident first): test image ${r.index.toLocaleString("en")}, ` +
    `label ${r.label}, predicted ${r.prediction}`);
});

async function start() {
  setUpPad();
  clearViews();
  try {
    const info = await api("/api/info");
    state.info = info;
    makeBars(info.num_classes);
    clearViews();
    const [C, H, W] = info.input_shape;
    $("model-line").textContent = `Model ${info.model}: ${info.parameters.toLocaleString("en")} parameters, ` +
      `${C}\u00d7${H}\u00d7${W} input, ${info.num_classes} classes` + (info.samples ?
      `; ${(100 * info.samples.accuracy).toFixed(2)}% right on ${info.samples.count.toLocaleString("en")} test ` +
      `images of ${info.samples.source}` : "; no test images (nanocnn serve --data PATH)") + ".";
    $("summary").textContent = info.summary;
    if (info.samples) {
      $("random").disabled = false;
      $("random").title = `A random image of the ${info.samples.count.toLocaleString("en")} test images`;
      $("mistake").disabled = info.samples.mistakes === 0;
      $("mistake").title = `The model's ${info.samples.mistakes} wrong answers, most confident first`;
    }
  } catch (error) {
    showStatus(error.message);
  }
}

start();
