"""Writing files so that readers never see a partial one."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path, write, mode: int = 0o644) -> Path:
    """Call `write(f)` on a temporary file beside `path`, then rename it to `path`; on any
    failure (or interruption) the temporary file is removed and `path` is untouched."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
