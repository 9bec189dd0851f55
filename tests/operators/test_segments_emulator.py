"""Segment operators against the emulator over loopback (manual clock).

``execute`` is called directly with the smallest context the operators read: ``ti`` (XCom push,
try number), ``task_state_store`` and ``dag_run``. The task state store here is an in-memory
stand-in with the same get/set/delete contract; the real one (and a real retry) is exercised by
tests/operators/test_segments_dags.py under ``airflow dags test``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import httpx
import pendulum
import pytest
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from sgseg_emulator.pytest_plugin import EmulatorHandle, connection_json

from airflow_provider_sgseg.exceptions import (
    SegmentQueryInvalidError,
    SendGridConfigError,
    SendGridForbiddenError,
    SendGridInputError,
    SendGridNotFoundError,
    SendGridServerError,
    SendGridTransportError,
    SendGridValidationError,
)
from airflow_provider_sgseg.hooks.marketing import RetryPolicy, SendGridMarketingHook
from airflow_provider_sgseg.operators.segments import (
    DEFAULT_QUOTA_WAIT_MARGIN,
    DELETE_ATTEMPT_KEY,
    REFRESH_ATTEMPT_KEY,
    SendGridCreateSegmentOperator,
    SendGridDeleteSegmentOperator,
    SendGridGetSegmentOperator,
    SendGridListSegmentsOperator,
    SendGridRefreshSegmentOperator,
    SendGridSegmentBaseOperator,
    SendGridUpdateSegmentOperator,
)
from airflow_provider_sgseg.rules import summaries
from airflow_provider_sgseg.rules.population import watermark_from
from airflow_provider_sgseg.rules.requests import CreateSegment, RefreshSegment
from airflow_provider_sgseg.rules.summaries import in_zones
from airflow_provider_sgseg.version_compat import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    TaskDeferred,
)
from tests.helpers import around_request, last_info_line, not_sendgrid_server

SEGMENTS = "/v3/marketing/segments/2.0"
REFRESH = "/v3/marketing/segments/2.0/refresh/"
QUERY_DE = "SELECT contact_id, updated_at FROM contact_data WHERE country = 'DE'"
QUERY_FR = "SELECT contact_id, updated_at FROM contact_data WHERE country = 'FR'"
INVALID_QUERY = "SELECT contact_id, updated_at FROM no_such_table"
MISSING_ID = "00000000-0000-4000-8000-000000000000"
ZONE = "America/Chicago"
MARGIN = datetime.timedelta(seconds=DEFAULT_QUOTA_WAIT_MARGIN)


# --- minimal task context ---------------------------------------------------------------------


class RecordingTi:
    def __init__(self, try_number: int = 1) -> None:
        self.try_number = try_number
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class MemoryTaskStateStore:
    """Same contract as Airflow's TaskStateStoreAccessor: get/set (never None)/delete."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        if value is None:
            raise ValueError("Cannot set value as None")
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


@dataclass
class DagRun:
    start_date: datetime.datetime | None = None


@dataclass
class TaskRun:
    """One task instance: its tries share the state store, as in Airflow 3.3."""

    store: MemoryTaskStateStore | None = field(default_factory=MemoryTaskStateStore)
    tries: int = 0
    dag_run: DagRun = field(default_factory=DagRun)
    last_ti: RecordingTi | None = None

    def context(self) -> Any:
        self.tries += 1
        self.last_ti = RecordingTi(self.tries)
        return {"ti": self.last_ti, "task_state_store": self.store, "dag_run": self.dag_run}


def wired(operator: SendGridSegmentBaseOperator, emulator: EmulatorHandle, **retry: Any) -> Any:
    """Give ``operator`` the emulator's clock: waits advance it instead of the wall clock."""
    admin = emulator.admin

    def sleep(seconds: float) -> None:
        admin.advance_clock(seconds)

    operator.now = admin.now  # type: ignore[method-assign]
    operator.sleep = sleep  # type: ignore[method-assign]
    policy = RetryPolicy(clock=lambda: admin.now().timestamp(), sleep=sleep, jitter=0, **retry)
    operator.__dict__["hook"] = SendGridMarketingHook(retry=policy)
    return operator


def posts(emulator: EmulatorHandle, path: str) -> list[dict[str, Any]]:
    return [r for r in emulator.admin.requests(method="POST") if r["path"] == path]


