"""The writing operators x faults on their write, run the way Airflow runs a task: a fresh
operator for each try, the try number going up, one task state store shared by the tries, and
another try after any failure Airflow would retry (up to three tries).

Whatever the fault, the server ends with exactly one segment, one refresh spent, one Single
Send scheduled once; or, where retrying cannot help, a clear error and nothing spent.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
from airflow_provider_sgseg.operators.segments import (
    SendGridCreateSegmentOperator,
    SendGridRefreshSegmentOperator,
)
from airflow_provider_sgseg.operators.single_sends import SendGridSingleSendOperator
from airflow_provider_sgseg.version_compat import AirflowFailException

from .conftest import ALL_CONTACTS, FAST_CONN_ID, SEGMENTS, SINGLE_SENDS, Sleeps, record_faults

MAX_TRIES = 3
NAME = "operator retry audience"


@dataclass
class StateStore:
    """Airflow's task state store as the operators see it: get/set/delete of JSON values."""

    values: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        return json.loads(self.values[key]) if key in self.values else None

    def set(self, key: str, value: Any, **_: Any) -> None:
        self.values[key] = json.dumps(value)

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


@dataclass
class Ti:
    try_number: int
    pushed: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@dataclass
class Outcome:
    result: Any = None
    tries: int = 0
    errors: list[BaseException] = field(default_factory=list)


def run_like_airflow(
    make_operator: Callable[[], Any],
    started: datetime.datetime,
    *,
    state_store: bool = True,
    sleeps: Sleeps | None = None,
) -> Outcome:
    """Tries until success, a failure Airflow does not retry, or MAX_TRIES. ``state_store=False``:
    no task state store in the context, as before Airflow 3.3. ``sleeps``: the hook waits (e.g. a
    429's) on this recording policy instead of for real."""
    store = StateStore() if state_store else None
    outcome = Outcome()
    for try_number in range(1, MAX_TRIES + 1):
        outcome.tries = try_number
        context = {"ti": Ti(try_number), "task_state_store": store, "dag_run": _DagRun(started)}
        try:
            operator = make_operator()
            if sleeps is not None:
                operator.hook_params = {"retry": sleeps.policy(max_attempts=5), **operator.hook_params}
            outcome.result = operator.execute(context)
            return outcome
        except AirflowFailException as error:  # fails the task without retries
            outcome.errors.append(error)
            return outcome
        except Exception as error:
            outcome.errors.append(error)
    return outcome


@dataclass
class _DagRun:
    start_date: datetime.datetime


@dataclass(frozen=True)
class Fault:
    name: str
    spec: dict[str, Any]
    short_timeout: bool = False


FAULTS = [
    Fault("500", {"kind": "status", "status": 500}),
    Fault("503", {"kind": "status", "status": 503}),
    Fault("429", {"kind": "status", "status": 429, "headers": {"Retry-After": "5"}}),
    Fault("drop-before", {"kind": "drop"}),
    Fault("drop-after", {"kind": "drop", "when": "after"}),
    Fault("read-timeout", {"kind": "delay", "seconds": 1.5, "when": "after"}, short_timeout=True),
    Fault("malformed-after", {"kind": "malformed", "when": "after"}),
    Fault("502-after", {"kind": "status", "status": 502, "when": "after"}),
]


def _segments(hook: SendGridMarketingHook) -> list[dict[str, Any]]:
    return hook.list_segments()


FAULT_IDS = [fault.name for fault in FAULTS]


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_create_segment(
    fault: Fault, emulator: EmulatorHandle, clean_hook: SendGridMarketingHook, sleeps: Sleeps
) -> None:
    emulator.admin.add_fault(method="POST", path=f"^{re.escape(SEGMENTS)}$", **fault.spec)
    conn_id = FAST_CONN_ID if fault.short_timeout else "sendgrid_default"
    outcome = run_like_airflow(
        lambda: SendGridCreateSegmentOperator(
            task_id="create", name=NAME, query_dsl=ALL_CONTACTS, sendgrid_conn_id=conn_id
        ),
        emulator.admin.now(),
        sleeps=sleeps,
    )
    segments = _segments(clean_hook)
    log = emulator.admin.requests()
    assert record_faults(log) == 1, fault.name
    assert outcome.result is not None, (fault.name, outcome.errors)
    assert [s["name"] for s in segments] == [NAME], fault.name
    assert outcome.result["id"] == segments[0]["id"]
    assert outcome.tries <= 2, (fault.name, outcome.errors)
    posts = [e for e in log if e["method"] == "POST"]
    # A second POST only when the first was refused and nothing was created.
    applied = fault.spec.get("when") == "after"
    assert len(posts) == (1 if applied else 2), (fault.name, posts)
    assert_429_waited_out(fault, outcome, sleeps)


