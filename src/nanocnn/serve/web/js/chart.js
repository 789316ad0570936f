// Line charts on a canvas, drawn by hand: the live page's loss and accuracy, and the serve page's learning curves.

// CSS custom properties of the page (light or dark), read when drawing.
const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

// "Nice" tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten, about `count` of them.
function ticks(lo, hi, count = 5) {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

const label = (v) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(0) : `${+v.toPrecision(3)}`);

// series: [{label, points: [[x, y], ...], colour: "--accent" or a CSS colour, dashed, dots}];
// options: {xLabel, yLabel, log (y on a log scale), yMin, yMax, xMin (default 0), xMax, wholeX (label whole x values only)}. Draws at the canvas's CSS size.
export function lineChart(canvas, series, options = {}) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 320, height = canvas.clientHeight || 180;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const c = canvas.getContext("2d");
  c.setTransform(ratio, 0, 0, ratio, 0, 0);
  c.clearRect(0, 0, width, height);
  const text = css("--text"), muted = css("--muted"), line = css("--line");
  const f = options.log ? (v) => Math.log10(v) : (v) => v;
  const points = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(y) && (!options.log || y > 0));
  const left = 46, right = 10, top = 10, bottom = 30;
  c.font = "11px system-ui, sans-serif";
  c.fillStyle = muted;
  if (!points.length) {
    c.fillText("no data yet", left, top + 20);
    return;
  }
  const xs = points.map(([x]) => x), ys = points.map(([, y]) => f(y));
  const x0 = Math.min(options.xMin ?? 0, ...xs), x1 = Math.max(options.xMax ?? 0, ...xs, x0 + 1);
  let y0 = options.yMin !== undefined ? f(options.yMin) : Math.min(...ys);
  let y1 = options.yMax !== undefined ? f(options.yMax) : Math.max(...ys);
  if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
  const X = (x) => left + (x - x0) / (x1 - x0) * (width - left - right);
  const Y = (y) => top + (1 - (f(y) - y0) / (y1 - y0)) * (height - top - bottom);
  c.strokeStyle = line;
  c.lineWidth = 1;
  let yTicks = ticks(y0, y1, 4);
  if (options.log) {  // powers of ten; with 1, 2 and 5 times them when the range spans less than 3 decades
    const decades = ticks(Math.floor(y0), Math.ceil(y1), Math.max(1, Math.ceil(y1) - Math.floor(y0))).map((e) => 10 ** e);
    yTicks = y1 - y0 < 3 ? decades.flatMap((d) => [d, 2 * d, 5 * d]) : decades;
  }
  for (const t of yTicks) {
    if (f(t) < y0 - 1e-9 || f(t) > y1 + 1e-9) continue;
    c.beginPath(); c.moveTo(left, Y(t)); c.lineTo(width - right, Y(t)); c.stroke();
    c.fillText(label(t), 4, Y(t) + 4);
  }
  for (const t of ticks(x0, x1, 5)) {
    if (!options.wholeX || Number.isInteger(t)) c.fillText(label(t), X(t) - 6, height - bottom + 14);
  }
  c.fillStyle = text;
  if (options.xLabel) c.fillText(options.xLabel, width - right - c.measureText(options.xLabel).width, height - 4);
  for (const s of series) {
    const colour = s.colour.startsWith("--") ? css(s.colour) : s.colour;
    const pts = s.points.filter(([, y]) => Number.isFinite(y) && (!options.log || y > 0));
    c.strokeStyle = c.fillStyle = colour;
    c.lineWidth = 2;
    c.setLineDash(s.dashed ? [5, 4] : []);
    c.beginPath();
    pts.forEach(([x, y], i) => (i ? c.lineTo(X(x), Y(y)) : c.moveTo(X(x), Y(y))));
    c.stroke();
    c.setLineDash([]);
    if (s.dots) for (const [x, y] of pts) { c.beginPath(); c.arc(X(x), Y(y), 3, 0, 2 * Math.PI); c.fill(); }
  }
}

// A legend beside a chart: one swatch and label per series (text, so screen readers read it too).
export function legend(node, series) {
  node.replaceChildren(...series.map((s) => {
    const item = document.createElement("span");
    item.className = "legend-item";
    const swatch = document.createElement("span");
    swatch.className = "legend-swatch" + (s.dashed ? " dashed" : "");
    swatch.style.setProperty("--swatch", s.colour.startsWith("--") ? `var(${s.colour})` : s.colour);
    item.append(swatch, s.label);
    return item;
  }));
}
