"""Generated portrait images for demo photos, so every demo photo and avatar URL serves a file.

A palette of :data:`PALETTE_SIZE` small JPEGs (a head and shoulders on a coloured
background, drawn with Pillow) is made once per upload folder, under ``_demo/``; each demo
photo is a hard link to one of them under its own random name (a copy where links are not
possible). So seeding 100,000 people costs links, not encodes, and deleting one demo photo
(which removes its file) never takes another person's picture with it.

Invariants: a photo row's ``size_bytes``, ``width`` and ``height`` are those of its file;
the palette is deterministic (same pixels on every run); files are written before the rows
that name them are committed.
"""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

PALETTE_SIZE = 24
PALETTE_DIR = "_demo"
WIDTH, HEIGHT = 240, 320  # 3:4, as the app's photos are shown
JPEG_QUALITY = 80


@dataclass(frozen=True)
class PaletteImage:
    path: Path
    size_bytes: int
    width: int
    height: int


def _colour(index: int, lightness: int) -> tuple[int, int, int]:
    """An even spread of hues, as RGB at the given lightness (0-255)."""
    hue = index * 360 / PALETTE_SIZE
    sector, fraction = divmod(hue / 60, 1)
    rising, falling = int(lightness * fraction), int(lightness * (1 - fraction))
    return [
        (lightness, rising, 0),
        (falling, lightness, 0),
        (0, lightness, rising),
        (0, falling, lightness),
        (rising, 0, lightness),
        (lightness, 0, falling),
    ][int(sector) % 6]


def draw(index: int) -> bytes:
    """Palette image ``index`` as JPEG bytes: a silhouette on a two-tone background."""
    background, figure = _colour(index, 200), _colour((index + PALETTE_SIZE // 2) % PALETTE_SIZE, 90)
    image = Image.new("RGB", (WIDTH, HEIGHT), background)
    pen = ImageDraw.Draw(image)
    pen.rectangle((0, HEIGHT * 2 // 3, WIDTH, HEIGHT), fill=_colour(index, 170))
    head = WIDTH // 5 + (index % 3) * 4
    centre_x, centre_y = WIDTH // 2, HEIGHT * 2 // 5
    pen.ellipse((centre_x - head, centre_y - head, centre_x + head, centre_y + head), fill=figure)
    pen.ellipse((WIDTH // 8, centre_y + head, WIDTH * 7 // 8, HEIGHT + HEIGHT // 3), fill=figure)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def palette(upload_folder: str | Path) -> list[PaletteImage]:
    """The palette's files in ``upload_folder/_demo`` (drawn the first time)."""
    directory = Path(upload_folder) / PALETTE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    images = []
    for index in range(PALETTE_SIZE):
        path = directory / f"portrait-{index:02d}.jpg"
        if not path.exists():
            partial = path.with_suffix(".part")
            partial.write_bytes(draw(index))
            partial.replace(path)  # a concurrent or interrupted run never sees half a file
        images.append(PaletteImage(path, path.stat().st_size, WIDTH, HEIGHT))
    return images


def place(image: PaletteImage, upload_folder: str | Path, filename: str) -> None:
    """``filename`` in the upload folder, showing ``image``."""
    target = Path(upload_folder) / filename
    try:
        os.link(image.path, target)
    except OSError:  # a file system without hard links
        shutil.copyfile(image.path, target)
