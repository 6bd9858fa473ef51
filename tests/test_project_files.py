"""``.env.example`` lists every setting the code reads from the environment, with a default.

The settings are found in the code itself (the calls that read the environment in
``wsgi_app/config.py`` and ``deploy/*.py``), so a new setting without a line in
``.env.example`` fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import REPO_ROOT

SETTINGS_SOURCES = [REPO_ROOT / "wsgi_app" / "config.py", *sorted((REPO_ROOT / "deploy").glob("*.py"))]
ENV_READERS = {"get", "getenv"}  # os.environ.get, os.getenv; and every helper named _env_*
NOT_SETTINGS = {"DATINGTODAY_TEST_SUITE", "FLASK_RUN_FROM_CLI"}  # set by the test suite, by Flask
_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]+$")
_LINE_RE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]+)=", re.M)


def _is_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def settings_read_by(path: Path) -> set[str]:
    """Names read from the environment in ``path``: ``os.environ.get("X")``, ``os.environ["X"]``,
    ``"X" in os.environ``, ``_env_int("X", ...)`` and every other ``_env_*`` helper, and
    ``..._ENV = "X"`` constants."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            from_environ = not isinstance(func, ast.Attribute) or _is_environ(func.value)
            if (name in ENV_READERS and (from_environ or name == "getenv")) or name.startswith("_env_"):
                names.add(str(node.args[0].value))
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):
            if isinstance(node.slice, ast.Constant):
                names.add(str(node.slice.value))
        elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
            if isinstance(node.left, ast.Constant):
                names.add(str(node.left.value))
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if any(t.endswith("_ENV") for t in targets):
                names.add(str(node.value.value))
    return {n for n in names if _NAME_RE.match(n)} - NOT_SETTINGS


def test_every_setting_is_in_env_example() -> None:
    read = set().union(*(settings_read_by(path) for path in SETTINGS_SOURCES))
    assert {"DATABASE_URL", "SECRET_KEY", "LOG_FORMAT", "DT_PROCESSES", "PROMETHEUS_MULTIPROC_DIR"} <= read
    listed = set(_LINE_RE.findall((REPO_ROOT / ".env.example").read_text()))
    assert read - listed == set(), "add these to .env.example with their default and meaning"


def test_every_line_of_env_example_has_its_meaning_above_it() -> None:
    lines = (REPO_ROOT / ".env.example").read_text().splitlines()
    for number, line in enumerate(lines):
        if _LINE_RE.match(line):
            above = lines[number - 1]
            assert above.startswith("#"), f"line {number + 1} ({line}) has no comment above it"
            assert line.startswith("#"), f"line {number + 1}: shipped lines stay commented (defaults apply)"


def test_pre_commit_runs_the_same_checks_as_the_test_script() -> None:
    import subprocess
    import sys

    config = REPO_ROOT / ".pre-commit-config.yaml"
    checked = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", str(config)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = config.read_text()
    test_script = (REPO_ROOT / "scripts" / "test.sh").read_text()
    for tool in (".venv/bin/ruff check", ".venv/bin/mypy"):
        assert tool in text and tool in test_script


def test_project_metadata_names_its_people_and_places() -> None:
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert project["authors"] and all(a.get("name") for a in project["authors"])
    assert {"Homepage", "Changelog", "Issues"} <= set(project["urls"])
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog and f"## [{project['version']}]" in changelog
