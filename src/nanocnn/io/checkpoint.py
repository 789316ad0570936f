"""nanocnn's own model file: an .npz of the weights, the architecture as JSON, and extra arrays; never a pickle.

    {"__nanocnn__": JSON {"format": "nanocnn-model-1", "spec": [[layer, args], ...], "meta": {...}},
     "model/<name>": each state_dict array, "extra/<name>": extra arrays (a run's optimizer state)}

Loading reads the header with json and rebuilds the architecture from registered layer classes only
(``nanocnn.nn.registry``), so a file can never run code.
"""

from __future__ import annotations

import json
import os
from typing import NamedTuple

import numpy as np

from ..nn import Sequential
from ..nn.registry import from_spec
from ..validation import UserError
from .files import atomic_write, read_npz

FORMAT = "nanocnn-model-1"


class Saved(NamedTuple):
    """What a model file holds: the model, its meta (a dict of JSON values) and its extra arrays by name."""

    model: Sequential
    meta: dict
    arrays: dict


def check_model(model, owner):
    if not isinstance(model, Sequential):
        raise UserError(f"{owner}: model must be a nanocnn Sequential, got {type(model).__name__}")


def save(model: Sequential, path, meta: dict | None = None, arrays: dict | None = None) -> str:
    """Write the model's weights, its architecture (as JSON) and extra arrays to an .npz, atomically.

    The file is written beside ``path`` under a temporary name and renamed over it, so a crash never
    leaves a half-written model. meta must be JSON-serialisable. Returns the path.
    """
    if isinstance(model, (str, os.PathLike)) and isinstance(path, Sequential):
        raise UserError("save(model, path): the model comes first, as in torch.save (nanocnn 0.2 took path first)")
    check_model(model, "save")
    path = os.fspath(path)
    try:
        header = json.dumps({"format": FORMAT, "spec": model.spec(), "meta": meta or {}})
    except TypeError as e:
        raise UserError(f"save: the model's spec() or meta is not JSON: {e}") from None
    payload = {f"model/{k}": v for k, v in model.state_dict().items()}
    payload.update({f"extra/{k}": np.asarray(v) for k, v in (arrays or {}).items()})
    payload["__nanocnn__"] = np.array(header)
    atomic_write(path, lambda f: np.savez(f, **payload))
    return path


def read(path) -> Saved:
    """Everything a file written by ``save`` holds: Saved(model, meta, arrays). Never unpickles.

    Raises UserError for a missing, truncated, foreign or inconsistent file.
    """
    contents = read_npz(path, "model file")
    if "__nanocnn__" not in contents:
        raise UserError(f"{path} is not a nanocnn model file (no __nanocnn__ header)")
    try:
        header = json.loads(str(contents.pop("__nanocnn__")))
    except json.JSONDecodeError as e:
        raise UserError(f"{path} has a corrupt header: {e}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else header
        raise UserError(f"{path} has an unknown format {found!r}")
    try:
        model = from_spec(header["spec"])
    except (KeyError, UserError) as e:
        raise UserError(f"{path}: bad model architecture: {e}") from None
    weights = {k[len("model/") :]: v for k, v in contents.items() if k.startswith("model/")}
    for k, v in weights.items():  # floating weights, and integer counters (BatchNorm's num_batches_tracked)
        numeric = np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)
        if not numeric or not np.isfinite(v).all():
            raise UserError(f"{path}: weight {k} is not finite floating point")
    try:
        model.load_state_dict(weights)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    arrays = {k[len("extra/") :]: v for k, v in contents.items() if k.startswith("extra/")}
    meta = header.get("meta", {})
    return Saved(model, meta if isinstance(meta, dict) else {}, arrays)


def load(path) -> tuple[Sequential, dict]:
    """Read a model file written by ``save``: returns (model, meta), as ``load_safetensors`` does."""
    saved = read(path)
    return saved.model, saved.meta
