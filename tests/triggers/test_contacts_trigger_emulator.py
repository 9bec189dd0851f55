"""SendGridContactsJobsTrigger against the emulator (manual clock): one event, whatever happens."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
from airflow_provider_sgseg.rules.pacing import WaitBounds
from airflow_provider_sgseg.triggers.contacts import SendGridContactsJobsTrigger

BOUNDS = WaitBounds(floor=1, ceiling=60, interval=10, max_consecutive_failures=2).to_arguments()
IMPORTS = "/v3/marketing/contacts/imports/"


@pytest.fixture
def clocked(sendgrid_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
    admin = sendgrid_emulator.admin

    async def asleep(self: Any, seconds: float) -> None:
        admin.advance_clock(seconds)

    monkeypatch.setattr(SendGridContactsJobsTrigger, "now", lambda self: admin.now())
    monkeypatch.setattr(SendGridContactsJobsTrigger, "sleep", asleep)
    return sendgrid_emulator


def trigger(job_ids: list[str], **kwargs: Any) -> SendGridContactsJobsTrigger:
    return SendGridContactsJobsTrigger(
        sendgrid_conn_id="sendgrid_default", job_kind="import", job_ids=job_ids, bounds=BOUNDS, **kwargs
    )


async def events(t: SendGridContactsJobsTrigger) -> list[dict[str, Any]]:
    return [event.payload async for event in t.run()]


def test_serialize_round_trips_without_the_key(sendgrid_emulator: EmulatorHandle) -> None:
    original = trigger(["a", "b"], deadline="2026-01-01T00:00:00+00:00", resume={"rows_read": 2})
    path, kwargs = original.serialize()
    assert path == "airflow_provider_sgseg.triggers.contacts.SendGridContactsJobsTrigger"
    assert "SG." not in str(kwargs)
    assert SendGridContactsJobsTrigger(**kwargs).serialize() == (path, kwargs)


async def test_waits_for_every_job_and_hands_back_resume(clocked: EmulatorHandle) -> None:
    hook = SendGridMarketingHook()
    jobs = [
        hook.upsert_contacts(f'{{"contacts":[{{"email":"t{n}@example.com"}}]}}'.encode()) for n in range(2)
    ]
    (event,) = await events(trigger(jobs, resume={"rows_read": 2}))
    assert event["status"] == "success" and event["resume"] == {"rows_read": 2}
    assert {job: result["created_count"] for job, result in event["results"].items()} == dict.fromkeys(
        jobs, 1
    )


async def test_deadline_ends_with_timeout(clocked: EmulatorHandle) -> None:
    job = SendGridMarketingHook().upsert_contacts(b'{"contacts":[{"email":"late@example.com"}]}')
    deadline = (clocked.admin.now() + datetime.timedelta(seconds=5)).isoformat()
    (event,) = await events(trigger([job], deadline=deadline))
    assert event["status"] == "timeout" and "not finished by" in event["message"]


async def test_transient_failures_beyond_the_tolerance_end_with_error(clocked: EmulatorHandle) -> None:
    job = SendGridMarketingHook().upsert_contacts(b'{"contacts":[{"email":"x@example.com"}]}')
    clocked.admin.add_fault("status", method="GET", path_prefix=IMPORTS, status=503, times=3)
    (event,) = await events(trigger([job]))
    assert event["status"] == "error" and "3 transient failures in a row" in event["message"]


async def test_unknown_job_is_invalid_at_once(clocked: EmulatorHandle) -> None:
    (event,) = await events(trigger(["no-such-job"]))
    assert event["status"] == "invalid" and "no-such-job" in event["message"]
