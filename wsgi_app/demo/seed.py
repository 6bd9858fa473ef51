"""Bulk fake data for demos and load tests (``flask --app wsgi_app seed-demo --users N``).

Rows go in with Core ``executemany`` inserts, one transaction per batch, never
one ORM object per row: profiles, photos (rows, each with a generated portrait file:
:mod:`wsgi_app.demo.avatars`), labels,
snapped locations around a few cities, visits skewed towards a popular few,
and short conversations (messages plus both sides' contacts).

Demo phones start with :data:`DEMO_PHONE_PREFIX` ("100..."), which sign-in
never accepts (real numbers match ``1[3-9]...``), so they cannot collide with
real sign-ups; a re-run continues after the highest demo phone.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func

from wsgi_app.demo import avatars
from wsgi_app.demo.data import CHAT_LINES, CITIES, GIVEN, SURNAMES
from wsgi_app.extensions import db
from wsgi_app.models.chat import Contact, Message
from wsgi_app.models.location import UserLocation
from wsgi_app.models.social import Label, Photo, UserLabel, Visit
from wsgi_app.models.user import AUTHORITY_CONTACTS, AUTHORITY_EVERYONE, AUTHORITY_HIDDEN, User
from wsgi_app.services.location import nearby_cells
from wsgi_app.services.location.grid import Cell, cell_of
from wsgi_app.services.profile import cache as profile_cache
from wsgi_app.services.profile import hot_list, labels
from wsgi_app.services.upload_files import upload_url
from wsgi_app.timeutil import utcnow

DEMO_PHONE_PREFIX = "100"
DEMO_PHONE_DIGITS = 8  # "100" + 8 digits: 11 characters, room for 10^8 demo users


@dataclass
class SeedReport:
    users: int = 0
    photos: int = 0
    user_labels: int = 0
    locations: int = 0
    visits: int = 0
    messages: int = 0
    contacts: int = 0


def _phone(number: int) -> str:
    return f"{DEMO_PHONE_PREFIX}{number:0{DEMO_PHONE_DIGITS}d}"


def next_demo_number() -> int:
    low, high = _phone(0), _phone(10**DEMO_PHONE_DIGITS - 1)
    top = db.session.execute(
        db.select(func.max(User.phone)).where(User.phone >= low, User.phone <= high)
    ).scalar_one_or_none()
    return int(top[len(DEMO_PHONE_PREFIX) :]) + 1 if top else 0


def _snapper() -> Callable[[float, float], tuple[float, float]]:
    """The location service's grid snapping when it exists (positions are stored snapped)."""
    try:
        from wsgi_app.services.location.positions import snap_to_grid
    except ImportError:
        return lambda lat, lng: (round(lat, 3), round(lng, 3))

    def snap(lat: float, lng: float) -> tuple[float, float]:
        point = snap_to_grid(lat, lng)
        return point.lat, point.lng

    return snap


