"""Fixtures for the example-DAG tests."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def audience() -> ModuleType:
    """scripts/demo_audience.py: the warehouse, settings and summary `make demo` uses for the
    audience pipeline (a script, not a package: loaded from its file)."""
    spec = importlib.util.spec_from_file_location(
        "sgseg_demo_audience", REPO_ROOT / "scripts" / "demo_audience.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
