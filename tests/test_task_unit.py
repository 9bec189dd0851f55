"""Pure pieces of ``airflow_provider_sgseg.task`` (no Airflow run, no emulator)."""

from __future__ import annotations

import datetime

import pendulum

from airflow_provider_sgseg.task import deferral_timeout


def test_deferral_timeout_is_a_plain_timedelta_for_pendulum_instants() -> None:
    now = pendulum.datetime(2026, 12, 7, 9, 0, tz="UTC")
    deadline = now.add(seconds=90)
    assert type(deadline - now) is not datetime.timedelta  # the trap: pendulum's Duration

    timeout = deferral_timeout(deadline, now, 30)

    assert type(timeout) is datetime.timedelta
    assert timeout == datetime.timedelta(seconds=120)


def test_deferral_timeout_past_its_deadline_is_the_slack_alone() -> None:
    now = pendulum.datetime(2026, 12, 7, 9, 0, tz="UTC")
    assert deferral_timeout(now.subtract(minutes=5), now, 30) == datetime.timedelta(seconds=30)
