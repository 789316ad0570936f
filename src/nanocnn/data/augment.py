"""Data augmentation: each training image moved, turned and resized a little at random, in NumPy, so that the
network sees a slightly different digit every epoch. The random numbers come from the run's one generator,
drawn for the whole batch before it is cut into parts, so a run stays bit-identical for its seed on any
thread count, any number of ranks and across --resume."""

import numpy as np

SHIFT = 2.0  # pixels, at most, along each axis
ROTATION = 10.0  # degrees, at most, either way
SCALING = 0.1  # at most 10% larger or smaller


def augment(images, rng):
    """images : (N, C, H, W) float in [0, 1] -> a new (N, C, H, W) array: each image rotated by a random angle,
    scaled and shifted (see ``warp``). Draws (N, 4) uniform numbers from ``rng``, whatever N's parts."""
    u = rng.random((len(images), 4), dtype=np.float64) * 2 - 1  # in [-1, 1): angle, scale, shift y, shift x
    return warp(images, np.radians(ROTATION) * u[:, 0], 1 + SCALING * u[:, 1], SHIFT * u[:, 2], SHIFT * u[:, 3])


def warp(images, angle, scale, shift_y, shift_x):
    """images : (N, C, H, W); angle (radians, clockwise as seen), scale, shift_y, shift_x (pixels, down
    and right) : (N,) -> (N, C, H, W), each image turned and scaled about its centre, then shifted, sampled
    bilinearly; what comes from outside the image is 0.

    Output pixel p (row, column, about the centre) reads the source at R(-angle) (p - shift) / scale."""
    N, C, H, W = images.shape
    cy, cx = (H - 1) / 2, (W - 1) / 2
    y, x = np.meshgrid(np.arange(H) - cy, np.arange(W) - cx, indexing="ij")  # (H, W)
    cos, sin = (np.cos(angle) / scale)[:, None, None], (np.sin(angle) / scale)[:, None, None]
    py, px = y[None] - shift_y[:, None, None], x[None] - shift_x[:, None, None]  # (N, H, W)
    sy, sx = cos * py - sin * px + cy, sin * py + cos * px + cx  # rows grow downwards: a clockwise turn
    y0, x0 = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
    fy, fx = (sy - y0).astype(images.dtype), (sx - x0).astype(images.dtype)
    padded = np.zeros((N, C, H + 2, W + 2), dtype=images.dtype)  # one zero pixel around: neighbours outside read 0
    padded[:, :, 1:-1, 1:-1] = images
    inside = ((sy > -1) & (sy < H) & (sx > -1) & (sx < W)).astype(images.dtype)  # else no neighbour is in the image
    y0, x0 = np.clip(y0 + 1, 0, H), np.clip(x0 + 1, 0, W)  # into the padded image
    n = np.arange(N)[:, None, None]
    out = np.empty_like(images)
    for c in range(C):
        p = padded[:, c]
        top = p[n, y0, x0] * (1 - fx) + p[n, y0, x0 + 1] * fx
        bottom = p[n, y0 + 1, x0] * (1 - fx) + p[n, y0 + 1, x0 + 1] * fx
        out[:, c] = (top * (1 - fy) + bottom * fy) * inside
    return out
