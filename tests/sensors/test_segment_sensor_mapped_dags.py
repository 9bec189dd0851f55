"""create -> refresh -> sensor as mapped tasks (``.expand``) under `airflow dags test`."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sgseg_emulator.config import EmulatorConfig
from sgseg_emulator.pytest_plugin import CONN_ENV_VAR, EmulatorHandle, running_emulator

from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
from tests.airflow_compat import without_airflows_mask_requests

DAGS_FOLDER = Path(__file__).parent / "mapped_dags"
SEGMENTS = "/v3/marketing/segments/2.0"
REFRESH = "/v3/marketing/segments/2.0/refresh/"


@pytest.fixture
def fast_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorHandle]:
    """Real clock, SendGrid's delays in seconds; a refresh samples 3 s after it is accepted."""
    config = EmulatorConfig.short_timings(
        contacts_populate_delay=1, membership_check_interval=60, sample_interval=60, refresh_delay=3
    )
    with running_emulator(config) as emulator:
        monkeypatch.setenv(CONN_ENV_VAR, emulator.conn_env()[CONN_ENV_VAR])
        yield emulator


def iso(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_mapped_create_refresh_and_wait(
    dags_test: Any, fast_emulator: EmulatorHandle, tmp_path: Path
) -> None:
    admin = fast_emulator.admin
    admin.seed_contacts([{"email": f"person{i}@example.com"} for i in range(3)])
    report_path = tmp_path / "report.json"

    finished = dags_test(
        "sgseg_mapped_pipeline",
        dags_folder=DAGS_FOLDER,
        env={**fast_emulator.conn_env(), "SGSEG_MAPPED_REPORT": str(report_path)},
    )

    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output[-5000:]
    assert fast_emulator.api_key not in without_airflows_mask_requests(output)
    hook = SendGridMarketingHook()
    ids = {name: [s["id"] for s in hook.find_segments_by_name(name)] for name in ("mapped-a", "mapped-b")}
    assert all(len(found) == 1 for found in ids.values()), ids  # one segment per mapped index
    creates = [r for r in admin.requests(method="POST") if r["path"] == SEGMENTS]
    assert [r["status"] for r in creates] == [201, 201]
    refreshes = admin.requests(method="POST", path_prefix=REFRESH)
    assert sorted(r["path"].removeprefix(REFRESH) for r in refreshes) == sorted(i for [i] in ids.values())
    assert [r["status"] for r in refreshes] == [202, 202]

    report = json.loads(report_path.read_text())
    refreshed = {r["segment_id"]: r for r in report["refresh"]}
    waited = {w["segment_id"]: w for w in report["wait"]}
    assert set(refreshed) == set(waited) == {i for [i] in ids.values()}
    for segment_id, result in waited.items():
        assert result["contacts_count"] == 3
        # each sensor waited for its own segment's refresh sample, not for any sample
        before = refreshed[segment_id]["watermark"]
        assert before is None or iso(result["sample_updated_at"]) > iso(before)
        # SendGrid's timestamps have whole seconds: a sample from the refresh's own second counts.
        requested_at = iso(refreshed[segment_id]["requested_at"]).replace(microsecond=0)
        assert iso(result["sample_updated_at"]) >= requested_at
