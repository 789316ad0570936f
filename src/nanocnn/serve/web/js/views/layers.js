// The network at a glance: every layer's output for this input, in order. An output of C x H x W is C maps,
// each scaled to its own range (dark: lowest, bright: highest); a vector is one row of cells, blue for
// negative and red for positive values.

import { decode } from "../api.js";
import { diverging, fill, magma, paint } from "../paint.js";

export const views = ["layers"];

let built = "";        // the layers' shapes the cells were made for
let cells = [];        // per layer: {kind: "maps" | "vector", canvases}

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
    const section = document.createElement("section");
    section.className = "layer";
    const title = document.createElement("h3");
    title.textContent = `${layer.index}: ${layer.description}`;
    const shape = document.createElement("span");
    shape.className = "shape";
    shape.textContent = describe(layer);
    title.append(shape);
    const grid = document.createElement("div");
    const maps = layer.shape.length === 3;
    grid.className = maps ? "maps" : "vector";
    const canvases = [];
    const count = maps ? layer.channels : 1;
    if (maps) grid.style.setProperty("--cell", `${layer.shape[2] * Math.ceil(40 / layer.shape[2])}px`);   // crisp
    for (let c = 0; c < count; c++) {
      const canvas = document.createElement("canvas");
      canvas.width = maps ? layer.shape[2] : layer.shape.reduce((a, b) => a * b, 1);
      canvas.height = maps ? layer.shape[1] : 1;
      canvas.title = maps ? `channel ${c}` : `${layer.description}: ${canvas.width} values`;
      grid.append(canvas);
      canvases.push(canvas);
    }
    section.append(title, grid);
    box.append(section);
    return { maps, canvases };
  });
  built = JSON.stringify(layers.map((layer) => [layer.description, layer.shape]));
}

export function render(result) {
  if (!result.layers) {   // a blank pad: empty cells, no numbers
    for (const layer of cells) layer.canvases.forEach((c) => fill(c, layer.maps ? "#000004" : "#ffffff"));
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
