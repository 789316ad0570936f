// The input: the drawing exactly as the network gets it (white on black, boxed and centred, as `nanocnn
// predict` prepares an image file), or a test image, which comes prepared.

import { decode } from "../api.js";
import { paint } from "../paint.js";

export const views = ["input"];

export function render(result) {
  const image = decode(result.input.image);
  const [, H, W] = image.shape;
  paint(document.getElementById("input"), W, H, (i) => {
    const g = Math.round(255 * image.values[i]);
    return [g, g, g];
  });
}
