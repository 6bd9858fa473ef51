"""The workload of the ``nearby`` case's city (:mod:`bench.nearby_city`): who views, who moves.

Bench people get live tokens in bulk (as sign-ins would have issued them); viewers are
drawn from the whole population, movers step ~1.1 km to a neighbouring cell from where
their last *sent* report left them (so the jump check never refuses one), and the moves
are sent open-loop by their own process (:func:`moving`). Everything is pre-signed.
"""

from __future__ import annotations

import json
import math
import random
import secrets
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import redis

from bench import nearby_setup as setup
from bench.common import REPO_ROOT

MOVES_PER_SEC = 50
RADIUS_KM = 20
MAX_PAGES = 3
BLOCK_VIEWERS = 64
MOVE_CONNECTIONS = 4
MOVE_KM = 1.1


@dataclass
class Population:
    """Bench people with tokens: a pool of viewers (each used for one window) and the movers."""

    creds: Any
    viewers: list[tuple[int, str]]
    movers: list[tuple[int, str]]
    positions: dict[int, tuple[float, float]]
    one_per_cell: list[tuple[int, str]]  # someone in every occupied cell: the warm-up's viewers
    next_viewer: int = 0
    planned: list[tuple[int, tuple[float, float]]] = field(default_factory=list)

    def take(self, count: int) -> list[tuple[int, str]]:
        taken = self.viewers[self.next_viewer : self.next_viewer + count]
        self.next_viewer += count
        assert len(taken) == count, "viewer pool exhausted"
        return taken


def _issue_tokens(app: Any, user_ids: list[int]) -> list[str]:
    """A live token for each user, inserted in bulk (as sign-ins would have issued them)."""
    from wsgi_app.extensions import db
    from wsgi_app.models.user import AuthToken
    from wsgi_app.services.auth import tokens
    from wsgi_app.timeutil import utcnow

    raw = [secrets.token_hex(32) for _ in user_ids]
    now = utcnow()
    with app.app_context():
        rows = [
            {
                "user_id": uid,
                "token_hash": tokens.hash_token(tok),
                "created_at": now,
                "expires_at": now + timedelta(days=1),
            }
            for uid, tok in zip(user_ids, raw, strict=True)
        ]
        for at in range(0, len(rows), 5000):
            db.session.execute(db.insert(AuthToken), rows[at : at + 5000])
        db.session.commit()
    return raw


def warm_tokens(client: redis.Redis, people: list[tuple[int, str]]) -> None:
    """The token cache as a session's earlier requests leave it (what the auth lookup writes)."""
    from wsgi_app.services.auth import tokens

    with client.pipeline(transaction=False) as pipe:
        for user_id, token in people:
            pipe.set(tokens.cache_key(tokens.hash_token(token)), str(user_id), ex=tokens.TOKEN_CACHE_MAX_SECS)
        pipe.execute()


def population(app: Any, first_id: int, people: int, viewers: int, movers: int) -> Population:
    from sqlalchemy import func

    from wsgi_app.extensions import db
    from wsgi_app.models.location import UserLocation
    from wsgi_app.services.auth import applications

    rng = random.Random()
    chosen = rng.sample(range(first_id, first_id + people), viewers + movers)
    viewer_ids, mover_ids = chosen[:viewers], chosen[viewers:]
    with app.app_context():
        one_per_cell = list(
            db.session.execute(
                db.select(func.min(UserLocation.user_id)).group_by(UserLocation.lat, UserLocation.lng)
            ).scalars()
        )
        creds = applications.create_application(f"bench-city-{secrets.token_hex(3)}", "hmac-sha256")
        db.session.commit()
        rows = db.session.execute(
            db.select(UserLocation.user_id, UserLocation.lat, UserLocation.lng).where(
                UserLocation.user_id.in_(mover_ids)
            )
        ).all()
    positions = {user_id: (lat, lng) for user_id, lat, lng in rows}
    viewer_tokens = _issue_tokens(app, viewer_ids)
    mover_tokens = _issue_tokens(app, mover_ids)
    cell_tokens = _issue_tokens(app, one_per_cell)
    return Population(
        creds,
        list(zip(viewer_ids, viewer_tokens, strict=True)),
        list(zip(mover_ids, mover_tokens, strict=True)),
        positions,
        list(zip(one_per_cell, cell_tokens, strict=True)),
    )


