// How one number was computed: the panel that /api/explain's answers fill, forward (a layer's output) or backward
// (the loss's gradient at a layer's output). Every number in it is one the server's layers computed; the panel
// only lays them out, and its last line checks that the terms add up to the layer's own value.

import { decode } from "../api.js";
import { el, formula, num, numberTable } from "../dom.js";
import { diverging, paint } from "../paint.js";

const SMALL = 64;   // windows of up to 8 x 8 numbers are printed; larger ones drawn as heat maps

function heat(array, caption) {
  const [H, W] = array.shape.length === 2 ? array.shape : [1, array.shape[0]];
  const limit = array.values.reduce((m, v) => (Number.isFinite(v) ? Math.max(m, Math.abs(v)) : m), 0);
  const canvas = el("canvas", { className: "heat", title: caption, "aria-label": caption, role: "img" });
  paint(canvas, W, H, (i) => (Number.isFinite(array.values[i]) ? diverging(array.values[i], limit) : [90, 90, 110]));
  return el("figure", { className: "small" }, canvas, el("figcaption", {}, caption));
}

// values (H*W, from a layer's output or the input image) with the window (top, left, KH, KW) outlined; the zero
// padding around the map is drawn as a dark frame, PH rows and PW columns wide.
function windowOnMap(values, H, W, top, left, KH, KW, PH, PW, caption) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const canvas = el("canvas", { className: "heat", role: "img", "aria-label": caption });
  const Hp = H + 2 * PH, Wp = W + 2 * PW;
  paint(canvas, Wp, Hp, (i) => {
    const r = Math.floor(i / Wp) - PH, c = (i % Wp) - PW;
    const inside = r >= top && r < top + KH && c >= left && c < left + KW;
    if (r < 0 || r >= H || c < 0 || c >= W) return inside ? [120, 95, 20] : [35, 40, 60];   // the zero padding
    const g = Math.round(40 + (215 * (values[r * W + c] - lo)) / ((hi - lo) || 1));
    return inside ? [Math.min(255, g + 50), Math.min(255, g + 25), Math.round(g * 0.3)] : [g, g, g];   // window: amber
  });
  return el("figure", { className: "small" }, canvas, el("figcaption", {}, caption));
}

function grid(array) {   // a 2-D array as numbers when small, else as a heat map
  return array.values.length <= SMALL ? (caption, mark) => numberTable(array, caption, mark) : (caption) => heat(array, caption);
}

// The input of layer `index` in the last answer, channel c: {values, H, W}, or null when it was not sent.
function inputMap(result, index, c) {
  if (index === 0) {
    const image = decode(result.input.image);
    const [, H, W] = image.shape;
    return { values: image.values.subarray(c * H * W, (c + 1) * H * W), H, W };
  }
  const before = result.layers && result.layers[index - 1];
  if (!before || !before.output || before.shape.length !== 3 || c >= before.channels) return null;
  const [, H, W] = before.shape, out = decode(before.output);
  return { values: out.values.subarray(c * H * W, (c + 1) * H * W), H, W };
}

function receptiveField(result, field) {
  if (!field) return null;
  const image = decode(result.input.image);
  const [, H, W] = image.shape;
  const caption = `receptive field: rows ${field.top}-${field.bottom}, columns ${field.left}-${field.right} of the input`;
  return windowOnMap(image.values.subarray(0, H * W), H, W, field.top, field.left,
    field.bottom - field.top + 1, field.right - field.left + 1, 0, 0, caption);
}

