// Talking to the server: JSON requests, the arrays its answers carry, and the page's busy and error states.

const $ = (id) => document.getElementById(id);

export async function api(path, body) {
  const options = body === undefined ? {} :
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error("the server does not answer: is nanocnn serve still running?");
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || `the server answered ${response.status}`);
  return answer;
}

// An array as the API sends it, {shape, dtype: "float32", data: base64 of little-endian float32}, as
// {shape, values: Float32Array}: the real numbers the server computed.
export function decode(array) {
  const bytes = Uint8Array.from(atob(array.data), (ch) => ch.charCodeAt(0));
  const view = new DataView(bytes.buffer);
  const values = new Float32Array(bytes.length / 4);
  for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(4 * i, true);
  return { shape: array.shape, values };
}

// aria-busy on the prediction card: true while an answer is awaited (screen readers, and tests, wait for it).
export function busy(on) {
  $("prediction-card").setAttribute("aria-busy", on ? "true" : "false");
}

export function showStatus(message) {
  const status = $("status");
  status.textContent = message || "";
  status.hidden = !message;
}
