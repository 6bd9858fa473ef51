"""The transaction layer: deadlock retry, no contacts deadlock, dead pooled connections, round trips.

The deadlock and ``KILL`` tests need MariaDB (SQLite has neither row locks nor
server-side connections); the round-trip tests run on both backends.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pymysql
import pytest
from flask import Flask
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from tests.helpers import ApiClient
from wsgi_app import transactions
from wsgi_app.extensions import db
from wsgi_app.models.chat import Contact, Message
from wsgi_app.models.user import User
from wsgi_app.services.chat import messages as chat

mariadb_only = pytest.mark.skipif(
    "mysql" not in __import__("os").environ.get("DATABASE_URL", ""),
    reason="needs MariaDB: SQLite has no row locks to deadlock on and no server connections to kill",
)


def _raw_connection(app: Flask) -> pymysql.Connection:
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    return pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        database=url.database,
    )


def kill_pooled_connections(app: Flask) -> None:
    """Kill, server side, every connection idle in the app's pool (as a MariaDB restart would)."""
    with app.app_context():
        pooled = [conn.dbapi_connection for conn in list(db.engine.pool._pool.queue)]  # type: ignore[attr-defined]
    assert pooled
    killer = _raw_connection(app)
    try:
        for conn in pooled:
            killer.cursor().execute(f"KILL {conn.thread_id()}")
    finally:
        killer.close()


def _make_users(app: Flask, count: int) -> list[int]:
    with app.app_context():
        users = [User(phone=f"1390000{i:04d}") for i in range(count)]
        db.session.add_all(users)
        db.session.commit()
        return [u.id for u in users]


@mariadb_only
def test_a_real_deadlock_is_retried_and_both_transactions_succeed(app: Flask, caplog) -> None:
    first, second = _make_users(app, 2)
    barrier = threading.Barrier(2)
    attempts: dict[str, int] = {"a": 0, "b": 0}

    def crossed(name: str, one: int, other: int) -> None:
        """Lock ``one``, wait for the other thread to lock ``other``, then lock ``other``."""
        with app.app_context():

            def work() -> None:
                attempts[name] += 1
                db.session.execute(text("UPDATE users SET height = 170 WHERE id = :id"), {"id": one})
                if attempts[name] == 1:
                    barrier.wait(10)  # both hold their first row lock: the crossing is certain
                db.session.execute(text("UPDATE users SET education = 2 WHERE id = :id"), {"id": other})

            transactions.write(work, what=f"crossed {name}")

    with caplog.at_level(logging.WARNING, logger="datingtoday.transactions"), ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(crossed, "a", first, second), pool.submit(crossed, "b", second, first)]
        for future in futures:
            future.result(60)
    assert sorted(attempts.values()) == [1, 2]  # InnoDB chose one victim; it ran again
    assert any("MySQL error 1213 (deadlock)" in r.getMessage() for r in caplog.records)
    with app.app_context():
        rows = db.session.execute(db.select(User.height, User.education).where(User.id.in_([first, second])))
        assert [tuple(r) for r in rows] == [(170, 2), (170, 2)]


@mariadb_only
def test_a_lock_wait_timeout_is_retried(app: Flask, caplog) -> None:
    (user_id,) = _make_users(app, 1)
    holder = _raw_connection(app)
    try:
        holder.begin()
        holder.cursor().execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (user_id,))
        attempts = 0

        def work() -> None:
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                db.session.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
            else:
                db.session.execute(text("SET SESSION innodb_lock_wait_timeout = 50"))
            db.session.execute(text("UPDATE users SET height = 180 WHERE id = :id"), {"id": user_id})

        released = threading.Timer(1.5, holder.rollback)
        released.start()
        with app.app_context(), caplog.at_level(logging.WARNING, logger="datingtoday.transactions"):
            transactions.write(work, what="waits")
        released.join()
        assert attempts == 2
        assert any("MySQL error 1205 (lock wait timeout)" in r.getMessage() for r in caplog.records)
    finally:
        holder.close()