def refresh_posts(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    return emulator.admin.requests(method="POST", path_prefix=REFRESH)


def create(emulator: EmulatorHandle, name: str = "active-de", query: str = QUERY_DE, **kwargs: Any) -> Any:
    return wired(
        SendGridCreateSegmentOperator(task_id="create", name=name, query_dsl=query, **kwargs), emulator
    )


def refresher(emulator: EmulatorHandle, segment_id: str, mode: str = "fail", zone: str = ZONE) -> Any:
    return wired(
        SendGridRefreshSegmentOperator(
            task_id="refresh", segment_id=segment_id, user_time_zone=zone, on_quota_exhausted=mode
        ),
        emulator,
    )


def new_segment(emulator: EmulatorHandle, name: str = "active-de") -> str:
    return str(create(emulator, name=name).execute(TaskRun().context())["id"])


def last_refreshed_at(emulator: EmulatorHandle, segment_id: str) -> pendulum.DateTime:
    value = SendGridMarketingHook().get_segment(segment_id, contacts_sample=False)["last_refreshed_at"]
    parsed = pendulum.parse(value)
    assert isinstance(parsed, pendulum.DateTime)
    return parsed


# --- create -----------------------------------------------------------------------------------


def test_create_returns_the_valid_segment_and_pushes_its_id(sendgrid_emulator: EmulatorHandle) -> None:
    run = TaskRun()
    segment = create(sendgrid_emulator).execute(run.context())
    assert segment["name"] == "active-de"
    assert segment["query_dsl"] == QUERY_DE
    assert segment["status"]["query_validation"] == "VALID"
    assert run.last_ti is not None
    assert run.last_ti.pushed == {
        "segment_id": segment["id"],
        # the "SendGrid segment" link's data (the emulator's host: its inspection page)
        "sendgrid_links": {"api_base_url": sendgrid_emulator.base_url, "segment_id": segment["id"]},
    }
    assert len(posts(sendgrid_emulator, SEGMENTS)) == 1


def test_retried_create_reuses_the_segment(sendgrid_emulator: EmulatorHandle) -> None:
    first = create(sendgrid_emulator).execute(TaskRun().context())
    # A retry in a fresh worker (no shared state at all) still finds it by name.
    again = create(sendgrid_emulator).execute(TaskRun(store=None).context())
    assert again["id"] == first["id"]
    assert len(posts(sendgrid_emulator, SEGMENTS)) == 1
    named = SendGridMarketingHook().find_segments_by_name("active-de")
    assert [s["id"] for s in named] == [first["id"]]


def test_create_adopts_the_segment_when_the_answer_is_lost(sendgrid_emulator: EmulatorHandle) -> None:
    sendgrid_emulator.admin.add_fault("drop", method="POST", path=f"^{SEGMENTS}$", when="after")
    segment = create(sendgrid_emulator).execute(TaskRun().context())
    assert segment["name"] == "active-de"
    assert len(posts(sendgrid_emulator, SEGMENTS)) == 1
    assert len(SendGridMarketingHook().find_segments_by_name("active-de")) == 1


def test_create_failing_before_processing_is_not_reposted(sendgrid_emulator: EmulatorHandle) -> None:
    sendgrid_emulator.admin.add_fault("status", method="POST", path=f"^{SEGMENTS}$", status=503)
    with pytest.raises(SendGridServerError):
        create(sendgrid_emulator).execute(TaskRun().context())
    assert len(posts(sendgrid_emulator, SEGMENTS)) == 1
    assert SendGridMarketingHook().find_segments_by_name("active-de") == []
    # Airflow's retry then creates it exactly once.
    create(sendgrid_emulator).execute(TaskRun().context())
    assert len(posts(sendgrid_emulator, SEGMENTS)) == 2
    assert len(SendGridMarketingHook().find_segments_by_name("active-de")) == 1


def test_reuse_never_uses_a_segment_with_another_query(sendgrid_emulator: EmulatorHandle) -> None:
    """Issue 21: the default reuse silently took a segment whose query the DAG had since fixed."""
    first = create(sendgrid_emulator).execute(TaskRun().context())
    with pytest.raises(AirflowFailException) as caught:
        create(sendgrid_emulator, query=QUERY_FR).execute(TaskRun().context())
    message = str(caught.value)
    assert first["id"] in message
    assert QUERY_DE in message and QUERY_FR in message
    assert "if_exists='update'" in message
    assert sendgrid_emulator.admin.requests(method="PATCH") == []
    assert SendGridMarketingHook().get_segment(first["id"])["query_dsl"] == QUERY_DE


def test_reuse_tolerates_whitespace_differences(sendgrid_emulator: EmulatorHandle) -> None:
    first = create(sendgrid_emulator).execute(TaskRun().context())
    respaced = "  SELECT contact_id ,updated_at\n  FROM contact_data\n  WHERE country='DE'\n"
    again = create(sendgrid_emulator, query=respaced).execute(TaskRun().context())
    assert again["id"] == first["id"]
    assert sendgrid_emulator.admin.requests(method="PATCH") == []


def test_reuse_compares_quoted_text_exactly(sendgrid_emulator: EmulatorHandle) -> None:
    create(sendgrid_emulator).execute(TaskRun().context())
    with pytest.raises(AirflowFailException, match="not the one the DAG defines"):
        create(sendgrid_emulator, query=QUERY_DE.replace("'DE'", "' DE'")).execute(TaskRun().context())


@pytest.mark.parametrize("if_exists", ["reuse", "update"])
def test_a_segment_with_other_parent_lists_is_never_used(
    sendgrid_emulator: EmulatorHandle, if_exists: str
) -> None:
    created_list = httpx.post(
        f"{sendgrid_emulator.base_url}/v3/marketing/lists",
        json={"name": "newsletter"},
        headers={"Authorization": f"Bearer {sendgrid_emulator.api_key}"},
    )
    list_id = created_list.json()["id"]
    create(sendgrid_emulator).execute(TaskRun().context())
    with pytest.raises(AirflowFailException) as caught:
        create(sendgrid_emulator, parent_list_ids=[list_id], if_exists=if_exists).execute(TaskRun().context())
    assert f"the DAG's are ['{list_id}']" in str(caught.value)
    assert "cannot change a segment's parent_list_ids" in str(caught.value)
    assert sendgrid_emulator.admin.requests(method="PATCH") == []


def test_an_invalid_segment_this_task_created_is_deleted_and_the_fixed_query_starts_clean(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    """Issue 21: the typo'd segment stayed, and after the fix reuse picked it up and failed again."""
    run = TaskRun()
    with pytest.raises(AirflowFailException, match="no_such_table") as caught:
        create(sendgrid_emulator, query=INVALID_QUERY).execute(run.context())
    assert isinstance(caught.value.__cause__, SegmentQueryInvalidError)
    (deleted,) = sendgrid_emulator.admin.requests(method="DELETE", path_prefix=SEGMENTS)
    assert deleted["status"] == 202
    assert SendGridMarketingHook().find_segments_by_name("active-de") == []
    assert run.store is not None and run.store.values == {}

    fixed = create(sendgrid_emulator).execute(TaskRun().context())  # the DAG with the typo fixed
    assert fixed["query_dsl"] == QUERY_DE
    assert fixed["status"]["query_validation"] == "VALID"


def test_an_invalid_segment_from_an_earlier_try_of_this_task_is_deleted(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    run = TaskRun()
    # The earlier try created the segment and was lost before it saw INVALID.
    earlier = create(sendgrid_emulator, query=INVALID_QUERY, wait_for_validation=False)
    earlier.execute(run.context())
    with pytest.raises(AirflowFailException, match="no_such_table"):
        create(sendgrid_emulator, query=INVALID_QUERY).execute(run.context())
    assert SendGridMarketingHook().find_segments_by_name("active-de") == []


def test_an_invalid_segment_someone_else_created_is_not_deleted(sendgrid_emulator: EmulatorHandle) -> None:
    theirs = SendGridMarketingHook().create_segment("active-de", INVALID_QUERY)
    with pytest.raises(AirflowFailException, match="no_such_table"):
        create(sendgrid_emulator, query=INVALID_QUERY).execute(TaskRun().context())
    assert sendgrid_emulator.admin.requests(method="DELETE") == []
    assert SendGridMarketingHook().get_segment(theirs["id"])["id"] == theirs["id"]


def waiting_through_503s(emulator: EmulatorHandle, validation_delay: int, failures: int) -> Any:
    """A create whose validation polls meet ``failures`` 503s (the hook itself does not retry)."""
    emulator.admin.configure(validation_delay=validation_delay)
    emulator.admin.add_fault("status", method="GET", path=f"^{SEGMENTS}/[^/]+$", status=503, times=failures)
    return wired(
        SendGridCreateSegmentOperator(task_id="c", name="n", query_dsl=QUERY_DE, validation_poll_interval=10),
        emulator,
        max_attempts=1,
    )


def test_transient_failures_while_waiting_for_validation_are_waited_out(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    segment = waiting_through_503s(sendgrid_emulator, 25, failures=2).execute(TaskRun().context())
    assert segment["status"]["query_validation"] == "VALID"


def test_a_streak_of_transient_failures_while_waiting_stays_retriable(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    operator = waiting_through_503s(sendgrid_emulator, 3600, failures=50)
    with pytest.raises(AirflowException, match="6 transient failures in a row") as caught:
        operator.execute(TaskRun().context())
    assert not isinstance(caught.value, AirflowFailException)
    assert isinstance(caught.value.__cause__, SendGridServerError)


def test_update_mode_patches_the_query(sendgrid_emulator: EmulatorHandle) -> None:
    first = create(sendgrid_emulator).execute(TaskRun().context())
    again = create(sendgrid_emulator, query=QUERY_FR, if_exists="update").execute(TaskRun().context())
    assert again["id"] == first["id"]
    assert again["query_dsl"] == QUERY_FR
    assert len(sendgrid_emulator.admin.requests(method="PATCH")) == 1
    assert len(posts(sendgrid_emulator, SEGMENTS)) == 1


def test_fail_mode_fails_on_someone_elses_segment(sendgrid_emulator: EmulatorHandle) -> None:
    create(sendgrid_emulator).execute(TaskRun().context())
    with pytest.raises(AirflowFailException, match="already exists"):
        create(sendgrid_emulator, if_exists="fail").execute(TaskRun().context())


def without_store(emulator: EmulatorHandle) -> TaskRun:
    """A task instance on Airflow < 3.3: no task state store; its DAG run starts now."""
    return TaskRun(store=None, dag_run=DagRun(start_date=emulator.admin.now()))


@pytest.mark.parametrize("with_store", [True, False], ids=["state-store", "no-store (Airflow < 3.3)"])
def test_fail_mode_retry_after_the_worker_died_adopts_its_own_segment(
    sendgrid_emulator: EmulatorHandle, with_store: bool
) -> None:
    run = TaskRun() if with_store else without_store(sendgrid_emulator)
    create(sendgrid_emulator, name="mine", if_exists="fail").execute(run.context())
    # ... and the worker died before Airflow recorded success: Airflow runs try 2.
    sendgrid_emulator.admin.advance_clock(300)
    segment = create(sendgrid_emulator, name="mine", if_exists="fail").execute(run.context())
    assert segment["name"] == "mine"
    assert len(posts(sendgrid_emulator, SEGMENTS)) == 1


def test_fail_mode_retry_adopts_its_own_segment(sendgrid_emulator: EmulatorHandle) -> None:
    run = TaskRun()
    sendgrid_emulator.admin.add_fault("drop", method="POST", path=f"^{SEGMENTS}$", when="after")
    # The answer is lost and the immediate look-up fails too: the try errors out.
    sendgrid_emulator.admin.add_fault("status", method="GET", path=f"^{SEGMENTS}$", status=500, times=1)
    with pytest.raises((SendGridTransportError, SendGridServerError)):
        wired(
            SendGridCreateSegmentOperator(task_id="c", name="mine", query_dsl=QUERY_DE, if_exists="fail"),
            sendgrid_emulator,
            max_attempts=1,
        ).execute(run.context())
    segment = create(sendgrid_emulator, name="mine", if_exists="fail").execute(run.context())
    assert segment["name"] == "mine"
    assert len(posts(sendgrid_emulator, SEGMENTS)) == 1


def test_fail_mode_retry_without_a_store_rejects_a_segment_older_than_the_dag_run(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    create(sendgrid_emulator, name="theirs").execute(TaskRun().context())
    sendgrid_emulator.admin.advance_clock(60)
    run = without_store(sendgrid_emulator)
    run.tries = 1  # the next context is try 2: a retry
    with pytest.raises(AirflowFailException, match="already exists"):
        create(sendgrid_emulator, name="theirs", if_exists="fail").execute(run.context())


def test_fail_mode_adopts_its_own_segment_after_a_lost_answer_without_a_store(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    # SendGrid created it, only the answer was lost: it is ours, not "someone else's".
    sendgrid_emulator.admin.add_fault("drop", method="POST", path=f"^{SEGMENTS}$", when="after")
    segment = create(sendgrid_emulator, name="mine", if_exists="fail").execute(TaskRun(store=None).context())
    assert segment["name"] == "mine"
    assert len(posts(sendgrid_emulator, SEGMENTS)) == 1


def test_fail_mode_rejects_a_segment_another_writer_created_between_lookup_and_post(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    operator = create(sendgrid_emulator, name="contested", if_exists="fail")

    def someone_else_first(request: CreateSegment) -> None:
        SendGridMarketingHook().create_segment("contested", QUERY_FR)  # the other writer wins

    around_request(operator.hook, CreateSegment, before=someone_else_first)
    run = TaskRun()
    with pytest.raises(AirflowFailException, match="already exists"):
        operator.execute(run.context())
    assert [p["status"] for p in posts(sendgrid_emulator, SEGMENTS)] == [201, 400]
    assert sendgrid_emulator.admin.requests(method="PATCH") == []


def test_fail_mode_retry_after_a_name_race_does_not_claim_the_other_writers_segment(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    operator = wired(
        SendGridCreateSegmentOperator(task_id="c", name="contested", query_dsl=QUERY_DE, if_exists="fail"),
        sendgrid_emulator,
        max_attempts=1,
    )

    def someone_else_first(request: CreateSegment) -> None:
        SendGridMarketingHook().create_segment("contested", QUERY_DE)  # same name and query

    def break_the_lookup(request: CreateSegment) -> None:  # the look-up after the 400 gets no answer
        sendgrid_emulator.admin.add_fault("status", method="GET", path=f"^{SEGMENTS}$", status=500)

    around_request(operator.hook, CreateSegment, before=someone_else_first, after=break_the_lookup)
    run = TaskRun()
    with pytest.raises(SendGridServerError):
        operator.execute(run.context())
    with pytest.raises(AirflowFailException, match="already exists"):
        create(sendgrid_emulator, name="contested", if_exists="fail").execute(run.context())


@pytest.mark.parametrize("bad_query", ["SELEC nonsense", "SELECT contact_id FROM contact_data WHERE"])
def test_create_rejected_with_400_fails_without_retries(
    sendgrid_emulator: EmulatorHandle, bad_query: str
) -> None:
    with pytest.raises(AirflowFailException, match="400") as caught:
        create(sendgrid_emulator, query=bad_query).execute(TaskRun().context())
    assert isinstance(caught.value.__cause__, SendGridValidationError)
    details = "; ".join(str(d) for d in caught.value.__cause__.details)
    assert details and details in str(caught.value)  # SendGrid's own words reach the task log
    assert [p["status"] for p in posts(sendgrid_emulator, SEGMENTS)] == [400]


def test_invalid_query_fails_at_once_with_sendgrids_message(sendgrid_emulator: EmulatorHandle) -> None:
    with pytest.raises(AirflowFailException) as caught:
        create(sendgrid_emulator, query=INVALID_QUERY).execute(TaskRun().context())
    assert isinstance(caught.value.__cause__, SegmentQueryInvalidError)
    assert "no_such_table" in str(caught.value)
    assert caught.value.__cause__.details[0].field == "query_dsl"


def test_create_waits_for_pending_validation(sendgrid_emulator: EmulatorHandle) -> None:
    sendgrid_emulator.admin.configure(validation_delay=25)
    start = sendgrid_emulator.admin.now()
    segment = create(sendgrid_emulator, validation_poll_interval=10).execute(TaskRun().context())
    assert segment["status"]["query_validation"] == "VALID"
    waited = (sendgrid_emulator.admin.now() - start).total_seconds()
    assert 25 <= waited <= 30
    assert len(sendgrid_emulator.admin.requests(method="GET", path_prefix=f"{SEGMENTS}/")) >= 3


def test_validation_timeout_is_a_retriable_error(sendgrid_emulator: EmulatorHandle) -> None:
    sendgrid_emulator.admin.configure(validation_delay=3600)
    with pytest.raises(TimeoutError, match="PENDING"):
        create(sendgrid_emulator, validation_poll_interval=10, validation_timeout=60).execute(
            TaskRun().context()
        )


def test_create_without_waiting_returns_pending(sendgrid_emulator: EmulatorHandle) -> None:
    sendgrid_emulator.admin.configure(validation_delay=60)
    segment = create(sendgrid_emulator, wait_for_validation=False).execute(TaskRun().context())
    assert segment["status"]["query_validation"] == "PENDING"


# --- get, list, update, delete ---------------------------------------------------------------


def test_get_returns_the_segment(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator)
    run = TaskRun()
    got = wired(
        SendGridGetSegmentOperator(task_id="g", segment_id=segment_id, contacts_sample=False),
        sendgrid_emulator,
    ).execute(run.context())
    assert got["id"] == segment_id
    assert "contacts_sample" not in got or got["contacts_sample"] in ([], None)
    assert run.last_ti is not None and run.last_ti.pushed["segment_id"] == segment_id


def test_get_missing_segment_raises_not_found(sendgrid_emulator: EmulatorHandle) -> None:
    with pytest.raises(SendGridNotFoundError):
        wired(SendGridGetSegmentOperator(task_id="g", segment_id=MISSING_ID), sendgrid_emulator).execute(
            TaskRun().context()
        )


def test_list_filters(sendgrid_emulator: EmulatorHandle) -> None:
    created_list = httpx.post(
        f"{sendgrid_emulator.base_url}/v3/marketing/lists",
        json={"name": "newsletter"},
        headers={"Authorization": f"Bearer {sendgrid_emulator.api_key}"},
    )
    created_list.raise_for_status()
    list_id = created_list.json()["id"]
    plain = new_segment(sendgrid_emulator, "plain")
    other = new_segment(sendgrid_emulator, "other")
    in_list = str(
        create(sendgrid_emulator, name="in-list", parent_list_ids=[list_id]).execute(TaskRun().context())[
            "id"
        ]
    )

    def listed(**kwargs: Any) -> list[str]:
        operator = wired(SendGridListSegmentsOperator(task_id="l", **kwargs), sendgrid_emulator)
        return sorted(s["id"] for s in operator.execute(TaskRun().context()))

    assert listed() == sorted([plain, other, in_list])
    assert listed(ids=[plain]) == [plain]
    assert listed(ids=plain) == [plain]  # a rendered single id
    assert listed(parent_list_ids=[list_id]) == [in_list]
    assert listed(parent_list_ids=list_id) == [in_list]
    assert listed(no_parent_list_id=True) == sorted([plain, other])
    assert listed(parent_list_ids=[list_id], no_parent_list_id=True) == sorted([plain, other, in_list])
    assert listed(ids=[other], parent_list_ids=[list_id]) == [other]  # ids wins


def test_update_sends_only_the_fields_given(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator)
    renamed = wired(
        SendGridUpdateSegmentOperator(task_id="u", segment_id=segment_id, name="renamed"), sendgrid_emulator
    ).execute(TaskRun().context())
    assert renamed["name"] == "renamed"
    assert renamed["query_dsl"] == QUERY_DE
    patches = sendgrid_emulator.admin.requests(method="PATCH")
    assert len(patches) == 1
    assert patches[0]["json"] == {"name": "renamed"}


def test_update_query_waits_for_validation(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator)
    sendgrid_emulator.admin.configure(validation_delay=15)
    updated = wired(
        SendGridUpdateSegmentOperator(
            task_id="u", segment_id=segment_id, query_dsl=QUERY_FR, validation_poll_interval=10
        ),
        sendgrid_emulator,
    ).execute(TaskRun().context())
    assert updated["query_dsl"] == QUERY_FR
    assert updated["status"]["query_validation"] == "VALID"
    assert sendgrid_emulator.admin.requests(method="PATCH")[0]["json"] == {"query_dsl": QUERY_FR}


def test_update_to_invalid_query_fails_fast(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator)
    with pytest.raises(AirflowFailException, match="no_such_table"):
        wired(
            SendGridUpdateSegmentOperator(task_id="u", segment_id=segment_id, query_dsl=INVALID_QUERY),
            sendgrid_emulator,
        ).execute(TaskRun().context())


@pytest.mark.parametrize("if_exists", [None, "update"])
def test_update_rejected_with_400_fails_without_retries(
    sendgrid_emulator: EmulatorHandle, if_exists: str | None
) -> None:
    segment_id = new_segment(sendgrid_emulator)
    if if_exists is None:
        operator = wired(
            SendGridUpdateSegmentOperator(task_id="u", segment_id=segment_id, query_dsl="SELEC nonsense"),
            sendgrid_emulator,
        )
    else:  # the create operator updating an existing segment's query
        operator = create(sendgrid_emulator, query="SELEC nonsense", if_exists=if_exists)
    with pytest.raises(AirflowFailException, match="400") as caught:
        operator.execute(TaskRun().context())
    assert isinstance(caught.value.__cause__, SendGridValidationError)
    assert [p["status"] for p in sendgrid_emulator.admin.requests(method="PATCH")] == [400]


@pytest.mark.parametrize(
    "message", ["custom field 'tier' does not exist", "segment not found", "syntax error at or near 'x'"]
)
@pytest.mark.parametrize("if_exists", [None, "update"])
def test_a_400_on_the_patch_fails_without_retries_whatever_it_says(
    sendgrid_emulator: EmulatorHandle, if_exists: str | None, message: str
) -> None:
    """The field report: a 400 saying "does not exist" became "not found", which Airflow retried."""
    segment_id = new_segment(sendgrid_emulator)
    body = {"errors": [{"field": "query_dsl", "message": message}]}
    sendgrid_emulator.admin.add_fault("status", method="PATCH", status=400, body=body)
    tiered = "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.tier = 'gold'"
    if if_exists is None:
        operator = wired(
            SendGridUpdateSegmentOperator(task_id="u", segment_id=segment_id, query_dsl=tiered),
            sendgrid_emulator,
        )
    else:
        operator = create(sendgrid_emulator, query=tiered, if_exists=if_exists)
    with pytest.raises(AirflowFailException) as caught:
        operator.execute(TaskRun().context())
    assert f"SendGrid rejected updating segment {segment_id} (HTTP 400, not retried)" in str(caught.value)
    assert f"query_dsl: {message}" in str(caught.value)
    assert type(caught.value.__cause__) is SendGridValidationError
    assert [p["status"] for p in sendgrid_emulator.admin.requests(method="PATCH")] == [400]


@pytest.mark.parametrize(
    "body",
    [
        {"error": "user_time_zone is not a valid IANA time zone"},
        {"errors": [{"field": "x", "message": "bad"}]},
    ],
)
def test_a_400_on_the_refresh_fails_without_retries_and_spends_nothing(
    sendgrid_emulator: EmulatorHandle, body: dict[str, Any]
) -> None:
    segment_id = new_segment(sendgrid_emulator)
    sendgrid_emulator.admin.add_fault("status", method="POST", path_prefix=REFRESH, status=400, body=body)
    run = TaskRun()
    with pytest.raises(AirflowFailException, match=r"rejected the manual refresh of segment .* \(HTTP 400"):
        refresher(sendgrid_emulator, segment_id).execute(run.context())
    assert run.store is not None and REFRESH_ATTEMPT_KEY not in run.store.values
    assert [p["status"] for p in refresh_posts(sendgrid_emulator)] == [400]


def test_delete_and_missing_ok(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator)

    def delete(missing_ok: bool, run: TaskRun | None = None) -> Any:
        operator = SendGridDeleteSegmentOperator(task_id="d", segment_id=segment_id, missing_ok=missing_ok)
        return wired(operator, sendgrid_emulator).execute((run or TaskRun()).context())

    assert delete(missing_ok=False) == {"segment_id": segment_id, "deleted": True}
    with pytest.raises(SendGridNotFoundError):
        SendGridMarketingHook().get_segment(segment_id)
    assert delete(missing_ok=True) == {"segment_id": segment_id, "deleted": False}
    with pytest.raises(SendGridNotFoundError):
        delete(missing_ok=False)


def test_retried_delete_succeeds_after_the_first_delete_went_through(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    segment_id = new_segment(sendgrid_emulator)
    run = TaskRun()
    sendgrid_emulator.admin.add_fault("drop", method="DELETE", path_prefix=f"{SEGMENTS}/", when="after")
    operator = SendGridDeleteSegmentOperator(task_id="d", segment_id=segment_id)
    # The hook repeats the idempotent DELETE itself; the repeat finds nothing left: still success.
    assert wired(operator, sendgrid_emulator).execute(run.context()) == {
        "segment_id": segment_id,
        "deleted": True,
    }
    assert len(sendgrid_emulator.admin.requests(method="DELETE")) == 2
    # A later retry of the same task instance (missing_ok=False) succeeds as well.
    again = SendGridDeleteSegmentOperator(task_id="d", segment_id=segment_id)
    assert wired(again, sendgrid_emulator).execute(run.context()) == {
        "segment_id": segment_id,
        "deleted": False,
    }
    assert len(sendgrid_emulator.admin.requests(method="DELETE")) == 2


def deleter(emulator: EmulatorHandle, segment_id: str, **kwargs: Any) -> Any:
    return wired(SendGridDeleteSegmentOperator(task_id="d", segment_id=segment_id, **kwargs), emulator)


def segments_left() -> list[str]:
    return [s["id"] for s in SendGridMarketingHook().list_segments()]


def point_default_connection_at(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorHandle, host: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SENDGRID_DEFAULT", connection_json(host, emulator.api_key))


@pytest.mark.parametrize("suffix", ["/v3", "/v3/"])
def test_missing_ok_delete_through_a_host_with_v3_deletes_the_segment(
    sendgrid_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    segment_id = new_segment(sendgrid_emulator)
    point_default_connection_at(monkeypatch, sendgrid_emulator, sendgrid_emulator.base_url + suffix)
    result = deleter(sendgrid_emulator, segment_id, missing_ok=True).execute(TaskRun().context())
    assert result == {"segment_id": segment_id, "deleted": True}
    with pytest.raises(SendGridNotFoundError):
        SendGridMarketingHook().get_segment(segment_id)
    assert [r["status"] for r in sendgrid_emulator.admin.requests(method="DELETE")] == [202]


@pytest.mark.parametrize("missing_ok", [True, False])
def test_a_404_from_a_host_that_is_not_sendgrid_is_never_a_missing_segment(
    sendgrid_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, missing_ok: bool
) -> None:
    segment_id = new_segment(sendgrid_emulator)
    with not_sendgrid_server() as elsewhere:
        point_default_connection_at(monkeypatch, sendgrid_emulator, elsewhere)
        operator = deleter(sendgrid_emulator, segment_id, missing_ok=missing_ok)
        with pytest.raises(SendGridConfigError, match="the host is not a SendGrid API base URL"):
            operator.execute(TaskRun().context())
    point_default_connection_at(monkeypatch, sendgrid_emulator, sendgrid_emulator.base_url)
    assert segments_left() == [segment_id]  # untouched


def test_missing_segment_is_read_from_the_list_and_nothing_is_deleted(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    result = deleter(sendgrid_emulator, MISSING_ID, missing_ok=True).execute(TaskRun().context())
    assert result == {"segment_id": MISSING_ID, "deleted": False}
    reads = sendgrid_emulator.admin.requests(path_prefix="/v3/")
    assert [(r["method"], r["path"], r["query"].get("ids"), r["status"]) for r in reads] == [
        ("GET", SEGMENTS, MISSING_ID, 200)
    ]
    with pytest.raises(SendGridNotFoundError, match="set missing_ok=True"):
        deleter(sendgrid_emulator, MISSING_ID).execute(TaskRun().context())


READY_EMAIL = {
    "subject": "Digest",
    "html_content": "<p>Hi</p>",
    "sender_id": 1,
    "custom_unsubscribe_url": "https://example.com/unsubscribe",
}
LATER = "2100-01-01T09:00:00Z"


def single_send(segment_ids: list[str], name: str, send_at: str | None = LATER) -> str:
    """A Single Send draft to ``segment_ids``, scheduled for ``send_at`` (None: left a draft)."""
    hook = SendGridMarketingHook()
    single_send_id = str(
        hook.create_single_send(name, segment_ids=segment_ids, email_config=READY_EMAIL)["id"]
    )
    if send_at is not None:
        hook.schedule_single_send(single_send_id, send_at=send_at)
    return single_send_id


def test_delete_refuses_while_scheduled_single_sends_target_the_segment(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    segment_id = new_segment(sendgrid_emulator)
    other_id = new_segment(sendgrid_emulator, name="other")
    both = single_send([other_id, segment_id], "Both audiences")
    only = single_send([segment_id], "Only this one", send_at="2100-02-01T10:30:00Z")
    single_send([segment_id], "Just a draft", send_at=None)
    single_send([segment_id], "Already out", send_at="now")  # triggered: nothing left to empty
    single_send([other_id], "Someone else's")
    sendgrid_emulator.admin.clear_faults()
    before = len(sendgrid_emulator.admin.requests())

    store = MemoryTaskStateStore()
    with pytest.raises(AirflowFailException) as caught:
        deleter(sendgrid_emulator, segment_id).execute(TaskRun(store=store).context())
    message = str(caught.value)
    assert f"Not deleting segment {segment_id}" in message
    assert f"{both} ('Both audiences', send_at {LATER})" in message
    assert f"{only} ('Only this one', send_at 2100-02-01T10:30:00Z)" in message
    for innocent in ("Just a draft", "Already out", "Someone else's"):
        assert innocent not in message
    assert "force=True" in message
    assert segment_id in segments_left()
    assert sendgrid_emulator.admin.requests(method="DELETE") == []
    assert DELETE_ATTEMPT_KEY not in store.values
    # One list read; details only for the scheduled sends (the list has no recipients).
    reads = [(r["method"], r["path"]) for r in sendgrid_emulator.admin.requests()[before:]]
    assert reads.count(("GET", "/v3/marketing/singlesends")) == 1
    assert sorted(p for m, p in reads if m == "GET" and p.startswith("/v3/marketing/singlesends/")) == sorted(
        f"/v3/marketing/singlesends/{i}" for i in (both, only, single_send_id_named("Someone else's"))
    )


def single_send_id_named(name: str) -> str:
    (found,) = SendGridMarketingHook().find_single_sends_by_name(name)
    return str(found["id"])


def test_delete_finds_a_scheduled_single_send_on_a_later_page(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator)
    for n in range(100):
        single_send([segment_id], f"Draft {n}", send_at=None)
    last = single_send([segment_id], "On page two")
    with pytest.raises(AirflowFailException, match=f"{last} \\('On page two'"):
        deleter(sendgrid_emulator, segment_id).execute(TaskRun().context())
    pages = sendgrid_emulator.admin.requests(method="GET", path_prefix="/v3/marketing/singlesends")
    assert [p["query"].get("page_token") for p in pages if p["path"] == "/v3/marketing/singlesends"][-2:] == [
        None,
        "100",
    ]


def test_force_deletes_and_names_the_sends_it_leaves_without_this_audience(
    sendgrid_emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    sendgrid_emulator.admin.seed_contacts([{"email": "anna@example.de", "country": "DE"}])
    segment_id = new_segment(sendgrid_emulator)
    scheduled = single_send([segment_id], "Digest")
    result = deleter(sendgrid_emulator, segment_id, force=True).execute(TaskRun().context())
    assert result == {"segment_id": segment_id, "deleted": True}
    assert f"(force=True): {scheduled} ('Digest', send_at {LATER})" in capsys.readouterr().out
    # What the field saw, under the emulator's default reading: the send reaches nobody.
    sendgrid_emulator.admin.advance_clock(80 * 366 * 86400)
    (sent,) = sendgrid_emulator.admin.sends()
    assert (sent["status"], sent["recipient_count"]) == ("triggered", 0)


def test_delete_refused_by_sendgrid_fails_without_retries(sendgrid_emulator: EmulatorHandle) -> None:
    """The other reading: SendGrid itself refuses (emulator segment_delete_in_use='refuse')."""
    sendgrid_emulator.admin.configure(segment_delete_in_use="refuse")
    segment_id = new_segment(sendgrid_emulator)
    scheduled = single_send([segment_id], "Digest")
    with pytest.raises(AirflowFailException, match="Not deleting segment"):  # refused before asking
        deleter(sendgrid_emulator, segment_id).execute(TaskRun().context())
    assert sendgrid_emulator.admin.requests(method="DELETE") == []
    store = MemoryTaskStateStore()
    with pytest.raises(AirflowFailException) as caught:
        deleter(sendgrid_emulator, segment_id, force=True).execute(TaskRun(store=store).context())
    message = str(caught.value)
    assert f"SendGrid rejected deleting segment {segment_id} (HTTP 400, not retried)" in message
    assert f"segment_id: segment {segment_id!r} is used by scheduled Single Send(s) {scheduled}" in message
    assert isinstance(caught.value.__cause__, SendGridValidationError)
    assert [r["status"] for r in sendgrid_emulator.admin.requests(method="DELETE")] == [400]
    assert DELETE_ATTEMPT_KEY not in store.values
    assert segment_id in segments_left()


@pytest.mark.parametrize("status", [400, 409, 422])
def test_every_sendgrid_refusal_of_the_delete_fails_at_once(
    sendgrid_emulator: EmulatorHandle, status: int
) -> None:
    segment_id = new_segment(sendgrid_emulator)
    body = {"errors": [{"field": None, "message": f"cannot delete this segment now ({status})"}]}
    sendgrid_emulator.admin.add_fault(
        "status", method="DELETE", path_prefix=f"{SEGMENTS}/", status=status, body=body
    )
    with pytest.raises(
        AirflowFailException, match=rf"HTTP {status}, not retried.*cannot delete this segment now"
    ):
        deleter(sendgrid_emulator, segment_id, missing_ok=True).execute(TaskRun().context())
    assert [r["status"] for r in sendgrid_emulator.admin.requests(method="DELETE")] == [status]


def test_a_404_to_the_delete_of_a_segment_still_listed_is_not_success(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    segment_id = new_segment(sendgrid_emulator)
    sendgrid_emulator.admin.add_fault("status", method="DELETE", path_prefix=f"{SEGMENTS}/", status=404)
    with pytest.raises(SendGridNotFoundError):
        deleter(sendgrid_emulator, segment_id, missing_ok=True).execute(TaskRun().context())
    assert segment_id in segments_left()


# --- refresh: allowed -------------------------------------------------------------------------


def test_refresh_allowed_posts_once_and_returns_the_watermark(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator)
    before = SendGridMarketingHook().get_segment(segment_id, contacts_sample=False)
    run = TaskRun()
    result = refresher(sendgrid_emulator, segment_id).execute(run.context())
    assert result["segment_id"] == segment_id
    assert isinstance(result["job_id"], str) and result["job_id"]
    assert result["watermark"] == before["sample_updated_at"]
    assert pendulum.parse(result["requested_at"]) == sendgrid_emulator.admin.now()
    [post] = refresh_posts(sendgrid_emulator)
    assert post["path"] == f"{REFRESH}{segment_id}"
    assert post["status"] == 202
    assert post["json"] == {"user_time_zone": ZONE}
    assert run.last_ti is not None and run.last_ti.pushed["segment_id"] == segment_id


@pytest.mark.parametrize("zone", ["Etc/GMT+5", "Europe/Berlin", "UTC"])
def test_the_emulator_takes_every_zone_the_client_accepts(
    sendgrid_emulator: EmulatorHandle, zone: str
) -> None:
    segment_id = new_segment(sendgrid_emulator)
    result = refresher(sendgrid_emulator, segment_id, zone=zone).execute(TaskRun().context())
    assert result["job_id"]
    [post] = refresh_posts(sendgrid_emulator)
    assert post["status"] == 202 and post["json"] == {"user_time_zone": zone}


def test_a_zone_the_emulator_refuses_is_refused_before_any_request(sendgrid_emulator: EmulatorHandle) -> None:
    from airflow_provider_sgseg.rules.requests import Call, Retry

    segment_id = new_segment(sendgrid_emulator)
    raw = Call("POST", f"{REFRESH}{segment_id}", json={"user_time_zone": "utc"}, retry=Retry.NEVER)
    with pytest.raises(SendGridValidationError):  # the oracle: SendGrid wants the exact case
        SendGridMarketingHook()._request(raw)
    with pytest.raises(SendGridInputError, match="Invalid user_time_zone 'utc'"):
        refresher(sendgrid_emulator, segment_id, zone="utc").execute(TaskRun().context())
    assert len(refresh_posts(sendgrid_emulator)) == 1  # the raw one only


def test_retry_after_an_accepted_refresh_posts_nothing(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator)
    run = TaskRun()
    first = refresher(sendgrid_emulator, segment_id).execute(run.context())
    sendgrid_emulator.admin.advance_clock(2 * 3600)  # the quota would allow another one now
    again = refresher(sendgrid_emulator, segment_id).execute(run.context())
    assert again == first
    assert len(refresh_posts(sendgrid_emulator)) == 1


def test_dropped_answer_after_processing_is_adopted_without_reposting(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    segment_id = new_segment(sendgrid_emulator)
    sendgrid_emulator.admin.add_fault("drop", method="POST", path_prefix=REFRESH, when="after")
    run = TaskRun()
    result = refresher(sendgrid_emulator, segment_id).execute(run.context())
    assert result["segment_id"] == segment_id
    assert result["job_id"] is None
    assert len(refresh_posts(sendgrid_emulator)) == 1
    # and a later retry of the same task instance still posts nothing
    sendgrid_emulator.admin.advance_clock(2 * 3600)
    assert refresher(sendgrid_emulator, segment_id).execute(run.context()) == result
    assert len(refresh_posts(sendgrid_emulator)) == 1


def test_retry_after_a_crash_between_accept_and_record_posts_nothing(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    segment_id = new_segment(sendgrid_emulator)
    run = TaskRun()
    _first_try_loses_an_accepted_refresh(sendgrid_emulator, segment_id, run)
    assert run.store is not None and REFRESH_ATTEMPT_KEY in run.store.values
    assert len(refresh_posts(sendgrid_emulator)) == 1

    sendgrid_emulator.admin.advance_clock(2 * 3600)
    result = refresher(sendgrid_emulator, segment_id).execute(run.context())
    assert result["job_id"] is None
    assert result["segment_id"] == segment_id
    assert len(refresh_posts(sendgrid_emulator)) == 1


def _first_try_loses_an_accepted_refresh(emulator: EmulatorHandle, segment_id: str, run: TaskRun) -> None:
    """Try 1 (no retries): SendGrid accepts the POST, but its answer and the re-read after it are lost."""
    first_try = wired(
        SendGridRefreshSegmentOperator(task_id="refresh", segment_id=segment_id, user_time_zone=ZONE),
        emulator,
        max_attempts=1,
    )
    emulator.admin.add_fault("drop", method="POST", path_prefix=REFRESH, when="after")

    def break_reads(request: RefreshSegment) -> None:  # after the real POST, the next read gets no answer
        emulator.admin.add_fault("drop", method="GET", path_prefix=f"{SEGMENTS}/{segment_id}")

    around_request(first_try.hook, RefreshSegment, after=break_reads)
    with pytest.raises(SendGridTransportError):
        first_try.execute(run.context())


@pytest.mark.parametrize("mode", ["fail", "wait"])
def test_retry_whose_post_meets_429_after_an_unseen_refresh_takes_it_as_accepted(
    sendgrid_emulator: EmulatorHandle, mode: str
) -> None:
    """INFERRED fact, other reading: SendGrid sets last_refreshed_at only when a refresh completes.

    Try 1's POST is accepted but its answer and the re-read are lost. The retry's read still shows
    the pre-refresh segment (served by a fault: the emulator itself records the refresh at once),
    so the retry posts and SendGrid answers 429 for the hourly spacing that refresh started.
    """
    segment_id = new_segment(sendgrid_emulator)
    before = SendGridMarketingHook().get_segment(segment_id, contacts_sample=False)
    run = TaskRun()
    _first_try_loses_an_accepted_refresh(sendgrid_emulator, segment_id, run)

    sendgrid_emulator.admin.advance_clock(120)
    sendgrid_emulator.admin.add_fault(
        "status", method="GET", path_prefix=f"{SEGMENTS}/{segment_id}", status=200, body=before
    )
    result = refresher(sendgrid_emulator, segment_id, mode).execute(run.context())

    assert result["job_id"] is None
    assert result["segment_id"] == segment_id
    assert result["watermark"] == before["sample_updated_at"]
    # the first POST was processed, then its answer dropped (logged without a status)
    assert [p["status"] for p in refresh_posts(sendgrid_emulator)] == [None, 429]
    # and any later retry returns the same result without posting
    sendgrid_emulator.admin.advance_clock(2 * 3600)
    assert refresher(sendgrid_emulator, segment_id, mode).execute(run.context()) == result
    assert len(refresh_posts(sendgrid_emulator)) == 2


def test_a_retry_that_takes_an_unseen_refresh_as_accepted_counts_it_in_its_summary(
    sendgrid_emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    """The retry's read shows no trace of try 1's refresh (SendGrid answered 429 for it): the
    summary counts that refresh, not the quota as read before it."""
    segment_id = new_segment(sendgrid_emulator)
    before = SendGridMarketingHook().get_segment(segment_id, contacts_sample=False)
    run = TaskRun()
    _first_try_loses_an_accepted_refresh(sendgrid_emulator, segment_id, run)
    assert run.store is not None
    requested_at = pendulum.parse(run.store.values[REFRESH_ATTEMPT_KEY]["requested_at"])
    assert isinstance(requested_at, pendulum.DateTime)

    sendgrid_emulator.admin.advance_clock(120)
    sendgrid_emulator.admin.add_fault(
        "status", method="GET", path_prefix=f"{SEGMENTS}/{segment_id}", status=200, body=before
    )
    capsys.readouterr()
    result = refresher(sendgrid_emulator, segment_id).execute(run.context())

    assert last_info_line(capsys.readouterr().out) == (
        f"Refreshed segment 'active-de' ({segment_id}): 1 refresh spent by an earlier try (not sent "
        f"again), job unknown; 1 refresh left today; next refresh allowed at "
        f"{in_zones(requested_at.add(hours=1), ZONE)}; watermark {result['watermark']}."
    )


def test_retry_without_a_store_whose_post_meets_429_takes_it_as_its_earlier_refresh(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    """Airflow < 3.3: nothing recorded try 1's POST, but a 429 on a retry, with the quota
    allowing a refresh by the segment's own fields, can only be a refresh still under way."""
    segment_id = new_segment(sendgrid_emulator)
    before = SendGridMarketingHook().get_segment(segment_id, contacts_sample=False)
    run = without_store(sendgrid_emulator)
    _first_try_loses_an_accepted_refresh(sendgrid_emulator, segment_id, run)

    sendgrid_emulator.admin.advance_clock(120)
    sendgrid_emulator.admin.add_fault(
        "status", method="GET", path_prefix=f"{SEGMENTS}/{segment_id}", status=200, body=before
    )
    result = refresher(sendgrid_emulator, segment_id, "wait").execute(run.context())

    assert result["job_id"] is None
    assert result["watermark"] == before["sample_updated_at"]
    assert [p["status"] for p in refresh_posts(sendgrid_emulator)] == [None, 429]


def test_first_try_without_a_store_meeting_429_is_not_taken_as_its_own(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    segment_id = new_segment(sendgrid_emulator)
    before = SendGridMarketingHook().get_segment(segment_id, contacts_sample=False)
    _refresh_now(sendgrid_emulator, segment_id)  # someone else's refresh, just now
    sendgrid_emulator.admin.add_fault(
        "status", method="GET", path_prefix=f"{SEGMENTS}/{segment_id}", status=200, body=before
    )
    with pytest.raises(AirflowSkipException):
        refresher(sendgrid_emulator, segment_id, "skip").execute(without_store(sendgrid_emulator).context())
    assert [p["status"] for p in refresh_posts(sendgrid_emulator)] == [202, 429]


@pytest.mark.parametrize("with_store", [True, False], ids=["state-store", "no-store (Airflow < 3.3)"])
def test_failed_post_without_trace_is_reposted_by_the_retry(
    sendgrid_emulator: EmulatorHandle, with_store: bool
) -> None:
    segment_id = new_segment(sendgrid_emulator)
    run = TaskRun() if with_store else without_store(sendgrid_emulator)
    sendgrid_emulator.admin.add_fault("status", method="POST", path_prefix=REFRESH, status=500)
    with pytest.raises(SendGridServerError):
        refresher(sendgrid_emulator, segment_id).execute(run.context())
    result = refresher(sendgrid_emulator, segment_id).execute(run.context())
    assert result["job_id"]
    assert [p["status"] for p in refresh_posts(sendgrid_emulator)] == [500, 202]


@pytest.mark.parametrize("sample_landed", [False, True])
def test_retry_without_task_state_store_uses_the_dag_run_start(
    sendgrid_emulator: EmulatorHandle, sample_landed: bool
) -> None:
    segment_id = new_segment(sendgrid_emulator)
    before = SendGridMarketingHook().get_segment(segment_id, contacts_sample=False)
    sendgrid_emulator.admin.advance_clock(10)  # the refresh comes after that sample
    run = without_store(sendgrid_emulator)
    _first_try_loses_an_accepted_refresh(sendgrid_emulator, segment_id, run)
    if sample_landed:
        sendgrid_emulator.admin.advance_clock(2 * 3600)
    result = refresher(sendgrid_emulator, segment_id).execute(run.context())
    assert result["job_id"] is None
    assert len(refresh_posts(sendgrid_emulator)) == 1
    # The sample the refresh replaces while it is still pending; unknown once the new one landed.
    assert result["watermark"] == (None if sample_landed else before["sample_updated_at"])


# --- refresh: blocked by the segment's own limits ---------------------------------------------


def _refresh_now(emulator: EmulatorHandle, segment_id: str) -> None:
    refresher(emulator, segment_id).execute(TaskRun().context())


def test_hourly_spacing_fail_mode_says_when(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator)
    _refresh_now(sendgrid_emulator, segment_id)
    last = last_refreshed_at(sendgrid_emulator, segment_id)
    sendgrid_emulator.admin.advance_clock(600)
    with pytest.raises(AirflowFailException) as caught:
        refresher(sendgrid_emulator, segment_id, "fail").execute(TaskRun().context())
    assert "hourly_spacing" in str(caught.value)
    assert last.add(hours=1).isoformat() in str(caught.value)
    assert len(refresh_posts(sendgrid_emulator)) == 1


def test_hourly_spacing_skip_mode(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator)
    _refresh_now(sendgrid_emulator, segment_id)
    sendgrid_emulator.admin.advance_clock(600)
    with pytest.raises(AirflowSkipException, match="hourly_spacing"):
        refresher(sendgrid_emulator, segment_id, "skip").execute(TaskRun().context())
    assert len(refresh_posts(sendgrid_emulator)) == 1


def test_skipped_refresh_leaves_a_return_value_the_sensor_understands(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    """A sensor given watermark=<refresh>.output must find a value, not Airflow's error-level
    "XCom not found": the sample SendGrid had when the refresh was skipped is the watermark."""
    segment_id = new_segment(sendgrid_emulator)
    _refresh_now(sendgrid_emulator, segment_id)
    sendgrid_emulator.admin.advance_clock(600)
    sample_before = SendGridMarketingHook().get_segment(segment_id, contacts_sample=False)[
        "sample_updated_at"
    ]
    run = TaskRun()
    with pytest.raises(AirflowSkipException) as skipped:
        refresher(sendgrid_emulator, segment_id, "skip").execute(run.context())
    assert run.last_ti is not None
    left = run.last_ti.pushed["return_value"]
    assert left == {
        "segment_id": segment_id,
        "job_id": None,
        "requested_at": None,
        "watermark": sample_before,
        "sample_updated_at_before": sample_before,  # its 0.2.0 name, until 1.0
        "skipped": str(skipped.value),
    }
    assert watermark_from(left) == pendulum.parse(sample_before)
    # Without a sample time to go by it is no watermark: the sensor takes the sample it first sees.
    assert watermark_from({**left, "watermark": None, "sample_updated_at_before": None}) is None


def test_hourly_spacing_wait_mode_defers_then_refreshes(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator)
    _refresh_now(sendgrid_emulator, segment_id)
    last = last_refreshed_at(sendgrid_emulator, segment_id)
    sendgrid_emulator.admin.advance_clock(600)
    run = TaskRun()
    operator = refresher(sendgrid_emulator, segment_id, "wait")
    with pytest.raises(TaskDeferred) as caught:
        operator.execute(run.context())
    trigger = caught.value.trigger
    assert isinstance(trigger, DateTimeTrigger)
    assert trigger.moment == last.add(hours=1) + MARGIN
    assert caught.value.method_name == "execute_after_wait"
    assert len(refresh_posts(sendgrid_emulator)) == 1

    # The triggerer fires at the moment; the task resumes on a worker and refreshes.
    now = sendgrid_emulator.admin.now()
    sendgrid_emulator.admin.advance_clock((trigger.moment - now).total_seconds())
    result = getattr(operator, caught.value.method_name)(run.context(), event=trigger.moment)
    assert result["job_id"]
    assert len(refresh_posts(sendgrid_emulator)) == 2


def _advance_to_local(emulator: EmulatorHandle, zone: str, hour: int) -> pendulum.DateTime:
    """Move the emulator clock forward to the next ``hour``:00 local time in ``zone``."""
    now = pendulum.instance(emulator.admin.now()).in_tz(zone)
    target = now.start_of("day").add(hours=hour)
    if target <= now:
        target = target.add(days=1)
    emulator.admin.advance_clock((target - now).total_seconds())
    return target


def test_daily_limit_blocks_until_local_midnight_in_each_mode(sendgrid_emulator: EmulatorHandle) -> None:
    _advance_to_local(sendgrid_emulator, ZONE, 9)
    segment_id = new_segment(sendgrid_emulator)
    _refresh_now(sendgrid_emulator, segment_id)
    sendgrid_emulator.admin.advance_clock(3600)
    _refresh_now(sendgrid_emulator, segment_id)
    sendgrid_emulator.admin.advance_clock(3600)
    now = pendulum.instance(sendgrid_emulator.admin.now())
    midnight = now.in_tz(ZONE).add(days=1).start_of("day")

    with pytest.raises(AirflowFailException) as failed:
        refresher(sendgrid_emulator, segment_id, "fail").execute(TaskRun().context())
    assert "segment_daily_limit" in str(failed.value)
    assert midnight.isoformat() in str(failed.value)
    with pytest.raises(AirflowSkipException, match="segment_daily_limit"):
        refresher(sendgrid_emulator, segment_id, "skip").execute(TaskRun().context())
    with pytest.raises(TaskDeferred) as deferred:
        refresher(sendgrid_emulator, segment_id, "wait").execute(TaskRun().context())
    assert deferred.value.trigger.moment == midnight + MARGIN
    assert len(refresh_posts(sendgrid_emulator)) == 2


# --- refresh: 429 from the server -------------------------------------------------------------


def test_account_limit_learned_from_a_429(sendgrid_emulator: EmulatorHandle) -> None:
    sendgrid_emulator.admin.configure(refreshes_per_account_per_day=1)
    first = new_segment(sendgrid_emulator, "first")
    second = new_segment(sendgrid_emulator, "second")
    _refresh_now(sendgrid_emulator, first)
    now = pendulum.instance(sendgrid_emulator.admin.now())
    utc_midnight = now.in_tz("UTC").add(days=1).start_of("day")

    run = TaskRun()
    with pytest.raises(AirflowFailException) as failed:
        refresher(sendgrid_emulator, second, "fail").execute(run.context())
    assert "account_daily_limit" in str(failed.value)
    assert utc_midnight.isoformat() in str(failed.value)
    assert run.store is not None and REFRESH_ATTEMPT_KEY not in run.store.values  # nothing spent

    with pytest.raises(TaskDeferred) as deferred:
        refresher(sendgrid_emulator, second, "wait").execute(TaskRun().context())
    assert deferred.value.trigger.moment == utc_midnight + MARGIN
    statuses = [p["status"] for p in refresh_posts(sendgrid_emulator)]
    assert statuses == [202, 429, 429]


def test_429_unexplained_by_the_segment_uses_the_servers_reset(sendgrid_emulator: EmulatorHandle) -> None:
    # Like SendGrid, the emulator sends X-RateLimit-Reset (end of the rate window) on every answer.
    segment_id = new_segment(sendgrid_emulator)
    sendgrid_emulator.admin.add_fault(
        "status", method="POST", path_prefix=REFRESH, status=429, body={"error": "x"}
    )
    window = sendgrid_emulator.admin.config()["rate_limit_window"]
    now = sendgrid_emulator.admin.now().timestamp()
    window_end = datetime.datetime.fromtimestamp((now // window + 1) * window, tz=datetime.timezone.utc)
    run = TaskRun()
    with pytest.raises(AirflowSkipException) as skipped:
        refresher(sendgrid_emulator, segment_id, "skip").execute(run.context())
    assert "server_rate_limit" in str(skipped.value)
    assert run.last_ti is not None
    assert run.last_ti.pushed["return_value"]["skipped"] == str(skipped.value)  # a 429 skip leaves one too
    assert window_end.isoformat() in str(skipped.value)


def test_429_with_short_retry_after_waits_for_it(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator)
    sendgrid_emulator.admin.add_fault(
        "status", method="POST", path_prefix=REFRESH, status=429, headers={"Retry-After": "120"}
    )
    now = pendulum.instance(sendgrid_emulator.admin.now())
    with pytest.raises(TaskDeferred) as deferred:
        refresher(sendgrid_emulator, segment_id, "wait").execute(TaskRun().context())
    assert deferred.value.trigger.moment == now.add(seconds=120) + MARGIN


def test_free_plan_refresh_fails_without_retries(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator)
    sendgrid_emulator.admin.configure(plan="free")
    run = TaskRun()
    with pytest.raises(AirflowFailException, match="403") as caught:
        refresher(sendgrid_emulator, segment_id).execute(run.context())
    assert isinstance(caught.value.__cause__, SendGridForbiddenError)
    assert [p["status"] for p in refresh_posts(sendgrid_emulator)] == [403]
    assert run.store is not None and REFRESH_ATTEMPT_KEY not in run.store.values


def test_refresh_of_a_missing_segment_raises_not_found(sendgrid_emulator: EmulatorHandle) -> None:
    with pytest.raises(SendGridNotFoundError):
        refresher(sendgrid_emulator, MISSING_ID).execute(TaskRun().context())
    assert refresh_posts(sendgrid_emulator) == []


# --- issue 23: the last log line says what the task did -------------------------------------------


def test_the_refresh_ends_its_log_with_refreshes_left_and_the_next_time_in_utc_and_the_zone(
    sendgrid_emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    segment_id = new_segment(sendgrid_emulator)
    capsys.readouterr()
    result = refresher(sendgrid_emulator, segment_id).execute(TaskRun().context())
    line = last_info_line(capsys.readouterr().out)
    requested_at = pendulum.parse(result["requested_at"])
    assert isinstance(requested_at, pendulum.DateTime)
    assert line == (
        f"Refreshed segment 'active-de' ({segment_id}): 1 refresh spent, job {result['job_id']}; "
        f"1 refresh left today; next refresh allowed at {in_zones(requested_at.add(hours=1), ZONE)}; "
        f"watermark {result['watermark']}."
    )
    assert " UTC (" in line and f" {ZONE})" in line


def test_a_skipped_refresh_ends_its_log_saying_none_was_spent_and_when_the_next_is_allowed(
    sendgrid_emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    segment_id = new_segment(sendgrid_emulator)
    _refresh_now(sendgrid_emulator, segment_id)
    last = last_refreshed_at(sendgrid_emulator, segment_id)
    sendgrid_emulator.admin.advance_clock(600)
    capsys.readouterr()
    with pytest.raises(AirflowSkipException):
        refresher(sendgrid_emulator, segment_id, "skip").execute(TaskRun().context())
    assert last_info_line(capsys.readouterr().out) == (
        f"Skipped the refresh of segment 'active-de' ({segment_id}) (hourly_spacing): none spent; "
        f"1 refresh left today; next refresh allowed at {in_zones(last.add(hours=1), ZONE)}."
    )


def test_a_refresh_resumed_after_waiting_for_the_quota_ends_its_log_with_the_summary(
    sendgrid_emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    segment_id = new_segment(sendgrid_emulator)
    _refresh_now(sendgrid_emulator, segment_id)
    sendgrid_emulator.admin.advance_clock(600)
    run, operator = TaskRun(), refresher(sendgrid_emulator, segment_id, "wait")
    with pytest.raises(TaskDeferred) as caught:
        operator.execute(run.context())
    moment = caught.value.trigger.moment
    sendgrid_emulator.admin.advance_clock((moment - sendgrid_emulator.admin.now()).total_seconds())
    capsys.readouterr()
    result = getattr(operator, caught.value.method_name)(run.context(), event=moment)
    line = last_info_line(capsys.readouterr().out)
    assert line.startswith(
        f"Refreshed segment 'active-de' ({segment_id}): 1 refresh spent, job {result['job_id']}; "
    )
    assert "0 refreshes left today; next refresh allowed at " in line  # the second of two today


def test_segment_operators_end_their_logs_saying_what_changed_or_was_found(
    sendgrid_emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    segment = create(sendgrid_emulator).execute(TaskRun().context())
    segment_id = segment["id"]
    line = last_info_line(capsys.readouterr().out)
    assert line == summaries.segment_created(segment, "created by this task")
    assert line.startswith(
        f"Segment 'active-de' ({segment_id}) created by this task; query validation VALID; "
    )
    create(sendgrid_emulator).execute(TaskRun().context())
    assert "already existed as the DAG defines it; reused" in last_info_line(capsys.readouterr().out)
    create(sendgrid_emulator, query=QUERY_DE.replace("'DE'", "'NL'"), if_exists="update").execute(
        TaskRun().context()
    )
    assert "already existed with another query; its query_dsl was updated" in last_info_line(
        capsys.readouterr().out
    )

    getter = wired(SendGridGetSegmentOperator(task_id="get", segment_id=segment_id), sendgrid_emulator)
    getter.execute(TaskRun().context())
    assert last_info_line(capsys.readouterr().out).startswith(f"Found segment 'active-de' ({segment_id}): ")
    lister = wired(SendGridListSegmentsOperator(task_id="list"), sendgrid_emulator)
    lister.execute(TaskRun().context())
    assert last_info_line(capsys.readouterr().out) == f"Found 1 segment: 'active-de' ({segment_id})."
    updater = wired(
        SendGridUpdateSegmentOperator(task_id="update", segment_id=segment_id, name="active-de-2"),
        sendgrid_emulator,
    )
    updater.execute(TaskRun().context())
    assert last_info_line(capsys.readouterr().out).startswith(
        f"Updated segment 'active-de-2' ({segment_id}): name set to 'active-de-2'; query validation VALID; "
    )
    deleter(sendgrid_emulator, segment_id).execute(TaskRun().context())
    assert last_info_line(capsys.readouterr().out) == f"Deleted segment {segment_id}."
    deleter(sendgrid_emulator, segment_id, missing_ok=True).execute(TaskRun().context())
    assert last_info_line(capsys.readouterr().out) == (
        f"Segment {segment_id} was already gone: nothing deleted (missing_ok=True)."
    )
