"""What a downloaded file holds, checked before it is kept: zip and tar archives (recognised
by their first bytes, unpacked member by member), JSON files with the keys they must hold,
and the HTML page a file host serves instead of the file when it refuses.

Every check raises :class:`BadContent` with the reason, worded to follow the file's name
("x.zip is not a readable ..."); :mod:`clipadapt.data.fetch.download` adds the URL and the command.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath


class BadContent(ValueError):
    """A downloaded file is not what it should be."""


def _head(path: Path, n: int = 512) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def is_html(head: bytes) -> bool:
    """Whether the bytes start an HTML page (what Google Drive and others answer when they
    refuse a download or ask for a confirmation)."""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<!--", b"<body"))


def _not_this(path: Path, what: str) -> BadContent:
    head = _head(path, 200)
    if is_html(head):
        return BadContent(f"is an HTML page, not {what} (a file host answers so when it refuses the download or "
                          f"asks for a confirmation); it starts with {head[:60]!r}")
    return BadContent(f"is not {what}: it starts with {head[:40]!r}")


def kind(path: Path) -> str:
    """``zip`` or ``tar`` (plain, gzip, bzip2 or xz), from the first bytes of the file."""
    head = _head(path)
    if head.startswith(b"PK"):
        return "zip"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ")) or head[257:262] == b"ustar":
        return "tar"
    raise BadContent(f"is neither a zip nor a tar archive: it starts with {head[:40]!r}"
                     + (" (an HTML page: a file host answers so when it refuses the download)" if is_html(head)
                        else ""))


def members(archive: Path):
    """``(name, open())`` for every file of a zip or tar archive, in order."""
    if kind(archive) == "zip":
        with zipfile.ZipFile(archive) as zf:
            for m in zf.infolist():
                if not m.is_dir():
                    yield m.filename, lambda m=m: zf.open(m)
        return
    with tarfile.open(archive, "r:*") as tf:
        for m in tf:
            if m.isfile():
                yield m.name, lambda m=m: tf.extractfile(m)


def unpack(archive: Path, target: Path, select=("*",), strip: str = "", flat: bool = False,
           inner: str = "") -> int:
    """Copy the members of ``archive`` that match ``select`` into ``target`` (without the
    leading ``strip``, or by file name alone when ``flat``; ``inner``: unpack that member,
    an archive itself, instead). Everything is read into a temporary folder beside
    ``target`` first, so an unreadable archive leaves ``target`` as it was; then each file
    takes its final name with ``os.replace``. Returns the number of files."""
    target.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        try:
            source = archive
            if inner:
                for name, open_member in members(archive):
                    if name == inner:
                        source = tmp / ".inner"
                        with open_member() as src, open(source, "wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 20)
                        break
                if source == archive:
                    raise BadContent(f"holds no member {inner}")
            found = 0
            for name, open_member in members(source):
                if not any(fnmatch.fnmatch(name, p) for p in select):
                    continue
                rel = PurePosixPath(name).name if flat else name.removeprefix(strip)
                if ".." in PurePosixPath(rel).parts or rel.startswith("/"):
                    raise BadContent(f"has a member {name!r} that would land outside {target}")
                out = tmp / "files" / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                with open_member() as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                found += 1
        except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError) as err:
            raise BadContent(f"is not a readable zip or tar archive ({err})") from err
        if not found:
            raise BadContent(f"holds no member matching {', '.join(select)}")
        moved = 0
        for path in sorted(p for p in (tmp / "files").rglob("*") if p.is_file()):
            dest = target / path.relative_to(tmp / "files")
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
            moved += 1
        return moved
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_json(path: Path, keys=()) -> None:
    """``path`` must be JSON; with ``keys``, an object holding each of them."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _not_this(path, f"JSON ({err})") from err
    missing = [k for k in keys if not isinstance(data, dict) or k not in data]
    if missing:
        raise BadContent(f"is JSON without the keys {', '.join(map(repr, missing))} (expected "
                         f"{', '.join(map(repr, keys))})")


def check_file(path: Path, final_name: str, keys=()) -> None:
    """The content check of a single (not archived) file that will be called
    ``final_name``: JSON files by :func:`check_json`, any other must not be an HTML page."""
    if PurePosixPath(final_name).suffix == ".json" or keys:
        check_json(path, keys)
    elif is_html(_head(path)):
        raise _not_this(path, "the data file")
