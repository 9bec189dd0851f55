"""Benchmark 2: API calls spent on one wait for a segment's next hourly sample.

The emulator runs on its manual clock. A segment got its first sample, then contacts were
added, so SendGrid's next hourly sample (60 simulated minutes away) is the one we wait for.
Every "sleep" advances the emulator's clock, and every GET lands in its request log, which is
what we count. Compared: our trigger (deferrable), our sensor in poke/reschedule mode, our
sensor in deferrable mode (its first poke, then the trigger), and fixed-interval pollers
(what ``HttpSensor``-style and dbt-style sensors do) that GET every 60 s or 300 s.
"""

from __future__ import annotations

import asyncio
import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from benchmarks.emulator_process import CONN_ENV_VAR, CONN_ID, connection_json
from benchmarks.report import Row, Section

SEGMENT_PATH = "/v3/marketing/segments/2.0/"
ALL_CONTACTS = "SELECT contact_id, updated_at FROM contact_data"
TARGET_GETS = 3
FIXED_INTERVALS = (60, 300)
NO_SAMPLE = {"contacts_sample": "false"}


@dataclass(frozen=True)
class Wait:
    gets: int
    simulated_minutes: float
    outcome: str


WaitFunction = Callable[["Scenario", dict[str, Any]], str]
"""Waits for the segment to populate (sleeping on the scenario's clock); returns the outcome."""


class Scenario:
    """One emulator with a manual clock; :meth:`fresh_segment` sets up each wait the same way."""

    def __init__(self, admin: Any, api_key: str) -> None:
        self.admin = admin
        self.headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._round = 0

    def now(self) -> datetime.datetime:
        now: datetime.datetime = self.admin.now()
        return now

    def sleep(self, seconds: float) -> None:
        self.admin.advance_clock(seconds)

    def gets(self, segment_id: str) -> int:
        return len(self.admin.requests(method="GET", path_prefix=SEGMENT_PATH + segment_id))

    def fresh_segment(self) -> dict[str, Any]:
        """A segment with 2 contacts sampled; 3 more contacts wait for the next hourly sample."""
        from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

        self.admin.reset()
        self._round += 1
        self.admin.seed_contacts([{"email": f"early{i}@example.com"} for i in range(2)])
        hook = SendGridMarketingHook(CONN_ID)
        segment = hook.create_segment(f"bench wait {self._round}", ALL_CONTACTS)
        self.sleep(900 + 1)  # past SendGrid's creation delay: the first sample exists
        sampled = hook.get_segment(segment["id"], contacts_sample=False)
        hook.close()
        assert sampled["contacts_count"] == 2, sampled
        self.admin.seed_contacts([{"email": f"late{i}@example.com"} for i in range(3)])
        return sampled

    def measure(self, wait: WaitFunction) -> Wait:
        segment = self.fresh_segment()
        before, started = self.gets(segment["id"]), self.now()
        outcome = wait(self, segment)
        minutes = (self.now() - started).total_seconds() / 60
        return Wait(self.gets(segment["id"]) - before, minutes, outcome)


def _emulated_trigger_class(scenario: Scenario) -> type[Any]:
    from airflow_provider_sgseg.triggers.segments import SendGridSegmentPopulatedTrigger

    class EmulatedTimeTrigger(SendGridSegmentPopulatedTrigger):
        """The trigger with its time seams reading and advancing the emulator's clock."""

        def now(self) -> datetime.datetime:
            return scenario.now()

        async def sleep(self, seconds: float) -> None:
            scenario.sleep(seconds)

    return EmulatedTimeTrigger


def _run_trigger(trigger: Any) -> str:
    async def first_event() -> dict[str, Any]:
        from airflow_provider_sgseg.hooks.marketing import aclose_shared_clients

        try:
            async for event in trigger.run():
                payload: dict[str, Any] = event.payload
                return payload
            raise AssertionError("the trigger ended without an event")
        finally:
            await aclose_shared_clients()

    event = asyncio.run(first_event())
    return f"{event['status']} ({event['contacts_count']} contacts)"


def wait_with_trigger(scenario: Scenario, segment: dict[str, Any]) -> str:
    trigger_class = _emulated_trigger_class(scenario)
    deadline = scenario.now() + datetime.timedelta(hours=6)
    trigger = trigger_class(
        sendgrid_conn_id=CONN_ID,
        segment_id=segment["id"],
        watermark=segment["sample_updated_at"],
        deadline=deadline.isoformat(),
    )
    return _run_trigger(trigger)


