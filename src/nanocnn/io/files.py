"""Safe .npz reading and atomic writes, for models, runs and data alike."""

import os
import zipfile
import zlib

import numpy as np

from ..validation import UserError


def read_npz(path, what, keys=None):
    """Return {key: ndarray} for ``keys`` (default: all) of the archive at ``path``.

    ``what`` names the file in errors ("data file", "model file"). Raises UserError when the file is
    missing, not an .npz, truncated or corrupt, or holds pickled objects (refused, as they could run code).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{what} not found: {path}")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{what} {path} is not a readable .npz archive: {e}") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise UserError(f"{what} {path} is a single .npy array, not an .npz archive")
    with npz:
        missing = sorted(set(keys or ()) - set(npz.files))
        if missing:
            raise UserError(f"{what} {path} lacks the keys {missing} (it has {sorted(npz.files)})")
        try:
            return {k: npz[k] for k in (keys or npz.files)}
        except ValueError as e:
            if "allow_pickle" in str(e) or "Object arrays" in str(e):
                raise UserError(
                    f"{what} {path} holds pickled objects; refusing to load them (they could run code)"
                ) from None
            raise UserError(f"{what} {path} is corrupt: {e}") from None
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise UserError(f"{what} {path} is truncated or corrupt: {e}") from None


def atomic_write(path, write, mode="wb"):
    """Call write(f) on a temporary file beside ``path``, then rename it over ``path``.

    A crash or kill at any moment leaves either the old file or the new one, never half of one.
    """
    path = os.path.abspath(os.fspath(path))
    # A name of our own rather than mkstemp's, so the file gets the usual permissions (umask), not 0600.
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
