"""What the processes of a running stack were started with, to tell whether a restart can apply a change.

The processes take their settings from supervisord's environment, which is the one of
``python -m deploy start``; a rolling restart (``supervisorctl`` stop and start) keeps it. So
``start`` records a fingerprint of every setting a process reads (the Flask configuration and
the server's own settings, as ``wsgi_app.config`` derives them from that environment), and
``restart`` compares it with the settings of its own environment: a difference means the change
needs ``stop`` + ``start``, and the restart refuses, naming the settings.

Invariant: the record holds a short SHA-256 of each value, never a value (secrets are among
them), in a file only its owner may read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from deploy.preflight import process_config, process_environment
from deploy.settings import StackSettings

RECORD_NAME = "started-settings.json"
# Given on the command line by supervisord.conf (--port, --address), not from the environment.
NOT_FROM_ENVIRONMENT = {"port", "bind_address"}


def _digest(value: Any) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def fingerprint(settings: StackSettings) -> dict[str, str]:
    """Setting name -> digest of its value, as a process of this stack would read them now."""
    from wsgi_app.config import server_settings_from_env

    values = dict(process_config(settings))
    with process_environment(settings.process_env()):
        server = dataclasses.asdict(server_settings_from_env())
    for name, value in server.items():
        if name not in NOT_FROM_ENVIRONMENT:
            values[name.upper()] = value
    return {name: _digest(value) for name, value in sorted(values.items())}


def record_path(settings: StackSettings) -> Path:
    return settings.run_dir / RECORD_NAME


def write(settings: StackSettings) -> None:
    path = record_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(fingerprint(settings), f, indent=1)


def changed_since_start(settings: StackSettings) -> list[str]:
    """Names of the settings whose value differs from the start's ([] without a record)."""
    try:
        started: dict[str, str] = json.loads(record_path(settings).read_text())
    except (OSError, ValueError):
        return []
    now = fingerprint(settings)
    return sorted(name for name in started.keys() | now.keys() if started.get(name) != now.get(name))
