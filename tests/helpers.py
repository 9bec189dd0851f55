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


# The example DAGs (dags/) under `airflow dags test` against a short-timings emulator
# (EmulatorConfig.short_timings): the segment is the Dutch readers, the sensor polls every few
# seconds and gives up after 90 s, and the Single Send DAG wants at least 100 recipients.
PIPELINE_AUDIENCE = 150  # the Dutch readers in PIPELINE_CONTACTS, whom the segment selects
PIPELINE_CONTACTS = [
    *({"email": f"lezer{n}@example.nl", "country": "NL"} for n in range(PIPELINE_AUDIENCE)),
    *({"email": f"reader{n}@example.com", "country": "US"} for n in range(50)),
]


def pipeline_dag_settings(segment_name: str) -> dict[str, str]:
    """Environment for the refresh and Single Send example DAGs, segment named ``segment_name``."""
    return {
        "SGSEG_SEGMENT_NAME": segment_name,
        "SGSEG_QUERY_DSL": "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.country = 'NL'",
        "SGSEG_TIME_ZONE": "Europe/Amsterdam",
        "SGSEG_POLL_FLOOR_SECONDS": "1",
        "SGSEG_POLL_CEILING_SECONDS": "5",
        "SGSEG_POLL_SLACK_SECONDS": "0.5",
        "SGSEG_WAIT_TIMEOUT_SECONDS": "90",
        "SGSEG_REQUIRE_MIN_CONTACTS": "100",
        "SGSEG_SEND_ENABLED": "true",
    }
