"""EmulatorServer lifecycle, persistence with a db file, the CLI, and the pytest plugin handle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sgseg_emulator.__main__ import build_parser, config_from_args
from sgseg_emulator.client import EmulatorAdmin
from sgseg_emulator.config import DEMO_API_KEY, DEMO_SETTINGS, SHORT_TIMINGS, EmulatorConfig
from sgseg_emulator.pytest_plugin import CONN_ENV_VAR, EmulatorHandle, running_emulator
from sgseg_emulator.server import EmulatorServer

from tests.emulator.helpers import ALL_CONTACTS, SEGMENTS, create_segment, get_segment, person
from tests.helpers import modules_imported_by


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_server_serves_on_a_free_port_and_stops(tmp_path: Path) -> None:
    with EmulatorServer(EmulatorConfig(api_key="k1")) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.port != 0
        assert httpx.get(server.base_url + SEGMENTS, headers=auth("k1")).status_code == 200
        url = server.base_url
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + SEGMENTS, headers=auth("k1"))


def test_db_file_keeps_state_and_manual_clock_across_restarts(tmp_path: Path) -> None:
    config = EmulatorConfig(
        db_path=str(tmp_path / "emulator.db"), clock="manual", start_time="2030-01-01T00:00:00Z"
    )
    with EmulatorServer(config) as server:
        admin = EmulatorAdmin(server.base_url, server.api_key)
        admin.seed_contacts([person(1), person(2)])
        created = httpx.post(
            server.base_url + SEGMENTS,
            json={"name": "kept", "query_dsl": ALL_CONTACTS},
            headers=auth(server.api_key),
        ).json()
        admin.advance_clock(900)
        admin.close()
    with EmulatorServer(config) as server:
        admin = EmulatorAdmin(server.base_url, server.api_key)
        assert admin.now().isoformat() == "2030-01-01T00:15:00+00:00"
        segment = httpx.get(
            f"{server.base_url}{SEGMENTS}/{created['id']}", headers=auth(server.api_key)
        ).json()
        assert (segment["name"], segment["contacts_count"]) == ("kept", 2)
        admin.close()


def test_reset_restores_initial_settings_and_clock(sendgrid_emulator: EmulatorHandle) -> None:
    admin = sendgrid_emulator.admin
    start = admin.now()
    admin.configure(plan="free", sample_interval=60)
    admin.advance_clock(5000)
    admin.reset()
    assert admin.now() == start
    config = admin.config()
    assert (config["plan"], config["sample_interval"]) == ("paid", 3600)
    assert "api_key" not in config


def test_configure_rejects_unknown_or_bad_settings(sendgrid_emulator: EmulatorHandle) -> None:
    for bad in ({"api_key": "x"}, {"sample_interval": -1}, {"plan": "gold"}):
        with pytest.raises(httpx.HTTPStatusError) as raised:
            sendgrid_emulator.admin.configure(**bad)
        assert raised.value.response.status_code == 400


def test_fixture_sets_the_airflow_connection(sendgrid_emulator: EmulatorHandle) -> None:
    conn = json.loads(os.environ[CONN_ENV_VAR])
    assert conn == {
        "conn_type": "sendgrid_marketing",
        "host": sendgrid_emulator.base_url,
        "password": sendgrid_emulator.api_key,
    }
    assert sendgrid_emulator.conn_env() == {CONN_ENV_VAR: os.environ[CONN_ENV_VAR]}


def test_real_clock_fixture_is_a_fresh_short_timings_emulator(
    sendgrid_emulator_real_clock: EmulatorHandle, sendgrid_emulator_server: EmulatorServer
) -> None:
    assert sendgrid_emulator_real_clock.base_url != sendgrid_emulator_server.base_url
    assert json.loads(os.environ[CONN_ENV_VAR])["host"] == sendgrid_emulator_real_clock.base_url
    settings = sendgrid_emulator_real_clock.admin.config()
    assert settings["clock"] == "real"
    assert {name: settings[name] for name in SHORT_TIMINGS} == SHORT_TIMINGS


def test_plugin_module_stays_cheap_to_import() -> None:
    new = modules_imported_by("import sgseg_emulator.pytest_plugin")
    assert sorted(new & {"airflow", "fastapi", "uvicorn", "httpx"}) == []


def test_cli_prints_its_url_and_serves(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sgseg_emulator",
            "--port",
            "0",
            "--clock",
            "manual",
            "--sample-interval",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("sgseg-emulator listening on http://127.0.0.1:")
        assert line.strip().endswith(f"api_key={DEMO_API_KEY}")
        base_url = line.split()[3]
        response = httpx.get(base_url + "/__emulator__/config", headers=auth(DEMO_API_KEY))
        assert response.json()["sample_interval"] == 5
        assert response.json()["clock"] == "manual"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_installed_console_script_prints_its_url_and_serves() -> None:
    script = Path(sys.executable).parent / "sgseg-emulator"  # from [project.scripts]
    assert script.is_file(), f"{script} is missing: run `make install`"
    process = subprocess.Popen(
        [str(script), "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("sgseg-emulator listening on http://127.0.0.1:")
        assert line.strip().endswith(f"api_key={DEMO_API_KEY}")
        base_url = line.split()[3]
        assert httpx.get(base_url + "/__emulator__/config", headers=auth(DEMO_API_KEY)).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_cli_does_not_print_a_key_given_on_the_command_line() -> None:
    key = "SG.cli-given-key-5e8d2c71"
    process = subprocess.Popen(
        [sys.executable, "-m", "sgseg_emulator", "--port", "0", "--api-key", key],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("sgseg-emulator listening on http://127.0.0.1:")
        assert key not in line
        assert "api_key=" not in line  # a script reading the key from this line finds none
        base_url = line.split()[3]
        assert httpx.get(base_url + "/__emulator__/config", headers=auth(key)).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


@pytest.mark.parametrize(
    ("args", "named"),
    [(["--sample-interval", "-5"], "sample_interval"), (["--start-time", "noon"], "start_time")],
)
def test_cli_rejects_bad_settings(args: list[str], named: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sgseg_emulator", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert named in result.stderr


def test_cli_short_timings_applies_the_preset_under_explicit_flags() -> None:
    config = config_from_args(build_parser().parse_args(["--short-timings", "--refresh-delay", "7"]))
    assert config == EmulatorConfig.short_timings(refresh_delay=7)
    assert config.contacts_populate_delay == SHORT_TIMINGS["contacts_populate_delay"]
    assert config_from_args(build_parser().parse_args([])) == EmulatorConfig()  # SendGrid's timings


def test_short_timings_preset_populates_and_refreshes_on_a_real_clock() -> None:
    with running_emulator(EmulatorConfig.short_timings()) as emulator:
        assert emulator.server.config.clock == "real"
        admin = emulator.admin
        admin.seed_contacts([person(1), person(2)])
        client = httpx.Client(base_url=emulator.base_url, headers=auth(emulator.api_key))
        created = client.post(SEGMENTS, json={"name": "real", "query_dsl": ALL_CONTACTS}).json()

        def wait_for(predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
            deadline = time.monotonic() + 20
            while True:
                segment: dict[str, Any] = client.get(f"{SEGMENTS}/{created['id']}").json()
                if predicate(segment) or time.monotonic() > deadline:
                    return segment
                time.sleep(0.2)

        populated = wait_for(lambda s: s["contacts_count"] == 2)
        assert populated["contacts_count"] == 2
        assert populated["sample_updated_at"] > created["created_at"]

        admin.seed_contacts([person(3)])
        assert (
            client.post(f"{SEGMENTS}/refresh/{created['id']}", json={"user_time_zone": "UTC"}).status_code
            == 202
        )
        refreshed = wait_for(lambda s: s["contacts_count"] == 3)
        assert refreshed["contacts_count"] == 3
        assert refreshed["refreshes_used"] == 1
        client.close()


class _WatchedLock:
    """Stands in for the store's lock and tells when another thread has to wait for it."""

    def __init__(self, lock: Any) -> None:
        self._lock = lock
        self.contended = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        self.contended.set()
        return bool(self._lock.acquire(blocking, timeout))

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def test_a_request_waiting_for_the_store_leaves_the_event_loop_free(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    """SQLite work runs in FastAPI's threadpool: while one request waits for the store, the
    server still answers others (on the event loop it would hang every request)."""
    emulator = sendgrid_emulator.server.emulator
    assert emulator is not None
    store, original = emulator.store, emulator.store.lock
    watched = _WatchedLock(original)
    store.lock = watched  # type: ignore[assignment]
    base, headers = sendgrid_emulator.base_url, auth(sendgrid_emulator.api_key)
    try:
        with ThreadPoolExecutor(1) as pool:
            with watched:
                waiting = pool.submit(httpx.get, base + SEGMENTS, headers=headers, timeout=30)
                assert watched.contended.wait(10), "the segments request never reached the store"
                clock = httpx.get(base + "/__emulator__/clock", headers=headers, timeout=10)
                assert clock.status_code == 200
                assert not waiting.done()
            assert waiting.result().status_code == 200
    finally:
        store.lock = original


def test_cli_demo_applies_its_preset_under_explicit_flags() -> None:
    config = config_from_args(build_parser().parse_args(["--demo", "--refresh-delay", "7"]))
    assert config == EmulatorConfig.demo(refresh_delay=7)
    assert config.refresh_min_spacing == DEMO_SETTINGS["refresh_min_spacing"] < 3600
    assert config.refreshes_per_segment_per_day == DEMO_SETTINGS["refreshes_per_segment_per_day"] > 2
    quota = ["--demo", "--refreshes-per-segment-per-day", "3"]
    assert config_from_args(build_parser().parse_args(quota)).refreshes_per_segment_per_day == 3
    assert config_from_args(build_parser().parse_args([])).refreshes_per_segment_per_day == 2


def test_cli_refuses_two_presets() -> None:
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["--demo", "--short-timings"])
    assert refused.value.code == 2