@mariadb_only
def test_concurrent_first_messages_of_unrelated_pairs_never_deadlock(app: Flask, caplog) -> None:
    pairs = 40
    ids = _make_users(app, 2 * pairs)
    # Interleaved ids, so the pairs' contact rows share index gaps (what deadlocked before).
    work = [(ids[i], ids[i + pairs]) for i in range(pairs)]
    barrier = threading.Barrier(8)

    def send(pair: tuple[int, int]) -> int:
        sender, recipient = pair
        with app.app_context():
            if pair in work[:8]:
                barrier.wait(10)
            return chat.send_message(sender, recipient, f"first-{sender}", "text", "hi", None).message[
                "msg_id"
            ]

    with caplog.at_level(logging.WARNING, logger="datingtoday.transactions"), ThreadPoolExecutor(8) as pool:
        sent = list(pool.map(send, work, timeout=120))
    assert len(set(sent)) == pairs
    assert not [r for r in caplog.records if "MySQL error" in r.getMessage()]  # not even a retried one
    with app.app_context():
        assert db.session.query(Contact).count() == 2 * pairs
        assert db.session.query(Message).count() == pairs


@mariadb_only
def test_a_killed_pooled_connection_is_replaced_and_the_request_succeeds(
    app: Flask, api: ApiClient, alice, caplog
) -> None:
    assert api.get("/api/user/show", user=alice).status == 200
    kill_pooled_connections(app)
    with caplog.at_level(logging.WARNING, logger="datingtoday.database"):
        reply = api.get("/api/user/show", user=alice)
        assert reply.status == 200, reply.body
        assert api.post("/api/user/update", {"height": 175}, user=alice).status == 200
    assert any("reconnecting once" in r.getMessage() for r in caplog.records)