def assert_429_waited_out(fault: Fault, outcome: Outcome, sleeps: Sleeps) -> None:
    """A write refused with a 429 waits the named 5 s out inside the try and goes again: it costs
    no Airflow retry (which, before 3.3, would resend every batch from the first)."""
    if fault.name == "429":
        assert outcome.tries == 1, outcome.errors
        assert sleeps.seconds == [5.0]


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_refresh_segment(fault: Fault, emulator: EmulatorHandle, clean_hook: SendGridMarketingHook) -> None:
    segment_id = clean_hook.create_segment(NAME, ALL_CONTACTS)["id"]
    started = emulator.admin.now()
    path = f"^{re.escape(SEGMENTS)}/refresh/{segment_id}$"
    emulator.admin.add_fault(method="POST", path=path, **fault.spec)
    conn_id = FAST_CONN_ID if fault.short_timeout else "sendgrid_default"
    outcome = run_like_airflow(
        lambda: SendGridRefreshSegmentOperator(
            task_id="refresh",
            segment_id=segment_id,
            user_time_zone="Europe/Amsterdam",
            sendgrid_conn_id=conn_id,
        ),
        started,
    )
    log = emulator.admin.requests()
    assert record_faults(log) == 1, fault.name
    refreshes_used = clean_hook.get_segment(segment_id)["refreshes_used"]
    posts = [e for e in log if e["method"] == "POST" and "/refresh/" in e["path"]]
    if fault.name == "429":
        # SendGrid said no: nothing was spent, and the quota answer fails the task plainly.
        assert refreshes_used == 0
        assert len(posts) == 1
        (error,) = outcome.errors
        assert isinstance(error, AirflowFailException) and "Cannot refresh segment now" in str(error)
        return
    assert outcome.result is not None, (fault.name, outcome.errors)
    assert outcome.result["segment_id"] == segment_id
    assert refreshes_used == 1, fault.name  # never a second refresh
    applied = fault.spec.get("when") == "after"
    assert len(posts) == (1 if applied else 2), (fault.name, posts)
    assert (outcome.result["job_id"] is None) == applied  # adopted vs its own answer


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
@pytest.mark.parametrize("write", ["create", "schedule"])
def test_single_send(
    write: str, fault: Fault, emulator: EmulatorHandle, clean_hook: SendGridMarketingHook, sleeps: Sleeps
) -> None:
    segment_id = clean_hook.create_segment(NAME, ALL_CONTACTS)["id"]
    if write == "create":
        emulator.admin.add_fault(method="POST", path=f"^{re.escape(SINGLE_SENDS)}$", **fault.spec)
    else:
        emulator.admin.add_fault(method="PUT", path=r"/schedule$", **fault.spec)
    conn_id = FAST_CONN_ID if fault.short_timeout else "sendgrid_default"
    outcome = run_like_airflow(
        lambda: SendGridSingleSendOperator(
            task_id="send",
            name="operator retry send",
            segment_ids=[segment_id],
            subject="Hello",
            html_content="<p>Hello</p>",
            sender_id=1,
            suppression_group_id=2,
            sendgrid_conn_id=conn_id,
        ),
        emulator.admin.now(),
        sleeps=sleeps,
    )
    log = emulator.admin.requests()
    assert record_faults(log) == 1, fault.name
    assert outcome.result is not None, (fault.name, outcome.errors)
    assert outcome.tries <= 2, (fault.name, outcome.errors)
    assert_429_waited_out(fault, outcome, sleeps)
    drafts = clean_hook.find_single_sends_by_name("operator retry send")
    assert [d["id"] for d in drafts] == [outcome.result["single_send_id"]], fault.name
    deliveries = emulator.admin.sends()
    assert len(deliveries) == 1, (fault.name, deliveries)  # scheduled once, never re-sent
    assert deliveries[0]["single_send_id"] == outcome.result["single_send_id"]
    assert outcome.result["status"] in ("scheduled", "triggered")
