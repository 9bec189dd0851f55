"""Bad input, case by case: a typed error that names the value and the rule, no request when the
rule is knowable client-side, and nothing half-created on the server.

Each case runs against the emulator; the request log counts what was sent and a snapshot of the
server (segments, refreshes spent, Single Sends, schedules) is compared before and after.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from airflow_provider_sgseg.exceptions import (
    SendGridAuthError,
    SendGridConfigError,
    SendGridForbiddenError,
    SendGridInputError,
    SendGridNotFoundError,
    SendGridValidationError,
)
from airflow_provider_sgseg.hooks.marketing import RetryPolicy, SendGridMarketingHook
from airflow_provider_sgseg.operators.segments import (
    SendGridCreateSegmentOperator,
    SendGridRefreshSegmentOperator,
)
from airflow_provider_sgseg.operators.single_sends import SendGridSingleSendOperator
from airflow_provider_sgseg.version_compat import AirflowFailException, AirflowNotFoundException

from .conftest import ALL_CONTACTS, SINGLE_SENDS

UNKNOWN = "9d5e3c1a-2b4f-4c6d-8e7f-a0b1c2d3e4f5"
LISTS = ["1b2c3d4e-5f60-4718-92a3-b4c5d6e7f809", "2b2c3d4e-5f60-4718-92a3-b4c5d6e7f809"]
NAME = "bad input audience"
UNPARSEABLE = "SELEC contact_id FRM contact_data"
RULE_BREAKING = "SELECT email FROM contact_data"  # parses, but only contact_id/updated_at may be selected
ONE_SHOT = RetryPolicy(max_attempts=1)
WRONG_KEY = "SG.wrong-key-6f1d"


def uuids(count: int) -> list[str]:
    return [f"{index:08x}-0000-4000-8000-000000000000" for index in range(count)]


class RecordingTi:
    """The part of a task instance the operators touch."""

    try_number = 1

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@dataclass
class Case:
    """One bad input. ``act`` gets the world; it must raise ``error`` whose text contains ``mentions``."""

    name: str
    act: Callable[[World], Any]
    error: type[Exception]
    mentions: tuple[str, ...]
    api_requests: int = 0  # requests to /v3/ the case may send (0: refused client-side)
    posts: int | None = None  # when given, the exact number of POST/PUT requests instead
    creates_segment: bool = False  # the case creates a segment and deletes it again (see the case)
    needs_segment: bool = False
    prepare: Callable[[World], None] | None = None


@dataclass
class World:
    emulator: EmulatorHandle
    hook: SendGridMarketingHook
    monkeypatch: pytest.MonkeyPatch
    segment_id: str = ""
    ti: RecordingTi = field(default_factory=RecordingTi)

    def context(self) -> dict[str, Any]:
        return {"ti": self.ti}

    def with_connection(self, conn_id: str, **fields: Any) -> SendGridMarketingHook:
        conn = {"conn_type": "sendgrid_marketing", "host": self.emulator.base_url, **fields}
        self.monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return SendGridMarketingHook(conn_id, retry=ONE_SHOT)


def send_operator(**overrides: Any) -> SendGridSingleSendOperator:
    arguments: dict[str, Any] = {
        "task_id": "send",
        "name": "bad input send",
        "segment_ids": [UNKNOWN],
        "subject": "hi",
        "html_content": "<p>hi</p>",
        "sender_id": 1,
        "suppression_group_id": 2,
    }
    arguments.update(overrides)
    return SendGridSingleSendOperator(**arguments)


def rendered_refresh(world: World) -> Any:
    operator = SendGridRefreshSegmentOperator(
        task_id="refresh", segment_id="{{ params.segment_id }}", user_time_zone="UTC"
    )
    operator.render_template_fields({"params": {"segment_id": None}})  # type: ignore[arg-type]
    return operator.execute(world.context())  # type: ignore[arg-type]


def spend_a_refresh(world: World) -> None:
    world.hook.refresh_segment(world.segment_id, "UTC")


UUID_RULE = "36-character UUID"
IANA_RULE = "IANA time zone name"
NAME_RULE = "1..100 characters"
RENDERED_NONE = "did a template render to None?"

CASES = [
    # -- ids, zones, names and queries, refused by the validators before any request
    Case(
        "segment-id-too-short",
        lambda w: w.hook.get_segment("1234"),
        SendGridInputError,
        ("'1234'", UUID_RULE),
    ),
    Case(
        "segment-id-not-a-uuid",
        lambda w: w.hook.get_segment("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"),
        SendGridInputError,
        ("zzzzzzzz-zzzz", UUID_RULE),
    ),
    Case(
        "segment-id-rendered-none",
        lambda w: w.hook.get_segment("None"),
        SendGridInputError,
        ("'None'", RENDERED_NONE),
    ),
    Case(
        "segment-id-none",
        lambda w: w.hook.delete_segment(None),
        SendGridInputError,
        ("segment_id None", RENDERED_NONE),
    ),  # type: ignore[arg-type]
    Case(
        "time-zone-not-iana",
        lambda w: w.hook.refresh_segment(UNKNOWN, "Mars/Olympus_Mons"),
        SendGridInputError,
        ("'Mars/Olympus_Mons'", IANA_RULE),
    ),
    Case(
        "time-zone-empty",
        lambda w: w.hook.refresh_segment(UNKNOWN, ""),
        SendGridInputError,
        ("user_time_zone ''", IANA_RULE),
    ),
    Case(
        "time-zone-offset",
        lambda w: w.hook.refresh_segment(UNKNOWN, "+02:00"),
        SendGridInputError,
        ("'+02:00'", "not an offset"),
    ),
    Case(
        "name-empty",
        lambda w: w.hook.create_segment("", ALL_CONTACTS),
        SendGridInputError,
        ("segment_name ''", NAME_RULE),
    ),
    Case(
        "name-101-characters",
        lambda w: w.hook.create_segment("x" * 101, ALL_CONTACTS),
        SendGridInputError,
        ("'" + "x" * 101 + "'", NAME_RULE, "got 101"),
    ),
    Case(
        "query-empty",
        lambda w: w.hook.create_segment(NAME, ""),
        SendGridInputError,
        ("query_dsl ''", "must not be empty"),
    ),
    Case(
        "query-blank",
        lambda w: w.hook.create_segment(NAME, " \n\t"),
        SendGridInputError,
        ("query_dsl", "must not be empty"),
    ),
    Case(
        "two-parent-lists",
        lambda w: w.hook.create_segment(NAME, ALL_CONTACTS, LISTS),
        SendGridInputError,
        (LISTS[1], "at most 1 ids allowed (got 2)"),
    ),
    Case(
        "parent-list-not-a-uuid",
        lambda w: w.hook.create_segment(NAME, ALL_CONTACTS, ["newsletter"]),
        SendGridInputError,
        ("parent_list_ids 'newsletter'", "item 0", UUID_RULE),
    ),
    Case(
        "update-with-nothing-to-change",
        lambda w: w.hook.update_segment(UNKNOWN),
        SendGridInputError,
        ("update", "give a new name, a new query_dsl or both"),
    ),
    Case(
        "list-filter-51-lists",
        lambda w: w.hook.list_segments(parent_list_ids=uuids(51)),
        SendGridInputError,
        ("parent_list_ids", "at most 50 ids allowed (got 51)"),
    ),
    # -- Single Sends
    Case(
        "send-to-11-segments",
        lambda w: w.hook.create_single_send("too wide", segment_ids=uuids(11)),
        SendGridInputError,
        ("segment_ids", "at most 10 ids allowed (got 11)"),
    ),
    Case(
        "send-segment-item-not-a-uuid",
        lambda w: w.hook.create_single_send("typo", segment_ids=[UNKNOWN, "vip"]),
        SendGridInputError,
        ("segment_ids 'vip'", "item 1", UUID_RULE),
    ),
    Case(
        "send-11-categories",
        lambda w: w.hook.create_single_send("tagged", categories=[f"c{i}" for i in range(11)]),
        SendGridInputError,
        ("categories", "at most 10 allowed (got 11)"),
    ),
    Case(
        "send-at-without-offset",
        lambda w: w.hook.schedule_single_send(UNKNOWN, "2026-12-01T10:00:00"),
        SendGridInputError,
        ("send_at '2026-12-01T10:00:00'", "with an offset"),
    ),
    Case(
        "operator-no-sender",
        lambda w: send_operator(sender_id=None).execute(w.context()),
        SendGridInputError,
        ("sender_id None", "required: a positive integer id"),
    ),
    Case(
        "operator-no-unsubscribe-setting",
        lambda w: send_operator(suppression_group_id=None).execute(w.context()),
        SendGridInputError,
        ("suppression_group_id None", "give suppression_group_id or custom_unsubscribe_url"),
    ),
    Case(
        "operator-unsubscribe-url-not-http",
        lambda w: send_operator(suppression_group_id=None, custom_unsubscribe_url="ftp://x/u").execute(
            w.context()
        ),
        SendGridInputError,
        ("'ftp://x/u'", "absolute http(s) URL"),
    ),
    Case(
        "operator-no-recipients",
        lambda w: send_operator(segment_ids=None).execute(w.context()),
        SendGridInputError,
        ("send_to", "give at least one of segment_ids or list_ids"),
    ),
    Case(
        "operator-design-and-html",
        lambda w: send_operator(design_id="d-123").execute(w.context()),
        SendGridInputError,
        ("design_id 'd-123'", "not both"),
    ),
    Case(
        "operator-send-to-11-segments",
        lambda w: send_operator(segment_ids=uuids(11)).execute(w.context()),
        SendGridInputError,
        ("segment_ids", "at most 10 ids allowed (got 11)"),
    ),
    Case(
        "operator-template-rendered-none",
        rendered_refresh,
        SendGridInputError,
        ("segment_id 'None'", RENDERED_NONE),
    ),
    Case(
        "operator-unknown-if-exists-mode",
        lambda w: SendGridCreateSegmentOperator(
            task_id="c", name=NAME, query_dsl=ALL_CONTACTS, if_exists="replace"
        ),
        SendGridInputError,
        ("if_exists 'replace'", "must be one of 'reuse', 'update', 'fail'"),
    ),
    Case(
        "operator-unknown-quota-mode",
        lambda w: SendGridRefreshSegmentOperator(
            task_id="r", segment_id=UNKNOWN, user_time_zone="UTC", on_quota_exhausted="retry"
        ),
        SendGridInputError,
        ("on_quota_exhausted 'retry'", "must be one of 'fail', 'skip', 'wait'"),
    ),
    # -- connections
    Case(
        "connection-unknown",
        lambda w: SendGridMarketingHook("no_such_sendgrid").get_segment(UNKNOWN),
        AirflowNotFoundException,
        ("no_such_sendgrid", "isn't defined"),
    ),
    Case(
        "connection-without-key",
        lambda w: w.with_connection("sgseg_keyless").get_segment(UNKNOWN),
        SendGridAuthError,
        ("'sgseg_keyless' has no API key", "password field"),
    ),
    Case(
        "connection-host-with-query",
        lambda w: w.with_connection(
            "sgseg_query_host", password="SG.x", host=f"{w.emulator.base_url}/v3?on_behalf_of=sub"
        ).get_segment(UNKNOWN),
        SendGridConfigError,
        ("'sgseg_query_host'", "has a query string or fragment", "must be a SendGrid API base URL"),
    ),
    Case(
        "connection-host-with-other-path",
        lambda w: w.with_connection(
            "sgseg_path_host", password="SG.x", host=f"{w.emulator.base_url}/v3/marketing"
        ).get_segment(UNKNOWN),
        SendGridConfigError,
        ("'sgseg_path_host'", "has a path other than /v3"),
    ),
    Case(
        "connection-timeout-not-a-number",
        lambda w: w.with_connection("sgseg_slow", password="SG.x", extra={"timeout": "soon"}).get_segment(
            UNKNOWN
        ),
        SendGridInputError,
        ("timeout 'soon'", "positive number of seconds"),
    ),
    # -- rules only SendGrid can check: one request, a typed error with SendGrid's words, nothing made
    Case(
        "query-unparseable",
        lambda w: w.hook.create_segment(NAME, UNPARSEABLE),
        SendGridValidationError,
        ("query_dsl: query_dsl is not valid SQL", "HTTP 400"),
        api_requests=1,
    ),
    Case(
        # SendGrid saves the segment and marks its query INVALID. The operator fails at once
        # (no retries) naming the segment and SendGrid's reason, and deletes the segment it
        # created (issue 21: nothing half-done); its id is still in the error and in XCom.
        "operator-query-invalid",
        lambda w: SendGridCreateSegmentOperator(task_id="c", name=NAME, query_dsl=RULE_BREAKING).execute(
            w.context()
        ),
        AirflowFailException,
        ("SendGrid rejected the query of segment", "email cannot be selected"),
        posts=1,
        creates_segment=True,
    ),
    Case(
        "wrong-api-key",
        lambda w: w.with_connection("sgseg_wrong", password=WRONG_KEY).get_segment(UNKNOWN),
        SendGridAuthError,
        ("refused the API key", "HTTP 401"),
        api_requests=1,
    ),
    Case(
        "free-plan-refresh",
        lambda w: w.hook.refresh_segment(w.segment_id, "UTC"),
        SendGridForbiddenError,
        ("plan may not use this endpoint", "HTTP 403"),
        api_requests=1,
        needs_segment=True,
        prepare=lambda w: w.emulator.admin.configure(plan="free"),
    ),
    Case(
        "unknown-segment-get",
        lambda w: w.hook.get_segment(UNKNOWN),
        SendGridNotFoundError,
        (UNKNOWN, "HTTP 404"),
        api_requests=1,
    ),
    Case(
        "unknown-segment-refresh",
        lambda w: w.hook.refresh_segment(UNKNOWN, "UTC"),
        SendGridNotFoundError,
        (UNKNOWN, "HTTP 404", "Segment does not exist."),
        api_requests=1,
    ),
    Case(
        "duplicate-name",
        lambda w: w.hook.create_segment(NAME, ALL_CONTACTS),
        SendGridValidationError,
        (f"segment name '{NAME}' is already in use", "HTTP 400"),
        api_requests=1,
        needs_segment=True,
    ),
    Case(
        "operator-duplicate-name-if-exists-fail",
        lambda w: SendGridCreateSegmentOperator(
            task_id="c", name=NAME, query_dsl=ALL_CONTACTS, if_exists="fail"
        ).execute(w.context()),
        AirflowFailException,
        (f"Segment '{NAME}' already exists", "if_exists='fail'"),
        posts=0,
        needs_segment=True,
    ),
    Case(
        "schedule-draft-without-sender",
        lambda w: w.hook.schedule_single_send(
            w.hook.create_single_send("bare draft", segment_ids=[UNKNOWN])["id"]
        ),
        SendGridValidationError,
        ("email_config.sender_id", "HTTP 400"),
        posts=2,  # the draft (wanted) and the refused schedule
    ),
    Case(
        "operator-refresh-within-the-hour",
        lambda w: SendGridRefreshSegmentOperator(
            task_id="r", segment_id=w.segment_id, user_time_zone="UTC"
        ).execute(w.context()),
        AirflowFailException,
        ("Cannot refresh segment now", "hour"),
        posts=0,
        needs_segment=True,
        prepare=spend_a_refresh,
    ),
]


def test_the_table_has_at_least_25_cases() -> None:
    assert len(CASES) >= 25
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_input(
    case: Case, emulator: EmulatorHandle, clean_hook: SendGridMarketingHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(emulator=emulator, hook=clean_hook, monkeypatch=monkeypatch)
    if case.needs_segment:
        world.segment_id = clean_hook.create_segment(NAME, ALL_CONTACTS)["id"]
    if case.prepare is not None:
        case.prepare(world)
    before = _state(clean_hook, emulator)
    logged_before = len(emulator.admin.requests())

    with pytest.raises(case.error) as raised:
        case.act(world)

    message = str(raised.value)
    for words in case.mentions:
        assert words in message, f"{words!r} not in {message!r}"
    for secret in (emulator.api_key, WRONG_KEY):
        assert secret not in message
    sent = [entry for entry in emulator.admin.requests()[logged_before:] if entry["path"].startswith("/v3/")]
    if case.posts is not None:
        assert len([e for e in sent if e["method"] in ("POST", "PUT")]) == case.posts, sent
    else:
        assert len(sent) == case.api_requests, sent
    if case.prepare is not None and case.name == "free-plan-refresh":
        emulator.admin.configure(plan="paid")  # to read the state back

    after = _state(clean_hook, emulator)
    if case.creates_segment:
        invalid_id = world.ti.pushed["segment_id"]
        assert invalid_id in message
        assert [e["path"] for e in sent if e["method"] == "DELETE"] == [
            f"/v3/marketing/segments/2.0/{invalid_id}"
        ]
        assert clean_hook.find_segments_by_name(NAME) == []
    if case.name == "schedule-draft-without-sender":
        after["single_sends"] -= 1  # the draft stays a draft; nothing was scheduled
    assert after == before


def _state(hook: SendGridMarketingHook, emulator: EmulatorHandle) -> dict[str, Any]:
    """What exists on the server: segment names, refreshes spent, Single Sends, schedules."""
    segments = hook.list_segments()
    sends = emulator.admin.sends()
    return {
        "segments": sorted(segment["name"] for segment in segments),
        "refreshes": sum(int(hook.get_segment(segment["id"])["refreshes_used"]) for segment in segments),
        "single_sends": hook.get_conn().get(SINGLE_SENDS).json()["_metadata"]["count"],
        "schedules": len(sends),
    }
