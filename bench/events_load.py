"""The ``events`` case's load generator: parked event polls; messages, read receipts, matches, typing.

``python -m bench.events_load`` reads a JSON plan on stdin, prints one JSON result.
Loopback only; every request signed (:class:`bench.realtime_client.Run`). Phases:

1. connect -- every poller polls ``/api/events/poll`` (``poll_path``: ``/api/chat/poll`` for
   the memory A/B, which stops after phase 2) without a cursor (its start);
2. park -- every poller polls with its cursor; parked = the servers' CPU is quiet.
   Measured: RSS of the server processes idle -> parked, per waiting poll;
3. load (open loop, for ``secs``) -- ``rate`` actions/s among the pollers, each one of:
   a message A->B (B's ``message`` event), a read receipt (B reads A's messages:
   A's ``read`` event), a mutual like (A likes B, B likes A: ``match`` for both),
   in the ratio ``mix``; plus ``typing_rate`` typing starts/s (ephemeral, counted).
   Delivery = the action's response read -> the poll answer carrying the event;
   lost = accepted and never delivered within ``grace_secs``; duplicated = an
   event id answered twice to one poller.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import sys
import time
from typing import Any

from bench.proc_stats import proc_cpu_secs, proc_rss_kb
from bench.realtime_client import Conn, Run
from bench.realtime_load import CONNECT_CONCURRENCY, wait_quiet

ACTION_CONNECTIONS = 64
PATH = "/api/events/poll"
CHAT_PATH = "/api/chat/poll"


class EventRun(Run):
    """What was expected (key -> accepted time) and delivered (key -> time), per event kind."""

    def __init__(self, plan: dict[str, Any]) -> None:
        super().__init__(plan)
        self.expected: dict[tuple[Any, ...], float] = {}
        # (reader's peer = the sender, reader) -> [(up_to_msg_id, answered at)]: a receipt covers
        # every message up to its id, so a later receipt may answer an earlier read.
        self.reads: dict[tuple[int, int], list[tuple[int, float]]] = {}
        self.delivered: dict[tuple[Any, ...], float] = {}
        self.seen: set[tuple[int, int]] = set()
        self.likes_ok = 0
        self.typing_sent = 0
        self.ephemeral = 0


def event_key(uid: int, event: dict[str, Any]) -> tuple[Any, ...] | None:
    kind, payload = event["type"], event["payload"]
    if kind == "message":
        return ("message", payload["msg_id"])
    if kind == "match":
        return ("match", uid, payload["peer"]["user_id"])
    return None


async def poller(run: EventRun, index: int, user: dict[str, Any], connected: asyncio.Event, go: asyncio.Event,
                 gate: asyncio.Semaphore) -> None:  # fmt: skip
    conn = Conn(run.plan["host"], run.plan["ports"][index % len(run.plan["ports"])])
    auth = {"userId": user["user_id"], "token": user["token"]}
    path = run.plan.get("poll_path", PATH)
    async with gate:
        status, body = await conn.request("GET", path, run.signed("GET", path, auth))
    run.count("poll-start", status, body)
    cursor = body["data"]["cursor"] if status == 200 else 0
    run.plan["_connected"] += 1
    if run.plan["_connected"] == len(run.plan["pollers"]):
        connected.set()
    await go.wait()
    uid = user["user_id"]
    while not run.stopping:
        run.waiting.add(uid)
        run.parked_requests += 1
        try:
            status, body = await conn.request(
                "GET", PATH, run.signed("GET", PATH, {**auth, "cursor": cursor})
            )
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            run.count("poll", 0, None)
            conn.close()
            await asyncio.sleep(1)
            continue
        finally:
            run.waiting.discard(uid)
        now = time.monotonic()
        if status != 200:
            run.count("poll", status, body)
            await asyncio.sleep(1)
            continue
        for event in body["data"].get("events", ()):
            if event["id"] is None:
                run.ephemeral += 1
                continue
            if (uid, event["id"]) in run.seen:
                run.duplicates += 1
                continue
            run.seen.add((uid, event["id"]))
            if event["type"] == "read":
                payload = event["payload"]
                run.reads.setdefault((uid, payload["peer_id"]), []).append((payload["up_to_msg_id"], now))
            key = event_key(uid, event)
            if key is not None:
                run.delivered.setdefault(key, now)
        cursor = body["data"]["cursor"]


def delivered_at(run: EventRun, key: tuple[Any, ...]) -> float | None:
    """When the event ``key`` expects was answered (a read: the first receipt covering the message)."""
    if key[0] != "read":
        return run.delivered.get(key)
    _, sender, reader, msg_id = key
    times = [t for up_to, t in run.reads.get((sender, reader), []) if up_to >= msg_id]
    return min(times) if times else None


async def call(run: EventRun, pool: asyncio.Queue[Conn], what: str, path: str, params: dict[str, Any]) -> Any:
    conn = await pool.get()
    try:
        status, body = await conn.request("POST", path, run.signed("POST", path, params))
        run.count(what, status, body)
        return body if status == 200 else None
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
        run.count(what, 0, None)
        conn.close()
        return None
    finally:
        pool.put_nowait(conn)


def auth_of(user: dict[str, Any]) -> dict[str, Any]:
    return {"userId": user["user_id"], "token": user["token"]}


async def action(
    run: EventRun, pool: asyncio.Queue[Conn], seq: int, pairs: list[tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    kind = run.plan["mix"][seq % len(run.plan["mix"])]
    a, b = pairs[seq % len(pairs)]
    if kind == "message":
        params = {**auth_of(a), "peerId": b["user_id"], "clientMsgId": f"e{run.plan['run_id']}-{seq}",
                  "content": f"bench {seq}"}  # fmt: skip
        body = await call(run, pool, "send", "/api/chat/send", params)
        if body:
            run.expected[("message", body["data"]["message"]["msg_id"])] = time.monotonic()
    elif kind == "read":
        params = {**auth_of(a), "peerId": b["user_id"], "clientMsgId": f"r{run.plan['run_id']}-{seq}",
                  "content": "read me"}  # fmt: skip
        body = await call(run, pool, "send", "/api/chat/send", params)
        if not body:
            return
        msg_id = body["data"]["message"]["msg_id"]
        run.expected[("message", msg_id)] = time.monotonic()
        read = await call(run, pool, "read", "/api/chat/read", {**auth_of(b), "peerId": a["user_id"]})
        if read and read["data"]["marked_count"]:
            run.expected[("read", a["user_id"], b["user_id"], msg_id)] = time.monotonic()
    else:
        first = await call(run, pool, "like", "/api/like/send", {**auth_of(a), "peerId": b["user_id"]})
        second = await call(run, pool, "like", "/api/like/send", {**auth_of(b), "peerId": a["user_id"]})
        run.likes_ok += bool(first) + bool(second)
        if second and second["data"]["matched"]:
            now = time.monotonic()
            run.expected[("match", a["user_id"], b["user_id"])] = now
            run.expected[("match", b["user_id"], a["user_id"])] = now


async def typing(run: EventRun, pool: asyncio.Queue[Conn], seq: int, pollers: list[dict[str, Any]]) -> None:
    a, b = random.sample(pollers, 2)
    if await call(
        run, pool, "typing", "/api/chat/typing", {**auth_of(a), "peerId": b["user_id"], "state": "start"}
    ):
        run.typing_sent += 1


async def open_loop(rate: float, secs: float, make: Any) -> list[asyncio.Task[None]]:
    tasks: list[asyncio.Task[None]] = []
    started = time.monotonic()
    for seq in range(int(rate * secs)):
        delay = started + seq / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(make(seq)))
    return tasks


async def main(plan: dict[str, Any]) -> dict[str, Any]:
    run, pids = EventRun(plan), plan["server_pids"]
    plan["_connected"] = 0
    connected, go = asyncio.Event(), asyncio.Event()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    rss_idle = {pid: proc_rss_kb(pid) for pid in pids}
    pollers = plan["pollers"]
    tasks = [asyncio.ensure_future(poller(run, i, u, connected, go, gate)) for i, u in enumerate(pollers)]
    await connected.wait()
    await wait_quiet(pids, 30)
    go.set()
    while run.parked_requests < len(pollers):
        await asyncio.sleep(0.01)
    await wait_quiet(pids, 120)
    rss_parked = {pid: proc_rss_kb(pid) for pid in pids}
    waiting = len(run.waiting)
    if plan.get("memory_only"):  # the A/B of memory per waiting poll: no load phase
        run.stopping = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return {"rss_idle_kb": rss_idle, "rss_parked_kb": rss_parked, "waiting": waiting}
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for i in range(ACTION_CONNECTIONS):
        pool.put_nowait(Conn(plan["host"], plan["ports"][i % len(plan["ports"])]))
    shuffled = pollers[:]
    random.shuffle(shuffled)
    pairs = [(shuffled[i], shuffled[i + 1]) for i in range(0, len(shuffled) - 1, 2)]
    cpu0 = sum(proc_cpu_secs(pid) for pid in pids)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    actions, typings = await asyncio.gather(
        open_loop(plan["rate"], plan["secs"], lambda seq: action(run, pool, seq, pairs)),
        open_loop(plan["typing_rate"], plan["secs"], lambda seq: typing(run, pool, seq, pollers)),
    )
    await asyncio.gather(*actions, *typings)
    load_secs = time.monotonic() - started
    deadline = time.monotonic() + plan["grace_secs"]
    while time.monotonic() < deadline and any(delivered_at(run, k) is None for k in run.expected):
        await asyncio.sleep(0.05)
    cpu = sum(proc_cpu_secs(pid) for pid in pids) - cpu0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    run.stopping = True
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latency: dict[str, list[float]] = {"message": [], "read": [], "match": []}
    lost: dict[str, int] = {"message": 0, "read": 0, "match": 0}
    for key, at in run.expected.items():
        answered = delivered_at(run, key)
        if answered is not None:
            latency[key[0]].append(max(0.0, 1000 * (answered - at)))
        else:
            lost[key[0]] += 1
    return {
        "rss_idle_kb": rss_idle,
        "rss_parked_kb": rss_parked,
        "waiting": waiting,
        "load_secs": load_secs,
        "server_cpu_secs": cpu,
        "generator_cpu_secs": (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime),
        "latency_ms": latency,
        "lost": lost,
        "duplicated": run.duplicates,
        "likes_ok": run.likes_ok,
        "typing_sent": run.typing_sent,
        "ephemeral_delivered": run.ephemeral,
        "statuses": run.statuses,
    }


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(json.dumps(asyncio.run(main(json.load(sys.stdin)))))