function conv(a, result) {
  const t = a.terms, [KH, KW] = t.kernel, [, H, W] = t.input_shape, [PH, PW] = t.padding;
  const parts = [receptiveField(result, t.receptive_field)];
  t.channels.forEach((ch, n) => {
    const line = el("p", { className: "term" }, `input channel ${ch.channel}: Σ weight × input = `, el("strong", {}, num(ch.sum)));
    if (n >= 3 || !ch.window) { parts.push(line); return; }
    const window = decode(ch.window), weight = decode(ch.weight);
    const map = inputMap(result, a.layer, ch.channel);
    parts.push(line, el("div", { className: "row" },
      map ? windowOnMap(map.values, H, W, t.top, t.left, KH, KW, PH, PW, `the window on input channel ${ch.channel}`) : null,
      grid({ shape: [KH, KW], values: window.values })(`input window (rows ${t.top}.., columns ${t.left}..; 0: padding)`),
      grid({ shape: [KH, KW], values: weight.values })(`kernel [${a.position[0]}, ${ch.channel}]`)));
  });
  if (t.rest) parts.push(el("p", { className: "term" }, `${t.rest.count} more input channels: Σ = ${num(t.rest.sum)}`));
  parts.push(el("p", { className: "term" }, `+ bias ${num(t.bias)}`));
  return parts;
}

function maxPool(a, result) {
  const t = a.terms, window = decode(t.window), [KH, KW] = t.kernel;
  const [wr, wc] = t.winner;
  return [
    receptiveField(result, t.receptive_field),
    grid({ shape: [KH, KW], values: window.values })(
      `window at rows ${t.top}.., columns ${t.left}.. (−∞: padding); the first maximum wins`,
      (r, c) => (r === wr && c === wc ? "winner" : "")),
    el("p", { className: "term" }, `max = ${num(window.values[wr * KW + wc])} at (${wr}, ${wc}) of the window`),
  ];
}

function linear(a) {
  const t = a.terms, parts = [];
  if (t.maps_shape) {   // every w·x laid back onto the maps the flat input came from
    const products = decode(t.products), [C, H, W] = t.maps_shape;
    const row = el("div", { className: "row" });
    for (let c = 0; c < Math.min(C, 32); c++) {
      row.append(heat({ shape: [H, W], values: products.values.subarray(c * H * W, (c + 1) * H * W) }, `channel ${c}`));
    }
    parts.push(el("p", { className: "note" }, "Each input's weight × value, on the maps it came from (red raises the output, blue lowers it):"), row);
  }
  parts.push(...t.terms.map((term) => el("p", { className: "term" },
    `x[${term.at.join(", ")}] ${num(term.x)} × weight ${num(term.weight)} = `, el("strong", {}, num(term.product)))));
  if (t.rest) parts.push(el("p", { className: "term" }, `${t.rest.count} more inputs: Σ = ${num(t.rest.sum)}`));
  parts.push(el("p", { className: "term" }, `+ bias ${num(t.bias)}`));
  return parts;
}

function softmax(a) {
  const t = a.terms, k = a.position[0];
  return [
    el("p", { className: "term" }, `logits z: ${t.logits.map(num).join(", ")}; the largest, ${num(t.max)}, is subtracted first so no exp overflows`),
    el("p", { className: "term" }, `exp(z[j] − max): ${t.exps.map(num).join(", ")}; their sum ${num(t.sum)}`),
    el("p", { className: "term" }, `p[${k}] = ${num(t.exps[k])} / ${num(t.sum)}`),
  ];
}

function simple(a) {
  const t = a.terms;
  if (a.kind === "BatchNorm2d") {
    return [el("p", { className: "term" }, `(${num(t.input)} − ${num(t.mean)}) / sqrt(${num(t.var)} + ${t.eps}) × ${num(t.gamma)} + ${num(t.beta)}`)];
  }
  if (a.kind === "AvgPool2d") {
    const window = decode(t.window), [KH, KW] = window.shape;
    return [grid(window)(`window at rows ${t.top}.., columns ${t.left}.. (0: padding)`),
      el("p", { className: "term" }, `their sum / ${KH * KW}`)];
  }
  if (a.kind === "AdaptiveAvgPool2d") return [el("p", { className: "term" }, `the sum of the map, ${num(t.sum)}, / ${t.count}`)];
  if (a.kind === "Residual") return [el("p", { className: "term" }, `block ${num(t.block)} + shortcut ${num(t.shortcut)}`)];
  if (a.kind === "ReLU") return [el("p", { className: "term" }, `max(0, ${num(t.input)})`)];
  if (a.kind === "Flatten") return [el("p", { className: "term" }, `the input at [${t.source.join(", ")}]`)];
  if (a.kind === "Dropout") return [el("p", { className: "term" }, `the input, ${num(t.input)}, passed on`)];
  return [el("pre", { className: "term" }, JSON.stringify(t, null, 1).slice(0, 2000))];
}