def test_demo_preset_a_refresh_is_waited_for_and_can_be_repeated() -> None:
    with running_emulator(EmulatorConfig.demo(clock="manual")) as emulator:
        emulator.admin.seed_contacts([person(1), person(2)])
        api = httpx.Client(base_url=emulator.base_url, headers=auth(emulator.api_key))
        segment_id = create_segment(api)["id"]
        emulator.admin.advance_clock(DEMO_SETTINGS["contacts_populate_delay"])
        populated = get_segment(api, segment_id)["sample_updated_at"]

        def refresh() -> int:
            answer = api.post(f"{SEGMENTS}/refresh/{segment_id}", json={"user_time_zone": "UTC"})
            return answer.status_code

        emulator.admin.advance_clock(DEMO_SETTINGS["refresh_min_spacing"])
        assert refresh() == 202
        # Until the refresh sample lands, a sensor that looks sees nothing new: it has to wait.
        emulator.admin.advance_clock(DEMO_SETTINGS["refresh_delay"] - 1)
        assert get_segment(api, segment_id)["sample_updated_at"] == populated
        emulator.admin.advance_clock(1)
        assert get_segment(api, segment_id)["sample_updated_at"] > populated
        for _ in range(3):  # more than SendGrid's 2 a day, each after the demo's short spacing
            emulator.admin.advance_clock(DEMO_SETTINGS["refresh_min_spacing"])
            assert refresh() == 202
        assert refresh() == 429  # the spacing is still enforced
        api.close()