def _database_round_trips(app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every command sent to MariaDB (PyMySQL's one send path), or every SQLite statement."""
    sent: list[str] = []
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
        return sent
    # A private method, absent from types-PyMySQL.
    original = pymysql.connections.Connection._execute_command  # type: ignore[attr-defined]

    def counting(self, command, sql):
        sent.append(sql if isinstance(sql, str) else sql.decode("utf-8", "replace"))
        return original(self, command, sql)

    monkeypatch.setattr(pymysql.connections.Connection, "_execute_command", counting)
    return sent


def test_own_profile_read_is_one_database_round_trip(app: Flask, api: ApiClient, alice, monkeypatch) -> None:
    """One SELECT when the profile is not cached (no ping, no ROLLBACK); none once it is."""
    assert api.get("/api/user/show", user=alice).status == 200  # warm the token and appkey caches
    assert api.post("/api/user/update", {"height": 175}, user=alice).status == 200  # uncaches it
    sent = _database_round_trips(app, monkeypatch)
    reply = api.get("/api/user/show", user=alice)
    assert reply.status == 200
    assert reply.data["user_id"] == alice.user_id
    assert len(sent) == 1 and sent[0].lstrip().upper().startswith("SELECT"), sent  # no ping, no ROLLBACK
    sent.clear()
    assert api.get("/api/user/show", user=alice).data == reply.data
    assert sent == []  # cached (wsgi_app.services.profile.cache)


def test_a_write_is_one_transaction_even_outside_transactions_write(app: Flask) -> None:
    """BEGIN before the first write: a failure between two writes leaves neither."""
    first, second = _make_users(app, 2)
    with app.app_context():
        db.session.execute(text("UPDATE users SET height = 150 WHERE id = :id"), {"id": first})
        db.session.execute(text("UPDATE users SET height = 150 WHERE id = :id"), {"id": second})
        db.session.rollback()
    with app.app_context():
        heights = db.session.execute(db.select(User.height).where(User.id.in_([first, second]))).scalars()
        assert list(heights) == [None, None]


def _without_sqlite_begin(app: Flask, sent: list[str]) -> list[str]:
    with app.app_context():
        sqlite = db.engine.dialect.name == "sqlite"
    return [s for s in sent if not (sqlite and s.startswith("BEGIN"))]  # in-process, not a round trip


def test_another_profile_is_two_round_trips_and_records_the_visit(
    app: Flask, api: ApiClient, alice, bob, monkeypatch
) -> None:
    assert api.get("/api/user/show", {"peerId": bob.user_id}, user=alice).status == 200
    sent = _database_round_trips(app, monkeypatch)
    reply = api.get("/api/user/show", {"peerId": bob.user_id}, user=alice)
    assert reply.status == 200 and reply.data["user_id"] == bob.user_id and "phone" not in reply.data
    sent = _without_sqlite_begin(app, sent)
    # A repeat view of a visitor still new to the owner: one UPDATE, no BEGIN, no COMMIT (the first
    # view is a transaction with the owner's visit event: tests/test_events_features.py).
    assert [s.lstrip().split()[0].upper() for s in sent] == ["SELECT", "UPDATE"], sent
    with app.app_context():
        from wsgi_app.models.social import Visit

        assert db.session.query(Visit.visit_count).filter_by(visitor_id=alice.user_id).scalar() == 2


def test_profile_update_is_two_round_trips(app: Flask, api: ApiClient, alice, monkeypatch) -> None:
    assert api.post("/api/user/update", {"height": 170}, user=alice).status == 200
    sent = _database_round_trips(app, monkeypatch)
    reply = api.post("/api/user/update", {"height": 181, "nickname": " Al "}, user=alice)
    assert reply.status == 200 and reply.data["height"] == 181 and reply.data["nickname"] == "Al"
    sent = _without_sqlite_begin(app, sent)
    assert [s.lstrip().split()[0].upper() for s in sent] == ["UPDATE", "SELECT"], sent


@pytest.mark.parametrize(
    ("driver_error", "status", "code"),
    [
        (pymysql.err.OperationalError(1213, "Deadlock found"), 503, 525),
        (pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"), 503, 525),
        (pymysql.err.OperationalError(2003, "Can't connect to MySQL server"), 503, 520),
        (pymysql.err.OperationalError(2013, "Lost connection to MySQL server"), 503, 520),
        (pymysql.err.IntegrityError(1062, "Duplicate entry"), 500, 500),
    ],
)
def test_database_errors_answer_by_cause_and_log_the_mysql_number(
    app: Flask, caplog, driver_error: Exception, status: int, code: int
) -> None:
    from sqlalchemy.exc import DBAPIError

    from wsgi_app.api.error_handlers import handle_dependency_failure

    wrapped = DBAPIError.instance("SELECT 1", {}, driver_error, pymysql.err.Error)
    with app.test_request_context("/api/user/show"), caplog.at_level(logging.ERROR):
        response = handle_dependency_failure(wrapped)
    assert response.status_code == status and response.get_json()["code"] == code
    if code != 500:
        assert f"MySQL error {driver_error.args[0]}" in caplog.text


def test_on_commit_runs_after_commit_and_never_after_a_rollback(app: Flask) -> None:
    ran: list[str] = []
    with app.app_context():
        users = _make_users(app, 1)

        def committed() -> None:
            transactions.on_commit(lambda: ran.append("committed"))
            db.session.get_one(User, users[0]).height = 171
            assert ran == []  # not before the commit

        transactions.write(committed)
        assert ran == ["committed"]

        def rolled_back() -> None:
            transactions.on_commit(lambda: ran.append("rolled back"))
            raise ValueError("refused half-way")

        with pytest.raises(ValueError):
            transactions.write(rolled_back)
        assert ran == ["committed"]
        with pytest.raises(RuntimeError):
            transactions.on_commit(lambda: None)  # outside write: refused, not silently dropped
