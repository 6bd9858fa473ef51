"""The README's "Calling the API by hand" snippets work as written, in a fresh shell.

The two shell blocks of that section run in ``bash`` with an environment as a newcomer's
shell has it (no DEV_MODE, no DT_* variables, the embedded default), changed only where a
test must: a free port instead of 8000, a temporary instance folder, a short long-poll wait.
"""

from __future__ import annotations

import os
import re
import subprocess

from tests.conftest import REPO_ROOT, free_port, once_per_ci_run

pytestmark = once_per_ci_run  # the snippets run on the embedded default whatever this run uses

SECTION = "## Calling the API by hand"


def readme_snippets() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index(SECTION) : readme.index("\n## ", readme.index(SECTION) + 1)]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def test_the_calling_by_hand_snippets_run_as_written(tmp_path) -> None:
    snippets = readme_snippets()
    assert len(snippets) >= 3  # the session, the chat, the generator
    session, chat, generate = snippets[0], snippets[1], snippets[2]
    port = free_port()
    script = "\n".join(
        ["set -e", session, chat, generate, 'kill "$SERVER" 2>/dev/null || true', "wait || true"]
    )
    script = script.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")
    script = script.replace("instance/run.log", str(tmp_path / "run.log"))
    script = script.replace("--output-path dt_api", f"--output-path {tmp_path / 'dt_api'}")
    script = re.sub(r"^(.*\./scripts/run\.sh .*)$", r"\1\nSERVER=$!", script, flags=re.M)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DT_") and k not in {"DEV_MODE", "DATABASE_URL", "REDIS_URL", "SECRET_KEY"}
    }
    env.update({"PORT": str(port), "INSTANCE_PATH": str(tmp_path / "instance"), "LONGPOLL_TIMEOUT_SECS": "2"})
    result = subprocess.run(
        ["bash", "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    output = result.stdout + result.stderr
    log = tmp_path / "run.log"
    assert result.returncode == 0, output[-4000:] + (log.read_text()[-2000:] if log.exists() else "")
    assert "Traceback" not in output
    assert '"phone": "13900139000"' in output  # the own profile
    assert re.search(r'"content": "你好"', output)  # the message, read by the peer's poll
    assert '"list": []' in output  # the second poll waited and answered empty
    assert list((tmp_path / "dt_api").rglob("get_api_user_show.py")), "the generator wrote no client"
