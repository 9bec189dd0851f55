"""Every task's extra links under `airflow dags test` against the emulator (DAG:
dags/sendgrid_links_test.py): the real task runner calls the links after each task and stores
their URLs, as a worker does. The emulator listens on a loopback host, so the links open its
inspection page, highlighting each task's object."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.conftest import DagsTest

DAGS_FOLDER = Path(__file__).parent / "dags"
SCHEDULE = "/v3/marketing/singlesends/[^/]+/schedule"
REFUSAL = "the test refuses this schedule"


def test_each_task_links_to_its_object_and_a_failed_task_logs_no_xcom_error(
    sendgrid_emulator_real_clock: EmulatorHandle, dags_test: DagsTest
) -> None:
    emulator = sendgrid_emulator_real_clock
    # The first Single Send's schedule is refused (the second one's goes through).
    emulator.admin.add_fault(
        "status", method="PUT", path=SCHEDULE, status=400, body={"errors": [{"message": REFUSAL}]}
    )
    result = dags_test("sendgrid_links_test", dags_folder=DAGS_FOLDER, env=emulator.conn_env())
    output = result.stdout + result.stderr
    (line,) = [line for line in output.splitlines() if line.startswith("SGSEG-LINKS ")]
    seen = json.loads(line.removeprefix("SGSEG-LINKS "))
    ids = seen["ids"]

    def page(**highlight: str) -> str:
        return f"{emulator.base_url}/__emulator__/inspect?{urlencode(highlight)}"

    assert seen["links"] == {
        "create": page(segment_id=ids["segment"]),
        "populated": page(segment_id=ids["segment"]),
        "upsert": page(job_id=ids["upsert_job"]),
        "export": page(job_id=ids["export_job"]),
        "send": page(single_send_id=ids["single_send"]),
        "unschedulable": "",  # created (a draft) but refused at scheduling: no stats link
        "missing": "",  # failed before it knew a segment
    }, output[-6000:]
    assert ids["draft"], seen  # the refused Single Send exists: only its link is withheld
    # Both failures happened, and neither left Airflow's "XCom not found" ERROR behind.
    assert REFUSAL in output, output[-6000:]
    assert "SendGridNotFoundError" in output, output[-6000:]
    assert "XCom not found" not in output, output[-6000:]
