"""Photos: upload (checked from content with Pillow), list, delete, reorder, avatar.

Files live in ``UPLOAD_FOLDER`` under random names (``secrets``) and are served
at ``UPLOAD_URL_PATH/<name>`` (by the Flask app through SharedDataMiddleware in
the embedded default, by nginx in production). A row and its file never
disagree: an upload whose commit fails removes the written file, and deleted
rows lose their files only after the commit (:mod:`wsgi_app.services.upload_files`).
"""

from __future__ import annotations

import io
import secrets
import warnings
from dataclasses import dataclass
from typing import IO, Any

from flask import current_app
from PIL import Image, ImageOps, UnidentifiedImageError

from wsgi_app import transactions
from wsgi_app.errors import (
    CONFLICT,
    NOT_AN_IMAGE,
    OBJECT_NOT_FOUND,
    PARAM_INVALID,
    ApiError,
)
from wsgi_app.extensions import db, redis_client
from wsgi_app.models.social import Photo
from wsgi_app.models.user import User
from wsgi_app.services import rate_limit
from wsgi_app.services.profile import cache as profile_cache
from wsgi_app.services.upload_files import (
    read_bounded,
    remove_after_commit,
    remove_files,
    upload_path,
    upload_url,
)
from wsgi_app.timeutil import format_wire_datetime

# Pillow format name -> (file extension, content type).
IMAGE_FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
    "GIF": ("gif", "image/gif"),
}
# A phone photo as phones save it (12 MP; 24 MP for the largest default modes, 6000x4000). Checked
# from the header before any decoding: a 7000x7000 PNG of 143 KB would otherwise cost seconds of CPU.
MAX_PIXELS = 24_000_000
# Metadata that can carry where and when a photo was taken (EXIF GPS, XMP, comments).
METADATA_KEYS = ("exif", "xmp", "XML:com.adobe.xmp", "photoshop", "comment", "iptc")


@dataclass(frozen=True)
class CheckedImage:
    format: str
    width: int
    height: int


def photo_data(photo: Photo) -> dict[str, Any]:
    return {
        "photo_id": photo.id,
        "url": upload_url(photo.filename),
        "content_type": photo.content_type,
        "size_bytes": photo.size_bytes,
        "width": photo.width,
        "height": photo.height,
        "position": photo.position,
        "created_at": format_wire_datetime(photo.created_at),
    }


