// The live page: asks /api/live for the run's state every POLL_MS and redraws; the fixed test digits once.

import { api, showStatus } from "./api.js";
import { lineChart, legend } from "./chart.js";
import { el } from "./dom.js";
import { diverging, paint } from "./paint.js";

const POLL_MS = 1500;
const $ = (id) => document.getElementById(id);
let digits = null;   // {shape, images, labels}: asked for once the run has started
let last = null;     // the last state drawn, redrawn when the window is resized

const duration = (s) => (s === null || s === undefined ? "\u2013"
  : s < 60 ? `${s.toFixed(0)} s` : `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, "0")} s`);

function progress(state) {
  $("progress").value = state.total_steps ? state.step / state.total_steps : 0;
  $("status-text").textContent = { training: "training", done: "finished", stopped: "stopped" }[state.status] || state.status;
  $("epoch").textContent = `${state.epoch} of ${state.epochs}`;
  $("step").textContent = `${state.step.toLocaleString()} of ${state.total_steps.toLocaleString()}`;
  $("rate").textContent = Math.round(state.images_per_second).toLocaleString();
  $("elapsed").textContent = duration(state.seconds);
  $("left").textContent = state.status === "training" ? duration(state.seconds_left) : "\u2013";
  const c = state.config;
  $("run-line").textContent = `Run ${state.run_path}: preset ${c.preset}, ${c.epochs} epochs, batch ${c.batch_size}, ` +
    `${c.optimizer} at lr ${c.lr}${c.schedule !== "constant" ? ` (${c.schedule})` : ""}.`;
  const finished = state.status === "done" || state.status === "stopped";
  $("done").hidden = !finished;
  if (finished) {
    const final = state.epoch_metrics.at(-1);
    $("done-text").textContent = state.status === "done"
      ? `Training finished${final ? `: test accuracy ${final.test_acc.toFixed(4)} on the whole test split` : ""}.`
      : "Training was stopped; the run folder keeps the last epoch's checkpoint (nanocnn train --resume continues it).";
    $("serve-command").textContent = state.serve_command;
  }
}

function charts(state) {
  const loss = [{ label: "loss (mean over a group of steps)", points: state.loss.map(([s, l]) => [s, l]), colour: "--accent" }];
  lineChart($("loss-chart"), loss, { log: true, xLabel: "step", xMax: state.total_steps });
  legend($("loss-legend"), loss);
  const lr = [{ label: "learning rate", points: state.loss.filter(([, , r]) => r !== null).map(([s, , r]) => [s, r]), colour: "--muted" }];
  lineChart($("lr-chart"), lr, { yMin: 0, xLabel: "step", xMax: state.total_steps });
  const latest = state.loss.at(-1);
  $("loss-now").textContent = latest ? `Latest: ${latest[1].toFixed(4)} at step ${latest[0]}` +
    (latest[2] !== null ? `, learning rate ${latest[2].toPrecision(3)}.` : ".") : "";
  $("loss-chart").setAttribute("aria-label", `Training loss by step${latest ? `; latest ${latest[1].toFixed(4)} at step ${latest[0]}` : ""}`);

  const perEpoch = state.epoch_metrics.map((m) => [m.epoch * state.steps_per_epoch, m.test_acc]);
  const accuracy = [
    { label: `probe (${state.probe_size} test images)`, points: state.probe, colour: "--accent" },
    { label: "whole test split, end of epoch", points: perEpoch, colour: "#e07b2f", dots: true },
  ];
  lineChart($("accuracy-chart"), accuracy, { yMax: 1, xLabel: "step", xMax: state.total_steps });
  legend($("accuracy-legend"), accuracy);
  const probe = state.probe.at(-1);
  $("probe-size").textContent = state.probe_size;
  $("accuracy-now").textContent = probe ? `Probe now: ${(100 * probe[1]).toFixed(1)}% at step ${probe[0]}.` : "";
  $("accuracy-chart").setAttribute("aria-label", `Accuracy by step${probe ? `; probe ${(100 * probe[1]).toFixed(1)}% at step ${probe[0]}` : ""}`);
}

function filters(state) {
  const f = state.filters;
  if (!f) {
    $("filters").replaceChildren(el("p", { className: "note" }, "This model has no convolution."));
    return;
  }
  const [F, C, KH, KW] = f.shape;
  const limit = Math.max(...f.values.map(Math.abs), 1e-12);
  const most = Math.max(...f.moved, 1e-12);
  const cards = [];
  for (let k = 0; k < F; k++) {
    const canvas = el("canvas", { role: "img", "aria-label": `filter ${k}` });
    const offset = k * C * KH * KW;  // channels averaged when there are several
    paint(canvas, KW, KH, (i) => {
      let v = 0;
      for (let ch = 0; ch < C; ch++) v += f.values[offset + ch * KH * KW + i];
      return diverging(v / C, limit);
    });
    const bar = el("span");
    bar.style.width = `${Math.round(100 * f.moved[k] / most)}%`;
    cards.push(el("figure", { className: "filter", role: "listitem" }, canvas,
      el("span", { className: "moved", title: `moved ${f.moved[k].toFixed(3)} (started at length ${f.start_norm[k].toFixed(3)})` }, bar),
      el("figcaption", {}, `${k}: ${f.moved[k].toFixed(2)}`)));
  }
  $("filters").replaceChildren(...cards);
  const total = f.moved.reduce((a, b) => a + b, 0);
  $("filters-now").textContent = `${F} filters ${KH}\u00d7${KW}; moved ${(total / F).toFixed(3)} on average.`;
}

function grid(state) {
  if (!digits || !digits.images.length) return;
  const [, H, W] = digits.shape;
  const { predicted, confidence } = state.digits;
  let wrong = 0;
  const cards = digits.images.map((pixels, n) => {
    const bad = predicted[n] !== digits.labels[n];
    wrong += bad;
    const canvas = el("canvas", { role: "img", "aria-label": `test digit ${n}, a ${digits.labels[n]}` });
    paint(canvas, W, H, (i) => [pixels[i], pixels[i], pixels[i]]);
    const text = `${predicted[n]}${bad ? " \u2717" : ""}`;
    return el("figure", { className: `digit${bad ? " wrong" : ""}`, role: "listitem",
      title: `label ${digits.labels[n]}, predicted ${predicted[n]} (p = ${confidence[n]})` },
    canvas, el("figcaption", { "aria-label": `predicted ${predicted[n]}${bad ? ", wrong" : ", right"}` }, text));
  });
  $("digits").replaceChildren(...cards);
  $("digits-now").textContent = `${wrong} of ${digits.images.length} wrong now.`;
}

function draw(state) {
  last = state;
  progress(state);
  charts(state);
  filters(state);
  grid(state);
}

async function poll() {
  let state = null;
  try {
    state = await api("/api/live");
    showStatus("");
  } catch (error) {
    showStatus(`${error.message.replace("nanocnn serve", "nanocnn train --live")} The page shows the last state it got.`);
  }
  if (state && state.status !== "starting") {
    if (!digits) digits = await api("/api/live/digits").catch(() => null);
    draw(state);
    document.body.dataset.step = state.step;   // for tests: the step the page shows
    document.body.dataset.status = state.status;
    if (state.status !== "training") return;  // finished or stopped: nothing will change
  }
  setTimeout(poll, POLL_MS);
}

window.addEventListener("resize", () => last && charts(last));
poll();