function sumLine(a) {
  const line = el("p", { className: "sum" }, `= ${num(a.total)}; the layer computed ${num(a.value)}`);
  line.dataset.total = String(a.total);
  line.dataset.value = String(a.value);
  return line;
}

export function showValue(panel, a, result) {
  const where = a.kind === "Softmax" ? `the softmax, p[${a.position[0]}]` : `layer ${a.layer}, output [${a.position.join(", ")}]`;
  const parts = [el("h3", {}, `${where} = ${num(a.value)}`), el("p", { className: "note" }, a.description)];
  if (!a.explained) {
    parts.push(el("p", { className: "note" }, `${a.kind} has no explain() method, so its numbers are shown without their terms.`));
  } else {
    parts.push(formula(a.formula, a.math));
    const body = { Conv2d: conv, MaxPool2d: maxPool, Linear: linear, Softmax: softmax }[a.kind] || simple;
    parts.push(...body(a, result).filter(Boolean), sumLine(a));
  }
  panel.replaceChildren(...parts);
}

export function showGradient(panel, a) {
  const of = a.layer === -1 ? "the input image" : `layer ${a.layer}'s output`;
  const parts = [
    el("h3", {}, `dL/d(${of})[${a.position.join(", ")}] = ${num(a.value)}`),
    el("p", { className: "note" }, `L: the loss for label ${a.label}. This gradient comes back through ${a.by}.`),
  ];
  if (!a.explained) {
    parts.push(el("p", { className: "note" }, `${a.kind} has no explain_backward() method: its gradient is shown without its terms.`));
    panel.replaceChildren(...parts);
    return;
  }
  parts.push(formula(a.formula, a.math));
  const t = a.terms;
  if (a.kind === "loss") {
    parts.push(el("p", { className: "term" }, `p = ${num(t.probability)} − ${t.onehot} (${t.onehot ? "the label" : "not the label"})`));
  } else if (a.kind === "MaxPool2d") {
    parts.push(...t.windows.map((w) => el("p", { className: "term" },
      `window (${w.output.slice(1).join(", ")}): ${w.chose ? "chose this input, passes" : "chose another, passes nothing of"} ${num(w.grad)}`)));
  } else if (t && t.terms) {
    parts.push(...t.terms.map((term) => el("p", { className: "term" },
      `output [${term.output.join(", ")}]: dout ${num(term.grad)} × weight ${num(term.weight)} = `, el("strong", {}, num(term.product)))));
    if (t.rest) parts.push(el("p", { className: "term" }, `${t.rest.count} more: Σ = ${num(t.rest.sum)}`));
  } else if (a.kind === "ReLU") {
    parts.push(el("p", { className: "term" }, `dout ${num(t.grad)} × [x = ${num(t.input)} > 0]`));
  } else if (a.kind === "BatchNorm2d") {
    parts.push(el("p", { className: "term" }, `dout ${num(t.grad)} × ${num(t.gamma)} / sqrt(${num(t.var)} + ${t.eps})`));
  } else if (a.kind === "Residual") {
    parts.push(el("p", { className: "term" }, `through the block ${num(t.block)} + through the shortcut ${num(t.shortcut)}`));
  } else if (a.kind === "AdaptiveAvgPool2d") {
    parts.push(el("p", { className: "term" }, `dout ${num(t.grad)} / ${t.count}`));
  } else if (a.kind === "AvgPool2d") {
    const g = decode(t.grads);
    parts.push(el("p", { className: "term" }, `the ${g.values.length} windows that cover it each hand back their dout ` +
      `(${[...g.values].slice(0, 16).map(num).join(", ")}) divided by the window's size`));
  } else {
    parts.push(el("p", { className: "term" }, `dout ${num(a.total)}, passed on`));
  }
  parts.push(sumLine(a));
  panel.replaceChildren(...parts);
}
