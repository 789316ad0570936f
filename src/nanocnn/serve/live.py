"""`nanocnn train --live`: what the page shows while a run trains, recorded between optimizer steps.

The training loop calls a ``Live`` at fixed points (``begin``, ``step`` after each optimizer step, ``epoch``
after each evaluation, ``end``); it reads the model there, never while a step is half done, and never
touches the run's generator or the model, so a run with --live ends with the very same weights. Every so
often (``PROBE_SECONDS``) it copies the weights into a model of its own and measures it on a fixed probe of
test images, and copies the first convolution's filters. The server's threads read only the state it
publishes: one JSON document, rebuilt when something changed and shared by every client.
"""

import json
import shlex
import threading
import time

import numpy as np

from ..nn import Conv2d, from_spec
from ..train.evaluation import predict_proba

PROBE = 500  # test images measured every PROBE_SECONDS (the first of the test split: always the same)
DIGITS = 36  # of them, the ones shown in the grid with their current prediction
PROBE_SECONDS = 1.0  # wall time between two looks at the model (measured in benchmarks/bench_live.py)
POINTS = 300  # the loss curve's most points: steps are averaged in groups to stay under it
FINAL_SECONDS = 2.0  # after the run, how long a watching page has to fetch the final state (it asks every 1.5 s)


