// Teach it this example: one SGD step, w -= lr * dL/dw, with the learner's label, on a private copy of the model on
// the server. The probabilities before and after, how far each parameter moved, and the first layer's filters
// before, after and their difference. The served model never changes: the next drawing meets it unchanged.

import { api, decode } from "../api.js";
import { el, num } from "../dom.js";
import { diverging, paint, percent } from "../paint.js";

const $ = (id) => document.getElementById(id);
let request = null;

export function setUp(info) {
  $("lr").value = String(info.teach_lr);
  $("teach-labels").replaceChildren(...Array.from({ length: info.num_classes }, (_, k) => {
    const button = el("button", { type: "button", className: "target" }, `This is a ${k}`);
    button.addEventListener("click", () => teach(k));
    return button;
  }));
}

export function update(body) {
  request = body;
  $("teach-result").replaceChildren(el("p", { className: "note" }, request ? "Pick the right label above." :
    "Draw a digit (or pick a test image) first."));
}

function bars(before, after, label) {
  return el("div", { className: "pairs", role: "list", "aria-label": "Probabilities before and after the step" },
    ...before.map((p, k) => {
      const row = el("div", { className: `pair-row${k === label ? " top" : ""}`, role: "listitem" },
        el("span", { className: "class" }, String(k)),
        el("span", { className: "track" }, el("span", { className: "bar before" }), el("span", { className: "bar after" })),
        el("span", { className: "pct" }, `${percent(p)} → ${percent(after[k])}`));
      row.querySelector(".before").style.width = `${(100 * p).toFixed(2)}%`;
      row.querySelector(".after").style.width = `${(100 * after[k]).toFixed(2)}%`;
      row.setAttribute("aria-label", `class ${k}: ${percent(p)} before, ${percent(after[k])} after`);
      return row;
    }));
}

function filters(f) {   // the first conv layer's kernels before, after, and the difference (input channel 0)
  const before = decode(f.before), after = decode(f.after), difference = decode(f.difference);
  const [F, C, KH, KW] = f.before.shape;
  const limit = (a) => a.values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const row = (title, a) => {
    const scale = limit(a);
    return el("div", { className: "filter-row" }, el("span", { className: "filter-title" }, title),
      ...Array.from({ length: F }, (_, k) => {
        const canvas = el("canvas", { className: "filter", title: `filter ${k}` });
        paint(canvas, KW, KH, (i) => diverging(a.values[k * C * KH * KW + i], scale));
        return canvas;
      }));
  };
  return el("figure", { className: "filters" }, row("before", before), row("after", after), row("difference", difference),
    el("figcaption", {}, `${f.name}: ${F} filters of ${KH}×${KW} (input channel 0), each row on its own colour scale; the difference is −lr × the gradient.`));
}

async function teach(label) {
  if (!request) return;
  const box = $("teach-result");
  box.setAttribute("aria-busy", "true");
  try {
    const lr = Number($("lr").value);
    const a = await api("/api/teach", { ...request, label, lr });
    const moved = el("table", { className: "moved" }, el("caption", {}, "How far each parameter moved: |Δw| beside |w|"),
      el("tbody", {}, ...a.moved.map((m) => el("tr", {}, el("td", {}, m.name), el("td", {}, num(m.change)), el("td", {}, num(m.norm))))));
    const summary = el("p", { className: "taught" },
      `Label ${label}: p[${label}] ${percent(a.before[label])} → ${percent(a.after[label])}; ` +
      `prediction ${a.prediction_before} → ${a.prediction_after}; loss ${num(a.loss_before)} → ${num(a.loss_after)} (lr ${a.lr}).`);
    summary.dataset.before = String(a.before[label]);
    summary.dataset.after = String(a.after[label]);
    box.replaceChildren(...[summary, bars(a.before, a.after, label), moved, a.filters && filters(a.filters)].filter(Boolean));
  } catch (error) {
    box.replaceChildren(el("p", { className: "status" }, error.message));
  } finally {
    box.setAttribute("aria-busy", "false");
  }
}
