// Small helpers for building the page's views: elements, numbers as they read, tables of numbers.

// el("p", {className: "note"}, "text", child, ...): an element with properties and children (strings are text).
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key.startsWith("aria-") || key === "role") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

// A number as the panels print it: 4 significant digits, "−" for minus, "−∞" for padding of a max-pool.
export function num(v) {
  if (v === -Infinity) return "\u2212\u221e";
  if (v === Infinity) return "\u221e";
  if (v === 0) return "0";
  const text = Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3 ? v.toExponential(2) : v.toPrecision(4);
  return text.replace("-", "\u2212");
}

// rows x cols of numbers ({shape: [R, C], values}) as a table; mark(r, c) -> a class name for a cell, or "".
export function numberTable(array, caption, mark = () => "") {
  const [R, C] = array.shape;
  const body = el("tbody");
  for (let r = 0; r < R; r++) {
    const row = el("tr");
    for (let c = 0; c < C; c++) row.append(el("td", { className: mark(r, c) }, num(array.values[r * C + c])));
    body.append(row);
  }
  return el("table", { className: "numbers" }, el("caption", {}, caption), body);
}

// The section of docs/math.md a view follows, and the formula it shows.
export function formula(text, section) {
  return el("p", { className: "formula" }, el("code", {}, text), section ? el("span", { className: "math" }, ` (${section})`) : null);
}