def _emulated_sensor(scenario: Scenario, segment_id: str, **kwargs: Any) -> Any:
    from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor

    class EmulatedTimeSensor(SendGridSegmentPopulatedSensor):
        def now(self) -> datetime.datetime:
            return scenario.now()

    return EmulatedTimeSensor(
        task_id="wait", segment_id=segment_id, sendgrid_conn_id=CONN_ID, timeout=6 * 3600, **kwargs
    )


def wait_with_sensor_pokes(scenario: Scenario, segment: dict[str, Any]) -> str:
    """Poke and reschedule modes: poke, sleep the sensor's own poke_interval, poke again."""
    sensor = _emulated_sensor(scenario, segment["id"])
    context: Any = {}
    for _ in range(100):
        result = sensor.poke(context)
        if result.is_done:
            return f"done ({result.xcom_value['contacts_count']} contacts)"
        scenario.sleep(sensor.poke_interval)
    return "still waiting after 100 pokes"


def wait_with_deferrable_sensor(scenario: Scenario, segment: dict[str, Any]) -> str:
    """Deferrable mode as Airflow runs it: execute (one poke, then defer), then the trigger."""
    from airflow.sdk.exceptions import TaskDeferred

    sensor = _emulated_sensor(scenario, segment["id"], deferrable=True)
    try:
        sensor.execute({})
    except TaskDeferred as deferred:
        _, kwargs = deferred.trigger.serialize()
        # The triggerer rebuilds the trigger from its serialized form; ours keeps emulated time.
        return _run_trigger(_emulated_trigger_class(scenario)(**kwargs))
    return "done at the first poke"


def fixed_interval_poller(interval: float) -> WaitFunction:
    """GET the segment every ``interval`` simulated seconds until a newer, non-empty sample."""

    def wait(scenario: Scenario, segment: dict[str, Any]) -> str:
        from airflow_provider_sgseg.rules.population import verdict

        watermark = datetime.datetime.fromisoformat(segment["sample_updated_at"].replace("Z", "+00:00"))
        with httpx.Client(base_url=scenario.admin.base_url, headers=scenario.headers) as client:
            for _ in range(10_000):
                body = client.get(SEGMENT_PATH + segment["id"], params=NO_SAMPLE).json()
                if verdict(body, watermark, 1).populated:
                    return f"done ({body['contacts_count']} contacts)"
                scenario.sleep(interval)
        return "still waiting"

    return wait


def run() -> Section:
    from sgseg_emulator.client import EmulatorAdmin
    from sgseg_emulator.config import EmulatorConfig
    from sgseg_emulator.server import EmulatorServer

    with EmulatorServer(EmulatorConfig(clock="manual")) as server:
        os.environ[CONN_ENV_VAR] = connection_json(server.base_url, server.api_key)
        admin = EmulatorAdmin(server.base_url, server.api_key)
        scenario = Scenario(admin, server.api_key)
        ours: dict[str, WaitFunction] = {
            "trigger (deferrable wait)": wait_with_trigger,
            "sensor, poke/reschedule mode": wait_with_sensor_pokes,
            "sensor, deferrable (first poke + trigger)": wait_with_deferrable_sensor,
        }
        measured = {name: scenario.measure(wait) for name, wait in ours.items()}
        fixed = {interval: scenario.measure(fixed_interval_poller(interval)) for interval in FIXED_INTERVALS}
        admin.close()
    baseline = "; ".join(f"every {interval} s: {wait.gets}" for interval, wait in fixed.items())
    rows = [
        Row(
            "2" + "abc"[index],
            f"GETs per 60-min populated wait: {name}",
            str(wait.gets),
            f"≤ {TARGET_GETS}",
            baseline,
            wait.gets <= TARGET_GETS and not wait.outcome.startswith("still"),
        )
        for index, (name, wait) in enumerate(measured.items())
    ]
    notes = [
        f"{name}: {wait.gets} GETs over {wait.simulated_minutes:.1f} simulated minutes; {wait.outcome}"
        for name, wait in measured.items()
    ]
    notes += [
        f"fixed {interval} s poller: {wait.gets} GETs over {wait.simulated_minutes:.1f} simulated minutes; "
        f"{wait.outcome}"
        for interval, wait in fixed.items()
    ]
    return Section("2. API calls per populated wait", rows, notes)
