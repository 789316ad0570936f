"""The safetensors file format, written and read in plain Python and NumPy: strict, and nothing in it ever runs.

A file is an 8-byte little-endian header length n, n bytes of UTF-8 JSON, then the tensors' raw bytes:
    {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [F, C, KH, KW], "data_offsets": [begin, end]}}
Offsets count from the end of the header; the tensors tile the data exactly (no gaps, no overlaps), each
holding prod(shape) * itemsize little-endian bytes. This is what the ``safetensors`` package writes and
reads (it is only a test dependency of nanocnn). PyTorch's pickles (.pt/.pth) are refused by name and
by content, since unpickling can run code.
"""

import json
import math
import os
import struct
import zipfile

import numpy as np

from ..validation import UserError, is_int, reject_constant

WRITE_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64"}
READ_DTYPES = {"F64": ("<f8", 8), "F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2), "I64": ("<i8", 8)}
MAX_HEADER = 100_000_000  # the safetensors package's own limit
PICKLE_MESSAGE = (
    "nanocnn does not read PyTorch pickles (.pt/.pth) since loading them can run code; save with "
    "safetensors.torch.save_file(model.state_dict(), 'weights.safetensors')"
)


def encode_safetensors(tensors, metadata=None):
    """The bytes of a safetensors file holding ``tensors`` ({name: float32 or float64 ndarray, any shape}).

    metadata : {str: str} or None. The tensors are stored in the given order; the header is padded
    with spaces to a multiple of 8 bytes, as the safetensors package does, so the data stays aligned.
    """
    header, chunks, offset = {}, [], 0
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise UserError(f"safetensors metadata must map strings to strings, got {metadata!r:.80}")
        header["__metadata__"] = dict(metadata)
    for name, array in tensors.items():
        array = np.asarray(array)
        if array.dtype not in WRITE_DTYPES or name == "__metadata__":
            raise UserError(
                f"cannot store {name!r} of dtype {array.dtype} in safetensors (float32, float64 or int64 only)"
            )
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": WRITE_DTYPES[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def foreign_kind(path, head):
    """What a file that does not start like safetensors is, from its first bytes, if it is recognisable."""
    if head.startswith(b"PK"):  # a zip: torch.save's format, or a NumPy .npz
        try:
            with zipfile.ZipFile(path) as z:  # lists the entries, reads none
                names = z.namelist()
        except (OSError, zipfile.BadZipFile, EOFError):
            return "a zip archive (corrupt), not a safetensors file"
        if any(n.endswith(".pkl") for n in names):
            return PICKLE_MESSAGE
        if names and all(n.endswith(".npy") for n in names):
            return "a NumPy .npz archive, not a safetensors file (nanocnn model files load with nanocnn.load)"
        return "a zip archive, not a safetensors file"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):  # pickle protocol 2-5
        return PICKLE_MESSAGE
    if head.startswith(b"\x89PNG"):
        return "a PNG image, not a safetensors file"
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy array, not a safetensors file"
    return None


class BadFile(ValueError):
    """A problem in a file's header; the reader turns it into a UserError naming the file."""


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)!r}")
    return dict(pairs)


