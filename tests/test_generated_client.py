"""A Python client generated from the served OpenAPI document by a real generator works.

``openapi-python-client`` (a dev extra; runs offline, no post-hooks) turns the
live server's ``/api/openapi.json`` into a package; its calls go through the
standalone signing auth (``datingtoday_client.auth.DatingTodayHttpxAuth``) and
the sign-in token (the generator's ``AuthenticatedClient``, a Bearer header):
sign-in, show, upload, nearby and poll, leaving optional parameters at their
defaults. Also: the shared components keep the number of generated models small.
"""

from __future__ import annotations

import importlib
import io
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from flask import Flask

from datingtoday_client.auth import DatingTodayHttpxAuth
from tests.chat_support import png_bytes
from tests.conftest import LiveServer, make_application

PACKAGE = "dt_generated"
# One per shared object and per operation's payload; 606 before components. 114 before the event
# stream, whose 11 operations and 9 event payloads added 50 (the recurring ones as components).
MAX_MODELS = 175


@pytest.fixture
def generated(live_server: LiveServer, tmp_path: Path) -> Iterator[ModuleType]:
    document = tmp_path / "openapi.json"
    with urllib.request.urlopen(live_server.base_url + "/api/openapi.json", timeout=30) as response:
        document.write_bytes(response.read())
    config = tmp_path / "config.yaml"
    config.write_text(f"post_hooks: []\nproject_name_override: {PACKAGE}\npackage_name_override: {PACKAGE}\n")
    generator = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    assert generator, "openapi-python-client is a dev dependency: ./scripts/bootstrap.sh installs it"
    out = tmp_path / PACKAGE
    result = subprocess.run(
        [generator, "generate", "--path", str(document), "--output-path", str(out), "--meta", "none"]
        + ["--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(package: ModuleType, dotted: str) -> ModuleType:
    return importlib.import_module(f"{package.__name__}.{dotted}")


@pytest.mark.parametrize("method", ["hmac-sha256", "md5-legacy"])
def test_generated_client_signs_in_and_calls_through_the_auth_class(
    app: Flask, live_server: LiveServer, generated: ModuleType, method: str
) -> None:
    app.config["SMS_ECHO_CODE"] = True
    creds = make_application(app, method)
    auth = DatingTodayHttpxAuth(creds.appkey, creds.secret, method)
    client_mod = _module(generated, "client")
    models = _module(generated, "models")
    anonymous = client_mod.Client(base_url=live_server.base_url, httpx_args={"auth": auth})

    sendsms = _module(generated, "api.auth.post_api_auth_sendsms")
    login = _module(generated, "api.auth.post_api_auth_login")
    sent = sendsms.sync(client=anonymous, body=models.PostApiAuthSendsmsBody(phone="13800000091"))
    assert sent.code == 0, sent
    code = sent.data.additional_properties.get("code") or sent.data.to_dict()["code"]
    signed_in = login.sync(client=anonymous, body=models.PostApiAuthLoginBody(phone="13800000091", code=code))
    assert signed_in.code == 0, signed_in
    user_id, token = signed_in.data.user_id, signed_in.data.token

    client = client_mod.AuthenticatedClient(
        base_url=live_server.base_url, token=token, httpx_args={"auth": auth}
    )
    show = _module(generated, "api.user.get_api_user_show").sync(client=client)  # peerId left out: yourself
    assert show.code == 0 and show.data.user_id == user_id, show

    types = _module(generated, "types")
    photo = types.File(payload=io.BytesIO(png_bytes()), file_name="face.png", mime_type="image/png")
    uploaded = _module(generated, "api.photo.post_api_photo_upload").sync(
        client=client, body=models.PostApiPhotoUploadBody(photo=photo)
    )
    assert uploaded.code == 0, uploaded

    nearby = _module(generated, "api.nearby.get_api_user_nearby_list").sync_detailed(
        client=client, latlng="31.2304,121.4737"
    )
    assert nearby.status_code == 200, nearby.content
    assert isinstance(nearby.parsed.data.list_, list)

    poll = _module(generated, "api.chat.get_api_chat_poll").sync_detailed(
        client=client
    )  # no cursor, limit 50
    assert poll.status_code == 200, poll.content
    assert poll.parsed.data.list_ == [] and poll.parsed.data.has_more is False


def test_shared_components_keep_the_generated_models_few(generated: ModuleType) -> None:
    assert generated.__file__ is not None
    models_dir = Path(generated.__file__).parent / "models"
    files = [p for p in models_dir.glob("*.py") if p.name != "__init__.py"]
    assert len(files) <= MAX_MODELS, len(files)
    names = {p.stem for p in files}
    assert {"profile", "message", "error_envelope", "hot_page"} <= names
