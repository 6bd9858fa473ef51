"""The allowed import directions (docs/architecture.md), checked on every module's source.

The rules, lower layers first; an arrow may only point down:

    tornado_server.py, tornado_guard.py, deploy/      (composition roots: may import anything)
    async_handlers/        native handlers           -> wsgi_app (never wsgi_app.api)
    wsgi_app/api/          Flask blueprints          -> services, declarations, openapi
    wsgi_app/openapi/      the OpenAPI builder       -> declarations, native_endpoints, errors, params
    wsgi_app/native_endpoints.py, declarations.py    -> services (schemas), errors, params
    wsgi_app/services/     domain logic              -> models, extensions, foundations
    wsgi_app foundations   errors, params, config, database, failures, ...

Nothing under ``wsgi_app`` imports ``async_handlers`` or the server modules, the
services import no layer above them, and the demo data is only for the CLI.
The check reads imports with :mod:`ast` (including imports inside functions), so
a lazy import cannot hide a wrong arrow.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("wsgi_app", "async_handlers", "datingtoday_client")

# (importer prefix, forbidden import prefixes, why)
RULES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("async_handlers", ("wsgi_app.api",), "the native side must not depend on the Flask view layer"),
    (
        "wsgi_app",
        ("async_handlers", "tornado_server", "tornado_guard", "tornado_dispatch", "deploy", "bench", "tests"),
        "wsgi_app is below the servers that mount it",
    ),
    (
        "wsgi_app.services",
        (
            "wsgi_app.api",
            "wsgi_app.openapi",
            "wsgi_app.native_endpoints",
            "wsgi_app.declarations",
            "wsgi_app.demo",
            "wsgi_app.cli",
        ),
        "services are below every way of calling them",
    ),
    (
        "wsgi_app.declarations",
        ("flask", "tornado", "wsgi_app.api", "wsgi_app.services"),
        "endpoint declarations are framework-neutral",
    ),
    ("wsgi_app.native_endpoints", ("flask", "tornado", "wsgi_app.api"), "framework-neutral declarations"),
    ("wsgi_app.openapi", ("wsgi_app.api", "tornado"), "the builder reads declarations, not views"),
    ("wsgi_app.models", ("wsgi_app.services", "wsgi_app.api"), "models are below the logic using them"),
    ("datingtoday_client", ("wsgi_app", "async_handlers", "flask", "tornado"), "the client stands alone"),
)
# Only these may import the demo seeding.
DEMO_IMPORTERS = ("wsgi_app.cli", "wsgi_app.demo", "bench", "tests")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[str]:
    """Absolute dotted names imported anywhere in the module (relative imports resolved)."""
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def all_modules() -> list[Path]:
    found = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    return [p for p in found if "migrations" not in p.parts]


def violations(modules: list[Path]) -> list[str]:
    found = []
    for path in modules:
        importer = module_name(path)
        imported = set(imports_of(path))
        for prefix, forbidden, why in RULES:
            if not _under(importer, prefix):
                continue
            for name in sorted(imported):
                if any(_under(name, bad) for bad in forbidden):
                    found.append(f"{importer} imports {name}: {why}")
        if not any(_under(importer, allowed) for allowed in DEMO_IMPORTERS):
            found += [
                f"{importer} imports {n}: demo data is for the CLI"
                for n in imported
                if _under(n, "wsgi_app.demo")
            ]
    return found


def test_every_import_runs_the_allowed_direction() -> None:
    assert violations(all_modules()) == []


def test_the_check_catches_a_wrong_arrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_root = tmp_path
    (fake_root / "async_handlers").mkdir()
    (fake_root / "wsgi_app" / "services").mkdir(parents=True)
    bad_native = fake_root / "async_handlers" / "x.py"
    bad_native.write_text("def f():\n    from wsgi_app.api.endpoint import endpoint\n")
    bad_service = fake_root / "wsgi_app" / "services" / "y.py"
    bad_service.write_text("from .. import native_endpoints\nimport async_handlers.base\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake_root)
    found = violations([bad_native, bad_service])
    assert any("async_handlers.x imports wsgi_app.api.endpoint" in v for v in found)
    assert any("wsgi_app.services.y imports wsgi_app.native_endpoints" in v for v in found)
    assert any("wsgi_app.services.y imports async_handlers.base" in v for v in found)


def test_native_handlers_mount_exactly_the_declared_native_endpoints() -> None:
    from async_handlers import NATIVE_HANDLERS
    from wsgi_app.native_endpoints import NATIVE_ENDPOINTS, NATIVE_FAST_PATHS

    mounted = [
        (path, method, id(spec))
        for path, handler in NATIVE_HANDLERS
        for method, spec in handler.endpoint_specs.items()
    ]
    declared = [*NATIVE_ENDPOINTS, *NATIVE_FAST_PATHS]  # fast paths: Flask endpoints also served natively
    assert sorted(mounted) == sorted((path, method, id(spec)) for path, method, spec in declared)


SERVER_MODULES = ("tornado_server.py", "tornado_guard.py", "tornado_dispatch.py")


def listeners_registered_on_import(path: Path) -> list[str]:
    """``@event.listens_for`` anywhere, or ``event.listen(...)`` run at a module's top level:
    a listener must be registered by a function ``create_app`` calls (``init_app``)."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(target, ast.Attribute) and target.attr == "listens_for":
                    found.append(f"{path.name}:{target.lineno} @listens_for")
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for node in ast.walk(statement):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "listen"
            ):
                found.append(f"{path.name}:{node.lineno} event.listen at import")
    return found


def test_no_listener_is_registered_as_an_import_side_effect() -> None:
    paths = [*all_modules(), *(ROOT / name for name in SERVER_MODULES)]
    assert [hit for path in paths for hit in listeners_registered_on_import(path)] == []


