"""Set-up for the ``nearby`` case: servers, the million people, signed requests, the SQL alternative.

Everything here is loopback-only and bounded; people are bench users (phones
``300...``), loaded once per database and reused (see :func:`load_people`).
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import redis
from sqlalchemy import func, text

from bench.common import REPO_ROOT
from bench.realtime_servers import free_port, wait_listening

CENTRE = (39.9042, 116.4074)
CITY_RADIUS_KM = 30.0
CALLER_RADIUS_KM = 3.0
PHONE_PREFIX = "300"  # bench people; demo users are 100..., real sign-ups never start with 3
CALLERS = 2000
PAGE_COUNT = 20
RADII_KM = (2, 5, 20)
INSERT_BATCH = 20_000
DEFAULT_NEARBY_DATABASE_URL = "mysql+pymysql://root@127.0.0.1:3306/dt_nb_bench"


def bench_app(database_url: str, redis_url: str, tmp: Path) -> Any:
    """The Flask app the case loads people with (on the bench's database and Redis)."""
    from wsgi_app import create_app
    from wsgi_app.config import engine_options, normalise_database_url

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options(database_url, 4),
            "REDIS_URL": redis_url,
            "INSTANCE_DIR": str(tmp),
            "UPLOAD_FOLDER": str(tmp / "uploads"),
        }
    )


def server_env(database_url: str, redis_url: str, tmp: Path) -> dict[str, str]:
    """The environment of a server under test (same database, Redis and instance folder)."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(tmp),
        "UPLOAD_FOLDER": str(tmp / "uploads"),
        "LOG_LEVEL": "WARNING",
    }


@contextmanager
def redis_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def api_server(env: dict[str, str], root: Path = REPO_ROOT) -> Iterator[tuple[int, int]]:
    """``tornado_server.py`` of the checkout at ``root`` on a free port: ``(port, pid)``."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(root / "tornado_server.py"), "--port", str(port)],
        cwd=root,
        env={**env, "PYTHONPATH": str(root)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, proc)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(20)


