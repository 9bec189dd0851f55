"""Run the sensor and the trigger on the emulator's manual clock, and set up segments there.

A "sleep" advances the emulator's clock instead of the wall clock, and "now" reads it, so a
simulated hour of waiting takes milliseconds and every GET lands in the emulator's request log.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import airflow.sdk.bases.sensor
import pytest

from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
from airflow_provider_sgseg.sensors.segments import SendGridSegmentPopulatedSensor
from airflow_provider_sgseg.triggers.segments import SendGridSegmentPopulatedTrigger

ALL_CONTACTS = "SELECT contact_id, updated_at FROM contact_data"
SEGMENT_PATH = "/v3/marketing/segments/2.0/"


@dataclass
class EmulatedTime:
    admin: Any
    slept: list[float] = field(default_factory=list)

    def now(self) -> datetime.datetime:
        return self.admin.now()

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.admin.advance_clock(seconds)

    def segment_gets(self, segment_id: str) -> int:
        """How many times the segment was read (the refresh POST and others excluded)."""
        return len(self.admin.requests(method="GET", path_prefix=SEGMENT_PATH + segment_id))


@pytest.fixture
def emulated_time(sendgrid_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatedTime]:
    clock = EmulatedTime(sendgrid_emulator.admin)

    async def trigger_sleep(self: SendGridSegmentPopulatedTrigger, seconds: float) -> None:
        clock.sleep(seconds)

    monkeypatch.setattr(SendGridSegmentPopulatedTrigger, "now", lambda self: clock.now())
    monkeypatch.setattr(SendGridSegmentPopulatedTrigger, "sleep", trigger_sleep)
    monkeypatch.setattr(SendGridSegmentPopulatedSensor, "now", lambda self: clock.now())
    # BaseSensorOperator's poke loop sleeps and measures its timeout with the time module.
    fake_time = SimpleNamespace(sleep=clock.sleep, monotonic=lambda: clock.now().timestamp())
    monkeypatch.setattr(airflow.sdk.bases.sensor, "time", fake_time)
    yield clock


def seed_contacts(admin: Any, count: int, *, start: int = 0) -> None:
    admin.seed_contacts(
        [{"email": f"person{i}@example.com", "first_name": f"P{i}"} for i in range(start, count)]
    )


def create_segment(name: str, query_dsl: str = ALL_CONTACTS) -> dict[str, Any]:
    return SendGridMarketingHook().create_segment(name, query_dsl)


def read_segment(segment_id: str) -> dict[str, Any]:
    return SendGridMarketingHook().get_segment(segment_id, contacts_sample=False)
