"""Import every module of clipadapt (its ``__main__`` modules, which run commands, aside).

    python tools/import_all.py

The fast part of the Colab-stack check (``make colab-check-fast``): a module that imports
something Colab's versions lack fails here, with its name, before any chapter runs.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback

import clipadapt


def main() -> int:
    names = [m.name for m in pkgutil.walk_packages(clipadapt.__path__, "clipadapt.")
             if not m.name.endswith(".__main__")]
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - every failure is reported, with its module
            failed.append(name)
            print(f"{name} does not import:\n{traceback.format_exc()}", file=sys.stderr)
    print(f"{len(names) - len(failed)} of {len(names)} clipadapt modules import on Python "
          f"{sys.version.split()[0]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
