"""One file over HTTP(S) into a ``.part`` file that outlives a failure.

:func:`get` streams the answer into ``<name>.part``. When a download breaks off, what
arrived stays there; the next call asks the server for the rest with an HTTP Range request
(guarded by ``If-Range`` with the ETag or Last-Modified date of the first answer, so that a
file changed on the server is not stitched to its old beginning) and appends it only when
the server answers 206 with the matching ``Content-Range``. Any other answer (200: the
server ignores ranges, or the file changed; 416: nothing left past the end) starts again
from the first byte. The ``.part`` file never takes the final name here: the caller checks
it and moves it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import requests
from tqdm.auto import tqdm

from ...core.files import atomic_path

CHUNK = 1 << 20


class HTTPStatusError(RuntimeError):
    """The server answered with an error status."""

    def __init__(self, status: int, reason: str):
        super().__init__(f"{status} {reason}".strip())
        self.status = status


class BrokenOff(RuntimeError):
    """The download stopped before the end; ``got`` bytes are kept in the ``.part`` file."""

    def __init__(self, got: int, total: int | None, why: str):
        of = f" of {total:,}" if total is not None else ""
        super().__init__(f"after {got:,}{of} bytes: {why}")
        self.got, self.total = got, total


def _meta(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def discard(part: Path) -> None:
    """Delete a ``.part`` file and what it knows of the server's copy."""
    part.unlink(missing_ok=True)
    _meta(part).unlink(missing_ok=True)


def _validator(part: Path, url: str) -> str | None:
    """The ETag or Last-Modified date the part was started with, if it came from ``url``."""
    try:
        meta = json.loads(_meta(part).read_text())
    except (OSError, ValueError):
        return None
    return meta.get("validator") if meta.get("url") == url else None


def _range_start(content_range: str | None) -> int | None:
    m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", content_range or "")
    return int(m.group(1)) if m else None


def get(url: str, part: Path, progress: bool = False, timeout: float = 60) -> None:
    """Download ``url`` into ``part``, resuming what ``part`` holds where the server allows
    it. Raises :class:`HTTPStatusError` (nothing new kept) or :class:`BrokenOff` (what
    arrived kept for the next call)."""
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    headers = {"Accept-Encoding": "identity"}  # the byte offsets must be the file's own
    if have:
        headers["Range"] = f"bytes={have}-"
        validator = _validator(part, url)
        if validator:
            headers["If-Range"] = validator
    total = None
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as r:
            if r.status_code == 416 and have:  # the server has nothing past our end: start again
                discard(part)
                return get(url, part, progress, timeout)
            if r.status_code >= 400:
                raise HTTPStatusError(r.status_code, r.reason or "")
            resume = bool(have) and r.status_code == 206 and _range_start(r.headers.get("Content-Range")) == have
            have = have if resume else 0
            length = r.headers.get("Content-Length", "")
            total = have + int(length) if length.isdigit() else None
            if not resume:
                etag = r.headers.get("ETag", "")
                validator = etag if etag and not etag.startswith("W/") else r.headers.get("Last-Modified")
                with atomic_path(_meta(part)) as tmp:
                    tmp.write_text(json.dumps({"url": url, "validator": validator}))
            bar = None
            if progress:
                bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=part.name)
            try:
                with open(part, "ab" if resume else "wb") as f:
                    for block in r.iter_content(CHUNK):
                        f.write(block)
                        if bar is not None:
                            bar.update(len(block))
            finally:
                if bar is not None:
                    bar.close()
    except requests.exceptions.RequestException as err:
        got = part.stat().st_size if part.is_file() else 0
        raise BrokenOff(got, total, f"{type(err).__name__}: {err}") from err
    got = part.stat().st_size
    if total is not None and got != total:
        raise BrokenOff(got, total, "the connection closed early")
