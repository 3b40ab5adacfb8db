"""Pictures on catalog cards and detail pages.

A course or resource shows, in this order: the cover its author uploaded (cropped to
16:9 and shrunk by Pillow, so a 12-megapixel photo costs a card ~40 KB), else — for a
resource — its own file's poster frame (video, ffmpeg) or first page / thumbnail (PDF,
image), made by :mod:`app.media.services.derivatives`.  The catalog keeps only the
picture's public id (``cover_id``); the bytes live in the media store like any object.
"""

from __future__ import annotations

import io

from sqlalchemy import select

from app.accounts.models import User
from app.catalog import services as catalog
from app.errors import Conflict, Forbidden, Invalid, NotFound, PayloadTooLarge
from app.extensions import db
from app.i18n import N_
from app.media.models import MediaObject
from app.media.services.common import setting
from app.media.services.delivery import Delivery
from app.media.services.derivatives import store_bytes
from app.media.services.permissions import require_user
from app.media.sniff import sniff
from app.media.storage import get_storage

COVER_MAX_BYTES = 10 * 1024 * 1024
COVER_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
COVER_SIZE = (640, 360)
MAX_PIXELS = 80_000_000


def cover_thumbnail(data: bytes) -> bytes:
    """The card picture of an image: upright, 640×360 (cropped to fill), JPEG."""
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    with Image.open(io.BytesIO(data)) as image:
        image = ImageOps.exif_transpose(image)
        if image.mode != "RGB":
            background = Image.new("RGB", image.size, (255, 255, 255))
            rgba = image.convert("RGBA")
            background.paste(rgba, mask=rgba.getchannel("A"))
            image = background
        picture = ImageOps.fit(image, COVER_SIZE, Image.Resampling.LANCZOS)
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=82, optimize=True, progressive=True)
        return out.getvalue()


def _editable(user: User, model, content_id: str):
    row = catalog.get_content(user, model, content_id, "latest")
    if not catalog.can_edit(user, row):
        raise Forbidden(N_("Only the owner or her district admin can change this picture."))
    if not catalog.can_take_changes(row):
        raise Conflict(
            N_("This version is waiting for review: withdraw it from review before changing it."),
            code="resource_in_review",
        )
    return row


def upload_cover(user: User | None, model, content_id: str, data: bytes):
    """Make ``data`` (an image file's bytes) the cover of the content's next version.

    Checked before anything is stored: who asks, the state (not while in review), the
    size, the real type (sniffed, never the name), and that Pillow can read it."""
    user = require_user(user)
    _editable(user, model, content_id)
    if not data:
        raise Invalid(N_("The picture is empty."), fields={"cover": ["Choose a picture."]})
    if len(data) > COVER_MAX_BYTES:
        raise PayloadTooLarge(
            N_("The picture is larger than 10 MB."), fields={"cover": ["At most 10 MB."]}
        )
    if sniff(data[:8192]) not in COVER_TYPES:
        raise Invalid(
            N_("The cover must be a PNG, JPEG, GIF or WebP picture."),
            fields={"cover": ["Not a picture."]},
            code="not_a_picture",
        )
    try:
        picture = cover_thumbnail(data)
    except Exception:  # Pillow raises many types for broken or hostile files
        raise Invalid(
            N_("The picture could not be read."),
            fields={"cover": ["Unreadable picture."]},
            code="not_a_picture",
        ) from None
    obj = store_bytes(picture, "image/jpeg", {"cover_of": content_id})
    return catalog.set_cover(user, model, content_id, obj.public_id)


def remove_cover(user: User | None, model, content_id: str):
    user = require_user(user)
    _editable(user, model, content_id)
    return catalog.set_cover(user, model, content_id, None)


def picture_delivery(user: User | None, model, content_id: str, version=None) -> Delivery:
    """A short-lived URL of the card picture of a version ``user`` may see (or NotFound)."""
    row = catalog.get_content(user, model, content_id, version)
    if not row.cover_id:
        raise NotFound("No picture.")
    obj = db.session.execute(
        select(MediaObject).filter_by(public_id=row.cover_id)
    ).scalar_one_or_none()
    storage = get_storage()
    if obj is None or obj.backend != storage.name:
        raise NotFound("No picture.")
    ttl = int(setting("MEDIA_URL_TTL"))
    extension = "jpg" if obj.media_type == "image/jpeg" else obj.media_type.split("/")[-1]
    url = storage.download_url(obj.key, f"cover.{extension}", obj.media_type, ttl, True)
    return Delivery(url, ttl, obj.media_type, f"cover.{extension}", obj.size)
