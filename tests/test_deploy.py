"""deploy/: settings from one place, the repo's templates rendered completely, the load-test verdict."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy import StackSettings, loadtest
from deploy.render import NGINX_ERROR_SPECS, render_all
from wsgi_app import errors


@pytest.fixture
def settings(tmp_path: Path) -> StackSettings:
    return StackSettings.from_env(
        processes=3, first_port=23101, nginx_port=23180, run_dir=tmp_path / "run", upload_dir=tmp_path / "up"
    )


def test_settings_come_from_dt_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DT_PROCESSES", "2")
    monkeypatch.setenv("DT_FIRST_PORT", "9101")
    monkeypatch.setenv("DT_NGINX_PORT", "9180")
    monkeypatch.setenv("DT_RUN_DIR", str(tmp_path))
    settings = StackSettings.from_env()
    assert settings.ports == [9101, 9102]
    assert settings.base_url == "http://127.0.0.1:9180"
    assert settings.run_dir == tmp_path.resolve()
    assert StackSettings.from_env(processes=5).processes == 5


def test_templates_render_completely_from_the_settings(settings: StackSettings) -> None:
    supervisor_conf, nginx_conf = render_all(settings)
    supervisor, nginx = supervisor_conf.read_text(), nginx_conf.read_text()
    assert "{{" not in supervisor and "{{" not in nginx
    assert "numprocs=3" in supervisor and "numprocs_start=23101" in supervisor
    assert "--port %(process_num)d" in supervisor
    assert re.findall(r"server 127\.0\.0\.1:(\d+) max_fails=1 fail_timeout=2s;", nginx) == [
        "23101",
        "23102",
        "23103",
    ]
    assert "listen 127.0.0.1:23180" in nginx
    assert f"stopwaitsecs={int(settings.drain_secs) + 10}" in supervisor
    assert f"alias {settings.upload_dir}/;" in nginx


def test_the_topology_past_one_host_is_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The edge spreads over every app host's processes; the Redis topology reaches each process."""
    monkeypatch.setenv("DT_APP_HOSTS", "10.213.0.21, 10.213.0.22")
    monkeypatch.setenv("REDIS_SENTINELS", "10.213.0.31:26379,10.213.0.32:26379,10.213.0.33:26379")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", "city")
    settings = StackSettings.from_env(processes=2, first_port=8001, run_dir=tmp_path / "run")
    assert settings.app_hosts == ("10.213.0.21", "10.213.0.22")
    _, nginx_conf = render_all(settings)
    servers = re.findall(r"server (\S+) max_fails=1 fail_timeout=2s;", nginx_conf.read_text())
    assert servers == ["10.213.0.21:8001", "10.213.0.21:8002", "10.213.0.22:8001", "10.213.0.22:8002"]
    env = settings.process_env()
    assert env["REDIS_SENTINELS"] == "10.213.0.31:26379,10.213.0.32:26379,10.213.0.33:26379"
    assert env["REDIS_SENTINEL_MASTER"] == "city"
    monkeypatch.delenv("DT_APP_HOSTS")
    assert StackSettings.from_env(processes=2).upstream_addresses == ["127.0.0.1:8001", "127.0.0.1:8002"]


def test_nginx_logs_no_query_string_and_no_version(settings: StackSettings) -> None:
    _, nginx_conf = render_all(settings)
    nginx = nginx_conf.read_text()
    log_format = nginx[nginx.index("log_format") : nginx.index(";", nginx.index("log_format"))]
    for leaky in ("$request ", '$request"', "$request_uri", "$args", "$query_string", "$http_referer"):
        assert leaky not in log_format
    assert "server_tokens off;" in nginx
    assert re.search(r"error_log \S+ crit;", nginx), "below crit nginx quotes request lines with tokens"


def test_nginx_error_pages_are_the_error_table_envelopes(settings: StackSettings) -> None:
    _, nginx_conf = render_all(settings)
    nginx = nginx_conf.read_text()
    for spec in NGINX_ERROR_SPECS:
        page = settings.nginx_prefix / "_errors" / f"{spec.code}.json"
        assert page.read_text() == errors.dumps_envelope(errors.error_body(spec))
        assert f"/_errors/{spec.code}.json;" in nginx


