"""Project-wide rules checked on the source itself (not on behaviour)."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_is_strict_without_loosening_switches() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["strict"] is True
    # strict turns these on; switching one off again hides real errors (e.g. a stale type: ignore)
    for switch in ("disallow_subclassing_any", "disallow_untyped_decorators", "warn_unused_ignores"):
        assert config.get(switch, True) is True, f"[tool.mypy] {switch} must not be turned off"
