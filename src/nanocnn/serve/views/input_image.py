"""The input view: the image exactly as the network gets it, after ``prepare_image`` (every channel)."""

from .arrays import array_json


def view(image, trace):
    """image (C, H, W) in [0, 1] -> {"image": array (C, H, W)}."""
    return {"image": array_json(image)}
