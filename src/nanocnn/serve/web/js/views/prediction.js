// The prediction: the class the network picks, how sure it is, and one bar per class (the softmax of its output).

import { percent } from "../paint.js";

const $ = (id) => document.getElementById(id);

export const views = [];   // everything it shows is in every answer

export function setUp(info) {
  const list = $("probabilities");
  list.replaceChildren();
  for (let k = 0; k < info.num_classes; k++) {
    const row = document.createElement("div");
    row.className = "bar-row";
    row.setAttribute("role", "listitem");
    const name = document.createElement("span");
    name.className = "class";
    name.textContent = String(k);
    const track = document.createElement("span");
    track.className = "track";
    const bar = document.createElement("span");
    bar.className = "bar";
    track.append(bar);
    const pct = document.createElement("span");
    pct.className = "pct";
    row.append(name, track, pct);
    list.append(row);
  }
}

export function render(result) {
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
}
