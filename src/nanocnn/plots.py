"""Pictures of what a network learned: learning curves, filters, feature maps, confusion matrix, mistakes.

matplotlib is an optional extra (pip install 'nanocnn[plot]'); everything renders with the Agg backend,
so no display is needed. Each command writes one PNG and prints its path.
"""

import csv
import importlib.util
import math
import os

import numpy as np

from .nn import Conv2d, ReLU
from .nn.trace import Trace
from .train.evaluation import ranked_mistakes
from .validation import UserError

DPI = 100


def pyplot():
    """matplotlib.pyplot on the Agg backend, or a clear error when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        raise UserError("plotting needs matplotlib: pip install 'nanocnn[plot]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_metrics(run_dir):
    """metrics.csv of a run folder as a dict of column -> float array."""
    path = os.path.join(run_dir, "metrics.csv")
    if not os.path.isfile(path):
        raise UserError(f"{run_dir} is not a run folder: no metrics.csv")
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return {k: np.array([float(r[k]) for r in rows]) for k in (rows[0] if rows else ())}
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path} is not a metrics file: {e}") from None


def save(fig, path):
    fig.savefig(path, dpi=DPI)
    pyplot().close(fig)
    return path


def plot_curves(run_dir, out=None, metrics=None):
    """Train and test loss and accuracy per epoch (metrics: read_metrics(run_dir) when already read)."""
    plt = pyplot()
    m = read_metrics(run_dir) if metrics is None else metrics
    if not m or len(m.get("epoch", ())) == 0:
        raise UserError(f"{run_dir}/metrics.csv has no epochs yet")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    for ax, key, title in ((ax_loss, "loss", "Loss (cross-entropy)"), (ax_acc, "acc", "Accuracy")):
        ax.plot(m["epoch"], m[f"train_{key}"], "o-", label="train (mean over the epoch)")
        ax.plot(m["epoch"], m[f"test_{key}"], "s-", label="test")
        ax.set(title=title, xlabel="epoch", ylabel=key if key == "loss" else "accuracy")
        ax.set_xticks(m["epoch"])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"Learning curves: {run_dir}")
    return save(fig, out or os.path.join(run_dir, "curves.png"))


def curves_if_available(run_dir):
    """Write the learning curves when matplotlib is installed and there are 2+ epochs; else return None."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    metrics = read_metrics(run_dir)
    return plot_curves(run_dir, metrics=metrics) if len(metrics.get("epoch", ())) >= 2 else None


def conv_layers(model):
    return [(i, layer) for i, layer in enumerate(model.layers) if isinstance(layer, Conv2d)]


def grid(n):
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def plot_filters(model, out):
    """First conv layer: every filter on one symmetric colour scale. Deeper conv layers: the strength
    (L2 norm) of each filter's kernel on each input channel."""
    plt = pyplot()
    convs = conv_layers(model)
    if not convs:
        raise UserError("the model has no Conv2d layer")
    (i0, first), deeper = convs[0], convs[1:]
    w = first.weight.data  # (F, C, KH, KW)
    F, C = w.shape[:2]
    rows, cols = grid(F)
    fig = plt.figure(figsize=(4 + 3.2 * len(deeper) + 0.6 * cols, max(4.0, 0.75 * rows + 1.5)), layout="constrained")
    sub = fig.subfigures(1, 1 + len(deeper), width_ratios=[max(cols, 4)] + [4] * len(deeper), squeeze=False)[0]
    axes = np.atleast_1d(sub[0].subplots(rows, cols)).ravel()
    limit = float(np.abs(w).max()) or 1.0
    shown = w.mean(axis=1) if C != 3 else None  # (F, KH, KW): channels averaged unless RGB
    for f, ax in enumerate(axes):
        ax.set_axis_off()
        if f < F:
            if C == 3:
                ax.imshow(((w[f] / limit + 1) / 2).transpose(1, 2, 0))
            else:
                image = ax.imshow(shown[f], cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(str(f), fontsize=8)
    if C != 3:
        sub[0].colorbar(image, ax=axes.tolist(), shrink=0.8, label="weight")
    note = "" if C == 1 else (" (RGB)" if C == 3 else f" (mean of {C} channels)")
    sub[0].suptitle(f"Layer {i0}: {F} filters {w.shape[2]}x{w.shape[3]}{note}")
    for panel, (i, layer) in zip(sub[1:], deeper):
        norms = np.sqrt((layer.weight.data**2).sum(axis=(2, 3)))  # (F_out, C_in)
        ax = panel.subplots()
        image = ax.imshow(norms, cmap="viridis", aspect="auto")
        ax.set(xlabel="input channel", ylabel="filter", title=f"Layer {i}: kernel strength (L2)")
        panel.colorbar(image, ax=ax, shrink=0.8)
    return save(fig, out)


def feature_maps(model, image):
    """image : (C, H, W) -> (maps, probabilities): maps is a list of (name, array (F, OH, OW)), one per conv
    layer (after its ReLU, if one follows), probabilities (K,). The numbers of model(x) in eval mode."""
    trace = Trace(model, image, gradients=False)
    layers, maps = trace.model.layers, []
    for i, layer in enumerate(layers):
        after = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, Conv2d) and not isinstance(after, ReLU):
            maps.append((f"layer {i}: {layer!r}", trace.outputs[i]))
        elif isinstance(layer, ReLU) and i > 0 and isinstance(layers[i - 1], Conv2d):
            maps.append((f"layers {i - 1}-{i}: {layers[i - 1]!r} + ReLU", trace.outputs[i]))
    return maps, trace.probabilities