@pytest.mark.skipif(not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists(), reason="no nginx")
def test_rendered_nginx_config_is_valid(settings: StackSettings) -> None:
    _, nginx_conf = render_all(settings)
    prefix = settings.nginx_prefix
    result = subprocess.run(
        [settings.nginx_bin, "-t", "-q", "-p", f"{prefix}/", "-c", str(nginx_conf), "-e", f"{prefix}/e.log"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def test_loadtest_verdict_fails_on_a_failure_or_a_slow_steady_state(tmp_path: Path) -> None:
    stats, failures = tmp_path / "stats.csv", tmp_path / "failures.csv"
    header = "Type,Name,Request Count,Failure Count,95%\n"
    failures.write_text("Method,Name,Error,Occurrences\n")

    def steady(name: str, p95: float, method: str = "GET") -> dict:
        return {"method": method, "name": name, "requests": 5, "failures": 0, "p95_ms": p95}

    def verdict(rows: str, after: list[dict]) -> loadtest.Verdict:
        stats.write_text(header + rows)
        return loadtest.judge(
            stats, failures, after, poll_limit_ms=15000, default_limit_ms=1000, warmup_secs=7
        )

    rows = "GET,/api/user/show,10,0,2500\nGET,/api/chat/poll,5,0,5100\n"
    # The whole run's p95 (2500, the spawn burst) is not the verdict: the steady state's is.
    good = verdict(rows, [steady("/api/user/show", 120), steady("/api/chat/poll", 5100)])
    assert good.ok and "after a warm-up of 7 s" in good.report
    assert not verdict(rows, [steady("/api/user/show", 1200), steady("/api/chat/poll", 5100)]).ok
    assert not verdict(rows, [steady("/api/user/show", 120), steady("/api/chat/poll", 16000)]).ok
    # Called only during the warm-up (sign-in): listed, not judged on p95; failures always count.
    only_warmup = verdict("POST,/api/auth/login,10,0,2500\n", [])
    assert only_warmup.ok and "warm-up only" in only_warmup.report
    assert not verdict("POST,/api/auth/login,10,1,100\n", []).ok
    failures.write_text("Method,Name,Error,Occurrences\nPOST,/api/chat/send,rate limited (429),1\n")
    limited = verdict("POST,/api/chat/send,10,1,100\n", [steady("/api/chat/send", 100, "POST")])
    assert not limited.ok and "rate limited (429)" in limited.report
    failures.write_text("Method,Name,Error,Occurrences\n")
    empty = verdict("", [])
    assert not empty.ok and "no request was made" in empty.report


def test_loadtest_refuses_a_run_that_cannot_judge_anything(tmp_path: Path) -> None:
    settings = StackSettings.from_env(run_dir=tmp_path)
    too_few = loadtest.run(4, 10, "60s", settings)
    assert not too_few.ok and f"at least {loadtest.MIN_USERS}" in too_few.report
    too_short = loadtest.run(20, 10, "10s", settings)
    assert not too_short.ok and "no steady state" in too_short.report


def test_min_users_covers_every_kind_of_person_of_the_locust_file() -> None:
    locustfile = (Path(__file__).resolve().parent.parent / "locustfile.py").read_text()
    weights = [int(w) for w in re.findall(r"^    weight = (\d+)$", locustfile, re.M)]
    assert len(weights) == 4 and sum(weights) // min(weights) == loadtest.MIN_USERS


def test_a_rolling_restart_stops_the_next_process_only_once_nginx_takes_the_last_back(
    settings: StackSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nginx skips a process for ``fail_timeout`` after a refused connection: a process that is
    ready in under a second must not leave nginx without any when the next one drains."""
    from deploy import stack as stack_module
    from deploy.settings import UPSTREAM_FAIL_TIMEOUT_SECS

    events: list[tuple[str, str | float]] = []

    class FakeSupervisor:
        def getProcessInfo(self, name: str) -> dict[str, str]:
            return {"statename": "RUNNING"}

        def stopProcess(self, name: str, wait: bool) -> None:
            events.append(("stop", name))

        def startProcess(self, name: str, wait: bool) -> None:
            events.append(("start", name))

    monkeypatch.setattr(stack_module.Stack, "_rpc", lambda self: FakeSupervisor())
    monkeypatch.setattr(stack_module, "health_ok", lambda url, timeout_secs=2.0: True)
    monkeypatch.setattr("deploy.stack.time.sleep", lambda secs: events.append(("sleep", secs)))
    stack_module.Stack(settings).rolling_restart()
    stops = [i for i, (kind, _) in enumerate(events) if kind == "stop"]
    assert len(stops) == len(settings.ports) > 1
    for before, after in zip(stops, stops[1:], strict=False):
        waited = sum(float(secs) for kind, secs in events[before:after] if kind == "sleep")
        assert waited >= UPSTREAM_FAIL_TIMEOUT_SECS, events


def test_a_restart_compares_configs_without_their_comments() -> None:
    """A comment added to a template must not make a running stack's restart refuse."""
    from deploy.stack import _first_difference, _meaningful

    running = "; old comment\n[program:x]\nstartsecs=1\n"
    assert _meaningful(running) == _meaningful("; a new comment\n\n[program:x]\n  startsecs=1\n")
    assert _meaningful(running) != _meaningful("[program:x]\nstartsecs=3\n")
    assert _first_difference(running, "[program:x]\nstartsecs=3\n") == "'startsecs=1' -> 'startsecs=3'"
