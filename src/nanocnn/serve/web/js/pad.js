// The drawing pad: strokes from a mouse, a pen or a finger (pointer events), its pixels for the server, and a
// test image drawn onto it so that it can be drawn over.

const PAD = 280;       // the pad's side in CSS pixels (narrow screens shrink it; strokes scale with it)
const STROKE = 20;     // pen width in pad CSS pixels: a digit as tall as the pad then has MNIST's proportions
export const SEND = 140;   // the drawing goes to the server as SEND x SEND grey pixels
const INK = "#111";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
let inked = false;     // anything on the pad (a stroke or a test image)?
let last = null;       // the stroke's last point, in canvas pixels; null between strokes

// Make the pad sharp on this screen and call onStroke(starting) at each change a stroke makes.
export function setUp(onStroke) {
  const scale = Math.min(window.devicePixelRatio || 1, 3);
  pad.width = pad.height = Math.round(PAD * scale);
  clear();
  pad.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();                 // with touch-action: none in the CSS, a stroke never scrolls
    pad.setPointerCapture(event.pointerId);
    last = point(event);
    line(last, last);                       // a tap leaves a dot
    onStroke(true);
  });
  pad.addEventListener("pointermove", (event) => {
    if (last === null) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const e of events.length ? events : [event]) {   // every sample of a fast stroke, not one per frame
      const p = point(e);
      line(last, p);
      last = p;
    }
    onStroke(false);
  });
  for (const type of ["pointerup", "pointercancel"]) {
    pad.addEventListener(type, () => {
      if (last === null) return;
      last = null;
      onStroke(false);
    });
  }
}

export const isInked = () => inked;

export function clear() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  inked = false;
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}

function line(from, to) {
  ctx.strokeStyle = INK;
  ctx.lineWidth = STROKE * pad.width / PAD;
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(from[0], from[1]);
  ctx.lineTo(to[0], to[1]);
  ctx.stroke();
  inked = true;
}

// The pad's pixels, downscaled to SEND x SEND, as grey values row by row.
export function pixels() {
  const small = document.createElement("canvas");
  small.width = small.height = SEND;
  const sctx = small.getContext("2d", { willReadFrequently: true });
  sctx.imageSmoothingQuality = "high";
  sctx.drawImage(pad, 0, 0, SEND, SEND);
  const rgba = sctx.getImageData(0, 0, SEND, SEND).data;
  const grey = new Array(SEND * SEND);
  for (let i = 0; i < grey.length; i++) grey[i] = rgba[4 * i];   // the pad is grey: red is the grey value
  return grey;
}

// A test image ({shape: [1, H, W], values} in [0, 1], white on black) on the pad, dark on white like the strokes.
export function drawImage(image) {
  const [, H, W] = image.shape;
  const small = document.createElement("canvas");
  small.width = W;
  small.height = H;
  const sctx = small.getContext("2d");
  const data = sctx.createImageData(W, H);
  for (let i = 0; i < W * H; i++) {
    const grey = Math.round(255 * (1 - image.values[i]));
    data.data.set([grey, grey, grey, 255], 4 * i);
  }
  sctx.putImageData(data, 0, 0);
  clear();
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(small, 0, 0, pad.width, pad.height);
  inked = true;
}
