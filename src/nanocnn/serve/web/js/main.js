// The page of `nanocnn serve`: a drawing pad, and the views of what the network makes of it. Each view is a
// module of views/ that names the API views it needs and renders an answer; this module sends the pad (or
// asks for a test image) and hands every answer to every view. Plain ES2020 modules, no dependencies.

import { api, busy, decode, showStatus } from "./api.js";
import { el } from "./dom.js";
import * as pad from "./pad.js";
import * as backward from "./views/backward.js";
import * as curves from "./views/curves.js";
import { showValue } from "./views/explain.js";
import * as input from "./views/input.js";
import * as layers from "./views/layers.js";
import * as playground from "./views/playground.js";
import * as prediction from "./views/prediction.js";
import * as saliency from "./views/saliency.js";
import * as teach from "./views/teach.js";

const VIEWS = [prediction, input, saliency, layers];
const WANTED = [...new Set(VIEWS.flatMap((view) => view.views))];   // what to ask the API for
const $ = (id) => document.getElementById(id);
const state = {
  info: null,          // GET /api/info
  generation: 0,       // bumped by Clear and by loading a test image: older answers are dropped
  busy: false,         // a /api/predict request is in flight (one at a time)
  again: false,        // the pad changed meanwhile: send it once the answer is in
  rank: -1,            // the last mistake shown
  request: null,       // what the views show, as the API takes it: the drawing sent, or {sample: index}
  result: null,        // the answer they show
};

// Show an answer in every view; when it is the latest (no newer drawing on its way), the backward and teach
// views follow it with requests of their own.
function render(result, request) {
  state.result = result;
  state.request = result.blank ? null : request;
  for (const view of VIEWS) view.render(result);
  resetExplanation();
  if (!state.again) {
    backward.update(state.request);
    teach.update(state.request);
  }
}

function resetExplanation() {
  $("explain").replaceChildren(el("h3", {}, "How this number was computed"), el("p", { className: "note" },
    state.request ? "Pick a number in any layer: its window, weights and sums appear here, with the numbers the layers used." :
      "Draw a digit (or pick a test image), then pick any number of any layer."));
}

// A cell picked in the strip: ask the server how it was computed, and show it beside the strip.
async function explain(layer, position) {
  if (!state.request) return;
  const panel = $("explain");
  try {
    showValue(panel, await api("/api/explain", { ...state.request, layer, position }), state.result);
    if (panel.getBoundingClientRect().top > window.innerHeight) panel.scrollIntoView({ block: "nearest" });
  } catch (error) {
    panel.replaceChildren(el("p", { className: "status" }, error.message));
  }
}

// Send the pad when it changed: at most one request in flight, then the latest drawing.
function schedule() {
  if (!pad.isInked()) return;
  if (state.busy) {
    state.again = true;
    return;
  }
  state.busy = true;
  state.again = false;
  busy(true);
  const generation = state.generation;
  const drawing = { width: pad.SEND, height: pad.SEND, pixels: pad.pixels() };
  api("/api/predict", { ...drawing, views: WANTED })
    .then((result) => {
      if (generation === state.generation) render(result, drawing);
      showStatus("");
    })
    .catch((error) => showStatus(error.message))
    .finally(() => {
      state.busy = false;
      const more = state.again && pad.isInked();   // cleared meanwhile: nothing more to send
      state.again = false;
      if (more) schedule();
      else busy(false);
    });
}

function onStroke(starting) {
  if (starting && !$("sample-note").hidden) {   // drawing over a test image: the views now show a drawing
    $("sample-info").textContent = "";
    inputNote(false);
  }
  schedule();
}

async function loadSample(query, describe) {
  const generation = ++state.generation;
  state.again = false;                    // a drawing still waiting to be sent is replaced by the sample
  busy(true);
  try {
    const result = await api(`/api/sample?${query}&views=${WANTED.join(",")}`);
    if (generation !== state.generation) return;
    pad.drawImage(decode(result.input.image));
    render(result, { sample: result.index });
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

// Clear the pad and show the answer for nothing drawn: no prediction, an empty input.
function clearViews() {
  state.generation++;
  pad.clear();
  $("sample-info").textContent = "";
  inputNote(false);
  const [C, H, W] = state.info ? state.info.input_shape : [1, 28, 28];
  const zeros = btoa("\0".repeat(4 * C * H * W));   // base64 of C*H*W float32 zeros
  const image = { shape: [C, H, W], dtype: "float32", data: zeros };
  render({ prediction: null, probabilities: null, top: [], blank: true, ms: 0, input: { image },
    saliency: null, layers: null }, null);
}

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

$("playground").addEventListener("submit", (event) => event.preventDefault());

async function start() {
  pad.setUp(onStroke);
  layers.setUp({ onPick: explain });
  playground.setUp();
  curves.setUp();
  clearViews();
  try {
    const info = await api("/api/info");
    state.info = info;
    prediction.setUp(info);
    backward.setUp(info);
    teach.setUp(info);
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