def test_demo_preset_a_new_segments_first_sample_is_its_refresh() -> None:
    """The demo's story: create, refresh at once, and the refresh's sample is the one to wait for."""
    with running_emulator(EmulatorConfig.demo(clock="manual")) as emulator:
        emulator.admin.seed_contacts([person(1), person(2)])
        api = httpx.Client(base_url=emulator.base_url, headers=auth(emulator.api_key))
        created = create_segment(api)
        emulator.admin.advance_clock(5)  # the refresh task runs a few seconds later
        refresh = api.post(f"{SEGMENTS}/refresh/{created['id']}", json={"user_time_zone": "UTC"})
        assert refresh.status_code == 202
        emulator.admin.advance_clock(DEMO_SETTINGS["refresh_delay"] - 1)
        assert get_segment(api, created["id"])["contacts_count"] == 0  # a sensor looking now waits
        emulator.admin.advance_clock(1)
        sampled = get_segment(api, created["id"])
        assert sampled["contacts_count"] == 2
        assert sampled["sample_updated_at"] < created["next_sample_update"]  # before its own first sample
        api.close()


FIELDS = "/v3/marketing/field_definitions"
OPENERS = (
    "SELECT c.contact_id, c.updated_at FROM contact_data AS c "
    "JOIN event_data AS e ON c.contact_id = e.contact_id WHERE e.event_type = 'open'"
)


