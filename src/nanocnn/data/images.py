"""Turn a PNG or JPEG, or a drawing's grey pixels, into a model input, prepared the way the MNIST digits were.

MNIST digits are white on black, size-normalised so the digit's bounding box fits 20x20 keeping its
aspect ratio, then placed in a 28x28 field so that their centre of mass is at the centre. For a model
of another input size the same proportions are used (box = 20/28 of the side). ``prepare_image`` is the one
function that does it: ``nanocnn predict`` (through ``load_image``) and ``nanocnn serve`` both call it,
so a file and the same pixels drawn in the browser give the same input. An image with no ink once
prepared (``is_blank``) gets no prediction from either: there is nothing to classify.
"""

import numpy as np

from ..validation import UserError


def load_image(path, input_shape):
    """Read an image file -> float32 (C, H, W) in [0, 1] matching input_shape (C, H, W).

    One-channel models get MNIST-style preparation: greyscale, inverted when the background is light,
    the digit's box scaled into 20/28 of the field and centred by centre of mass. Colour models get the
    image resized to (H, W). Raises UserError when Pillow cannot read the file.
    """
    from PIL import Image, UnidentifiedImageError

    C = input_shape[0]
    if C not in (1, 3):
        raise UserError(f"the model takes {C}-channel images; predict reads greyscale or RGB files only")
    try:
        with Image.open(path) as im:
            im.load()
            im = im.convert("L" if C == 1 else "RGB")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise UserError(f"cannot read image {path}: {e}") from None
    return prepare_image(np.asarray(im, dtype=np.float32) / 255, input_shape)  # (h, w) or (h, w, 3)


def prepare_image(pixels, input_shape):
    """pixels : float (h, w) greyscale, or (h, w, 3) RGB for a 3-channel model, in [0, 1] -> float32 (C, H, W).

    One channel: MNIST-style (``mnist_style``), either polarity. Three channels: resized to (H, W).
    """
    from PIL import Image

    C, H, W = input_shape
    pixels = np.asarray(pixels, dtype=np.float32)
    if C == 1:
        return mnist_style(pixels, H, W)[None]
    # Back to the 8-bit image the pixels came from (exact for k / 255), resized as an image.
    rgb = Image.fromarray(np.round(pixels * 255).astype(np.uint8))
    return np.asarray(rgb.resize((W, H), Image.BILINEAR), dtype=np.float32).transpose(2, 0, 1) / 255


def is_blank(image):
    """True for a prepared image (C, H, W) with no ink at all: every value 0."""
    return not image.any()


def mnist_style(pixels, H=28, W=28):
    """pixels : (h, w) greyscale in [0, 1] -> (H, W): white digit on black, boxed and centred."""
    from PIL import Image

    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if np.median(border) > 0.5:  # dark ink on light paper: invert
        pixels, border = 1 - pixels, 1 - border
    background = float(np.median(border))
    pixels = np.clip((pixels - background) / max(1 - background, 1e-6), 0, 1)
    ink = pixels > 0.1 * pixels.max() if pixels.max() > 0 else np.zeros_like(pixels, dtype=bool)
    if not ink.any():
        return np.zeros((H, W), dtype=np.float32)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    digit = pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    box_h, box_w = max(1, round(H * 20 / 28)), max(1, round(W * 20 / 28))
    scale = min(box_h / digit.shape[0], box_w / digit.shape[1])
    new_h, new_w = max(1, round(digit.shape[0] * scale)), max(1, round(digit.shape[1] * scale))
    resized = np.asarray(Image.fromarray(digit / digit.max() * 255).convert("F").resize((new_w, new_h), Image.LANCZOS))
    resized = np.clip(resized / 255, 0, 1)
    # Centre of mass of the resized digit goes to the centre of the (H, W) field.
    total = resized.sum()
    cy = (resized.sum(axis=1) * np.arange(new_h)).sum() / total
    cx = (resized.sum(axis=0) * np.arange(new_w)).sum() / total
    top = int(round((H - 1) / 2 - cy))
    left = int(round((W - 1) / 2 - cx))
    out = np.zeros((H, W), dtype=np.float32)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + new_h, H), min(left + new_w, W)
    out[y0:y1, x0:x1] = resized[y0 - top : y1 - top, x0 - left : x1 - left]
    return out
