// The network at a glance: every layer's output for this input, in order, then the softmax. An output of
// C x H x W is C maps, each scaled to its own range (dark: lowest, bright: highest); a vector is one row of
// cells, blue for negative and red for positive values. Every cell can be picked to see how it was computed.

import { decode } from "../api.js";
import { el } from "../dom.js";
import { pickable } from "../cells.js";
import { diverging, fill, magma, paint } from "../paint.js";

export const views = ["layers"];

let built = "";        // the layers' shapes the cells were made for
let cells = [];        // per layer: {maps, canvases, pickers}
let onPick = () => {};

// onPick(layer index, position) is called when a learner picks a cell (the softmax: index = number of layers).
export function setUp(handlers) {
  onPick = handlers.onPick;
}

function describe(layer) {
  const shape = layer.shape;
  if (shape.length === 3) {
    const more = layer.channels < shape[0] ? ` (the first ${layer.channels} shown)` : "";
    return ` ${shape[0]} maps of ${shape[1]}\u00d7${shape[2]}${more}`;
  }
  return ` ${shape.reduce((a, b) => a * b, 1)} values`;
}

function build(layers) {
  const box = document.getElementById("features");
  box.replaceChildren();
  cells = layers.map((layer) => {
    const maps = layer.shape.length === 3;
    const title = el("h3", {}, `${layer.index}: ${layer.description}`, el("span", { className: "shape" }, describe(layer)));
    const grid = el("div", { className: maps ? "maps" : "vector" });
    const canvases = [], pickers = [];
    const count = maps ? layer.channels : 1;
    if (maps) grid.style.setProperty("--cell", `${layer.shape[2] * Math.ceil(40 / layer.shape[2])}px`);   // crisp
    for (let c = 0; c < count; c++) {
      const H = maps ? layer.shape[1] : 1, W = maps ? layer.shape[2] : layer.shape.reduce((a, b) => a * b, 1);
      const canvas = el("canvas", { width: W, height: H, title: maps ? `channel ${c}` : `${W} values` });
      grid.append(canvas);
      canvases.push(canvas);
      const name = maps ? `Layer ${layer.index}, channel ${c}` : `Layer ${layer.index}`;
      pickers.push(pickable(canvas, H, W, name, (position) => {
        select(layer.index, maps ? [c, ...position] : position);
        onPick(layer.index, maps ? [c, ...position] : position);
      }));
    }
    const section = el("section", { className: "layer" }, title, grid);
    if (!maps && layer.shape[0] <= 20) {   // a short row (the logits, the probabilities): name each cell
      section.append(el("div", { className: "ticks" }, ...Array.from({ length: layer.shape[0] }, (_, k) => el("span", {}, String(k)))));
    }
    box.append(section);
    return { maps, canvases, pickers };
  });
  built = JSON.stringify(layers.map((layer) => [layer.description, layer.shape]));
}

// Outline the picked cell (and only it) in the strip.
function select(index, position) {
  cells.forEach((layer, n) => layer.pickers.forEach((picker, c) => {
    if (n === index && (!layer.maps || c === position[0])) picker.select(layer.maps ? position.slice(1) : position);
    else picker.clear();
  }));
}

export function render(result) {
  if (!result.layers) {   // a blank pad: empty cells, no numbers
    for (const layer of cells) {
      layer.canvases.forEach((c) => fill(c, layer.maps ? "#000004" : "#ffffff"));
      layer.pickers.forEach((p) => p.clear());
    }
    return;
  }
  if (JSON.stringify(result.layers.map((layer) => [layer.description, layer.shape])) !== built) build(result.layers);
  result.layers.forEach((layer, n) => {
    const { maps, canvases } = cells[n];
    if (!layer.output) return;
    const out = decode(layer.output);
    if (maps) {
      const [, H, W] = layer.shape;
      canvases.forEach((canvas, c) => paint(canvas, W, H, magma(out.values, c * H * W, H * W)));
    } else {
      const limit = out.values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      paint(canvases[0], out.values.length, 1, (i) => diverging(out.values[i], limit));
    }
  });
}
