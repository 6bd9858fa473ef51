"""Case ``nearby``: ``GET /api/user/nearby/list`` with 1,000,000 people inside 30 km of one centre.

Loads the people in bulk into MariaDB (``BENCH_NEARBY_DATABASE_URL``, default
database ``dt_nb_bench``; reused when already there), starts its own
``redis-server`` on a free port (so ``INFO commandstats`` counts only this
run) and one ``tornado_server.py`` process, and measures the endpoint with
pre-signed requests from a separate load-generator process (``bench.loadgen``)
at concurrency 1 and 16 for radii 2, 5 and 20 km and the deepest page, plus the
SQL alternative (bounding box on the ``(lat, lng)`` index, then distance) on
the same rows. ``--quick``: a few thousand people in a temporary SQLite file.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import redis
from sqlalchemy import func, text

from bench.common import REPO_ROOT, load_average, mean, percentiles

CENTRE = (39.9042, 116.4074)
CITY_RADIUS_KM = 30.0
CALLER_RADIUS_KM = 3.0
PHONE_PREFIX = "300"  # bench people; demo users are 100..., real sign-ups never start with 3
CALLERS = 2000
PAGE_COUNT = 20
RADII_KM = (2, 5, 20)
INSERT_BATCH = 20_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen[Any], deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early: {proc.args}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


@contextmanager
def _redis_server() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def _api_server(env: dict[str, str]) -> Iterator[tuple[int, int]]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "tornado_server.py"), "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, proc)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(20)


def _ensure_mariadb_database(url: str) -> None:
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


def _point_in_disk(rng: random.Random, radius_km: float) -> tuple[float, float]:
    r = radius_km * math.sqrt(rng.random())
    angle = rng.random() * 2 * math.pi
    lat = CENTRE[0] + r * math.cos(angle) / 111.32
    lng = CENTRE[1] + r * math.sin(angle) / (111.32 * math.cos(math.radians(CENTRE[0])))
    return lat, lng


def _load_people(app: Any, people: int) -> tuple[int, float, int]:
    """Make sure ``people`` bench people exist; ``(first id, seconds spent, how many existed)``."""
    from wsgi_app.extensions import db
    from wsgi_app.models.location import UserLocation
    from wsgi_app.models.user import AUTHORITY_EVERYONE, User
    from wsgi_app.services.grid import snap_to_grid
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
                point = snap_to_grid(*_point_in_disk(rng, radius))
                places.append({"user_id": user_id, "lat": point.lat, "lng": point.lng, "updated_at": now})
            db.session.execute(User.__table__.insert(), users)
            db.session.execute(UserLocation.__table__.insert(), places)
            db.session.commit()
    return first, time.perf_counter() - started, 0


def _credentials(app: Any, first_id: int) -> tuple[Any, list[tuple[int, str]]]:
    from wsgi_app.extensions import db
    from wsgi_app.services import applications, tokens

    with app.app_context():
        creds = applications.create_application("bench-nearby", "hmac-sha256")
        issued = [tokens.issue_token(first_id + i) for i in range(CALLERS)]
        db.session.commit()
        return creds, [(t.user_id, t.token) for t in issued]


def _signed_paths(
    creds: Any, callers: list[tuple[int, str]], count: int, radius: int, page: int
) -> list[str]:
    from wsgi_app.services.signing import sign_params

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


def _load(port: int, concurrency: int, paths: list[str]) -> dict[str, Any]:
    job = json.dumps({"host": "127.0.0.1", "port": port, "concurrency": concurrency, "paths": paths})
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=job,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
    )
    return json.loads(out.stdout)


def _redis_usec(client: redis.Redis) -> int:
    return sum(int(v["usec"]) for v in client.info("commandstats").values())


def _server_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sql_alternative(app: Any, radius_km: int, runs: int) -> list[float]:
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


def _profile(pid: int, seconds: int, out: Path) -> list[tuple[str, float]]:
    """py-spy's raw samples of the server for ``seconds``: the top functions by own time."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    proc = subprocess.run(
        [
            spy,
            "record",
            "-p",
            str(pid),
            "-d",
            str(seconds),
            "-f",
            "raw",
            "-o",
            str(out),
            "-r",
            "200",
            "--nonblocking",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not out.exists():
        return [
            (
                "py-spy failed: " + proc.stderr.strip().splitlines()[-1] if proc.stderr else "py-spy failed",
                0.0,
            )
        ]
    own: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.split(";")[-1]
        own[leaf] = own.get(leaf, 0) + int(count)
        total += int(count)
    top = sorted(own.items(), key=lambda kv: -kv[1])[:10]
    return [(name, 100.0 * n / max(1, total)) for name, n in top]


def run(quick: bool) -> str:
    from wsgi_app import create_app
    from wsgi_app.config import engine_options, normalise_database_url

    people = 3000 if quick else 1_000_000
    tmp = Path(tempfile.mkdtemp(prefix="bench-nearby-"))
    if quick:
        database_url = f"sqlite:///{tmp}/bench.sqlite3"
    else:
        database_url = os.environ.get(
            "BENCH_NEARBY_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/dt_nb_bench"
        )
        _ensure_mariadb_database(database_url)
    requests_c1 = 30 if quick else 400
    requests_c16 = 60 if quick else 4000
    lines: list[str] = []
    with _redis_server() as redis_url:
        config = {
            "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options(database_url, 4),
            "REDIS_URL": redis_url,
            "INSTANCE_DIR": str(tmp),
            "UPLOAD_FOLDER": str(tmp / "uploads"),
        }
        app = create_app(config)
        with app.app_context():
            from flask_migrate import upgrade

            upgrade(revision="heads")
        first_id, load_s, existed = _load_people(app, people)
        creds, callers = _credentials(app, first_id)
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "INSTANCE_PATH": str(tmp),
                "UPLOAD_FOLDER": str(tmp / "uploads"),
                "LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(REPO_ROOT),
            }
        )
        stats = redis.Redis.from_url(redis_url)
        lines += [
            "## Nearby people at a million users (`GET /api/user/nearby/list`)",
            "",
            f"{people:,} people uniformly inside {CITY_RADIUS_KM:.0f} km of one centre (~"
            f"{people / (math.pi * CITY_RADIUS_KM**2):.0f} per 1 km cell), {CALLERS} callers within "
            f"{CALLER_RADIUS_KM:.0f} km of it; "
            + (f"reused the {existed:,} already loaded" if existed else f"loaded in {load_s:.0f} s")
            + f"; {PAGE_COUNT} per page; one server process; database {database_url.split('://')[0]}; "
            "its own redis-server; requests pre-signed, sent by a separate load-generator process.",
            "",
            "| case | concurrency | requests | p50 ms | p95 ms | p99 ms | max ms | pages/s | Redis µs/page "
            "| server CPU ms/page | loadgen CPU % of wall | load avg |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        with _api_server(env) as (port, pid):
            _load(port, 16, _signed_paths(creds, callers, requests_c16 // 2, 20, 1))  # warm: cells cached
            profile: list[tuple[str, float]] = []
            deepest = 500 // PAGE_COUNT
            cases = [(f"{r} km, page 1", r, 1) for r in RADII_KM] + [
                (f"20 km, page {deepest} (deepest)", 20, deepest)
            ]
            for label, radius, page in cases:
                for concurrency, count in ((1, requests_c1), (16, requests_c16)):
                    stats.delete(*stats.keys("nearby:query:*") or ["-"])
                    paths = _signed_paths(creds, callers, count, radius, page)
                    usec0, cpu0 = _redis_usec(stats), _server_cpu_s(pid)
                    result = _load(port, concurrency, paths)
                    usec1, cpu1 = _redis_usec(stats), _server_cpu_s(pid)
                    p = percentiles(result["latencies_ms"])
                    ok = result["statuses"].get("200", 0)
                    lines.append(
                        f"| {label} | {concurrency} | {count} ({ok} ok) | {p['p50']:.1f} | {p['p95']:.1f} | "
                        f"{p['p99']:.1f} | {p['max']:.1f} | {count / result['wall_s']:.0f} | "
                        f"{(usec1 - usec0) / count:.0f} | {(cpu1 - cpu0) * 1000 / count:.2f} | "
                        f"{100 * result['cpu_s'] / result['wall_s']:.0f} | {load_average()} |"
                    )
            if not quick:
                stats.delete(*stats.keys("nearby:query:*") or ["-"])
                paths = _signed_paths(creds, callers, 6000, 20, 1)
                import threading

                holder: dict[str, Any] = {}
                spy = threading.Thread(target=lambda: holder.update(top=_profile(pid, 8, tmp / "spy.txt")))
                spy.start()
                _load(port, 16, paths)
                spy.join()
                profile = holder.get("top", [])
        sql_runs = 3 if quick else 5
        sql_ms = _sql_alternative(app, 20, sql_runs)
    lines += [
        "",
        f"SQL alternative, 20 km, concurrency 1 ({sql_runs} runs; bounding box on the `(lat, lng)` index, "
        f"distance, nearest 500, then one page's cards): p50 {percentiles(sql_ms)['p50']:.0f} ms, "
        f"mean {mean(sql_ms):.0f} ms. Load average {load_average()}.",
    ]
    if profile:
        lines += ["", "py-spy (server process, 20 km page 1 at concurrency 16), own time by function:", ""]
        lines += [f"- {pct:.1f}% {name}" for name, pct in profile]
    shutil.rmtree(tmp, ignore_errors=True)
    return "\n".join(lines) + "\n"
