// Saliency: the gradient of the predicted class's score with respect to each input pixel, from nanocnn's own
// backward pass, over the input dimmed to grey: red where more ink would raise the score, blue where it
// would lower it.

import { decode } from "../api.js";
import { paint } from "../paint.js";

export const views = ["input", "saliency"];

// A raw gradient is speckled with small values, so those under 8% of the largest magnitude are left out and
// the colour is full from half of it up.
export function render(result) {
  const image = decode(result.input.image);
  const [, H, W] = image.shape;
  const gradient = result.saliency ? decode(result.saliency.gradient).values : null;
  const scale = result.saliency ? result.saliency.scale || 1 : 1;
  paint(document.getElementById("saliency"), W, H, (i) => {
    const base = 25 + 70 * image.values[i];
    const v = gradient ? gradient[i] / scale : 0, a = Math.min(1, Math.max(0, (Math.abs(v) - 0.08) / 0.42));
    const hue = v > 0 ? [255, 70, 50] : [60, 150, 255];
    return hue.map((h) => Math.round(base + (h - base) * a));
  });
}
