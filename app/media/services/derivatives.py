"""Derivatives made by background jobs: thumbnails (images, PDF first page), poster
frames and durations (video/audio).  A missing tool is recorded, never fatal."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile

from sqlalchemy import delete, select

from app.extensions import db
from app.media.models import MediaDerivative, MediaObject
from app.media.services.common import object_key
from app.media.storage import get_storage


def _store_derivative(source: MediaObject, kind: str, data: bytes, media_type: str) -> None:
    storage = get_storage()
    checksum = hashlib.sha256(data).hexdigest()
    key = object_key(checksum)
    obj = db.session.execute(
        select(MediaObject).filter_by(backend=storage.name, key=key)
    ).scalar_one_or_none()
    if obj is None:
        storage.put_bytes(key, data, media_type)
        obj = MediaObject(
            backend=storage.name,
            key=key,
            size=len(data),
            checksum=checksum,
            media_type=media_type,
            meta={"derivative_of": source.public_id},
        )
        db.session.add(obj)
        db.session.flush()
    db.session.execute(
        delete(MediaDerivative).where(
            MediaDerivative.source_id == source.id, MediaDerivative.kind == kind
        )
    )
    db.session.add(MediaDerivative(source_id=source.id, kind=kind, object_id=obj.id))
    db.session.flush()


def _thumbnail_png(image_bytes_or_path) -> bytes:
    import io

    from PIL import Image

    Image.MAX_IMAGE_PIXELS = 80_000_000
    with Image.open(image_bytes_or_path) as image:
        image.thumbnail((480, 480))
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA")
        out = io.BytesIO()
        image.save(out, "PNG", optimize=True)
        return out.getvalue()


def _run(command: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, timeout=timeout, check=False)  # noqa: S603


def make_derivatives(object_id: int) -> dict:
    """Job: thumbnail (images, PDF first page), poster frame and duration (video).

    What cannot be made (tool not installed, undecodable file) is recorded in
    ``meta["skipped"]``; the upload stays valid either way.
    """
    obj = db.session.get(MediaObject, object_id)
    if obj is None:
        return {}
    storage = get_storage()
    made: dict[str, str] = {}
    skipped: dict[str, str] = {}
    meta = dict(obj.meta or {})
    with tempfile.TemporaryDirectory(prefix="shuyuan-media-") as folder:

        def local_copy() -> str:
            path = storage.local_path(obj.key)
            if path is None:
                path = os.path.join(folder, "source")
                storage.download_to(obj.key, path)
            return path

        kind = obj.media_type.split("/")[0]
        if obj.media_type.startswith("image/"):
            try:
                _store_derivative(obj, "thumbnail", _thumbnail_png(local_copy()), "image/png")
                made["thumbnail"] = "image/png"
            except Exception as exc:
                skipped["thumbnail"] = f"image could not be read: {exc}"[:200]
        elif obj.media_type == "application/pdf":
            tool = shutil.which("pdftoppm")
            if tool is None:
                skipped["thumbnail"] = "pdftoppm (poppler-utils) is not installed"
            else:
                result = _run(
                    [
                        tool,
                        "-f",
                        "1",
                        "-l",
                        "1",
                        "-png",
                        "-scale-to",
                        "480",
                        "-singlefile",
                        (pdf_path := local_copy()),
                        os.path.join(folder, "page"),
                    ]
                )
                page = os.path.join(folder, "page.png")
                if result.returncode == 0 and os.path.exists(page):
                    with open(page, "rb") as handle:
                        _store_derivative(obj, "thumbnail", handle.read(), "image/png")
                    made["thumbnail"] = "image/png"
                else:
                    skipped["thumbnail"] = (
                        "pdftoppm failed: "
                        + result.stderr.decode(errors="replace").replace(pdf_path, "<file>")[:150]
                    )
        elif kind in ("video", "audio"):
            probe, ffmpeg = shutil.which("ffprobe"), shutil.which("ffmpeg")
            source = storage.local_path(obj.key) or storage.download_url(
                obj.key, "source", obj.media_type, 3600
            )
            if probe is None:
                skipped["duration"] = "ffprobe (ffmpeg) is not installed"
            else:
                result = _run(
                    [
                        probe,
                        "-v",
                        "error",
                        "-show_entries",
                        "format=duration",
                        "-of",
                        "default=noprint_wrappers=1:nokey=1",
                        source,
                    ]
                )
                try:
                    meta["duration"] = round(
                        float(result.stdout.decode().strip().splitlines()[0]), 3
                    )
                    made["duration"] = str(meta["duration"])
                except (ValueError, IndexError):
                    skipped["duration"] = "ffprobe could not read the duration"
            if kind == "video":
                if ffmpeg is None:
                    skipped["poster"] = "ffmpeg is not installed"
                else:
                    poster = os.path.join(folder, "poster.jpg")
                    at = "1" if (meta.get("duration") or 0) > 2 else "0"
                    result = _run(
                        [
                            ffmpeg,
                            "-v",
                            "error",
                            "-y",
                            "-ss",
                            at,
                            "-i",
                            source,
                            "-frames:v",
                            "1",
                            "-vf",
                            "scale='min(640,iw)':-2",
                            poster,
                        ]
                    )
                    if result.returncode == 0 and os.path.exists(poster):
                        with open(poster, "rb") as handle:
                            _store_derivative(obj, "poster", handle.read(), "image/jpeg")
                        made["poster"] = "image/jpeg"
                    else:
                        skipped["poster"] = (
                            "ffmpeg failed: "
                            + result.stderr.decode(errors="replace").replace(source, "<file>")[:150]
                        )
    meta["derivatives"] = made or {"none": "nothing to make"}
    if skipped:
        meta["skipped"] = skipped
    obj.meta = meta
    db.session.flush()
    return {"made": made, "skipped": skipped}