def test_reset_keeping_contacts_wipes_everything_else(sendgrid_emulator: EmulatorHandle) -> None:
    admin = sendgrid_emulator.admin
    api = httpx.Client(base_url=sendgrid_emulator.base_url, headers=auth(sendgrid_emulator.api_key))
    listed = api.post("/v3/marketing/lists", json={"name": "readers"}).json()
    admin.seed_contacts([person(1), person(2)], list_ids=[listed["id"]])
    admin.add_events([{"email": "person1@example.com", "event_type": "open"}])
    tier = api.post(FIELDS, json={"name": "tier", "field_type": "Text"}).json()["id"]
    segment_id = create_segment(api)["id"]
    admin.advance_clock(900)
    assert api.post(f"{SEGMENTS}/refresh/{segment_id}", json={"user_time_zone": "UTC"}).status_code == 202
    admin.configure(plan="free")
    admin.add_fault("status", path_prefix="/v3/marketing/singlesends")

    admin.reset(keep_contacts=True)

    assert api.get("/v3/marketing/contacts/count").json()["contact_count"] == 2
    assert [item["id"] for item in api.get("/v3/marketing/lists").json()["result"]] == [listed["id"]]
    assert [field["id"] for field in api.get(FIELDS).json()["custom_fields"]] == [tier]
    new_field = api.post(FIELDS, json={"name": "region", "field_type": "Text"})
    assert new_field.status_code == 200 and new_field.json()["id"] != tier  # ids are still never reused
    # The segments, their refresh history, faults, the log, settings and clock start over.
    assert api.get(SEGMENTS).json()["results"] == []
    assert api.get(f"{SEGMENTS}/{segment_id}").status_code == 404
    assert api.get("/v3/marketing/singlesends").status_code == 200  # the fault is gone
    assert admin.config()["plan"] == "paid"
    assert admin.requests(method="POST", path_prefix=SEGMENTS) == []  # the log before the reset is gone
    # The kept contacts and events still count: a new segment on the events populates.
    again = create_segment(api, name="openers", query_dsl=OPENERS)["id"]
    admin.advance_clock(1800)
    assert get_segment(api, again)["contacts_count"] == 1

    admin.reset()
    assert api.get("/v3/marketing/contacts/count").json()["contact_count"] == 0
    api.close()


def test_reset_refuses_a_keep_contacts_that_is_not_a_boolean(sendgrid_emulator: EmulatorHandle) -> None:
    answer = httpx.post(
        f"{sendgrid_emulator.base_url}/__emulator__/reset",
        json={"keep_contacts": "yes"},
        headers=auth(sendgrid_emulator.api_key),
    )
    assert answer.status_code == 400
    assert "keep_contacts must be true or false, got 'yes'" in answer.text
