// Drawing numbers as pixels: one canvas pixel per value, a colour for each, and the colour maps used.

export function paint(canvas, W, H, colour) {   // colour(i) -> [r, g, b] for pixel i, row by row
  canvas.width = W;
  canvas.height = H;
  const c = canvas.getContext("2d");
  const image = c.createImageData(W, H);
  for (let i = 0; i < W * H; i++) image.data.set([...colour(i), 255], 4 * i);
  c.putImageData(image, 0, 0);
}

export function fill(canvas, colour) {
  const c = canvas.getContext("2d");
  c.fillStyle = colour;
  c.fillRect(0, 0, canvas.width, canvas.height);
}

// magma, as the feature-map plots use: (position, [r, g, b]) stops, interpolated into 256 colours.
const MAGMA = [[0, [0, 0, 4]], [0.25, [80, 18, 123]], [0.5, [183, 55, 121]], [0.75, [252, 137, 97]], [1, [252, 253, 191]]];
const MAGMA_LUT = Array.from({ length: 256 }, (_, v) => {
  const t = v / 255;
  const j = Math.min(MAGMA.length - 2, Math.floor(t * (MAGMA.length - 1)));
  const [t0, c0] = MAGMA[j], [t1, c1] = MAGMA[j + 1];
  return c0.map((c, n) => Math.round(c + (c1[n] - c) * (t - t0) / (t1 - t0)));
});

// values[offset .. offset + n) scaled from their own minimum (dark) to maximum (bright): magma colours.
export function magma(values, offset, n) {
  let lo = Infinity, hi = -Infinity;
  for (let i = offset; i < offset + n; i++) {
    lo = Math.min(lo, values[i]);
    hi = Math.max(hi, values[i]);
  }
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  return (i) => MAGMA_LUT[Math.round((values[offset + i] - lo) * scale)];
}

// Blue for negative, red for positive, white for zero: v / limit in [-1, 1].
export function diverging(v, limit) {
  const a = limit > 0 ? Math.max(-1, Math.min(1, v / limit)) : 0;
  return a >= 0 ? [255, Math.round(255 * (1 - a)), Math.round(255 * (1 - a))]
    : [Math.round(255 * (1 + a)), Math.round(255 * (1 + a)), 255];
}

// 0.98765 -> "98.8%"; the ends read ">99.9%" and "<0.1%" (a network is never 100% sure, nor 0%).
export const percent = (p) =>
  (p >= 0.9995 ? ">99.9%" : p < 0.0005 ? (p > 0 ? "<0.1%" : "0%") : `${(100 * p).toFixed(1)}%`);
