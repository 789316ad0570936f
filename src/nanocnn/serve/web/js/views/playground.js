// The article's formula, live: an input of H cells, P cells of zero padding on each side, a kernel of K cells moved
// S at a time. Where the windows fall and how many there are, OH = (H + 2P - K) // S + 1, as nanocnn computes it
// (/api/geometry); a combination where no window fits says why instead.

import { api } from "../api.js";
import { el } from "../dom.js";

const $ = (id) => document.getElementById(id);
const SHOWN = 40;   // windows drawn at most
let timer = null, generation = 0;

export function setUp() {
  for (const id of ["g-size", "g-kernel", "g-stride", "g-padding"]) {
    $(id).addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 120); });
  }
  refresh();
}

function draw(g) {
  const canvas = $("geometry");
  const shown = Math.min(g.output, SHOWN), cell = Math.max(4, Math.min(22, Math.floor(620 / g.padded)));
  canvas.width = g.padded * cell + 2;
  canvas.height = (shown + 1) * (cell + 4) + 2;
  const c = canvas.getContext("2d");
  c.clearRect(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < g.padded; i++) {   // the padded input: padding grey, the input's cells white
    const pad = i < g.padding || i >= g.padding + g.size;
    c.fillStyle = pad ? "#c8ccd6" : "#ffffff";
    c.fillRect(1 + i * cell, 1, cell - 1, cell - 1);
    c.strokeStyle = "#5d6470";
    c.strokeRect(1 + i * cell, 1, cell - 1, cell - 1);
  }
  g.starts.slice(0, shown).forEach((start, o) => {
    c.fillStyle = o % 2 ? "#2f62e0" : "#e0712f";
    c.fillRect(1 + start * cell, 1 + (o + 1) * (cell + 4), g.kernel * cell - 1, cell);
  });
}

// A value the inputs' own limits refuse is said here (the server would refuse it the same way, with a 400).
function invalid() {
  for (const id of ["g-size", "g-kernel", "g-stride", "g-padding"]) {
    const input = $(id), name = input.parentElement.firstChild.textContent.trim();
    if (!input.validity.valid || input.value.trim() === "" || !Number.isInteger(Number(input.value))) {
      return `${name} must be a whole number from ${input.min} to ${input.max}, got ${input.value.trim() || "nothing"}`;
    }
  }
  return null;
}

async function refresh() {
  const mine = ++generation;
  const value = (id) => $(id).value.trim();
  const query = `size=${value("g-size")}&kernel=${value("g-kernel")}&stride=${value("g-stride")}&padding=${value("g-padding")}`;
  const out = $("geometry-result");
  const problem = invalid();
  if (problem) {
    delete out.dataset.output;
    out.replaceChildren(el("strong", {}, "Not a shape nanocnn takes: "), problem, ".");
    $("geometry").width = 0;
    return;
  }
  try {
    const g = await api(`/api/geometry?${query}`);
    if (mine !== generation) return;
    out.dataset.output = String(g.output);
    if (!g.fits) {
      out.replaceChildren(el("strong", {}, "No window fits: "), g.reason, ". Add padding or use a smaller kernel.");
      $("geometry").width = 0;
      return;
    }
    const more = g.output > SHOWN ? ` (the first ${SHOWN} drawn)` : "";
    const unused = g.unused ? ` The last ${g.unused} padded cell${g.unused > 1 ? "s are" : " is"} in no window: the stride steps over ${g.unused > 1 ? "them" : "it"}.` : "";
    out.replaceChildren("OH = ", el("strong", {}, g.formula), ` windows along each axis${more}.${unused}`);
    draw(g);
  } catch (error) {
    if (mine !== generation) return;
    delete out.dataset.output;
    out.replaceChildren(el("strong", {}, "Not a shape nanocnn takes: "), error.message);
    $("geometry").width = 0;
  }
}
