"""Reading a Python pickle that must hold plain data only.

Some datasets ship their captions as pickles (MSVD's ``raw-captions.pkl`` in CLIP4Clip's
and collaborative-experts' packages). ``pickle.load`` runs whatever the file tells it to:
a pickle can name any importable callable (``os.system``, ``subprocess.Popen``,
``builtins.eval``) and have it called with its own arguments. :func:`load_plain` reads
such a file with an unpickler that builds only what the pickle machine makes by itself
(dicts, lists, tuples, strings, numbers, booleans, None, bytes), plus the few plain
containers a pickle must name to rebuild (:data:`ALLOWED`: sets and ordered dicts; bytes,
which old protocols write as ``_codecs.encode(text, "latin1")``, through a guarded stand-in), and
refuses every other global, naming the file and the global, before anything is called.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle that asks to import something: refused before anything is called."""


# the globals a pickle of plain data may name ("__builtin__": Python 2's name, which protocols
# 0-2 keep); each is a container's constructor, and none can run code given data
ALLOWED = {(m, n) for m in ("builtins", "__builtin__") for n in ("set", "frozenset", "bytearray")} | {
    ("collections", "OrderedDict")}


class _PlainUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):  # every global a pickle refers to comes through here
        if (module, name) == ("_codecs", "encode"):  # protocols 0-2 write bytes as _codecs.encode(text, "latin1")
            return self._latin1
        if (module, name) in ALLOWED:
            return super().find_class("builtins" if module == "__builtin__" else module, name)
        raise UnsafePickleError(
            f"{self.source} asks to load the Python global {module}.{name}; a data file may hold only "
            f"dicts, lists, tuples, strings and numbers, so it was refused without running anything. "
            f"Get the file again from its publisher (it may have been tampered with)")

    def _latin1(self, text, encoding="utf-8"):
        if not isinstance(text, str) or encoding != "latin1":
            raise UnsafePickleError(f"{self.source} calls _codecs.encode with {encoding!r}; only the latin1 form "
                                    f"that pickles of bytes use is read")
        return text.encode("latin1")

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.source} refers to an external object {pid!r}; refused")


def loads_plain(data: bytes, source: str = "<bytes>"):
    """Unpickle ``data`` holding plain containers, strings and numbers only."""
    try:
        return _PlainUnpickler(io.BytesIO(data), source).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as err:
        raise pickle.UnpicklingError(f"{source} is not a readable pickle ({type(err).__name__}: {err})") from err


def load_plain(path: str | Path):
    """:func:`loads_plain` of the file at ``path``."""
    path = Path(path)
    return loads_plain(path.read_bytes(), str(path))