def _signed(creds: Any, method: str, path: str, params: dict[str, str]) -> str:
    from wsgi_app.services.auth.signing import sign_params

    signed = sign_params(
        params,
        appkey=creds.appkey,
        secret=creds.secret,
        sign_method=creds.sign_method,
        http_method=method,
        path=path,
    )
    return urlencode(signed)


def viewer_paths(creds: Any, viewers: list[tuple[int, str]], rng: random.Random) -> list[str]:
    """Each viewer's 1-3 pages, in blocks: the block's first pages, then second, then third."""
    out: list[str] = []
    for at in range(0, len(viewers), BLOCK_VIEWERS):
        block = [(viewer, rng.randint(1, MAX_PAGES)) for viewer in viewers[at : at + BLOCK_VIEWERS]]
        for page in range(1, MAX_PAGES + 1):
            out += page_paths(creds, [viewer for viewer, pages in block if page <= pages], page)
    return out


def page_paths(creds: Any, viewers: list[tuple[int, str]], page: int = 1) -> list[str]:
    """Page ``page`` (20 km, 20 a page) of each viewer, signed."""
    path = "/api/user/nearby/list"
    out = []
    for user_id, token in viewers:
        params = {
            "userId": str(user_id),
            "token": token,
            "radius": str(RADIUS_KM),
            "page": str(page),
            "pageCount": str(setup.PAGE_COUNT),
        }
        out.append(f"{path}?{_signed(creds, 'GET', path, params)}")
    return out


def move_requests(pop: Population, count: int, rng: random.Random) -> list[list[str]]:
    """``count`` signed reports, each a mover (round robin) stepping ~1.1 km to a neighbouring
    cell from where their last sent report left them (:func:`moves_sent` records those)."""
    path = "/api/location/report"
    out = []
    planned = dict(pop.positions)
    pop.planned = []
    for index in range(count):
        user_id, token = pop.movers[index % len(pop.movers)]
        lat, lng = planned[user_id]
        angle = rng.random() * 2 * math.pi
        lat += MOVE_KM * math.cos(angle) / 111.32
        lng += MOVE_KM * math.sin(angle) / (111.32 * math.cos(math.radians(lat)))
        planned[user_id] = (lat, lng)
        pop.planned.append((user_id, (lat, lng)))
        params = {"userId": str(user_id), "token": token, "latlng": f"{lat:.6f},{lng:.6f}"}
        out.append(["POST", path, _signed(pop.creds, "POST", path, params)])
    return out


def moves_sent(pop: Population, sent: int) -> None:
    """The first ``sent`` planned reports went out (in order): movers are where those put them."""
    for user_id, position in pop.planned[:sent]:
        pop.positions[user_id] = position
    pop.planned = []


@contextmanager
def moving(port: int, requests: list[list[str]]) -> Iterator[dict[str, Any]]:
    """People reporting moves at :data:`MOVES_PER_SEC` (open loop) while the body runs."""
    stop_file = Path(tempfile.mkdtemp(prefix="bench-moves-")) / "stop"
    job = {
        "host": "127.0.0.1",
        "port": port,
        "concurrency": MOVE_CONNECTIONS,
        "rate": MOVES_PER_SEC,
        "requests": requests,
        "stop_file": str(stop_file),
    }
    holder: dict[str, Any] = {}

    def send() -> None:
        out = subprocess.run(
            [sys.executable, "-m", "bench.http_loadgen"],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            check=True,
        )
        holder.update(json.loads(out.stdout))

    thread = threading.Thread(target=send)
    thread.start()
    try:
        yield holder
    finally:
        stop_file.touch()
        thread.join()