def parse_header(raw, size):
    """The header's tensor entries {name: (code, shape, begin, end)} and metadata; raises BadFile.

    size : the number of data bytes after the header, which the entries must tile exactly.
    """
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates, parse_constant=reject_constant)
    except UnicodeDecodeError:
        raise BadFile("header is not UTF-8 text") from None
    except (ValueError, RecursionError) as e:
        raise BadFile(f"header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise BadFile(f"header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop("__metadata__", None) or {}
    if not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise BadFile("__metadata__ is not an object of strings")
    entries = {}
    for name, entry in header.items():
        if not (isinstance(entry, dict) and set(entry) == {"dtype", "shape", "data_offsets"}):
            raise BadFile(f"tensor {name!r} is not described by dtype, shape and data_offsets")
        code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if code not in READ_DTYPES:
            raise BadFile(f"tensor {name!r} has dtype {str(code)[:20]!r}; nanocnn reads {', '.join(READ_DTYPES)}")
        ok = isinstance(shape, list) and len(shape) <= 32 and all(is_int(d) and d >= 0 for d in shape)
        if not (ok and math.prod(max(d, 1) for d in shape) < 2**40):  # more than numpy (or any weight) holds
            raise BadFile(f"tensor {name!r} has a bad shape {str(shape)[:40]}")
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(is_int(o) for o in offsets)
            and 0 <= offsets[0] <= offsets[1]
        ):
            raise BadFile(f"tensor {name!r} has bad data_offsets {str(offsets)[:40]}")
        begin, end = offsets
        need = math.prod(shape) * READ_DTYPES[code][1]
        if end - begin != need:
            raise BadFile(f"tensor {name!r} has {end - begin} bytes but shape {tuple(shape)} of {code} needs {need}")
        entries[name] = (code, tuple(shape), begin, end)
    position = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: item[1][2:]):
        if begin != position:
            what = "overlaps the tensor before it" if begin < position else f"leaves a gap at byte {position}"
            raise BadFile(f"tensor {name!r} at data_offsets [{begin}, {end}] {what}")
        position = end
    if position > size:
        raise BadFile(f"truncated: the tensors need {position} bytes after the header, the file has {size}")
    if position < size:
        raise BadFile(f"{size - position} stray bytes after the last tensor")
    return entries, metadata


def to_array(data, code, shape, begin, end):
    """One tensor's bytes -> a native ndarray: float32 (for F32, F16, BF16, converted exactly), float64 or int64."""
    raw, itemsize = READ_DTYPES[code]
    flat = (
        np.frombuffer(data, dtype=raw, count=(end - begin) // itemsize, offset=begin)
        if end > begin
        else np.zeros(0, dtype=raw)
    )
    if code == "BF16":  # bfloat16 is the top half of a float32
        return (flat.astype(np.uint32) << 16).view(np.float32).reshape(shape)
    native = {"F64": np.float64, "I64": np.int64}.get(code, np.float32)  # an int64 counter stays one (BatchNorm's)
    return flat.astype(native).reshape(shape)  # a native copy


def read_safetensors(path):
    """Read a safetensors file -> (tensors {name: ndarray}, metadata {str: str}). Never runs code.

    Raises UserError, one line naming the file and the problem, for a missing, truncated, foreign or
    inconsistent file, a PyTorch pickle, or a tensor of a dtype nanocnn does not read.
    """
    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() in (".pt", ".pth"):
        raise UserError(f"{path}: {PICKLE_MESSAGE}")
    if os.path.isdir(path):
        raise UserError(f"{path} is a folder, not a safetensors file")
    if not os.path.isfile(path):
        raise UserError(f"safetensors file not found: {path}")
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(9)
        if head[8:9] != b"{":  # a JSON object always opens the header
            kind = foreign_kind(path, head)
            if kind == PICKLE_MESSAGE:
                raise UserError(f"{path}: {kind}")
            if kind is None:
                kind = (
                    "empty, not a safetensors file"
                    if size == 0
                    else f"too short for a safetensors file ({size} bytes)"
                    if size < 9
                    else "not a safetensors file (no 8-byte length and JSON header)"
                )
            raise UserError(f"{path} is {kind}")
        n = int.from_bytes(head[:8], "little")
        if n > size - 8:
            raise UserError(
                f"{path}: truncated or not a safetensors file: header length {n} exceeds the {size - 8} bytes after it"
            )
        if n > MAX_HEADER:
            raise UserError(f"{path}: not a safetensors file: header length {n} exceeds the limit {MAX_HEADER}")
        f.seek(8)
        raw = f.read(n)
        data = f.read()
    try:
        entries, metadata = parse_header(raw, len(data))
    except BadFile as e:
        raise UserError(f"{path}: bad safetensors file: {e}") from None
    return {name: to_array(data, *entry) for name, entry in entries.items()}, metadata
