"""The realtime case's Markdown: one table per probe from the load generator's JSON.

Figures only, nothing measured here. Server CPU, nginx's and the whole host's are
over the same window (the send phase and its grace wait), so a reader can tell a
tail the servers made from one that other work on the host made.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from bench.calibration import Calibration
from bench.common import percentiles
from bench.gc_watch import render_pauses

if TYPE_CHECKING:
    from bench.realtime import Probe


def render(probe: Probe, r: dict[str, Any]) -> str:
    park, send, gen = r["park"], r["send"], r["generator_cpu"]
    after_kb = sum(park["rss_after_kb"].values())
    rss_delta_kb = after_kb - sum(park["rss_before_kb"].values())
    total_delta_kb = after_kb - sum(park["rss_idle_kb"].values())
    d, c = percentiles(r["delivery_ms"]), percentiles(r["crud_ms"])
    ng_idle, ng_after = park.get("nginx_rss_idle_kb", 0), park.get("nginx_rss_after_kb", 0)
    nginx = (
        f"{ng_idle / 1024:.0f} MB idle -> {ng_after / 1024:.0f} MB parked "
        f"({(ng_after - ng_idle) / probe.pollers:.1f} KB per poll)"
        if ng_idle
        else "not in front"
    )
    rss = ", ".join(
        f"{park['rss_idle_kb'][p] / 1024:.0f}->{park['rss_after_kb'][p] / 1024:.0f} MB"
        for p in park["rss_idle_kb"]
    )
    per_poll_ms = 1000 * park["cpu_secs"] / probe.pollers
    send_rate = send["accepted"] / send["secs"]
    gen_park = 100 * gen["park"] / max(gen["park_wall"], 1e-9)
    gen_send = 100 * gen["send"] / max(gen["send_wall"], 1e-9)
    window = send.get("wall_secs", 0.0)
    machine_row = _machine_row(send, gen["send"], window)
    kinds = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))
    cal = Calibration(**r["calibration"]) if "calibration" in r else None
    title = (
        f"Headline, steady state: {probe.pollers:,} pollers on {r['procs']} process(es), "
        f"timeout {r.get('poll_timeout_secs', 0):.0f} s, sends over {probe.send_secs:.0f} s"
        if probe.steady
        else "Short probe (best case: no poll times out while messages are sent)"
    )
    lines = [
        f"### {title}: {probe.pollers:,} pollers, {probe.rate:.0f} msg/s offered, {r['procs']} process(es) "
        f"{'behind nginx' if r['via'] == 'nginx' else 'direct'}, {r['backend']} "
        f"(load average {r['load_average']})",
        "",
        "| what | measured |",
        "|---|---|",
        f"| parking {probe.pollers:,} polls | {park['secs']:.2f} s wall, {per_poll_ms:.2f} ms server "
        f"CPU per poll, {park['waiting']:,} waiting at the end |",
        f"| memory per waiting poll (idle process -> all parked) | "
        f"{total_delta_kb / probe.pollers:.1f} KB, of which {rss_delta_kb / probe.pollers:.1f} KB "
        f"for parking an open connection (RSS per process, idle -> parked: {rss}) |",
        f"| nginx RSS (master + workers) | {nginx} |",
        f"| sends accepted | {send['accepted']:,} of {send['offered']:,} in {send['secs']:.1f} s = "
        f"{send_rate:.0f}/s ({send_rate / r['procs']:.0f}/s per process), "
        f"server CPU {send['server_cpu_secs']:.1f} s |",
        f"| delivery, send accepted -> poll answered | p50 {d['p50']:.1f} ms, p95 {d['p95']:.1f} ms, "
        f"p99 {d['p99']:.1f} ms, max {d['max']:.1f} ms |",
        f"| not delivered within the {r.get('grace_secs', 15)} s grace after the last send / duplicated | "
        f"{r['lost']} / {r['duplicated']} |",
        f"| machine CPU over the send phase and its grace wait ({window:.1f} s) | {machine_row} |",
        f"| CRUD reads beside it ({len(r['crud_ms'])}) | p50 {c['p50']:.1f} ms, p99 {c['p99']:.1f} ms |",
        f"| generator CPU (its own process) | park {gen_park:.0f}% of a core, send {gen_send:.0f}% of a "
        f"core, max RSS {r['generator_max_rss_kb'] / 1024:.0f} MB |",
        *_steady_rows(r, cal, per_poll_ms),
        f"| answers by kind (status/code) | {kinds} |",
        f"| GC pauses in the send phase, wall clock (all threads wait) | "
        f"{render_pauses('servers', r.get('gc_pauses', {}).get('servers', {}))}; "
        f"{render_pauses('generator', r.get('gc_pauses', {}).get('generator', {}))} |",
        "",
    ]
    return "\n".join(lines)


def _steady_rows(r: dict[str, Any], cal: Calibration | None, park_ms: float) -> list[str]:
    """Calibration, the CPU of a park and of a re-poll in its units, send latency and the
    re-polls' spread (a wave shows as a second far above the mean)."""
    rows = []
    if cal is not None:
        rows.append(f"| calibration (same run, the first process) | {cal.text()} |")
        rows.append(f"| park CPU per poll in /api/time units | {cal.units(park_ms):.1f} |")
    idle = r.get("idle") or {}
    if idle.get("repolls"):
        repark_ms = 1000 * idle["cpu_secs"] / idle["repolls"]
        units = f" = {cal.units(repark_ms):.1f} /api/time units" if cal else ""
        rows.append(
            f"| re-polls alone ({idle['secs']:.0f} s, nothing sent) | {idle['repolls']:,} re-polls "
            f"({idle['repolls'] / idle['secs']:.0f}/s), {repark_ms:.2f} ms server CPU each{units} |"
        )
    if r.get("send_ms"):
        p = percentiles(r["send_ms"])
        rows.append(
            f"| send round trip | p50 {p['p50']:.1f} ms, p99 {p['p99']:.1f} ms, max {p['max']:.0f} ms |"
        )
    seconds = r.get("repolls_per_second") or []
    if seconds:
        whole = seconds[:-1] or seconds
        mean = sum(whole) / len(whole)
        rows.append(
            f"| re-polls during the sends, per second | mean {mean:.0f}, max {max(whole)}, "
            f"max / mean {max(whole) / max(mean, 1e-9):.1f} |"
        )
    return rows


def _machine_row(send: dict[str, Any], generator_secs: float, window_secs: float) -> str:
    """How busy the host was while delivery was measured, and who made it busy: a tail
    measured while other work ran on the same CPUs says little about the servers."""
    if "machine_busy_secs" not in send or window_secs <= 0:
        return "not measured"
    busy, servers, nginx = send["machine_busy_secs"], send["server_cpu_secs"], send["nginx_cpu_secs"]
    rest = max(0.0, busy - servers - nginx - generator_secs)

    def cores(secs: float) -> str:
        return f"{secs / window_secs:.2f}"

    return (
        f"{cores(busy)} of {os.cpu_count()} cores busy: servers {cores(servers)}, nginx {cores(nginx)}, "
        f"generator {cores(generator_secs)}, "
        f"the rest (MariaDB, Redis, any other work on the host) {cores(rest)}"
    )
