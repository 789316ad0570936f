"""Augmentation: the warp checked against exact cases and a per-pixel loop, the random draws against the run."""

import numpy as np
import pytest

from nanocnn.data import augment
from nanocnn.data.augment import ROTATION, SCALING, SHIFT, warp


def warp_loop(image, angle, scale, shift_y, shift_x):
    """(H, W) -> (H, W): the same warp one output pixel at a time, bilinear, reading 0 outside the image."""
    H, W = image.shape
    cy, cx = (H - 1) / 2, (W - 1) / 2

    def pixel(i, j):
        return image[i, j] if 0 <= i < H and 0 <= j < W else 0.0

    out = np.zeros((H, W))
    for i in range(H):
        for j in range(W):
            py, px = i - cy - shift_y, j - cx - shift_x
            sy = (np.cos(angle) * py - np.sin(angle) * px) / scale + cy
            sx = (np.sin(angle) * py + np.cos(angle) * px) / scale + cx
            y0, x0 = int(np.floor(sy)), int(np.floor(sx))
            fy, fx = sy - y0, sx - x0
            out[i, j] = (
                pixel(y0, x0) * (1 - fy) * (1 - fx)
                + pixel(y0, x0 + 1) * (1 - fy) * fx
                + pixel(y0 + 1, x0) * fy * (1 - fx)
                + pixel(y0 + 1, x0 + 1) * fy * fx
            )
    return out


def one(value, n=1):
    return np.full(n, value, dtype=np.float64)


def test_no_change_gives_the_image_back_exactly(rng):
    images = rng.random((3, 2, 9, 7), dtype=np.float32)
    assert np.array_equal(warp(images, one(0.0, 3), one(1.0, 3), one(0.0, 3), one(0.0, 3)), images)


@pytest.mark.parametrize("dy, dx", [(2, 0), (0, -1), (-2, 3)])
def test_whole_pixel_shifts_move_the_image_and_bring_in_zeros(dy, dx, rng):
    image = rng.random((1, 1, 8, 8))
    out = warp(image, one(0.0), one(1.0), one(float(dy)), one(float(dx)))[0, 0]
    expected = np.zeros((8, 8))
    expected[max(dy, 0) : 8 + min(dy, 0), max(dx, 0) : 8 + min(dx, 0)] = image[0, 0][
        max(-dy, 0) : 8 + min(-dy, 0), max(-dx, 0) : 8 + min(-dx, 0)
    ]
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_a_quarter_turn_is_rot90_clockwise(rng):
    image = rng.random((1, 1, 6, 6))
    out = warp(image, one(np.pi / 2), one(1.0), one(0.0), one(0.0))[0, 0]
    np.testing.assert_allclose(out, np.rot90(image[0, 0], -1), atol=1e-12)


def test_random_warps_equal_the_per_pixel_loop(rng):
    images = rng.random((5, 1, 11, 13))
    angle, scale = rng.uniform(-0.6, 0.6, 5), rng.uniform(0.7, 1.4, 5)
    shift_y, shift_x = rng.uniform(-3, 3, 5), rng.uniform(-3, 3, 5)
    out = warp(images, angle, scale, shift_y, shift_x)
    for n in range(5):
        expected = warp_loop(images[n, 0], angle[n], scale[n], shift_y[n], shift_x[n])
        np.testing.assert_allclose(out[n, 0], expected, atol=1e-12)


def test_augment_draws_four_numbers_an_image_within_the_stated_limits(rng):
    images = np.random.default_rng(1).random((6, 1, 28, 28), dtype=np.float32)
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    out = augment(images, a)
    u = b.random((6, 4)) * 2 - 1
    assert a.random() == b.random()  # the generator moved on by exactly (N, 4) draws
    assert np.abs(u).max() < 1
    expected = warp(images, np.radians(ROTATION) * u[:, 0], 1 + SCALING * u[:, 1], SHIFT * u[:, 2], SHIFT * u[:, 3])
    assert out.dtype == np.float32 and np.array_equal(out, expected)
    assert out.min() >= 0 and out.max() <= 1 and not np.array_equal(out, images)
