// Backward, the article's other half: the loss for a label (the prediction, or one the learner picks), the
// gradient of that loss arriving at every layer's output and at the input, and every kernel's gradient, all
// from nanocnn's own backward pass. Red: raising that number would raise the loss; blue: lower it.

import { api, decode } from "../api.js";
import { pickable } from "../cells.js";
import { el, num } from "../dom.js";
import { diverging, paint } from "../paint.js";
import { showGradient } from "./explain.js";

const $ = (id) => document.getElementById(id);
let chosen = null;      // the label the learner picked; null: the prediction
let request = null;     // what to send for the current input: a drawing or {sample}
let generation = 0;

export function setUp(info) {
  const box = $("targets");
  box.replaceChildren(...Array.from({ length: info.num_classes }, (_, k) => {
    const button = el("button", { type: "button", className: "target" }, String(k));
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", () => { chosen = k; refresh(); });
    return button;
  }));
}

// A new input (or none): forget the picked label, and fetch the backward pass for it.
export function update(body) {
  request = body;
  chosen = null;
  refresh();
}

function gradientMaps(title, array, scale, onPick) {
  const g = decode(array), shape = array.shape;
  const maps = shape.length === 3, [C, H, W] = maps ? shape : [1, 1, shape[0]];
  const grid = el("div", { className: `${maps ? "maps" : "vector"} grads` });
  if (maps) grid.style.setProperty("--cell", `${W * Math.ceil(40 / W)}px`);
  for (let c = 0; c < C; c++) {
    const canvas = el("canvas", { title: maps ? `channel ${c}` : `${W} values` });
    paint(canvas, W, H, (i) => diverging(g.values[c * H * W + i], scale));
    grid.append(canvas);
    pickable(canvas, H, W, `${title}, channel ${c}`, (position) => onPick(maps ? [c, ...position] : position));
  }
  return el("section", { className: "layer" }, el("h3", {}, title), grid);
}

function kernels(parameter) {   // (F, C, KH, KW) as one grid: a column per filter, a row per input channel
  const [F, C, KH, KW] = parameter.shape, g = decode(parameter.gradient);
  const limit = g.values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const W = F * (KW + 1) - 1, H = C * (KH + 1) - 1;
  const canvas = el("canvas", { className: "kernels", role: "img", "aria-label": `gradient of ${parameter.name}` });
  paint(canvas, W, H, (i) => {
    const r = Math.floor(i / W), c = i % W, ch = Math.floor(r / (KH + 1)), kh = r % (KH + 1);
    const f = Math.floor(c / (KW + 1)), kw = c % (KW + 1);
    if (kh === KH || kw === KW) return [128, 128, 128];
    return diverging(g.values[((f * C + ch) * KH + kh) * KW + kw], limit);
  });
  const scale = Math.max(1, Math.floor(Math.min(600 / W, 360 / H)));   // whole CSS pixels per value: crisp
  canvas.style.width = `${W * scale}px`;
  return el("figure", {}, canvas, el("figcaption", {},
    `dL/d ${parameter.name}: ${F} filters (columns) × ${C} input channels (rows) of ${KH}×${KW}; norm ${num(parameter.norm)}`));
}

async function explain(layer, position, label) {
  const panel = $("backward-explain");
  try {
    showGradient(panel, await api("/api/explain", { ...request, layer, position, what: "gradient", label }));
  } catch (error) {
    panel.replaceChildren(el("p", { className: "status" }, error.message));
  }
}

function render(answer) {
  const label = answer.label;
  [...$("targets").children].forEach((b, k) => b.setAttribute("aria-pressed", String(k === label)));
  $("loss").textContent = `Loss for label ${label}: ${num(answer.loss)} (the network predicts ${answer.prediction}, ` +
    `p[${label}] = ${num(answer.probabilities[label])}).`;
  $("loss").dataset.loss = String(answer.loss);
  const image = decode(answer.input_gradient).values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const strip = [gradientMaps("dL/d input image", answer.input_gradient, image, (position) => explain(-1, position, label))];
  for (const g of answer.gradients) {
    if (!g.gradient) continue;
    strip.push(gradientMaps(`dL/d output of layer ${g.index} (${g.kind})`, g.gradient, g.scale, (position) => explain(g.index, position, label)));
  }
  $("gradients").replaceChildren(...strip);
  $("kernel-gradients").replaceChildren(...answer.parameters.filter((p) => p.shape.length === 4 && p.gradient).map(kernels));
}

async function refresh() {
  const mine = ++generation;
  if (!request) {
    $("loss").textContent = "Draw a digit (or pick a test image) to see its loss and gradients.";
    delete $("loss").dataset.loss;
    for (const id of ["gradients", "kernel-gradients", "backward-explain"]) $(id).replaceChildren();
    return;
  }
  try {
    const answer = await api("/api/backward", chosen === null ? request : { ...request, label: chosen });
    if (mine === generation) render(answer);
  } catch (error) {
    if (mine === generation) $("loss").textContent = error.message;
  }
}
