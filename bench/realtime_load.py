"""The realtime case's load generator: one asyncio process, raw HTTP/1.1, every request signed.

``python -m bench.realtime_load`` reads a JSON plan on stdin and prints one
JSON result on stdout. Loopback only. Phases:

1. connect -- every poller opens one keep-alive connection and polls without a
   cursor (its starting cursor; this also warms the token cache);
2. park -- every poller polls with its cursor at once; parked = the servers'
   CPU has gone quiet after the last request was written. Measured: wall time,
   the servers' CPU and RSS before/after (from ``/proc``), per poll;
3. send -- ``rate`` messages/s (open loop) from sender users to random pollers
   that are waiting, plus ``crud_rate`` signed profile reads/s beside them;
   delivery = send accepted (its response read) -> the poll answer that
   carried it; lost = accepted, never delivered within ``grace_secs``;
   duplicated = delivered twice.

The generator's own CPU is reported so a reader can see it was not the bottleneck,
and garbage-collector pauses of the servers and of the generator during the send
phase (:mod:`bench.gc_watch`); the generator collects nothing while it measures
(:func:`quiet_collector`).
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import resource
import sys
import time
from typing import Any

from bench.common import per_second
from bench.gc_watch import PauseLog, pause_delta, scrape_gc_pauses
from bench.proc_stats import machine_busy_secs, proc_cpu_secs, proc_rss_kb
from bench.realtime_client import Conn, Run

QUIET_CPU_FRACTION = 0.10  # servers below 10% of a core ...
QUIET_SAMPLES = 10  # ... for this many samples in a row (2 s) count as idle
SAMPLE_SECS = 0.2
SEND_CONNECTIONS = 64
CONNECT_CONCURRENCY = 500


def quiet_collector() -> None:
    """No collection in this process while it measures delivery.

    Its 10,000 pollers' tasks, streams and buffers make a large heap: a full
    collection walked it for up to 370 ms, and a generation-1 one
    for up to 50 ms, while answers waited in the socket, which the delivery
    figure then blamed on the servers (bench/realtime_profile.md, 2026-12-07).
    Frozen after parking, and no collections until the send phase ends (its
    garbage is freed by reference counting; cycles wait for ``gc.enable``)."""
    gc.collect()
    gc.freeze()
    gc.disable()


def servers_cpu(pids: list[int]) -> float:
    return sum(proc_cpu_secs(pid) for pid in pids)


async def wait_quiet(pids: list[int], limit_secs: float) -> float:
    """Sample until the servers idle; returns the time the last busy sample ended."""
    last_busy, quiet, started = time.monotonic(), 0, time.monotonic()
    before = servers_cpu(pids)
    while quiet < QUIET_SAMPLES and time.monotonic() - started < limit_secs:
        await asyncio.sleep(SAMPLE_SECS)
        now_cpu = servers_cpu(pids)
        if now_cpu - before < QUIET_CPU_FRACTION * SAMPLE_SECS:
            quiet += 1
        else:
            quiet, last_busy = 0, time.monotonic()
        before = now_cpu
    return last_busy


async def poller(
    run: Run,
    index: int,
    user: dict[str, Any],
    connected: asyncio.Event,
    go: asyncio.Event,
    gate: asyncio.Semaphore,
) -> None:
    ports, host = run.plan["ports"], run.plan["host"]
    conn = Conn(host, ports[index % len(ports)])
    auth = {"userId": user["user_id"], "token": user["token"]}
    path = "/api/chat/poll"
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
                "GET", path, run.signed("GET", path, {**auth, "cursor": cursor})
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
        if not body["data"]["list"]:
            run.repolled_at.append(now)
        for message in body["data"]["list"]:
            if message["msg_id"] in run.received_at:
                run.duplicates += 1
            else:
                run.received_at[message["msg_id"]] = now
        cursor = body["data"]["cursor"]


async def send_one(run: Run, pool: asyncio.Queue[Conn], sender: dict[str, Any], peer: int, seq: int) -> None:
    due = time.monotonic()  # a wait for a free connection counts: the sender waits too
    conn = await pool.get()
    path = "/api/chat/send"
    params = {
        "userId": sender["user_id"],
        "token": sender["token"],
        "peerId": peer,
        "clientMsgId": f"b{run.plan['run_id']}-{seq}",
        "kind": "text",
        "content": f"bench {seq}",
    }
    try:
        status, body = await conn.request("POST", path, run.signed("POST", path, params))
        run.send_ms.append(1000 * (time.monotonic() - due))
        run.count("send", status, body)
        if status == 200:
            run.accepted_at[body["data"]["message"]["msg_id"]] = time.monotonic()
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
        run.count("send", 0, None)
        conn.close()
    finally:
        pool.put_nowait(conn)


async def crud_one(run: Run, pool: asyncio.Queue[Conn], user: dict[str, Any]) -> None:
    conn = await pool.get()
    path = "/api/user/settings"
    started = time.monotonic()
    try:
        status, body = await conn.request(
            "GET", path, run.signed("GET", path, {"userId": user["user_id"], "token": user["token"]})
        )
        run.count("crud", status, body)
        run.crud_ms.append(1000 * (time.monotonic() - started))
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
        run.count("crud", 0, None)
        conn.close()
    finally:
        pool.put_nowait(conn)


async def open_loop(rate: float, secs: float, make: Any) -> list[asyncio.Task[None]]:
    tasks: list[asyncio.Task[None]] = []
    if rate <= 0:
        return tasks
    started = time.monotonic()
    for seq in range(int(rate * secs)):
        delay = started + seq / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(make(seq)))
    return tasks


async def main(plan: dict[str, Any]) -> dict[str, Any]:
    run, pids = Run(plan), plan["server_pids"]
    plan["_connected"] = 0
    connected, go = asyncio.Event(), asyncio.Event()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    rss_idle = {pid: proc_rss_kb(pid) for pid in pids}  # no client connection yet
    nginx_idle = sum(proc_rss_kb(pid) for pid in plan.get("nginx_pids", []))
    t0 = time.monotonic()
    tasks = [
        asyncio.ensure_future(poller(run, i, u, connected, go, gate)) for i, u in enumerate(plan["pollers"])
    ]
    await connected.wait()
    connect_secs = time.monotonic() - t0
    await wait_quiet(pids, 30)
    rss_before = {pid: proc_rss_kb(pid) for pid in pids}
    nginx_before = sum(proc_rss_kb(pid) for pid in plan.get("nginx_pids", []))
    cpu_before, usage1, park_started = (
        servers_cpu(pids),
        resource.getrusage(resource.RUSAGE_SELF),
        time.monotonic(),
    )
    go.set()
    while run.parked_requests < len(plan["pollers"]):
        await asyncio.sleep(0.01)
    park_end = await wait_quiet(pids, 120)
    park = {
        "secs": park_end - park_started,
        "cpu_secs": servers_cpu(pids) - cpu_before - 0,
        "rss_idle_kb": rss_idle,
        "rss_before_kb": rss_before,
        "nginx_rss_idle_kb": nginx_idle,
        "rss_after_kb": {pid: proc_rss_kb(pid) for pid in pids},
        "nginx_rss_before_kb": nginx_before,
        "nginx_rss_after_kb": sum(proc_rss_kb(pid) for pid in plan.get("nginx_pids", [])),
        "waiting": len(run.waiting),
    }
    usage2 = resource.getrusage(resource.RUSAGE_SELF)

    # Re-polls alone: one poll timeout's worth of the parked steady state, nothing sent.
    idle_secs = float(plan.get("idle_secs", 0))
    repolls0, cpu_idle0, idle_started = len(run.repolled_at), servers_cpu(pids), time.monotonic()
    await asyncio.sleep(idle_secs)
    idle = {
        "secs": time.monotonic() - idle_started,
        "repolls": len(run.repolled_at) - repolls0,
        "cpu_secs": servers_cpu(pids) - cpu_idle0,
    }

    send_pool: asyncio.Queue[Conn] = asyncio.Queue()
    crud_pool: asyncio.Queue[Conn] = asyncio.Queue()
    for i in range(SEND_CONNECTIONS):
        send_pool.put_nowait(Conn(plan["host"], plan["ports"][i % len(plan["ports"])]))
        crud_pool.put_nowait(Conn(plan["host"], plan["ports"][i % len(plan["ports"])]))
    senders = plan["senders"]
    poller_ids: list[int] = [u["user_id"] for u in plan["pollers"]]

    def pick_peer() -> int:
        for _ in range(20):
            peer = random.choice(poller_ids)
            if peer in run.waiting:
                return peer
        return random.choice(poller_ids)

    metrics_at = (plan["host"], plan["metrics_port"])
    server_gc0 = await asyncio.to_thread(scrape_gc_pauses, *metrics_at)
    if plan.get("generator_gc") != "on":
        quiet_collector()
    own_gc = PauseLog()
    own_gc.start()
    nginx_pids = plan.get("nginx_pids", [])
    cpu_send0, send_started = servers_cpu(pids), time.monotonic()
    repolls_before_send = len(run.repolled_at)
    machine0, nginx0 = machine_busy_secs(), servers_cpu(nginx_pids)
    sends, cruds = await asyncio.gather(
        open_loop(
            plan["rate"],
            plan["send_secs"],
            lambda seq: send_one(run, send_pool, senders[seq % len(senders)], pick_peer(), seq),
        ),
        open_loop(
            plan["crud_rate"], plan["send_secs"], lambda seq: crud_one(run, crud_pool, random.choice(senders))
        ),
    )
    await asyncio.gather(*sends, *cruds)
    send_secs = time.monotonic() - send_started
    deadline = time.monotonic() + plan["grace_secs"]
    while time.monotonic() < deadline and any(m not in run.received_at for m in run.accepted_at):
        await asyncio.sleep(0.05)
    cpu_send = servers_cpu(pids) - cpu_send0
    machine, nginx_cpu = machine_busy_secs() - machine0, servers_cpu(nginx_pids) - nginx0
    usage3 = resource.getrusage(resource.RUSAGE_SELF)
    own_gc.stop()
    gc.enable()
    await asyncio.sleep(1.5)  # the servers file their pauses about once a second
    server_gc = pause_delta(server_gc0, await asyncio.to_thread(scrape_gc_pauses, *metrics_at))
    run.stopping = True
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    def gen_cpu(a: resource.struct_rusage, b: resource.struct_rusage) -> float:
        return (b.ru_utime + b.ru_stime) - (a.ru_utime + a.ru_stime)

    delivery = [
        max(0.0, 1000 * (run.received_at[m] - t)) for m, t in run.accepted_at.items() if m in run.received_at
    ]
    return {
        "connect_secs": connect_secs,
        "park": park,
        "send": {
            "secs": send_secs,
            "accepted": len(run.accepted_at),
            "offered": int(plan["rate"] * plan["send_secs"]),
            "server_cpu_secs": cpu_send,
            "machine_busy_secs": machine,  # every process on the host (another session's too)
            "nginx_cpu_secs": nginx_cpu,
            "wall_secs": time.monotonic() - send_started,  # with the grace wait: the CPU figures' window
        },
        "idle": idle,
        "send_ms": run.send_ms,
        # re-polls per whole second of the send phase (from its start): waves show as peaks
        "repolls_per_second": per_second(run.repolled_at[repolls_before_send:], send_started),
        "delivery_ms": delivery,
        "lost": sum(1 for m in run.accepted_at if m not in run.received_at),
        "duplicated": run.duplicates,
        "crud_ms": run.crud_ms,
        "statuses": run.statuses,
        "generator_cpu": {
            "connect": gen_cpu(usage0, usage1),
            "park": gen_cpu(usage1, usage2),
            "send": gen_cpu(usage2, usage3),
            "park_wall": park["secs"],
            "send_wall": send_secs,
        },
        "generator_max_rss_kb": usage3.ru_maxrss,
        "gc_pauses": {"servers": server_gc, "generator": own_gc.summary()},
    }


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(json.dumps(asyncio.run(main(json.load(sys.stdin)))))
