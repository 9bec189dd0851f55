"""Dry runs under `airflow dags test` (the real task runner), against the emulator: ``dry_run``
rendered from a DAG param, the reports in XCom, and only GETs in the emulator's request log."""

from __future__ import annotations

from pathlib import Path

from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.conftest import DagsTest

DAGS_FOLDER = Path(__file__).parent / "dags"


def test_a_dag_switched_to_dry_run_by_its_param_only_reads(
    sendgrid_emulator: EmulatorHandle, dags_test: DagsTest
) -> None:
    result = dags_test("sendgrid_dry_run_test", dags_folder=DAGS_FOLDER, env=sendgrid_emulator.conn_env())
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "SGSEG-DRY-RUN OK" in output, output[-6000:]
    assert "Dry run: the real run would send PUT /v3/marketing/contacts" in output
    sent = [(r["method"], r["path"]) for r in sendgrid_emulator.admin.requests()]
    assert ("GET", "/v3/marketing/field_definitions") in sent
    assert [request for request in sent if request[0] != "GET"] == []