def plot_features(model, image, title, out):
    """The input image, then every conv layer's output maps, with the predicted class and probability."""
    plt = pyplot()
    maps, proba = feature_maps(model, image)
    if not maps:
        raise UserError("the model has no Conv2d layer")
    width = max(grid(len(m))[1] for _, m in maps)
    shapes = [(math.ceil(len(m) / width), width) for _, m in maps]
    heights = [2.2] + [r * 0.95 + 0.4 for r, _ in shapes]
    fig = plt.figure(figsize=(max(6, 0.95 * width), sum(heights) + 0.6), layout="constrained")
    subs = fig.subfigures(len(heights), 1, height_ratios=heights)
    ax = subs[0].subplots()
    ax.imshow(image.transpose(1, 2, 0) if image.shape[0] == 3 else image[0], cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    k = int(proba.argmax())
    ax.set_title(f"{title}: predicted {k} (p = {proba[k]:.3f})")
    for panel, (name, m), (rows, _) in zip(subs[1:], maps, shapes):
        axes = np.atleast_1d(panel.subplots(rows, width)).ravel() if rows > 1 or width > 1 else [panel.subplots()]
        for c, ax in enumerate(axes):
            ax.set_axis_off()
            if c < len(m):
                ax.imshow(m[c], cmap="magma")
                ax.set_title(str(c), fontsize=7, pad=2)
        panel.suptitle(f"{name}: {m.shape[0]} maps {m.shape[1]}x{m.shape[2]}", fontsize=10)
    return save(fig, out)


def plot_confusion(matrix, acc, out):
    """Confusion matrix as a heat map with the count in every cell."""
    plt = pyplot()
    K = len(matrix)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * K, 0.6 + 0.55 * K), layout="constrained")
    image = ax.imshow(matrix, cmap="Blues")
    threshold = matrix.max() / 2
    for t in range(K):
        for p in range(K):
            ax.text(
                p,
                t,
                str(matrix[t, p]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if matrix[t, p] > threshold else "black",
            )
    ax.set(
        xticks=range(K),
        yticks=range(K),
        xlabel="predicted class",
        ylabel="true class",
        title=f"Confusion matrix (accuracy {acc:.4f})",
    )
    fig.colorbar(image, ax=ax, shrink=0.8, label="images")
    return save(fig, out)


def plot_mistakes(images, labels, proba, out, count=25):
    """The most confident wrong predictions, each titled with true and predicted labels and probability."""
    plt = pyplot()

    predicted = proba.argmax(axis=1)
    wrong = ranked_mistakes(labels, proba)[:count]
    if len(wrong) == 0:
        raise UserError("the model makes no mistakes on this data: nothing to plot")
    rows, cols = grid(len(wrong))
    fig, axes = plt.subplots(rows, cols, figsize=(1.7 * cols, 1.9 * rows + 0.5), layout="constrained", squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, n in zip(axes.ravel(), wrong):
        image = images[n]
        ax.imshow(image.transpose(1, 2, 0) if image.shape[0] == 3 else image[0], cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"true {labels[n]}, pred {predicted[n]}\np = {proba[n, predicted[n]]:.3f}", fontsize=9)
    fig.suptitle(f"Most confident mistakes ({len(wrong)} of {int((predicted != labels).sum())} wrong)")
    return save(fig, out)
