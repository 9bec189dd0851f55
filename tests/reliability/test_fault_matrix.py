"""Every hook method x every fault the emulator can inject, over loopback HTTP.

Idempotent calls (GET, PATCH, DELETE, sync and async) must succeed within the retry budget and
wait exactly as long as SendGrid asked (the injected sleep records the wait). Calls that must not
be repeated (the create/Single Send/contacts writes and the schedule PUT) are sent exactly once
and raise a typed error, except after a 429: SendGrid did nothing, so they wait it out and go
again. The refresh's 429 is its quota: raised at once. After each case the emulator's state says
how many segments, refreshes, Single Sends and schedules exist: one where the server applied the
request, none where it did not. An answer that drips in (each piece within the read timeout, the
whole long after it) is cut off at the connection's timeout like one that never comes; hostile
wait headers are capped at a day and raised as typed errors.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from airflow_provider_sgseg.exceptions import (
    SendGridError,
    SendGridNotFoundError,
    SendGridRateLimitError,
    SendGridResponseError,
    SendGridServerError,
    SendGridTransportError,
)
from airflow_provider_sgseg.hooks import marketing
from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
from airflow_provider_sgseg.rules.requests import Call, GetSingleSendStats, ListSingleSendStats

from .conftest import (
    ALL_CONTACTS,
    FAST_CONN_ID,
    FIXED_NOW,
    SEGMENTS,
    SINGLE_SENDS,
    Sleeps,
    armed_faults,
    ready_single_send,
    record_faults,
)

# ----------------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Fault:
    """One misbehaviour, how an idempotent call should wait for it, and what a one-shot call raises."""

    name: str
    spec: dict[str, Any]  # arguments of EmulatorAdmin.add_fault
    wait: float  # the wait an idempotent call must take before its second attempt
    error: type[SendGridError]  # what a call that is never repeated raises
    applied: bool  # the server applied the request before misbehaving (when="after")
    short_timeout: bool = False


BACKOFF = 1.0  # RetryPolicy(initial_wait=1, jitter=0): the first backoff

FAULTS = [
    Fault(
        "429-reset-epoch",
        {"kind": "status", "status": 429, "headers": {"X-RateLimit-Reset": str(int(FIXED_NOW) + 7)}},
        7.0,
        SendGridRateLimitError,
        applied=False,
    ),
    Fault(
        "429-reset-seconds",
        {"kind": "status", "status": 429, "headers": {"X-RateLimit-Reset": "5"}},
        5.0,
        SendGridRateLimitError,
        applied=False,
    ),
    Fault(
        "429-retry-after",
        {"kind": "status", "status": 429, "headers": {"Retry-After": "3"}},
        3.0,
        SendGridRateLimitError,
        applied=False,
    ),
    *(
        Fault(str(code), {"kind": "status", "status": code}, BACKOFF, SendGridServerError, applied=False)
        for code in (500, 502, 503, 504)
    ),
    Fault("drop-before", {"kind": "drop"}, BACKOFF, SendGridTransportError, applied=False),
    Fault("drop-after", {"kind": "drop", "when": "after"}, BACKOFF, SendGridTransportError, applied=True),
    Fault(
        "read-timeout",
        # The answer is held back three times longer than the connection's read timeout.
        {"kind": "delay", "seconds": 1.5, "when": "after"},
        BACKOFF,
        SendGridTransportError,
        applied=True,
        short_timeout=True,
    ),
    Fault(
        "slow-drip",
        # The real answer, 8 bytes every 0.3 s: each read within the 0.5 s timeout, the whole after it.
        {"kind": "drip", "seconds": 0.3},
        BACKOFF,
        SendGridTransportError,
        applied=True,
        short_timeout=True,
    ),
    Fault(
        "malformed-json", {"kind": "malformed", "when": "after"}, BACKOFF, SendGridResponseError, applied=True
    ),
    Fault(
        "empty-body", {"kind": "status", "status": 200, "when": "after"}, BACKOFF, SendGridResponseError, True
    ),
]

# ---------------------------------------------------------------------------------- methods


@dataclass
class World:
    """What exists on the emulator before the call under test."""

    segment_id: str = ""
    single_send_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    name: str
    http_method: str
    path: Callable[[World], str]  # regex of the request under test
    call: Callable[[SendGridMarketingHook, World], Any]  # may return a coroutine
    check: Callable[[Any, World, SendGridMarketingHook], None]  # the result of a success
    repeatable: bool  # the hook may send it again
    effect: str | None = None  # the state counter a one-shot call changes (None: none to read)
    needs_send: bool = False
    prepare: Callable[[SendGridMarketingHook, World, EmulatorHandle], None] | None = None


def _segment_path(world: World) -> str:
    return f"^{re.escape(SEGMENTS)}/{world.segment_id}$"


def _send_path(world: World) -> str:
    return f"^{re.escape(SINGLE_SENDS)}/{world.single_send_id}$"


def _check_listed(result: Any, world: World, _: SendGridMarketingHook) -> None:
    assert [segment["id"] for segment in result] == [world.segment_id]


def _check_segment(result: Any, world: World, _: SendGridMarketingHook) -> None:
    assert result["id"] == world.segment_id
    assert result["query_dsl"] == ALL_CONTACTS


def _check_updated(result: Any, world: World, clean: SendGridMarketingHook) -> None:
    assert result["name"] == "renamed by the matrix"
    assert clean.get_segment(world.segment_id)["name"] == "renamed by the matrix"


def _check_deleted(result: Any, world: World, clean: SendGridMarketingHook) -> None:
    assert result is None
    assert clean.list_segments() == []


def _check_send(result: Any, world: World, _: SendGridMarketingHook) -> None:
    assert result["id"] == world.single_send_id


def _check_found_send(result: Any, world: World, _: SendGridMarketingHook) -> None:
    assert [send["id"] for send in result] == [world.single_send_id]


def _check_exists(result: Any, world: World, _: SendGridMarketingHook) -> None:
    assert result is True


def _never(result: Any, world: World, _: SendGridMarketingHook) -> None:
    raise AssertionError(f"a one-shot call must not succeed under this fault, got {result!r}")


METHODS = [
    Method(
        "list_segments",
        "GET",
        lambda w: f"^{re.escape(SEGMENTS)}$",
        lambda h, w: h.list_segments(),
        _check_listed,
        True,
    ),
    Method(
        "get_segment", "GET", _segment_path, lambda h, w: h.get_segment(w.segment_id), _check_segment, True
    ),
    Method(
        "update_segment",
        "PATCH",
        _segment_path,
        lambda h, w: h.update_segment(w.segment_id, name="renamed by the matrix"),
        _check_updated,
        True,
    ),
    Method(
        "delete_segment",
        "DELETE",
        _segment_path,
        lambda h, w: h.delete_segment(w.segment_id),
        _check_deleted,
        True,
    ),
    Method(
        "find_segments_by_name",
        "GET",
        lambda w: f"^{re.escape(SEGMENTS)}$",
        lambda h, w: h.find_segments_by_name("matrix audience"),
        _check_listed,
        True,
    ),
    Method(
        "segment_exists",
        "GET",
        lambda w: f"^{re.escape(SEGMENTS)}$",
        lambda h, w: h.segment_exists(w.segment_id),
        _check_exists,
        True,
    ),
    Method(
        "list_single_sends",
        "GET",
        lambda w: f"^{re.escape(SINGLE_SENDS)}$",
        lambda h, w: h.list_single_sends(),
        _check_found_send,
        True,
        needs_send=True,
    ),
    Method(
        "get_single_send",
        "GET",
        _send_path,
        lambda h, w: h.get_single_send(w.single_send_id),
        _check_send,
        True,
        needs_send=True,
    ),
    Method(
        "find_single_sends_by_name",
        "GET",
        lambda w: f"^{re.escape(SINGLE_SENDS)}$",
        lambda h, w: h.find_single_sends_by_name("matrix send"),
        _check_found_send,
        True,
        needs_send=True,
    ),
    Method(
        "aget_segment", "GET", _segment_path, lambda h, w: h.aget_segment(w.segment_id), _check_segment, True
    ),
    Method(
        "alist_segments",
        "GET",
        lambda w: f"^{re.escape(SEGMENTS)}$",
        lambda h, w: h.alist_segments(),
        _check_listed,
        True,
    ),
    Method(
        "create_segment",
        "POST",
        lambda w: f"^{re.escape(SEGMENTS)}$",
        lambda h, w: h.create_segment("second audience", ALL_CONTACTS),
        _never,
        False,
        effect="segments",
    ),
    Method(
        "refresh_segment",
        "POST",
        lambda w: f"^{re.escape(SEGMENTS)}/refresh/{w.segment_id}$",
        lambda h, w: h.refresh_segment(w.segment_id, "America/Chicago"),
        _never,
        False,
        effect="refreshes",
    ),
    Method(
        "create_single_send",
        "POST",
        lambda w: f"^{re.escape(SINGLE_SENDS)}$",
        lambda h, w: h.create_single_send("second send", segment_ids=[w.segment_id]),
        _never,
        False,
        effect="single_sends",
    ),
    Method(
        "schedule_single_send",
        "PUT",
        lambda w: f"^{re.escape(SINGLE_SENDS)}/{w.single_send_id}/schedule$",
        lambda h, w: h.schedule_single_send(w.single_send_id, "now"),
        _never,
        False,
        effect="schedules",
        needs_send=True,
    ),
]


# ----------------------------------------------------------------- Single Send stats methods
# A draft has no stats: each read answers an empty page, which the checks hold it to.

STATS = "/v3/marketing/stats/singlesends"
STATS_DAY = "2026-12-01"


def _stats_path(world: World) -> str:
    return f"^{re.escape(STATS)}/{world.single_send_id}$"


def _check_no_stats(result: Any, world: World, _: SendGridMarketingHook) -> None:
    assert result == []


def _check_csv_header(result: Any, world: World, _: SendGridMarketingHook) -> None:
    assert result.splitlines()[0].startswith("Single Send ID,")


def _stats_request(world: World) -> GetSingleSendStats:
    return GetSingleSendStats(world.single_send_id, STATS_DAY, STATS_DAY)


METHODS += [
    Method(
        "aget_single_send",
        "GET",
        _send_path,
        lambda h, w: h.aget_single_send(w.single_send_id),
        _check_send,
        True,
        needs_send=True,
    ),
    Method(
        "list_single_send_stats",
        "GET",
        lambda w: f"^{re.escape(STATS)}$",
        lambda h, w: h.list_single_send_stats([w.single_send_id]),
        _check_no_stats,
        True,
        needs_send=True,
    ),
    Method(
        "stats_pages",
        "GET",
        lambda w: f"^{re.escape(STATS)}$",
        lambda h, w: list(h.stats_pages(ListSingleSendStats([w.single_send_id]))),
        _check_no_stats,
        True,
        needs_send=True,
    ),
    Method(
        "get_single_send_stats",
        "GET",
        _stats_path,
        lambda h, w: h.get_single_send_stats(w.single_send_id, start_date=STATS_DAY, end_date=STATS_DAY),
        _check_no_stats,
        True,
        needs_send=True,
    ),
    Method(
        "aget_single_send_stats",
        "GET",
        _stats_path,
        lambda h, w: h.aget_single_send_stats(_stats_request(w)),
        _check_no_stats,
        True,
        needs_send=True,
    ),
    Method(
        "export_single_send_stats",
        "GET",
        lambda w: f"^{re.escape(STATS)}/export$",
        lambda h, w: h.export_single_send_stats([w.single_send_id]),
        _check_csv_header,
        True,
        needs_send=True,
    ),
    Method(
        "get_single_send_link_stats",
        "GET",
        lambda w: f"^{re.escape(STATS)}/{w.single_send_id}/links$",
        lambda h, w: h.get_single_send_link_stats(w.single_send_id),
        _check_no_stats,
        True,
        needs_send=True,
    ),
]


# ------------------------------------------------------------------------- contacts methods

CONTACTS = "/v3/marketing/contacts"
FIELD_DEFINITIONS = "/v3/marketing/field_definitions"
LISTS = "/v3/marketing/lists"
EXPORTS = f"{CONTACTS}/exports"
IMPORTS = f"{CONTACTS}/imports"
MATRIX_CONTACT = b'{"contacts":[{"email":"matrix@example.com"}]}'


def _call(clean: SendGridMarketingHook, method: str, path: str, body: Any = None) -> Any:
    """A request the hook has no method for (set-up and inspection only)."""
    return clean._request(Call(method, path, json=body))


def _with_list(clean: SendGridMarketingHook, world: World, _: EmulatorHandle) -> None:
    world.extra["list_id"] = _call(clean, "POST", LISTS, {"name": "matrix list"})["id"]


def _with_upsert_job(clean: SendGridMarketingHook, world: World, _: EmulatorHandle) -> None:
    world.extra["job_id"] = clean.upsert_contacts(MATRIX_CONTACT)


def _with_export(clean: SendGridMarketingHook, world: World, _: EmulatorHandle) -> None:
    world.extra["export_id"] = clean.start_contacts_export(segment_ids=[world.segment_id])


def _upserts_apply_at_once(clean: SendGridMarketingHook, world: World, emulator: EmulatorHandle) -> None:
    emulator.admin.configure(upsert_delay=0)  # an applied upsert shows in the contact count


def _check_fields(result: Any, world: World, _: SendGridMarketingHook) -> None:
    assert {field["name"] for field in result["reserved_fields"]} >= {"email", "first_name"}


def _check_job(result: Any, world: World, _: SendGridMarketingHook) -> None:
    assert result["id"] == world.extra["job_id"] and result["job_type"] == "upsert"


def _check_export(result: Any, world: World, _: SendGridMarketingHook) -> None:
    assert result["id"] == world.extra["export_id"] and result["status"] == "pending"


def _check_exports_listed(result: Any, world: World, _: SendGridMarketingHook) -> None:
    assert [export["id"] for export in result] == [world.extra["export_id"]]


def _check_lists(result: Any, world: World, _: SendGridMarketingHook) -> None:
    assert result == {world.extra["list_id"]}


def _job_path(world: World) -> str:
    return f"^{re.escape(IMPORTS)}/{world.extra['job_id']}$"


def _export_path(world: World) -> str:
    return f"^{re.escape(EXPORTS)}/{world.extra['export_id']}$"


METHODS += [
    Method(
        "get_field_definitions",
        "GET",
        lambda w: f"^{re.escape(FIELD_DEFINITIONS)}$",
        lambda h, w: h.get_field_definitions(),
        _check_fields,
        True,
    ),
    Method(
        "list_ids",
        "GET",
        lambda w: f"^{re.escape(LISTS)}$",
        lambda h, w: h.list_ids(),
        _check_lists,
        True,
        prepare=_with_list,
    ),
    Method(
        "get_import_status",
        "GET",
        _job_path,
        lambda h, w: h.get_import_status(w.extra["job_id"]),
        _check_job,
        True,
        prepare=_with_upsert_job,
    ),
    Method(
        "aget_import_status",
        "GET",
        _job_path,
        lambda h, w: h.aget_import_status(w.extra["job_id"]),
        _check_job,
        True,
        prepare=_with_upsert_job,
    ),
    Method(
        "get_export_status",
        "GET",
        _export_path,
        lambda h, w: h.get_export_status(w.extra["export_id"]),
        _check_export,
        True,
        prepare=_with_export,
    ),
    Method(
        "aget_export_status",
        "GET",
        _export_path,
        lambda h, w: h.aget_export_status(w.extra["export_id"]),
        _check_export,
        True,
        prepare=_with_export,
    ),
    Method(
        "list_contact_exports",
        "GET",
        lambda w: f"^{re.escape(EXPORTS)}$",
        lambda h, w: h.list_contact_exports(),
        _check_exports_listed,
        True,
        prepare=_with_export,
    ),
    Method(
        "create_field_definition",
        "POST",
        lambda w: f"^{re.escape(FIELD_DEFINITIONS)}$",
        lambda h, w: h.create_field_definition("matrix_field", "Text"),
        _never,
        False,
        effect="fields",
    ),
    Method(
        "upsert_contacts",
        "PUT",
        lambda w: f"^{re.escape(CONTACTS)}$",
        lambda h, w: h.upsert_contacts(MATRIX_CONTACT),
        _never,
        False,
        effect="contacts",
        prepare=_upserts_apply_at_once,
    ),
    Method(
        "start_contacts_import",
        "PUT",
        lambda w: f"^{re.escape(IMPORTS)}$",
        lambda h, w: h.start_contacts_import(["_rf2_T"], []),
        _never,
        False,  # an import job waiting for its file leaves nothing countable: no effect to read
    ),
    Method(
        "start_contacts_export",
        "POST",
        lambda w: f"^{re.escape(EXPORTS)}$",
        lambda h, w: h.start_contacts_export(segment_ids=[w.segment_id]),
        _never,
        False,
        effect="exports",
    ),
]

# SendGrid's answers to refresh and schedule may carry no body; an empty 2xx is their success.
EMPTY_IS_SUCCESS = {"refresh_segment", "schedule_single_send"}
# The refresh's 429 is its quota (a day, not seconds): the one write that does not wait a 429 out.
QUOTA_429 = {"refresh_segment"}


def snapshot(clean: SendGridMarketingHook, emulator: EmulatorHandle) -> dict[str, int]:
    """How many of each thing that costs something exist on the server."""
    segments = clean.list_segments()
    return {
        "segments": len(segments),
        "refreshes": sum(int(clean.get_segment(s["id"])["refreshes_used"]) for s in segments),
        "single_sends": len(clean.find_single_sends_by_name("matrix send"))
        + len(clean.find_single_sends_by_name("second send")),
        "schedules": len(emulator.admin.sends()),
        "fields": len(clean.get_field_definitions()["custom_fields"]),
        "contacts": int(_call(clean, "GET", f"{CONTACTS}/count")["contact_count"]),
        "exports": len(clean.list_contact_exports()),
    }


_HOOKS: dict[tuple[str, str], SendGridMarketingHook] = {}


def hook_under_test(conn_id: str, sleeps: Sleeps, max_attempts: int = 3) -> SendGridMarketingHook:
    """One hook per connection for the module (a new httpx client per case costs ~50 ms), given
    this case's recording retry policy."""
    key = (conn_id, os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"])
    hook = _HOOKS.get(key)
    if hook is None:
        hook = _HOOKS[key] = SendGridMarketingHook(conn_id)
    hook.retry_policy = sleeps.policy(max_attempts)
    return hook


def _run(call: Any) -> Any:
    if asyncio.iscoroutine(call):

        async def with_cleanup() -> Any:
            try:
                return await call
            finally:
                await marketing.aclose_shared_clients()

        return asyncio.run(with_cleanup())
    return call


def _prepare(method: Method, clean: SendGridMarketingHook, emulator: EmulatorHandle) -> World:
    world = World(segment_id=clean.create_segment("matrix audience", ALL_CONTACTS)["id"])
    if method.needs_send:
        world.single_send_id = ready_single_send(clean, "matrix send", world.segment_id)["id"]
    if method.prepare is not None:
        method.prepare(clean, world, emulator)
    return world


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_fault(
    method: Method,
    fault: Fault,
    emulator: EmulatorHandle,
    clean_hook: SendGridMarketingHook,
    sleeps: Sleeps,
) -> None:
    world = _prepare(method, clean_hook, emulator)
    before = {
        "segments": 1,
        "refreshes": 0,
        "single_sends": int(method.needs_send),
        "schedules": 0,
        "fields": 0,
        "contacts": 0,
        "exports": 0,
    }
    logged_before = len(emulator.admin.requests())
    emulator.admin.add_fault(method=method.http_method, path=method.path(world), **fault.spec)
    hook = hook_under_test(FAST_CONN_ID if fault.short_timeout else "sendgrid_default", sleeps)

    outcome: Any
    try:
        outcome = _run(method.call(hook, world))
    except SendGridError as error:
        outcome = error

    new_requests = emulator.admin.requests()[logged_before:]
    sent = [
        entry
        for entry in new_requests
        if entry["method"] == method.http_method and re.search(method.path(world), entry["path"])
    ]
    assert armed_faults(emulator) == [], "the fault was never triggered"
    assert emulator.api_key not in f"{outcome!s} {outcome!r}"
    assert record_faults(new_requests) == 1
    after = snapshot(clean_hook, emulator)

    if method.repeatable:
        if method.name == "delete_segment" and fault.name in ("empty-body", "slow-drip"):
            # SendGrid's DELETE answers 202 with no body: an empty 2xx is its success (and an
            # empty body has nothing to drip).
            assert outcome is None and after["segments"] == 0
            assert len(sent) == 1 and sleeps.seconds == []
            return
        if method.name == "delete_segment" and fault.applied:
            # The first DELETE was applied but its answer lost; the retry finds nothing to delete.
            # The segment is gone (the goal); the hook reports the 404 (see docs/reliability.md).
            assert isinstance(outcome, SendGridNotFoundError), outcome
            assert after["segments"] == 0
        else:
            assert not isinstance(outcome, BaseException), (
                f"{method.name} failed under {fault.name}: {outcome}"
            )
            method.check(outcome, world, clean_hook)
        assert len(sent) == 2, sent
        assert sleeps.seconds == [fault.wait]
        return

    expected = dict(before)
    if fault.name.startswith("429") and method.name not in QUOTA_429:
        # SendGrid did nothing: the write waits out the named wait and goes again, once.
        assert not isinstance(outcome, BaseException), f"{method.name} failed under {fault.name}: {outcome}"
        assert len(sent) == 2, sent
        assert sleeps.seconds == [fault.wait]
        if method.effect is not None:
            expected[method.effect] += 1
        assert after == expected
        return

    # Sent once, never retried, and nothing slept.
    assert len(sent) == 1, sent
    assert sleeps.seconds == []
    if fault.name == "empty-body" and method.name in EMPTY_IS_SUCCESS:
        assert outcome == {}
    else:
        assert isinstance(outcome, fault.error), outcome
        assert outcome.method == method.http_method
        if isinstance(outcome, SendGridRateLimitError):
            assert outcome.reset_at == datetime.datetime.fromtimestamp(
                FIXED_NOW + fault.wait, tz=datetime.timezone.utc
            )
    if method.effect is not None:
        expected[method.effect] += 1 if fault.applied else 0
    assert after == expected


@pytest.mark.parametrize("method", [m for m in METHODS if m.repeatable], ids=lambda m: m.name)
def test_reset_beyond_max_wait_gives_up_at_once_with_reset_at(
    method: Method, emulator: EmulatorHandle, clean_hook: SendGridMarketingHook, sleeps: Sleeps
) -> None:
    world = _prepare(method, clean_hook, emulator)
    emulator.admin.add_fault(
        "status",
        method=method.http_method,
        path=method.path(world),
        status=429,
        headers={"X-RateLimit-Reset": str(int(FIXED_NOW) + 600)},
    )
    hook = hook_under_test("sendgrid_default", sleeps)
    with pytest.raises(SendGridRateLimitError) as raised:
        _run(method.call(hook, world))

    assert raised.value.reset_at == datetime.datetime.fromtimestamp(FIXED_NOW + 600, tz=datetime.timezone.utc)
    assert sleeps.seconds == []  # a task does not sit out ten minutes inside the hook
    sent = [
        e
        for e in emulator.admin.requests(method=method.http_method)
        if re.search(method.path(world), e["path"])
    ]
    assert len(sent) == 1
    record_faults(sent)


HOSTILE_WAITS = [
    {"Retry-After": "1e20"},
    {"Retry-After": "inf"},
    {"Retry-After": "99999999999"},
    {"X-RateLimit-Reset": "1e300"},
    {"X-RateLimit-Reset": "inf"},
]


@pytest.mark.parametrize("headers", HOSTILE_WAITS, ids=lambda h: "-".join(f"{k}={v}" for k, v in h.items()))
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_a_hostile_wait_header_is_capped_at_a_day_and_raised_typed(
    method: Method,
    headers: dict[str, str],
    emulator: EmulatorHandle,
    clean_hook: SendGridMarketingHook,
    sleeps: Sleeps,
) -> None:
    world = _prepare(method, clean_hook, emulator)
    logged_before = len(emulator.admin.requests())
    emulator.admin.add_fault(
        "status", method=method.http_method, path=method.path(world), status=429, headers=headers
    )
    hook = hook_under_test("sendgrid_default", sleeps)
    with pytest.raises(SendGridRateLimitError) as raised:
        _run(method.call(hook, world))

    # SendGrid's quotas reset within a day: no wait it names is believed beyond that, and a day
    # is longer than any task sits out inside the hook.
    day_later = datetime.datetime.fromtimestamp(FIXED_NOW + 86400, tz=datetime.timezone.utc)
    assert raised.value.reset_at == day_later
    assert sleeps.seconds == []
    sent = [
        e
        for e in emulator.admin.requests()[logged_before:]
        if e["method"] == method.http_method and re.search(method.path(world), e["path"])
    ]
    assert len(sent) == 1
    assert record_faults(sent) == 1


@pytest.mark.parametrize("fault", [f for f in FAULTS if not f.short_timeout], ids=lambda f: f.name)
def test_test_connection_reports_instead_of_retrying(
    fault: Fault, emulator: EmulatorHandle, sleeps: Sleeps
) -> None:
    emulator.admin.add_fault(method="GET", path=f"^{re.escape(SEGMENTS)}$", **fault.spec)
    ok, message = hook_under_test("sendgrid_default", sleeps).test_connection()

    sent = emulator.admin.requests(method="GET")
    assert len(sent) == 1 and sleeps.seconds == []
    record_faults(sent)
    assert emulator.api_key not in message
    if fault.name == "empty-body":
        assert ok, message  # the key was accepted; the list was not needed
    else:
        assert not ok and message, message


def test_retry_budget_is_respected_when_every_attempt_fails(
    emulator: EmulatorHandle, clean_hook: SendGridMarketingHook, sleeps: Sleeps
) -> None:
    world = World(segment_id=clean_hook.create_segment("matrix audience", ALL_CONTACTS)["id"])
    emulator.admin.add_fault("status", method="GET", path=_segment_path(world), status=503, times=10)
    hook = hook_under_test("sendgrid_default", sleeps, max_attempts=4)
    with pytest.raises(SendGridServerError) as raised:
        hook.get_segment(world.segment_id)

    assert raised.value.status_code == 503
    sent = emulator.admin.requests(method="GET", path_prefix=f"{SEGMENTS}/{world.segment_id}")
    assert len(sent) == 4
    assert sleeps.seconds == [1.0, 2.0, 4.0]  # exponential backoff between the four attempts
    record_faults(sent)
    emulator.admin.clear_faults()


def test_every_api_method_of_the_hook_is_in_the_matrix() -> None:
    # test_connection: its own test. The file transfers talk to the pre-signed URLs SendGrid hands
    # out, not the API: test_contacts_retries.py puts them under the same faults. run/arun are
    # what every named method sends its typed request through, so the rows below cover them.
    plumbing = {
        "run",
        "arun",
        "get_conn",
        "aget_conn",
        "close",
        "test_connection",
        "upload_contacts_file",
        "download_export_file",
    }
    api_methods = {
        name
        for name, value in vars(SendGridMarketingHook).items()
        if callable(value) and not name.startswith("_") and name not in plumbing
    }
    assert api_methods == {method.name for method in METHODS}