def check_image(content: bytes) -> CheckedImage:
    """What the bytes really are (never the client's name or content type), or 514."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as probe:  # reads the header only
                image_format = probe.format or ""
                width, height = probe.size
                if width < 1 or height < 1 or width * height > MAX_PIXELS:
                    raise ApiError(
                        NOT_AN_IMAGE, f"image dimensions out of range (at most {MAX_PIXELS} pixels)"
                    )
                probe.verify()  # walks the data: truncated or corrupt files fail here
    except ApiError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ApiError(NOT_AN_IMAGE, f"not a supported image ({err.__class__.__name__})") from None
    except Exception:  # Pillow raises many types (SyntaxError, OSError, ...) for broken files
        raise ApiError(NOT_AN_IMAGE, "the image is damaged or unreadable") from None
    if image_format not in IMAGE_FORMATS:
        raise ApiError(NOT_AN_IMAGE, "only JPEG, PNG, WebP and GIF images are accepted")
    return CheckedImage(image_format, width, height)


def strip_metadata(content: bytes, checked: CheckedImage) -> tuple[bytes, CheckedImage]:
    """Re-encode a still photo that carries metadata (EXIF GPS would reveal where it was taken),
    applying its EXIF orientation first so it still displays upright. Others are kept byte for byte."""
    with Image.open(io.BytesIO(content)) as image:
        if not any(key in image.info for key in METADATA_KEYS) or getattr(image, "n_frames", 1) > 1:
            return content, checked
        icc_profile = image.info.get("icc_profile")
        upright = ImageOps.exif_transpose(image)
        upright.info.clear()
        options: dict[str, Any] = {"icc_profile": icc_profile} if icc_profile else {}
        if checked.format in ("JPEG", "WEBP"):
            options["quality"] = 92
        out = io.BytesIO()
        upright.save(out, format=checked.format, **options)
        return out.getvalue(), CheckedImage(checked.format, upright.width, upright.height)


def _read_and_check(stream: IO[bytes]) -> tuple[bytes, CheckedImage]:
    content = read_bounded(stream, current_app.config["PHOTO_MAX_BYTES"], "photo")
    return content, check_image(content)


def user_photos(user_id: int) -> list[Photo]:
    return list(
        db.session.execute(
            db.select(Photo).where(Photo.user_id == user_id).order_by(Photo.position, Photo.id)
        ).scalars()
    )


def own_photo(user_id: int, photo_id: int) -> Photo:
    """The caller's photo; someone else's photo answers exactly like a missing one."""
    photo = db.session.get(Photo, photo_id)
    if photo is None or photo.user_id != user_id:
        raise ApiError(OBJECT_NOT_FOUND, "no such photo")
    return photo


def add_photo(user_id: int, stream: IO[bytes]) -> Photo:
    """Check, store and record one photo; the file is removed again if the commit fails."""
    limits = current_app.config["PHOTO_UPLOAD_LIMITS"]
    rate_limit.enforce(redis_client(), f"photo:upload:{user_id}", limits, "photo uploads")
    content, checked = strip_metadata(*_read_and_check(stream))
    extension, content_type = IMAGE_FORMATS[checked.format]
    filename = f"{secrets.token_urlsafe(18)}.{extension}"
    path = upload_path(filename)
    written: list[str] = []

    def store() -> Photo:
        # Lock the owner's row so two parallel uploads cannot both pass the count check.
        db.session.execute(db.select(User.id).where(User.id == user_id).with_for_update())
        existing = user_photos(user_id)
        max_photos = current_app.config["PHOTO_MAX_PER_USER"]
        if len(existing) >= max_photos:
            raise ApiError(CONFLICT, f"at most {max_photos} photos; delete one first")
        if not written:  # a retried transaction reuses the file
            with open(path, "xb") as out:
                out.write(content)
            written.append(path)
        photo = Photo(
            user_id=user_id,
            filename=filename,
            content_type=content_type,
            size_bytes=len(content),
            width=checked.width,
            height=checked.height,
            position=max((p.position for p in existing), default=-1) + 1,
        )
        db.session.add(photo)
        return photo

    try:
        return transactions.write(store, what="photo upload")
    except BaseException:
        remove_files(written)
        raise


def delete_photo(user_id: int, photo_id: int) -> None:
    """Delete one of the caller's photos (and clear the avatar if it was the avatar)."""

    def work() -> None:
        photo = own_photo(user_id, photo_id)
        owner = db.session.get(User, user_id)
        if owner is not None and owner.avatar == upload_url(photo.filename):
            owner.avatar = None
            profile_cache.invalidate_after_commit([user_id])
        remove_after_commit([upload_path(photo.filename)])
        db.session.delete(photo)

    transactions.write(work, what="photo delete")


def reorder_photos(user_id: int, photo_ids: list[int]) -> list[Photo]:
    """Put the caller's photos in the given order; the list must name each of them once."""
    photos = {p.id: p for p in user_photos(user_id)}
    unknown = [pid for pid in photo_ids if pid not in photos]
    if unknown:
        raise ApiError(OBJECT_NOT_FOUND, f"no such photo: {unknown[0]}")
    if len(set(photo_ids)) != len(photo_ids) or set(photo_ids) != set(photos):
        raise ApiError(PARAM_INVALID, "photoIds: list each of your photos exactly once")

    def work() -> list[Photo]:
        current = {p.id: p for p in user_photos(user_id)}
        for position, pid in enumerate(photo_ids):
            current[pid].position = position
        return [current[pid] for pid in photo_ids]

    return transactions.write(work, what="photo reorder")


def set_avatar(user_id: int, photo_id: int) -> User:
    url = upload_url(own_photo(user_id, photo_id).filename)

    def work() -> User:
        owner = db.session.get(User, user_id)
        assert owner is not None
        owner.avatar = url
        profile_cache.invalidate_after_commit([user_id])
        return owner

    return transactions.write(work, what="avatar")


def is_own_photo_url(user_id: int, url: str) -> bool:
    """True when ``url`` is the served URL of one of ``user_id``'s photos."""
    prefix = upload_url("")
    if not url.startswith(prefix):
        return False
    filename = url[len(prefix) :]
    row = db.session.execute(
        db.select(Photo.id).where(Photo.user_id == user_id, Photo.filename == filename)
    ).first()
    return row is not None


def delete_all_photos_for_user(user_id: int) -> None:
    """Remove every photo row of ``user_id`` and, once the caller commits, their files.

    Runs inside the caller's transaction (account deletion commits once at the
    end); on rollback the files stay, matching the rows that stay.
    """
    filenames = list(db.session.execute(db.select(Photo.filename).where(Photo.user_id == user_id)).scalars())
    if not filenames:
        return
    owner = db.session.get(User, user_id)
    if owner is not None and owner.avatar is not None and owner.avatar.startswith(upload_url("")):
        owner.avatar = None
        profile_cache.invalidate_after_commit([user_id])
    db.session.execute(db.delete(Photo).where(Photo.user_id == user_id))
    remove_after_commit(upload_path(name) for name in filenames)
