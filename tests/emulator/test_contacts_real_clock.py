"""Contact jobs and exports on a real clock (the background worker), their CLI flags, and export
files kept with a --db file across restarts."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sgseg_emulator.__main__ import build_parser, config_from_args
from sgseg_emulator.config import SHORT_TIMINGS, EmulatorConfig
from sgseg_emulator.pytest_plugin import running_emulator
from sgseg_emulator.server import EmulatorServer

from tests.emulator.helpers import person

IMPORTS = "/v3/marketing/contacts/imports"
EXPORTS = "/v3/marketing/contacts/exports"


def wait_for(read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_jobs_and_exports_finish_by_themselves_on_a_real_clock() -> None:
    assert SHORT_TIMINGS["upsert_delay"] <= SHORT_TIMINGS["export_delay"]
    with running_emulator(EmulatorConfig.short_timings()) as emulator:
        api = httpx.Client(
            base_url=emulator.base_url, headers={"Authorization": f"Bearer {emulator.api_key}"}
        )
        job_id = api.put("/v3/marketing/contacts", json={"contacts": [person(1), person(2)]}).json()["job_id"]
        assert api.get(f"{IMPORTS}/{job_id}").json()["status"] == "pending"
        status = wait_for(lambda: api.get(f"{IMPORTS}/{job_id}").json(), lambda s: s["status"] != "pending")
        assert status["status"] == "completed"
        export_id = api.post(EXPORTS, json={}).json()["id"]
        export = wait_for(
            lambda: api.get(f"{EXPORTS}/{export_id}").json(), lambda s: s["status"] != "pending"
        )
        assert export["contact_count"] == 2
        api.close()


def test_cli_flags_set_the_contact_timings() -> None:
    args = ["--short-timings", "--upsert-delay", "5", "--export-expiry", "100", "--download-url-ttl", "9"]
    config = config_from_args(build_parser().parse_args(args))
    assert (config.upsert_delay, config.export_expiry, config.download_url_ttl) == (5, 100, 9)
    assert (config.import_delay, config.export_delay) == (
        SHORT_TIMINGS["import_delay"],
        SHORT_TIMINGS["export_delay"],
    )
    defaults = config_from_args(build_parser().parse_args([]))
    assert (defaults.upsert_delay, defaults.import_delay, defaults.export_delay) == (30, 60, 60)


def test_export_files_and_their_urls_survive_a_restart_with_a_db_file(tmp_path: Path) -> None:
    config = EmulatorConfig(db_path=str(tmp_path / "state.db"), clock="manual", export_delay=0)
    headers = {"Authorization": f"Bearer {config.api_key}"}
    with EmulatorServer(config) as server:
        httpx.post(
            f"{server.base_url}/__emulator__/contacts/bulk", json={"contacts": [person(1)]}, headers=headers
        )
        export_id = httpx.post(f"{server.base_url}{EXPORTS}", json={}, headers=headers).json()["id"]
        (url,) = httpx.get(f"{server.base_url}{EXPORTS}/{export_id}", headers=headers).json()["urls"]
        port = server.port
    assert (tmp_path / "state.db.files" / "exports").is_dir()
    with EmulatorServer(config, port=port):
        answer = httpx.get(url)
        assert answer.status_code == 200
        assert "person1@example.com" in answer.text


def test_a_job_left_pending_by_a_stopped_emulator_runs_after_a_restart(tmp_path: Path) -> None:
    config = EmulatorConfig(db_path=str(tmp_path / "state.db"), upsert_delay=1)
    headers = {"Authorization": f"Bearer {config.api_key}"}
    with EmulatorServer(config) as server:
        accepted = httpx.put(
            f"{server.base_url}/v3/marketing/contacts", json={"contacts": [person(1)]}, headers=headers
        )
        job_id = accepted.json()["job_id"]
    with EmulatorServer(config) as server:
        status = wait_for(
            lambda: httpx.get(f"{server.base_url}{IMPORTS}/{job_id}", headers=headers).json(),
            lambda s: s["status"] != "pending",
        )
        assert status["status"] == "completed"
        count = httpx.get(f"{server.base_url}/v3/marketing/contacts/count", headers=headers).json()
        assert count["contact_count"] == 1
