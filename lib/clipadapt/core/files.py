"""Writing files atomically: nothing half-written is ever left at the destination."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pooch


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp"):
    """Yield a temporary path in ``path``'s folder; when the block ends without error it
    replaces ``path`` (with the usual file mode), otherwise it is deleted."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


DATA_ENV = "CLIPADAPT_DATA"


def data_root(root: str | Path | None = None) -> Path:
    """``root``, else ``$CLIPADAPT_DATA``, else the per-user cache folder of clipadapt."""
    if root:
        return Path(root).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return Path(pooch.os_cache("clipadapt"))