class Live:
    """The state of a run as the page shows it; ``begin`` ... ``end`` are called by the training loop."""

    def __init__(self):
        self.lock = threading.Lock()
        self.document = b'{"status":"starting"}'  # the state as JSON, what every client gets
        self.last_read = -np.inf  # when a page last asked for the state (time.monotonic)
        self.status = "starting"
        self.loss, self.probe, self.epochs, self.filters = [], [], [], None
        self.digits = None

    # --- called by the training loop (its own thread) ------------------------------------------------------

    def begin(self, training, run, step, total_steps, threads):
        """Before the first step (``step`` > 0 when resuming): the probe images, the starting filters, the
        epochs already done (their curves continue), and a model of our own to copy the weights into."""
        config, data, model = training.config, training.data, training.model
        self.threads = threads  # the probe's, as the run's evaluation
        self.images, self.labels = data.test.images[:PROBE], data.test.labels[:PROBE]
        self.shadow = from_spec(model.spec()).eval()  # built from the spec: no draw from any generator
        self.conv = next((m for m in model.modules() if isinstance(m, Conv2d)), None)
        self.start_filters = None if self.conv is None else self.conv.weight.data.copy()
        self.start_norm = None if self.conv is None else np.sqrt((self.start_filters**2).sum(axis=(1, 2, 3)))
        self.total_steps, self.steps_per_epoch = total_steps, training.steps_per_epoch
        self.first_step, self.step_now, self.epochs_total = step, step, config.epochs
        self.group = max(1, -(-total_steps // POINTS))
        self.pending, self.seen, self.started = [], 0, time.perf_counter()
        self.last_probe = -np.inf
        self.loss = [[m["epoch"] * training.steps_per_epoch, m["train_loss"], None] for m in training.metrics]
        with self.lock:
            self.config = {k: v for k, v in config.to_dict().items() if v is not None}
            self.run_path = str(run.path)
            self.serve_command = f"nanocnn serve {shlex.quote(str(run.path))}"
            self.epochs = [dict(m) for m in training.metrics]
            self.digits = {
                "shape": list(self.images.shape[1:]),
                "images": [np.round(image * 255).astype(np.uint8).ravel().tolist() for image in self.images[:DIGITS]],
                "labels": self.labels[:DIGITS].tolist(),
            }
            self.status = "training"
        self.look(model, step)

    def step(self, model, step, loss, lr, images):
        """After optimizer step number ``step`` (counted over the whole run) on ``images`` images."""
        self.step_now, self.seen = step, self.seen + images
        self.pending.append(loss)
        if len(self.pending) == self.group or step == self.total_steps:
            self.loss.append([step, float(np.mean(self.pending)), float(lr)])
            self.pending = []
        if time.perf_counter() - self.last_probe >= PROBE_SECONDS:
            self.look(model, step)

    def epoch(self, model, metrics):
        """After an epoch's evaluation: its metrics row (test accuracy on the whole test split)."""
        with self.lock:
            self.epochs.append(dict(metrics))
        self.look(model, self.step_now)

    def end(self, model, status="done"):
        """The run finished ("done": a last look) or was stopped ("stopped", by Ctrl-C or an error, maybe inside
        a step: no look at weights that may be half updated), and the page's last state."""
        if status == "done":
            self.look(model, self.step_now)
        with self.lock:
            self.status = status
            self.publish()

    # --- what the page reads -----------------------------------------------------------------------------------

    def look(self, model, step):
        """Copy the weights, measure the probe, copy the filters; then publish the state."""
        self.last_probe = time.perf_counter()
        self.shadow.load_state_dict(model.state_dict())
        proba = predict_proba(self.shadow, self.images, self.threads)
        predicted = proba.argmax(axis=1)
        accuracy = float((predicted == self.labels).mean())
        filters = None
        if self.conv is not None:
            now = self.conv.weight.data
            moved = np.sqrt(((now - self.start_filters) ** 2).sum(axis=(1, 2, 3)))
            filters = {
                "shape": list(now.shape),
                "values": np.round(now, 5).ravel().tolist(),
                "moved": np.round(moved, 5).tolist(),
                "start_norm": np.round(self.start_norm, 5).tolist(),
            }
        with self.lock:
            if not self.probe or self.probe[-1][0] != step:
                self.probe.append([step, accuracy])
            self.filters = filters
            self.predicted = predicted[:DIGITS].tolist()
            self.confidence = np.round(proba[:DIGITS].max(axis=1), 4).tolist()  # the predicted class's
            self.publish()

    def publish(self):
        """Rebuild the JSON document (under the lock): every client gets these bytes until the next change."""
        elapsed = time.perf_counter() - self.started
        done = self.step_now - self.first_step
        rate = self.seen / elapsed if elapsed > 0 else 0.0
        left = (self.total_steps - self.step_now) * elapsed / done if done else None
        state = {
            "run_path": self.run_path,
            "serve_command": self.serve_command,
            "status": self.status,
            "config": self.config,
            "step": self.step_now,
            "total_steps": self.total_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "epoch": min(self.epochs_total, self.step_now // self.steps_per_epoch + 1),
            "epochs": self.epochs_total,
            "images_per_second": round(rate, 1),
            "seconds": round(elapsed, 1),
            "seconds_left": None if left is None or self.status != "training" else round(left, 1),
            "loss": list(self.loss),  # [step, mean loss of the group of steps, learning rate]
            "probe": list(self.probe),  # [step, accuracy on the probe]
            "probe_size": len(self.labels),
            "epoch_metrics": list(self.epochs),
            "filters": self.filters,
            "digits": {"predicted": self.predicted, "confidence": self.confidence},
        }
        self.document = json.dumps(state, separators=(",", ":"), allow_nan=False).encode()


class LiveApi:
    """What the live page's routes answer (routes.LIVE): the state as published, and the fixed digits."""

    def __init__(self, live):
        self.live = live

    def state(self):
        """The published document, as it is: bytes, which the handler sends without encoding them again."""
        with self.live.lock:
            self.live.last_read = time.monotonic()
            return self.live.document

    def digits(self):
        with self.live.lock:
            return self.live.digits or {"shape": [], "images": [], "labels": []}


def start_server(host, port):
    """(Live, server) with the server listening on host:port and answering on a thread of its own; a port
    already taken is a UserError now, before training starts. ``stop_server`` ends it."""
    from .routes import LIVE
    from .server import open_server

    live = Live()
    server = open_server(host, port, "--live: ", api=LiveApi(live), quiet=True, routes=LIVE, index="live.html")
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    return live, server


def stop_server(server, live, grace=FINAL_SECONDS):
    """Stop answering; a page that was watching in the last few seconds first gets the final state."""
    if time.monotonic() - live.last_read < 4 * grace:
        time.sleep(grace)
    server.shutdown()
    server.server_close()
