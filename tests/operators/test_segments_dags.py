"""All segment operators in one DAG under `airflow dags test`, against the emulator.

This is the real task runner: templates render, XCom and the extra link are pushed through the
supervisor, and the refresh task's retry reads what its first try left in Airflow 3.3's task
state store (before 3.3: what SendGrid recorded since the DAG run started). The emulator's
request log is the proof of what reached "SendGrid".
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from sgseg_emulator.pytest_plugin import EmulatorHandle

from airflow_provider_sgseg.version_compat import AIRFLOW_V_3_3_PLUS
from tests.conftest import DagsTest

DAGS_FOLDER = Path(__file__).parent / "dags"
SEGMENTS = "/v3/marketing/segments/2.0"


def test_segment_operators_dag(sendgrid_emulator: EmulatorHandle, dags_test: DagsTest) -> None:
    admin = sendgrid_emulator.admin
    if not AIRFLOW_V_3_3_PLUS:
        # No task state store: the retry compares SendGrid's last_refreshed_at with the DAG run's
        # start. A manual clock frozen at the test's start would be a SendGrid clock running
        # behind Airflow's; set it a little ahead, as a clock that runs on would be.
        wall = datetime.datetime.now(datetime.timezone.utc)
        admin.advance_clock((wall - admin.now()).total_seconds() + 120)
    # The first refresh POST (refresh_wait's) is refused for 3 s: it must defer and come back.
    admin.add_fault(
        "status",
        method="POST",
        path_prefix=f"{SEGMENTS}/refresh/",
        status=429,
        headers={"Retry-After": "3"},
        body={"error": "too many refreshes"},
    )
    result = dags_test(
        "sendgrid_segment_operators_test",
        dags_folder=DAGS_FOLDER,
        env=sendgrid_emulator.conn_env(),
        conf=json.dumps({"segment_name": "dags-test-segment"}),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "SGSEG-CHECK OK" in output, output[-6000:]
    # the refresh task failed once (simulated crash after SendGrid accepted) and was retried
    assert "simulated worker crash after SendGrid accepted the refresh" in output
    if AIRFLOW_V_3_3_PLUS:  # the retry read the first try's record in the task state store
        assert "refresh of segment" in output and "was accepted (its answer was lost)" in output
    else:  # no store: SendGrid's last_refreshed_at is after the DAG run's start
        assert "after this DAG run started; not refreshing again" in output
    assert "Deferring until" in output and "Pausing task as DEFERRED" in output

    creates = [r for r in admin.requests(method="POST") if r["path"] == SEGMENTS]
    assert len(creates) == 2  # create_again reused the first; create_other is the second
    refreshes = admin.requests(method="POST", path_prefix=f"{SEGMENTS}/refresh/")
    zones = [r["json"]["user_time_zone"] for r in refreshes]
    statuses = [r["status"] for r in refreshes]
    # refresh_wait: refused, deferred, then accepted; refresh: accepted once, its retry posted nothing
    assert list(zip(zones, statuses, strict=True)) == [
        ("Europe/Berlin", 429),
        ("Europe/Berlin", 202),
        ("America/Chicago", 202),
    ]
    deletes = admin.requests(method="DELETE")
    assert [r["status"] for r in deletes] == [202]  # delete_again found it gone, sent nothing
    assert admin.requests(method="PATCH")[0]["json"] == {"name": "dags-test-segment-renamed"}
