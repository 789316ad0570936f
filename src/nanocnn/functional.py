"""Array kernels the layers share: argument checks, output sizes, im2col and col2im.

Dimension symbols used throughout nanocnn:
    N  batch size            C  channels            H, W    input height and width
    KH, KW  kernel size      SH, SW  stride          PH, PW  padding
    OH, OW  output size, from the one formula in ``conv_output_size``.

The fast kernels loop only over the KH*KW kernel offsets; every other axis is a
numpy array axis. Internally activations live in memory as (C, H, W, N), batch
innermost, and are handed between layers as (N, C, H, W) views of that memory
(``from_chwn``), so the public shapes stay NCHW. With the batch innermost, every
window copy in im2col, col2im and pooling moves runs of N (and, at stride 1, of
OW*N) contiguous numbers instead of runs of OW, one matrix product covers the whole
batch, and its (F, OH*OW*N) result is already the next layer's layout: no transposes.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided


def pair(value, name, layer, minimum=1):
    """Turn an int or an (h, w) pair into a checked tuple of two ints.

    Raises ValueError naming the layer, the argument, the rule and the value.
    """
    items = value if isinstance(value, (tuple, list)) else (value, value)
    ok = len(items) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum for v in items
    )
    if not ok:
        rule = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{layer}: {name} must be {rule} or a pair of them, got {value!r}")
    return int(items[0]), int(items[1])


def positive_int(value, name, layer):
    """Check that ``value`` is a positive int and return it."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return int(value)


def conv_output_size(size, kernel, stride, padding):
    """Output length of a convolution or pooling along one axis.

    OH = (H + 2*PH - KH) // SH + 1, the article's formula with padding added.
    """
    return (size + 2 * padding - kernel) // stride + 1


def check_input(x, layer, channels=None, dtype=None):
    """Check a layer's input: an ndarray of rank 4 (N, C, H, W), floating, matching channels and dtype."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{layer}: input must be a numpy array, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{layer}: input must have rank 4 (N, C, H, W), got shape {x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{layer}: input must have {channels} channels (axis 1), got shape {x.shape}")
    check_dtype(x, layer, dtype)


def check_dtype(x, layer, dtype=None):
    """Check that ``x`` is floating and, when ``dtype`` is given, of exactly that dtype (no silent casts)."""
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{layer}: input must be a floating array, got dtype {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise ValueError(f"{layer}: input dtype must be {np.dtype(dtype)} like the layer's weights, got {x.dtype}")


def output_hw(layer, hw, kernel, stride, padding):
    """(OH, OW) for an input of size ``hw``; raises ValueError when the kernel does not fit."""
    (H, W), (KH, KW), (PH, PW) = hw, kernel, padding
    if H + 2 * PH < KH or W + 2 * PW < KW:
        raise ValueError(
            f"{layer}: kernel {KH}x{KW} is larger than the padded input {H + 2 * PH}x{W + 2 * PW} "
            f"(input {H}x{W}, padding {PH}x{PW})"
        )
    return conv_output_size(H, KH, stride[0], PH), conv_output_size(W, KW, stride[1], PW)


def to_chwn(x, padding=(0, 0), value=0.0):
    """x : (N, C, H, W), any memory order -> padded (C, H + 2*PH, W + 2*PW, N) C-contiguous array.

    No copy when x is already a view of such an array and there is no padding.
    """
    N, C, H, W = x.shape
    PH, PW = padding
    xt = x.transpose(1, 2, 3, 0)                                     # (C, H, W, N) view
    if PH == 0 and PW == 0 and xt.flags.c_contiguous:
        return xt
    shape = (C, H + 2 * PH, W + 2 * PW, N)
    xp = np.zeros(shape, dtype=x.dtype) if value == 0 else np.full(shape, value, dtype=x.dtype)
    xp[:, PH:PH + H, PW:PW + W, :] = xt
    return xp


def from_chwn(a):
    """(C, H, W, N) array -> the (N, C, H, W) view of it that layers hand on."""
    return a.transpose(3, 0, 1, 2)


def window(xp, i, j, out_hw, stride):
    """The view of xp (C, Hp, Wp, N) that kernel offset (i, j) sees at every output position: (C, OH, OW, N)."""
    (OH, OW), (SH, SW) = out_hw, stride
    return xp[:, i:i + SH * (OH - 1) + 1:SH, j:j + SW * (OW - 1) + 1:SW, :]


def windows(xp, kernel, out_hw, stride):
    """All receptive fields of xp (C, Hp, Wp, N) as one read-only view (C, KH, KW, OH, OW, N), no copy.

    view[c, kh, kw, oh, ow, n] = xp[c, oh*SH + kh, ow*SW + kw, n]: the same memory reached through
    strides, so im2col is a single copy instead of KH*KW slice copies.
    """
    (KH, KW), (OH, OW), (SH, SW) = kernel, out_hw, stride
    sc, sh, sw, sn = xp.strides
    return as_strided(xp, (xp.shape[0], KH, KW, OH, OW, xp.shape[3]), (sc, sh, sw, SH * sh, SW * sw, sn),
                      writeable=False)


def im2col(x, kernel, stride, padding, out=None):
    """Gather every receptive field into a column matrix.

    x : ndarray of shape (N, C, H, W)
    returns cols : ndarray of shape (C*KH*KW, OH*OW*N), rows ordered (c, kh, kw) like the
    weight's (F, C, KH, KW) layout, columns ordered (oh, ow, n).
    out : optional contiguous array of C*KH*KW*OH*OW*N elements of x's dtype to write cols into.
    """
    N, C, H, W = x.shape
    (KH, KW), (OH, OW) = kernel, output_hw("im2col", (H, W), kernel, stride, padding)
    xp = to_chwn(x, padding)                                         # (C, Hp, Wp, N)
    shape = (C, KH, KW, OH, OW, N)
    cols = np.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)
    cols[...] = windows(xp, kernel, (OH, OW), stride)                # the one copy
    return cols.reshape(C * KH * KW, OH * OW * N)


def col2im(dcols, x_shape, kernel, stride, padding):
    """Adjoint of im2col: add each column's entries back into the input position they came from.

    dcols : ndarray of shape (C*KH*KW, OH*OW*N)
    returns dx : ndarray of shape x_shape = (N, C, H, W) (a view of a (C, H, W, N) array)
    """
    N, C, H, W = x_shape
    (KH, KW), (PH, PW) = kernel, padding
    OH, OW = output_hw("col2im", (H, W), kernel, stride, padding)
    dcols = dcols.reshape(C, KH, KW, OH, OW, N)
    dxp = np.zeros((C, H + 2 * PH, W + 2 * PW, N), dtype=dcols.dtype)
    for i in range(KH):
        for j in range(KW):
            window(dxp, i, j, (OH, OW), stride)[...] += dcols[:, i, j]  # slice-accumulate, no np.add.at
    return from_chwn(dxp[:, PH:PH + H, PW:PW + W, :])