class DemoSeeder:
    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng = rng
        self.now = now
        self.snap = _snapper()
        self.label_ids = list(db.session.execute(db.select(Label.id)).scalars())
        self.known_ids: list[int] = []  # demo users of this run, visit targets
        self.report = SeedReport()
        self.touched_cells: set[Cell] = set()  # cached nearby cells to drop once committed
        self.upload_folder = current_app.config["UPLOAD_FOLDER"]
        self.portraits = avatars.palette(self.upload_folder)

    def _user_row(self, number: int) -> dict[str, Any]:
        rng = self.rng
        age = rng.randint(18, 45)
        created = self.now - timedelta(seconds=rng.randint(0, 365 * 86400))
        gender = rng.choice((1, 2))
        return {
            "phone": _phone(number),
            "nickname": rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2)))),
            "email": None,
            "gender": gender,
            "sexual": rng.choices((0, 1, 2, 3), weights=(1, 85, 10, 4))[0],
            "height": int(rng.gauss(175 if gender == 1 else 162, 6)),
            "education": rng.randint(0, 5),
            "salary": rng.randint(1, 6),
            "emotion": rng.choices((0, 1, 2, 3), weights=(80, 2, 10, 8))[0],
            "birthday": date(self.now.year - age, rng.randint(1, 12), rng.randint(1, 28)),
            "avatar": None,
            "authority": rng.choices(
                (AUTHORITY_EVERYONE, AUTHORITY_CONTACTS, AUTHORITY_HIDDEN), weights=(90, 7, 3)
            )[0],
            "vip_expires_at": self.now + timedelta(days=rng.randint(1, 365)) if rng.random() < 0.05 else None,
            "created_at": created,
            "updated_at": created,
        }

    def insert_batch(self, first_number: int, count: int) -> None:
        rows = [self._user_row(first_number + i) for i in range(count)]
        photo_names = [
            [f"demo-{secrets.token_hex(12)}.jpg" for _ in range(self.rng.randint(0, 4))] for _ in rows
        ]
        for row, names in zip(rows, photo_names, strict=True):
            row["avatar"] = upload_url(names[0]) if names else None
        db.session.execute(User.__table__.insert(), rows)
        id_by_phone = dict(
            db.session.execute(
                db.select(User.phone, User.id).where(
                    User.phone >= rows[0]["phone"], User.phone <= rows[-1]["phone"]
                )
            ).all()
        )
        ids = [id_by_phone[row["phone"]] for row in rows]
        self.known_ids.extend(ids)
        self._photos(ids, photo_names)
        self._labels(ids)
        self._locations(ids)
        self._visits(ids)
        self._conversations(ids)
        db.session.commit()
        self.report.users += len(ids)

    def _photos(self, ids: list[int], photo_names: list[list[str]]) -> None:
        rows = []
        for user_id, names in zip(ids, photo_names, strict=True):
            for position, filename in enumerate(names):
                portrait = self.rng.choice(self.portraits)
                avatars.place(portrait, self.upload_folder, filename)
                rows.append(
                    {
                        "user_id": user_id,
                        "filename": filename,
                        "content_type": "image/jpeg",
                        "size_bytes": portrait.size_bytes,
                        "width": portrait.width,
                        "height": portrait.height,
                        "position": position,
                        "created_at": self.now,
                    }
                )
        if rows:
            db.session.execute(Photo.__table__.insert(), rows)
        self.report.photos += len(rows)

    def _labels(self, ids: list[int]) -> None:
        if not self.label_ids:
            return
        rows = [
            {"user_id": user_id, "label_id": label_id}
            for user_id in ids
            for label_id in self.rng.sample(self.label_ids, self.rng.randint(0, min(8, len(self.label_ids))))
        ]
        if rows:
            db.session.execute(UserLabel.__table__.insert(), rows)
        self.report.user_labels += len(rows)

    def _locations(self, ids: list[int]) -> None:
        rows: list[dict[str, Any]] = []
        for user_id in ids:
            _, lat, lng = self.rng.choice(CITIES)
            lat, lng = self.snap(lat + self.rng.gauss(0, 0.08), lng + self.rng.gauss(0, 0.08))
            rows.append({"user_id": user_id, "lat": lat, "lng": lng, "updated_at": self.now})
        db.session.execute(UserLocation.__table__.insert(), rows)
        self.touched_cells.update(cell_of(row["lat"], row["lng"]) for row in rows)
        self.report.locations += len(rows)

    def _visits(self, ids: list[int]) -> None:
        """Each new user visits a few earlier ones; low indexes are favoured, so a few get popular."""
        rows = []
        pool = self.known_ids
        for visitor in ids:
            targets = {pool[int(len(pool) * self.rng.random() ** 3)] for _ in range(self.rng.randint(0, 8))}
            targets.discard(visitor)
            for visited in targets:
                last = self.now - timedelta(seconds=self.rng.randint(0, 14 * 86400))
                rows.append(
                    {
                        "visitor_id": visitor,
                        "visited_id": visited,
                        "visit_count": self.rng.randint(1, 5),
                        "first_visited_at": last - timedelta(seconds=self.rng.randint(0, 86400)),
                        "last_visited_at": last,
                        "is_read": self.rng.random() < 0.5,
                    }
                )
        if rows:
            db.session.execute(Visit.__table__.insert(), rows)
        self.report.visits += len(rows)

    def _conversations(self, ids: list[int]) -> None:
        """Pairs within the batch (disjoint) exchange a few messages; both sides get a contact row."""
        shuffled = ids[:]
        self.rng.shuffle(shuffled)
        pairs = [
            (shuffled[i], shuffled[i + 1]) for i in range(0, len(shuffled) - 1, 2) if self.rng.random() < 0.6
        ]
        messages, unread = [], {}
        for a, b in pairs:
            start = self.now - timedelta(seconds=self.rng.randint(3600, 30 * 86400))
            count = self.rng.randint(1, 6)
            for n in range(count):
                sender, recipient = (a, b) if n % 2 == 0 else (b, a)
                sent = start + timedelta(minutes=5 * n)
                is_last = n == count - 1
                messages.append(
                    {
                        "sender_id": sender,
                        "recipient_id": recipient,
                        "client_msg_id": f"demo-{secrets.token_hex(8)}",
                        "kind": "text",
                        "body": self.rng.choice(CHAT_LINES),
                        "media_filename": None,
                        "created_at": sent,
                        "read_at": None if is_last else sent + timedelta(minutes=1),
                    }
                )
                if is_last:
                    unread[(recipient, sender)] = 1
        if not messages:
            return
        db.session.execute(Message.__table__.insert(), messages)
        low, high = min(ids), max(ids)
        last_ids: dict[frozenset[int], tuple[int, datetime]] = {}
        for sender, recipient, last_id, last_at in db.session.execute(
            db.select(
                Message.sender_id, Message.recipient_id, func.max(Message.id), func.max(Message.created_at)
            )
            .where(Message.sender_id.between(low, high), Message.recipient_id.between(low, high))
            .group_by(Message.sender_id, Message.recipient_id)
        ):
            key = frozenset((sender, recipient))
            if key not in last_ids or last_ids[key][0] < last_id:
                last_ids[key] = (last_id, last_at)
        contacts = []
        for a, b in pairs:
            last_id, last_at = last_ids[frozenset((a, b))]
            for user_id, peer_id in ((a, b), (b, a)):
                contacts.append(
                    {
                        "user_id": user_id,
                        "peer_id": peer_id,
                        "last_message_id": last_id,
                        "unread_count": unread.get((user_id, peer_id), 0),
                        "updated_at": last_at,
                    }
                )
        db.session.execute(Contact.__table__.insert(), contacts)
        self.report.messages += len(messages)
        self.report.contacts += len(contacts)


def seed_demo(
    users: int,
    *,
    batch_size: int = 5000,
    seed: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> SeedReport:
    """Add ``users`` demo users (and their data), ``batch_size`` per transaction."""
    labels.seed_catalogue()
    seeder = DemoSeeder(random.Random(seed), utcnow())
    number = next_demo_number()
    remaining = users
    while remaining > 0:
        count = min(batch_size, remaining)
        seeder.insert_batch(number, count)
        number += count
        remaining -= count
        if on_batch:
            on_batch(count)
    nearby_cells.invalidate(seeder.touched_cells)
    hot_list.invalidate()
    profile_cache.invalidate([profile_cache.ALL_USERS])  # bulk rows: every cached row and card voided
    return seeder.report
