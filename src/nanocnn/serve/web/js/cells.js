// Maps and rows of values whose cells a learner can pick: a click or a tap on a cell, or by keyboard (focus the
// map, move with the arrow keys, Enter or Space to pick). The picked cell is outlined over the canvas.

// canvas: W x H pixels, one per value; onPick([h, w]) or, for a row, onPick([j]). Returns {select(position)}.
export function pickable(canvas, H, W, label, onPick) {
  const wrap = document.createElement("span");
  wrap.className = "cell-wrap";
  canvas.replaceWith(wrap);
  const cursor = document.createElement("span");
  cursor.className = "cursor";
  cursor.hidden = true;
  wrap.append(canvas, cursor);
  canvas.tabIndex = 0;
  canvas.setAttribute("role", "img");
  let at = null;   // [h, w]: the cell the keyboard is on

  const show = ([h, w]) => {
    at = [h, w];
    cursor.hidden = false;
    cursor.style.left = `${(100 * w) / W}%`;
    cursor.style.top = `${(100 * h) / H}%`;
    cursor.style.width = `${100 / W}%`;
    cursor.style.height = `${100 / H}%`;
    canvas.setAttribute("aria-label", `${label}: row ${h}, column ${w}; arrow keys move, Enter explains`);
  };
  const pick = () => onPick(H === 1 ? [at[1]] : at);

  canvas.setAttribute("aria-label", `${label}: focus it, then arrow keys choose a number and Enter explains it`);
  canvas.addEventListener("pointerup", (event) => {
    const box = canvas.getBoundingClientRect();
    const w = Math.min(W - 1, Math.max(0, Math.floor(((event.clientX - box.left) / box.width) * W)));
    const h = Math.min(H - 1, Math.max(0, Math.floor(((event.clientY - box.top) / box.height) * H)));
    show([h, w]);
    pick();
  });
  canvas.addEventListener("focus", () => { if (!at) show([0, 0]); });   // the keyboard starts at the first cell
  canvas.addEventListener("keydown", (event) => {
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (event.key in moves) {
      const [dh, dw] = moves[event.key];
      const [h, w] = at || [0, 0];
      show([Math.min(H - 1, Math.max(0, h + dh)), Math.min(W - 1, Math.max(0, w + dw))]);
      event.preventDefault();
    } else if (event.key === "Enter" || event.key === " ") {
      if (!at) show([0, 0]);
      pick();
      event.preventDefault();
    }
  });
  return {
    select: (position) => show(position.length === 1 ? [0, position[0]] : position),
    clear: () => { cursor.hidden = true; at = null; },
  };
}
