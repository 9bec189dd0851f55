"""Helpers shared by tests in several folders."""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """\
import json as _json, sys as _sys
{setup}
_before = set(_sys.modules)
{code}
print(_json.dumps(sorted(set(_sys.modules) - _before)))
"""


def modules_imported_by(code: str, *, setup: str = "") -> set[str]:
    """The modules that running ``code`` in a fresh interpreter loads, after ``setup`` has run.

    ``setup`` imports what the measured code may take for granted (``airflow.sdk`` itself loads
    httpx, for one). A failing ``code`` (an exception, a failed ``assert``) fails the caller.
    """
    result = subprocess.run(
        [sys.executable, "-c", _PROBE.format(setup=setup, code=code)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))
