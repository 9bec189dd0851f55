"""This venv installs its Airflow line the way users do: with that release's pins from ci/.

A resolve that ignored them (the newest of everything) is what broke 3.0.6 (cryptography 51) and
3.2.2 (pydantic 2.14); the production-shape tests show such breakage, this shows its cause.
"""

from __future__ import annotations

import re
from importlib import metadata

from airflow import __version__ as airflow_version
from packaging.utils import canonicalize_name

from tests.conftest import REPO_ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def line_pins(version: str) -> dict[str, str]:
    path = REPO_ROOT / "ci" / f"constraints-airflow-{version}.txt"
    assert path.exists(), f"Airflow {version} is not a supported line: no {path.relative_to(REPO_ROOT)}"
    pins = {}
    for line in path.read_text().splitlines():
        if match := PIN.match(line.strip()):
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def installed() -> dict[str, str]:
    return {canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}


def test_every_pinned_package_here_has_its_pinned_version() -> None:
    pins = line_pins(airflow_version)
    here = installed()
    assert pins["apache-airflow"] == airflow_version
    off = {name: (pin, here[name]) for name, pin in pins.items() if name in here and here[name] != pin}
    assert not off, f"installed versions differ from ci/constraints-airflow-{airflow_version}.txt: {off}"
    # The packages whose fresh releases broke a line are among the pins.
    assert {"cryptography", "pydantic", "pydantic-core", "fastapi", "starlette"} <= pins.keys()


def test_the_package_check_refuses_a_line_without_pins() -> None:
    # A typo'd version (3.2.1) used to install with no constraints at all, silently.
    import subprocess
    import sys

    check = [sys.executable, str(REPO_ROOT / "scripts" / "package_check.py"), "--airflow", "3.2.1"]
    done = subprocess.run(check, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "no ci/constraints-airflow-3.2.1.txt: the supported lines are 3.0.6 " in done.stdout
