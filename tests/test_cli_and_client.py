"""``flask apps create`` and the signing command-line client."""

from __future__ import annotations

import json

import pytest
from flask import Flask

from tests.conftest import LiveServer
from wsgi_app import client as signing_client
from wsgi_app.extensions import db
from wsgi_app.models.application import Application


@pytest.mark.parametrize("method", ["md5-legacy", "hmac-sha256"])
def test_apps_create_prints_credentials(app: Flask, method: str) -> None:
    result = app.test_cli_runner().invoke(args=["apps", "create", "--name", "ios", "--sign-method", method])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["sign_method"] == method
    assert len(printed["appkey"]) == 16 and len(printed["appsecret"]) == 48
    with app.app_context():
        row = db.session.execute(db.select(Application).filter_by(appkey=printed["appkey"])).scalar_one()
    assert (row.name, row.secret, row.sign_method) == ("ios", printed["appsecret"], method)


def test_apps_create_rejects_an_unknown_method(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["apps", "create", "--name", "x", "--sign-method", "sha1"])
    assert result.exit_code != 0


@pytest.mark.parametrize("method", ["md5-legacy", "hmac-sha256"])
def test_signing_client_calls_a_live_server(
    app: Flask, live_server: LiveServer, monkeypatch, capsys, method: str
) -> None:
    app.config["SMS_ECHO_CODE"] = True
    created = json.loads(
        app.test_cli_runner().invoke(args=["apps", "create", "--name", "cli", "--sign-method", method]).output
    )
    monkeypatch.setenv("DT_BASE_URL", live_server.base_url)
    monkeypatch.setenv("DT_APPKEY", created["appkey"])
    monkeypatch.setenv("DT_APPSECRET", created["appsecret"])
    monkeypatch.setenv("DT_SIGN_METHOD", method)
    assert signing_client.main(["POST", "/api/auth/sendsms", "phone=13800000042"]) == 0
    code = json.loads(capsys.readouterr().out)["data"]["code"]
    assert signing_client.main(["POST", "/api/auth/login", "phone=13800000042", f"code={code}"]) == 0
    login = json.loads(capsys.readouterr().out)["data"]
    assert (
        signing_client.main(
            ["GET", "/api/user/show", f"userId={login['user_id']}", f"token={login['token']}"]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["data"]["phone"] == "13800000042"
    # A refused call exits non-zero and still prints the envelope.
    assert signing_client.main(["GET", "/api/user/show", "userId=1", "token=bad"]) == 1
    assert json.loads(capsys.readouterr().out)["code"] == 504
