"""Writing files and folders the user named: failures become errors naming the path and the reason."""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import StoreError


@contextmanager
def writing(path, what):
    """Turn an OSError met while writing `what` (e.g. "the decomposition") at path into a StoreError naming
    the file the system refused and its reason (no such folder, read-only, no space left, ...)."""
    try:
        yield
    except OSError as e:
        raise StoreError(e.filename or path, f"cannot write {what} there ({e.strerror or e})") from None


def check_writable(path, what):
    """Fail before any work unless path's folder exists or can be made and a file can be created in it:
    a StoreError naming path, what would have been written there and the system's reason."""
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".brainsim-probe-")
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:  # mkdir met a file where the folder should be
        raise StoreError(path, f"cannot write {what} there ({folder} is a file, not a folder)") from None
    except OSError as e:
        raise StoreError(path, f"cannot write {what} there ({e.strerror or e})") from None
