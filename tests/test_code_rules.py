"""Project-wide rules checked on the source itself (not on behaviour)."""

from __future__ import annotations

import ast
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_is_strict_without_loosening_switches() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["strict"] is True
    # strict turns these on; switching one off again hides real errors (e.g. a stale type: ignore)
    for switch in ("disallow_subclassing_any", "disallow_untyped_decorators", "warn_unused_ignores"):
        assert config.get(switch, True) is True, f"[tool.mypy] {switch} must not be turned off"


PACKAGE = ROOT / "airflow_provider_sgseg"
HTTPX_ALLOWED = ("hooks",)  # the only package that may talk HTTP


def imported_modules(source: str) -> set[str]:
    """Top-level names of every module ``source`` imports, at any depth (functions, TYPE_CHECKING)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_imported_modules_sees_every_form() -> None:
    source = "import httpx.x as h\nif TYPE_CHECKING:\n    from httpx import Client\ndef f():\n    import os\n"
    assert imported_modules(source) == {"httpx", "os"}
    assert imported_modules("from . import httpx\n") == set()  # a relative import is our own module


def test_only_hooks_import_httpx() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 12  # the scan found the package
    offenders = [
        str(path.relative_to(ROOT))
        for path in modules
        if path.relative_to(PACKAGE).parts[0] not in HTTPX_ALLOWED
        and "httpx" in imported_modules(path.read_text())
    ]
    assert offenders == []


def test_no_provider_module_imports_the_emulator() -> None:
    """The provider never depends on the ``sgseg-emulator`` distribution (tests and tools may)."""
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 12
    offenders = [
        str(path.relative_to(ROOT))
        for path in modules
        if "sgseg_emulator" in imported_modules(path.read_text())
    ]
    assert offenders == []


def test_the_hook_validates_nothing_itself() -> None:
    """Arguments are checked once, by the typed requests (``rules/requests.py``) the hook sends."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((PACKAGE / "hooks").rglob("*.py"))
        if "rules.validation" in path.read_text() or "import validation" in path.read_text()
    ]
    assert offenders == []
