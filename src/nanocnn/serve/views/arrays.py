"""How the views send arrays: real float32 values, base64 in JSON, and the bound on what one layer sends."""

import base64

import numpy as np

MAX_LAYER_VALUES = 2**16  # values of one layer's output sent at most (whole channels, the first ones)


def array_json(a):
    """ndarray -> {"shape": [...], "dtype": "float32", "data": base64 of its little-endian float32 bytes}.

    In Python: np.frombuffer(base64.b64decode(v["data"]), "<f4").reshape(v["shape"]); in JavaScript a
    DataView over the decoded bytes (getFloat32(4 * i, true)).
    """
    data = np.ascontiguousarray(a, dtype="<f4")
    return {"shape": list(data.shape), "dtype": "float32", "data": base64.b64encode(data.tobytes()).decode("ascii")}
