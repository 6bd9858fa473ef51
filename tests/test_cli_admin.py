"""``flask apps list|disable|enable|rotate-secret``, ``flask db prepare``, one-line database errors."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import REPO_ROOT
from tests.helpers import ApiClient, FlaskTransport
from wsgi_app.services.auth.applications import AppCredentials


def run_cli(app: Flask, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def test_apps_list_never_prints_secrets(app: Flask, creds: AppCredentials) -> None:
    result = run_cli(app, "apps", "list")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["appkey"] for r in rows] == [creds.appkey]
    assert rows[0]["active"] is True and rows[0]["sign_method"] == creds.sign_method
    assert creds.secret not in result.output


def test_disable_and_enable_take_effect(app: Flask, client, creds: AppCredentials) -> None:
    api = ApiClient(FlaskTransport(client), creds)
    assert api.get("/api/vip/products").status == 200
    assert run_cli(app, "apps", "disable", creds.appkey).exit_code == 0
    refused = api.get("/api/vip/products")
    assert (refused.status, refused.code) == (401, 507)
    listed = run_cli(app, "apps", "list", "--active-only")
    assert listed.output == ""
    assert run_cli(app, "apps", "enable", creds.appkey).exit_code == 0
    assert api.get("/api/vip/products").status == 200


def test_rotate_secret_retires_the_old_one(app: Flask, client, creds: AppCredentials) -> None:
    result = run_cli(app, "apps", "rotate-secret", creds.appkey)
    assert result.exit_code == 0, result.output
    new_secret = json.loads(result.output)["appsecret"]
    assert new_secret != creds.secret and len(new_secret) == 48
    old = ApiClient(FlaskTransport(client), creds).get("/api/vip/products")
    assert (old.status, old.code) == (401, 506)
    new = ApiClient(FlaskTransport(client), dataclasses.replace(creds, secret=new_secret))
    assert new.get("/api/vip/products").status == 200


@pytest.mark.parametrize("command", ["disable", "enable", "rotate-secret"])
def test_unknown_appkey_is_one_line(app: Flask, command: str) -> None:
    result = run_cli(app, "apps", command, "NOPE")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no application with appkey NOPE"


def flask_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "FLASK_APP": "wsgi_app", "REDIS_URL": "memory://"}
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_upgrade_against_an_unreachable_database_is_one_line(tmp_path) -> None:
    result = flask_cli(f"sqlite:///{tmp_path}/missing/dir/x.sqlite3", "db", "upgrade")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("INFO")]
    assert len(errors) == 1 and errors[0].startswith("Error: database error on"), result.stderr
    refused = flask_cli("mysql+pymysql://root:pw@127.0.0.1:1/nothing", "db", "upgrade")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "cannot connect to the database server at 127.0.0.1:1" in refused.stderr
    assert "pw" not in refused.stderr


def test_prepare_creates_migrates_and_seeds(tmp_path, base_config) -> None:
    """SQLite on the embedded default; on MariaDB a scratch database named after this run's
    (``<db>_prepare``), created by the command and dropped here."""
    configured = make_url(base_config["SQLALCHEMY_DATABASE_URI"])
    if configured.get_backend_name() == "mysql":
        url = configured._replace(database=f"{configured.database}_prepare")
        server = create_engine(configured._replace(database=None))
        with server.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
        missing = flask_cli(url.render_as_string(hide_password=False), "db", "upgrade")
        assert missing.returncode == 1 and "Traceback" not in missing.stderr
        assert f"database '{url.database}' does not exist" in missing.stderr
        assert "db prepare" in missing.stderr
    else:
        server = None
        url = make_url(f"sqlite:///{tmp_path}/new/dir/prepared.sqlite3")
    url_text = url.render_as_string(hide_password=False)
    try:
        first = flask_cli(url_text, "db", "prepare")
        assert first.returncode == 0, first.stderr
        assert ": created" in first.stdout and "VIP products: 3 added" in first.stdout
        assert "labels: 0 added" not in first.stdout
        again = flask_cli(url_text, "db", "prepare")
        assert again.returncode == 0, again.stderr
        assert ": exists" in again.stdout and "labels: 0 added" in again.stdout
        engine = create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM products")).scalar() == 3
            assert conn.execute(text("SELECT COUNT(*) FROM labels")).scalar_one() > 0
        engine.dispose()
    finally:
        if server is not None:
            with server.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
            server.dispose()


def test_seed_demo_progress_is_visible_when_piped(app: Flask) -> None:
    result = run_cli(app, "seed-demo", "--users", "250", "--batch-size", "100", "--seed", "3")
    assert result.exit_code == 0, result.output
    steps = [line for line in result.output.splitlines() if line.startswith("Seeding demo users: ")]
    assert [line.split()[3] for line in steps] == ["100/250", "200/250", "250/250"]
