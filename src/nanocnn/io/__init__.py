"""Files a model is kept in: nanocnn's own .npz (checkpoint.py), safetensors for PyTorch (safetensors.py) and
ONNX for inference runtimes (onnx.py), written by export.py; safe reading and atomic writing (files.py)."""

from .checkpoint import Saved, load, read, save
from .export import export_model, export_onnx, load_safetensors, save_safetensors

__all__ = ["Saved", "export_model", "export_onnx", "load", "load_safetensors", "read", "save", "save_safetensors"]