def ensure_mariadb_database(url: str) -> None:
    import pymysql

    rest = url.split("://", 1)[1]
    creds, hostpart = rest.rsplit("@", 1)
    hostport, name = hostpart.split("/", 1)
    host, _, port = hostport.partition(":")
    user, _, password = creds.partition(":")
    conn = pymysql.connect(host=host, port=int(port or 3306), user=user, password=password)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name.split('?')[0]}` CHARACTER SET utf8mb4")
    conn.close()


def point_in_disk(rng: random.Random, radius_km: float) -> tuple[float, float]:
    r = radius_km * math.sqrt(rng.random())
    angle = rng.random() * 2 * math.pi
    lat = CENTRE[0] + r * math.cos(angle) / 111.32
    lng = CENTRE[1] + r * math.sin(angle) / (111.32 * math.cos(math.radians(CENTRE[0])))
    return lat, lng


def load_people(app: Any, people: int) -> tuple[int, float, int]:
    """Make sure ``people`` bench people exist; ``(first id, seconds spent, how many existed)``."""
    from wsgi_app.extensions import db
    from wsgi_app.models.location import UserLocation
    from wsgi_app.models.user import AUTHORITY_EVERYONE, User
    from wsgi_app.services.location.grid import snap_to_grid
    from wsgi_app.timeutil import utcnow

    started = time.perf_counter()
    with app.app_context():
        bench_users = User.phone.like(f"{PHONE_PREFIX}%")
        existing = db.session.execute(db.select(func.count()).where(bench_users)).scalar_one()
        if existing >= people:
            first = db.session.execute(db.select(func.min(User.id)).where(bench_users)).scalar_one()
            return first, time.perf_counter() - started, existing
        db.session.execute(db.delete(User).where(bench_users))
        db.session.commit()
        first = (db.session.execute(db.select(func.max(User.id))).scalar_one() or 0) + 1
        rng = random.Random(8)
        now = utcnow()
        for start in range(0, people, INSERT_BATCH):
            users, places = [], []
            for i in range(start, min(people, start + INSERT_BATCH)):
                user_id = first + i
                users.append(
                    {
                        "id": user_id,
                        "phone": f"{PHONE_PREFIX}{i:08d}",
                        "nickname": f"bench{i}",
                        "gender": 1 + i % 2,
                        "sexual": 0,
                        "education": i % 5,
                        "emotion": 0,
                        "height": 150 + i % 40,
                        "authority": AUTHORITY_EVERYONE,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                radius = CALLER_RADIUS_KM if i < CALLERS else CITY_RADIUS_KM
                point = snap_to_grid(*point_in_disk(rng, radius))
                places.append({"user_id": user_id, "lat": point.lat, "lng": point.lng, "updated_at": now})
            db.session.execute(User.__table__.insert(), users)
            db.session.execute(UserLocation.__table__.insert(), places)
            db.session.commit()
    return first, time.perf_counter() - started, 0


def credentials(app: Any, first_id: int) -> tuple[Any, list[tuple[int, str]]]:
    from wsgi_app.extensions import db
    from wsgi_app.services.auth import applications, tokens

    with app.app_context():
        creds = applications.create_application("bench-nearby", "hmac-sha256")
        issued = [tokens.issue_token(first_id + i) for i in range(CALLERS)]
        db.session.commit()
        return creds, [(t.user_id, t.token) for t in issued]


def signed_paths(creds: Any, callers: list[tuple[int, str]], count: int, radius: int, page: int) -> list[str]:
    from wsgi_app.services.auth.signing import sign_params

    path = "/api/user/nearby/list"
    out = []
    for n in range(count):
        user_id, token = callers[n % len(callers)]
        params = {"userId": str(user_id), "token": token, "radius": str(radius), "page": str(page)}
        params["pageCount"] = str(PAGE_COUNT)
        signed = sign_params(
            params,
            appkey=creds.appkey,
            secret=creds.secret,
            sign_method=creds.sign_method,
            http_method="GET",
            path=path,
        )
        out.append(f"{path}?{urlencode(signed)}")
    return out


def load(port: int, concurrency: int, paths: list[str], timeline: bool = False) -> dict[str, Any]:
    job = json.dumps(
        {"host": "127.0.0.1", "port": port, "concurrency": concurrency, "paths": paths, "timeline": timeline}
    )
    out = subprocess.run(
        [sys.executable, "-m", "bench.http_loadgen"],
        input=job,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def fill_geo_index(app: Any, redis_url: str, key: str = "geo:user_locations") -> int:
    """The Redis geo index the code before grid cells searched (for a baseline run)."""
    from wsgi_app.extensions import db
    from wsgi_app.models.location import UserLocation

    client = redis.Redis.from_url(redis_url)
    if client.zcard(key):
        return int(client.zcard(key))
    with app.app_context():
        rows = db.session.execute(db.select(UserLocation.user_id, UserLocation.lat, UserLocation.lng))
        batch: list[Any] = []
        for user_id, lat, lng in rows:
            batch.extend((lng, lat, str(user_id)))
            if len(batch) >= 30_000:
                client.geoadd(key, batch)
                batch = []
        if batch:
            client.geoadd(key, batch)
    return int(client.zcard(key))


def forget_rate_limits(client: redis.Redis) -> None:
    """Drop the callers' nearby rate-limit windows (``rl:nearby:query:<id>``), so a case is
    never refused for the cases before it (30 pages a minute per caller)."""
    client.delete(*client.keys("rl:nearby:query:*") or ["-"])


def redis_usec(client: redis.Redis) -> int:
    return sum(int(v["usec"]) for v in client.info("commandstats").values())


def server_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sql_alternative(app: Any, radius_km: int, runs: int) -> list[float]:
    """Bounding box on the (lat, lng) index, distance, nearest 500, one page's cards: ms per run."""
    from wsgi_app.extensions import db

    lat_span = radius_km / 111.32
    lng_span = radius_km / (111.32 * math.cos(math.radians(CENTRE[0])))
    with app.app_context():
        if db.engine.dialect.name == "mysql":
            distance = "ST_Distance_Sphere(POINT(l.lng, l.lat), POINT(:lng, :lat)) / 1000"
        else:  # SQLite (quick): equirectangular
            distance = (
                "111.32 * sqrt((l.lat - :lat) * (l.lat - :lat) + 0.585 * (l.lng - :lng) * (l.lng - :lng))"
            )
        ranked = text(
            f"SELECT l.user_id, {distance} AS km FROM user_locations l JOIN users u ON u.id = l.user_id "
            "WHERE l.lat BETWEEN :lat0 AND :lat1 AND l.lng BETWEEN :lng0 AND :lng1 AND u.authority = 1 "
            f"AND {distance} <= :radius ORDER BY km, l.user_id LIMIT 500"
        )
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            rows = db.session.execute(
                ranked,
                {
                    "lat": CENTRE[0],
                    "lng": CENTRE[1],
                    "lat0": CENTRE[0] - lat_span,
                    "lat1": CENTRE[0] + lat_span,
                    "lng0": CENTRE[1] - lng_span,
                    "lng1": CENTRE[1] + lng_span,
                    "radius": radius_km,
                },
            ).all()
            ids = tuple(r[0] for r in rows[:PAGE_COUNT]) or (0,)
            card_sql = (
                "SELECT id, nickname, birthday, gender, avatar, height, sexual, education, salary, emotion"
            )
            db.session.execute(text(f"{card_sql} FROM users WHERE id IN ({','.join(map(str, ids))})")).all()
            times.append((time.perf_counter() - started) * 1000)
        return times


def load_timed(port: int, concurrency: int, paths: list[str]) -> dict[str, Any]:
    """:func:`load`, with each request's end (``ends_s``, seconds since the start)."""
    return load(port, concurrency, paths, timeline=True)
