// "How this model learned": the run's learning curves (GET /api/curves), when the model came from a run folder.

import { api } from "../api.js";
import { legend, lineChart } from "../chart.js";

const $ = (id) => document.getElementById(id);
let curves = null;

function draw() {
  const m = curves.metrics;
  const at = (key) => m.epoch.map((e, i) => [e, m[key][i]]);
  const loss = [
    { label: "train", points: at("train_loss"), colour: "--accent", dots: true },
    { label: "test", points: at("test_loss"), colour: "#e07b2f", dots: true },
  ];
  const accuracy = [
    { label: "train", points: at("train_acc"), colour: "--accent", dots: true },
    { label: "test", points: at("test_acc"), colour: "#e07b2f", dots: true },
  ];
  lineChart($("curves-loss"), loss, { log: true, xLabel: "epoch", xMin: 1, wholeX: true });
  lineChart($("curves-accuracy"), accuracy, { xLabel: "epoch", yMax: 1, xMin: 1, wholeX: true });
  legend($("curves-loss-legend"), loss);
  legend($("curves-accuracy-legend"), accuracy);
  const last = m.epoch.length - 1;
  $("curves-accuracy").setAttribute("aria-label",
    `Accuracy by epoch; after epoch ${m.epoch[last]}: train ${m.train_acc[last]}, test ${m.test_acc[last]}`);
  $("curves-loss").setAttribute("aria-label",
    `Loss by epoch; after epoch ${m.epoch[last]}: train ${m.train_loss[last]}, test ${m.test_loss[last]}`);
}

export async function setUp() {
  const answer = await api("/api/curves").catch(() => null);
  if (!answer || !answer.curves) return;   // not a run folder's model: the card stays hidden
  curves = answer.curves;
  $("curves-source").textContent = curves.source;
  $("curves-card").hidden = false;
  draw();
  window.addEventListener("resize", draw);
}