def test_the_listener_check_catches_an_import_side_effect(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from sqlalchemy import event\n"
        "@event.listens_for(Session, 'after_commit')\ndef a(s): pass\n"
        "event.listen(Engine, 'connect', a)\n"
        "def init_app(app):\n    event.listen(Session, 'after_commit', a)\n"
    )
    assert listeners_registered_on_import(module) == ["m.py:2 @listens_for", "m.py:4 event.listen at import"]


def test_every_module_says_what_it_is() -> None:
    undocumented = [module_name(p) for p in all_modules() if not ast.get_docstring(ast.parse(p.read_text()))]
    assert undocumented == []


def test_only_config_reads_the_environment() -> None:
    """Configuration in one place: ``os.environ`` / ``os.getenv`` only in ``wsgi_app/config.py``."""
    server_side = [p for p in all_modules() if p.parts[len(ROOT.parts)] in ("wsgi_app", "async_handlers")]
    server_side += [ROOT / "tornado_server.py", ROOT / "tornado_guard.py", ROOT / "tornado_dispatch.py"]
    readers = []
    for path in server_side:
        if module_name(path) == "wsgi_app.config":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv")
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                readers.append(f"{module_name(path)}:{node.lineno}")
    assert readers == []


# -- private attributes of dependencies ----------------------------------------------------

PRIVATE_API_WRAPPER = "wsgi_app.private_apis"
# Leading-underscore names that are public API: namedtuple's methods (urllib's SplitResult,
# SQLAlchemy's URL) and SQLAlchemy's documented ``Row._mapping`` / ``Row._tuple()``.
PUBLIC_UNDERSCORE_NAMES = frozenset({"_replace", "_asdict", "_fields", "_make", "_mapping", "_tuple", "_t"})


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def own_private_names(paths: list[Path]) -> set[str]:
    """Every leading-underscore name our own code defines (functions, classes, attributes it
    assigns, parameters, import aliases): reading one of them is not reaching into a dependency."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias) and node.asname:
                names.add(node.asname)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.keyword) and node.arg:
                names.add(node.arg)
    return {name for name in names if _is_private(name)}


def private_uses(path: Path, own: set[str]) -> list[str]:
    """``x._name`` (``x`` not ``self`` / ``cls``) and ``getattr(x, "_name")`` where ``_name`` is
    none of ours: a private attribute of a dependency."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        name = None
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                name = node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _is_private(node.args[1].value)
        ):
            name = node.args[1].value
        if name is not None and name not in own and name not in PUBLIC_UNDERSCORE_NAMES:
            found.append(f"{path.name}:{getattr(node, 'lineno', 0)} {name}")
    return found


def _server_side_modules() -> list[Path]:
    return [*all_modules(), *(ROOT / name for name in SERVER_MODULES)]


def test_no_private_attribute_of_a_dependency_outside_the_wrapper_module() -> None:
    """Tornado, Flask/Werkzeug, SQLAlchemy, PyMySQL, redis-py: public APIs only, except in
    ``wsgi_app/private_apis.py`` (each use pinned and guarded by tests/test_private_apis.py)."""
    paths = _server_side_modules()
    own = own_private_names([p for p in paths if module_name(p) != PRIVATE_API_WRAPPER])
    uses = [hit for p in paths if module_name(p) != PRIVATE_API_WRAPPER for hit in private_uses(p, own)]
    assert uses == []


def test_the_private_attribute_check_catches_a_use(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "def f(conn, ctx, parts):\n"
        "    conn._can_keep_alive(1, 2)\n"
        "    getattr(ctx, '_start_time', 0)\n"
        "    parts._replace(query='')\n"
        "    conn._ours()\n"
    )
    assert sorted(private_uses(module, {"_ours"})) == ["m.py:2 _can_keep_alive", "m.py:3 _start_time"]


# -- import cycles ---------------------------------------------------------------------------


def module_level_imports(path: Path) -> list[tuple[str, list[str]]]:
    """What a module imports when it is imported (``(module, names)`` per statement; names empty
    for ``import module``): not inside functions, not under TYPE_CHECKING."""
    tree = ast.parse(path.read_text())
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    found: list[tuple[str, list[str]]] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                found.extend((alias.name, []) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                found.append((base, [alias.name for alias in node.names]))
            elif isinstance(node, ast.If | ast.Try | ast.With):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    for child in getattr(node, field, []):
                        visit(child.body if isinstance(child, ast.ExceptHandler) else [child])

    visit(tree.body)
    return found


def import_cycles(paths: list[Path]) -> list[list[str]]:
    """The cycles of the module-level import graph among our modules (Tarjan's strongly
    connected components of more than one module)."""
    modules = {module_name(p): p for p in paths}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, set())
        for base, names in module_level_imports(path):
            # ``from package import submodule`` depends on the submodule (a package is always
            # initialised before its submodules, so that edge is implied for every module).
            submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in modules]
            edges.update(submodules or ([base] if base in modules and base != name else []))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                connect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for name in graph:
        if name not in index:
            connect(name)
    return cycles


def test_no_import_cycles() -> None:
    assert import_cycles(_server_side_modules()) == []


def test_the_cycle_check_finds_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "wsgi_app").mkdir()
    a, b, c = (tmp_path / "wsgi_app" / f"{n}.py" for n in "abc")
    a.write_text("from wsgi_app import b\n")
    b.write_text("import wsgi_app.a\n")
    c.write_text("def f():\n    from wsgi_app import a\n")  # inside a function: not a cycle
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert import_cycles([a, b, c]) == [["wsgi_app.a", "wsgi_app.b"]]
