"""The provider in the stack is the built wheel, and every component runs it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from stack import BIN, REPO, System


def test_provider_comes_from_the_wheel_not_the_source_tree(system: System) -> None:
    code = "import airflow_provider_sgseg as p; print(p.__file__)"
    location = subprocess.run(
        [str(BIN / "python"), "-c", code], cwd=system.root, env=system.airflow.env,
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert "site-packages" in location, location
    assert not Path(location).resolve().is_relative_to(REPO / "airflow_provider_sgseg"), location
    record = list(Path(location).parent.parent.glob("airflow_provider_sgseg-*.dist-info/direct_url.json"))
    assert not any('"editable": true' in path.read_text() for path in record), record


def test_airflow_lists_the_provider(system: System) -> None:
    system.airflow.run(["providers", "list", "--output", "plain"], "providers-list")
    listing = (system.logs / "providers-list.log").read_text()
    assert "airflow-provider-sgseg" in listing, listing[-2000:]
