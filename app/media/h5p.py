"""Checking and unpacking H5P packages (zip files) into storage, safely.

Refused: entries whose path is absolute, contains ``..``, a backslash, a drive letter or
control characters (they could escape the package folder); symbolic links; more files
than ``MEDIA_H5P_MAX_FILES``; more than ``MEDIA_H5P_MAX_UNPACKED_BYTES`` in total once
unpacked (zip bombs: the declared sizes are checked first, and the bytes actually
inflated are counted while unpacking, so a lying header does not help); a package without
``h5p.json``.
"""

from __future__ import annotations

import json
import mimetypes
import re
import stat
import zipfile
import zlib

from app.errors import Invalid

_BAD_PATH = re.compile(r"[\x00-\x1f\x7f\\:]")
# What zipfile raises on a damaged or hostile archive besides BadZipFile: an encrypted
# entry (RuntimeError), an unknown compression method (NotImplementedError), a broken
# deflate stream (zlib.error), a truncated one (EOFError).
_DAMAGED = (zipfile.BadZipFile, RuntimeError, NotImplementedError, zlib.error, EOFError)
_ALLOWED_TOP = re.compile(r"^[A-Za-z0-9_.\- ]+$")


_MAX_H5P_JSON = 1024 * 1024


class H5PError(Invalid):
    """An H5P package that cannot be unpacked safely."""


def _check_name(name: str) -> str:
    if not name or name.startswith("/") or _BAD_PATH.search(name):
        raise H5PError(
            f"The package contains an unsafe path: {name[:80]!r}.", code="h5p_unsafe_path"
        )
    parts = name.split("/")
    if any(part in ("..", ".") for part in parts):
        raise H5PError(
            f"The package contains a path leaving its folder: {name[:80]!r}.",
            code="h5p_unsafe_path",
        )
    if not _ALLOWED_TOP.match(parts[0]):
        raise H5PError(
            f"The package contains an unsafe path: {name[:80]!r}.", code="h5p_unsafe_path"
        )
    return name


def inspect(path: str, max_bytes: int, max_files: int) -> list[zipfile.ZipInfo]:
    """The file entries of a valid package; raises :class:`H5PError` otherwise."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):  # ValueError: bad UTF-8 names
        raise H5PError(
            "This is not a valid H5P package (not a zip file).", code="h5p_invalid"
        ) from None
    with archive:
        entries = archive.infolist()
        files = [e for e in entries if not e.is_dir()]
        if len(entries) > max_files:
            raise H5PError(
                f"The package has {len(entries)} entries; at most {max_files} are allowed.",
                code="h5p_too_many_files",
            )
        total = 0
        for entry in entries:
            _check_name(entry.filename)
            mode = entry.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise H5PError(
                    f"The package contains a symbolic link: {entry.filename[:80]!r}.",
                    code="h5p_unsafe_path",
                )
            total += entry.file_size
            if total > max_bytes:
                raise H5PError(
                    f"The package unpacks to more than {max_bytes} bytes.", code="h5p_too_large"
                )
        names = {e.filename for e in files}
        if "h5p.json" not in names:
            raise H5PError("This is not an H5P package: h5p.json is missing.", code="h5p_invalid")
        try:
            if archive.getinfo("h5p.json").file_size > _MAX_H5P_JSON:
                raise ValueError("too large")
            meta = json.loads(archive.read("h5p.json"))
        except (ValueError, RecursionError, *_DAMAGED) as exc:
            raise H5PError(
                f"h5p.json cannot be read: {str(exc)[:120]}", code="h5p_invalid"
            ) from None
        if not isinstance(meta, dict) or not isinstance(meta.get("mainLibrary"), str):
            raise H5PError("h5p.json has no mainLibrary.", code="h5p_invalid")
        return files


def unpack(path: str, storage, prefix: str, max_bytes: int, max_files: int) -> dict:
    """Check the package at ``path`` and copy its files to ``prefix`` in ``storage``.

    Returns ``{"prefix", "files", "bytes", "title"}``.  On any error nothing stays under
    ``prefix``.
    """
    files = inspect(path, max_bytes, max_files)
    written = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for entry in files:
                remaining = max_bytes - written
                with archive.open(entry) as handle:
                    data = handle.read(remaining + 1)
                if len(data) > remaining:
                    raise H5PError(
                        f"The package unpacks to more than {max_bytes} bytes.", code="h5p_too_large"
                    )
                written += len(data)
                media_type = mimetypes.guess_type(entry.filename)[0] or "application/octet-stream"
                storage.put_bytes(prefix + entry.filename, data, media_type)
            meta = json.loads(archive.read("h5p.json"))
    except _DAMAGED as exc:
        storage.delete_prefix(prefix)
        raise H5PError(f"The package is damaged: {str(exc)[:120]}", code="h5p_invalid") from None
    except Exception:
        storage.delete_prefix(prefix)
        raise
    return {
        "prefix": prefix,
        "files": len(files),
        "bytes": written,
        "title": str(meta.get("title", ""))[:200],
    }
