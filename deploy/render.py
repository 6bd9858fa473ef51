"""Render the repo's ``supervisord.conf`` and ``nginx.conf`` templates from :class:`StackSettings`.

Placeholders are ``{{name}}`` (nginx's own ``$variables`` and supervisord's
``%(...)s`` expansions pass through untouched). Invariant: rendering fails on
a placeholder without a value, so a template and this module cannot drift
apart silently; the rendered files hold no secrets (the processes get those
from the environment).
"""

from __future__ import annotations

import os
import re
import resource
from pathlib import Path

from deploy.settings import REPO_DIR, UPSTREAM_FAIL_TIMEOUT_SECS, StackSettings, TimeoutConfigError
from wsgi_app import errors

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
NGINX_TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi", "logs")
STOP_WAIT_MARGIN_SECS = 10  # beyond the drain: closing connections, Redis, exiting
# nginx's own error pages (nginx.conf `error_page`), one file per envelope code.
NGINX_ERROR_SPECS = (
    errors.BAD_REQUEST,
    errors.NOT_FOUND,
    errors.METHOD_NOT_ALLOWED,
    errors.PAYLOAD_TOO_LARGE,
    errors.URI_TOO_LONG,
    errors.HEADERS_TOO_LARGE,
    errors.INTERNAL_ERROR,
    errors.SHUTTING_DOWN,
    errors.UPSTREAM_TIMEOUT,
)


def render_text(template: str, values: dict[str, object]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"template placeholder {{{{{name}}}}} has no value")
        return str(values[name])

    return PLACEHOLDER.sub(substitute, template)


def _fd_limit(wanted: int) -> int:
    """supervisord refuses to start when minfds exceeds what it may raise to."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if os.geteuid() == 0 or hard == resource.RLIM_INFINITY:
        return wanted
    return min(wanted, hard)


def template_values(settings: StackSettings) -> dict[str, object]:
    failures = f"max_fails=1 fail_timeout={UPSTREAM_FAIL_TIMEOUT_SECS}s"
    servers = "\n".join(
        f"        server {address} {failures} max_conns={settings.upstream_max_conns};"
        for address in settings.upstream_addresses
    )
    poll_servers = "\n".join(
        f"        server {address} {failures};" for address in settings.upstream_addresses
    )
    return {
        "repo_dir": REPO_DIR,
        "run_dir": settings.run_dir,
        "log_dir": settings.log_dir,
        "supervisor_socket": settings.supervisor_socket,
        "python": settings.python,
        "bind_address": settings.bind_address,
        "processes": settings.processes,
        "first_port": settings.first_port,
        "min_fds": _fd_limit(settings.min_fds),
        "start_secs": settings.start_secs,
        "stop_wait_secs": int(settings.drain_secs) + STOP_WAIT_MARGIN_SECS,
        "upload_dir": settings.upload_dir,
        "chat_media_dir": settings.chat_media_dir,
        "metrics_dir": settings.metrics_dir,
        "nginx_prefix": settings.nginx_prefix,
        "nginx_user_line": f"user {settings.nginx_user};" if settings.nginx_user else "",
        "nginx_listen": f"{settings.bind_address}:{settings.nginx_port}",
        "worker_connections": settings.nginx_worker_connections,
        "worker_rlimit_nofile": settings.nginx_worker_connections * 2,
        "upstream_servers": servers.lstrip(),
        "poll_upstream_servers": poll_servers.lstrip(),
        "upstream_keepalive": settings.upstream_keepalive,
        "upstream_read_timeout": f"{settings.upstream_read_timeout_secs:g}s",
        "poll_read_timeout": f"{settings.effective_poll_read_timeout_secs:g}s",
    }


RENDERED_FILES = ("supervisord.conf", "nginx.conf")


def render_texts(settings: StackSettings) -> dict[str, str]:
    """Both configs as ``settings`` renders them now, by file name (nothing written); refuses
    (:class:`deploy.settings.TimeoutConfigError`) a configuration nginx would cut."""
    problems = settings.timeout_problems()
    if problems:
        raise TimeoutConfigError("refusing to render: " + "; ".join(problems))
    values = template_values(settings)
    return {name: render_text((REPO_DIR / name).read_text(), values) for name in RENDERED_FILES}


def render_all(settings: StackSettings) -> tuple[Path, Path]:
    """Write both rendered configs (and the directories they name) into the run directory;
    refuses (:class:`deploy.settings.TimeoutConfigError`) a configuration nginx would cut."""
    texts = render_texts(settings)  # checks first: nothing is written for a refused configuration
    prepare_run_dir(settings)
    outputs = []
    for name, text in texts.items():
        target = settings.run_dir / name
        target.write_text(text)
        outputs.append(target)
    return outputs[0], outputs[1]


def prepare_run_dir(settings: StackSettings) -> None:
    """The directories the configs name, and nginx's error pages."""
    for directory in (settings.run_dir, settings.log_dir, settings.nginx_prefix):
        directory.mkdir(parents=True, exist_ok=True)
    for name in NGINX_TEMP_DIRS:
        (settings.nginx_prefix / name).mkdir(exist_ok=True)
    # nginx started as root runs its workers as an unprivileged user: they must reach the
    # temp directories (request bodies) under the run directory.
    for directory in (settings.run_dir, settings.nginx_prefix):
        directory.chmod(0o755)
    error_dir = settings.nginx_prefix / "_errors"
    error_dir.mkdir(exist_ok=True)
    error_dir.chmod(0o755)
    for spec in NGINX_ERROR_SPECS:
        (error_dir / f"{spec.code}.json").write_text(errors.dumps_envelope(errors.error_body(spec)))
