"""Pure rules for waiting on a segment: "is it populated?" and "when do we look again?".

The sensor (poke and reschedule modes) and the trigger (deferrable mode) both turn a Get Segment
body into the waiting engine's outcome with :func:`segment_outcome` and pace themselves with
:func:`airflow_provider_sgseg.rules.waiting.step`, so the two ways of waiting can never
disagree. No I/O here.

SendGrid refreshes a segment's ``contacts_count`` and sample about hourly (backing off to
24 h) and announces the next refresh in ``next_sample_update``. A segment counts as populated
when its query is ``VALID``, its sample is newer than a watermark (the moment we started
caring, e.g. the sample time before a manual refresh), and the count reaches a minimum.
"""

from __future__ import annotations

import datetime
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pendulum
from airflow.exceptions import AirflowProviderDeprecationWarning

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.rules import pacing, validation
from airflow_provider_sgseg.rules.instants import parse_instant

if TYPE_CHECKING:
    from airflow_provider_sgseg.rules import waiting

VerdictStatus = Literal["populated", "waiting", "invalid"]

DEFAULT_POLL_FLOOR = 60.0
DEFAULT_POLL_CEILING = 3600.0
DEFAULT_POLL_INTERVAL = 300.0
# SendGrid's next_sample_update is an estimate; looking a little after it avoids a wasted GET
# that still shows the old sample.
DEFAULT_POLL_SLACK = 30.0
# How a segment wait paces itself unless the DAG says otherwise (the sensor's defaults).
SEGMENT_WAIT_BOUNDS = pacing.WaitBounds(
    DEFAULT_POLL_FLOOR, DEFAULT_POLL_CEILING, DEFAULT_POLL_INTERVAL, DEFAULT_POLL_SLACK
)

# Where the refresh operator's XCom holds the watermark, in order. ``sample_updated_at_before``:
# its name in 0.2.0, still read from XComs written then.
_WATERMARK_KEYS = ("watermark", "sample_updated_at_before", "requested_at")
# Strings a template renders when the upstream value was absent (e.g. an empty XCom).
_EMPTY_TEMPLATE_RENDERINGS = frozenset({"", "none", "null"})


@dataclass(frozen=True)
class Verdict:
    """The answer for one look at a segment, with a sentence a person can read in the task log."""

    status: VerdictStatus
    reason: str
    contacts_count: int | None
    sample_updated_at: pendulum.DateTime | None

    @property
    def populated(self) -> bool:
        """Whether the verdict is "populated"."""
        return self.status == "populated"


def watermark_from(value: object) -> pendulum.DateTime | None:
    """Turn the sensor's ``watermark`` argument into an instant.

    Accepts ``None`` (no watermark given), an ISO string, a ``datetime``, or the refresh
    operator's XCom dict (its ``watermark``, else its ``requested_at``; a refresh
    skipped for quota with neither is no watermark), also when a template rendered that dict to
    text. Anything else is a :class:`SendGridInputError`.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _EMPTY_TEMPLATE_RENDERINGS:
            return None
        if text.startswith("{"):
            return watermark_from(_dict_from_text(text))
        parsed = parse_instant(text)
        if parsed is None:
            raise SendGridInputError("watermark", value, "must be an ISO 8601 timestamp")
        return parsed
    if isinstance(value, datetime.datetime):
        return parse_instant(value)
    if isinstance(value, Mapping):
        for key in _WATERMARK_KEYS:
            if value.get(key):
                parsed = parse_instant(value[key])
                if parsed is None:
                    raise SendGridInputError(
                        f"watermark[{key!r}]", value[key], "must be an ISO 8601 timestamp"
                    )
                return parsed
        if value.get("skipped"):
            return None
        raise SendGridInputError(
            "watermark",
            value,
            "a dict must be the refresh operator's XCom, with watermark or requested_at",
        )
    raise SendGridInputError(
        "watermark", value, "must be an ISO 8601 string, a datetime or the refresh operator's XCom"
    )


def _dict_from_text(text: str) -> object:
    return validation.rendered_literal("watermark", text, "text starting with '{' must be a dict")


def verdict(segment: Mapping[str, Any], watermark: datetime.datetime | None, min_contacts: int) -> Verdict:
    """Decide whether ``segment`` (a Get Segment body) is populated.

    Populated means: ``status.query_validation`` is ``VALID``, ``sample_updated_at`` is after
    ``watermark`` (any sample will do when there is no watermark), and ``contacts_count`` is at
    least ``min_contacts``. ``INVALID`` is final; everything else is "waiting".
    """
    validation, error_message = query_validation(segment)
    count = segment.get("contacts_count")
    contacts_count = count if isinstance(count, int) and not isinstance(count, bool) else None
    sample_at = parse_instant(segment.get("sample_updated_at"))
    mark = parse_instant(watermark)

    def decide(verdict_status: VerdictStatus, reason: str) -> Verdict:
        return Verdict(verdict_status, reason, contacts_count, sample_at)

    if validation == "INVALID":
        return decide("invalid", f"SendGrid rejected the segment's query_dsl as INVALID: {error_message}")
    if validation != "VALID":
        return decide("waiting", f"query validation is {validation or 'not reported yet'}")
    if sample_at is None:
        return decide("waiting", "SendGrid has not produced a sample yet (no sample_updated_at)")
    seen = f"sample of {sample_at.isoformat()} (watermark {mark.isoformat() if mark else 'none'})"
    if mark is not None and sample_at <= mark:
        return decide("waiting", f"{seen} is not newer than the watermark; waiting for the next sample")
    if contacts_count is None:
        return decide("waiting", f"{seen} has no contacts_count")
    if contacts_count < min_contacts:
        return decide(
            "waiting",
            f"fresh {seen} counts {contacts_count} contacts, fewer than min_contacts={min_contacts}",
        )
    return decide("populated", f"fresh {seen} counts {contacts_count} contacts (min_contacts={min_contacts})")


def query_validation(segment: Mapping[str, Any]) -> tuple[str, str]:
    """The one reading of SendGrid's query check: ``status.query_validation`` upper-cased
    (``"VALID"``, ``"INVALID"``, ``"PENDING"``...; ``""`` when not reported) and, for INVALID,
    ``status.error_message``."""
    reported = segment.get("status")
    status: Mapping[str, Any] = reported if isinstance(reported, Mapping) else {}
    state = str(status.get("query_validation") or "").upper()
    return state, str(status.get("error_message") or "no error message given")


def validation_outcome(segment: Mapping[str, Any]) -> waiting.Outcome:
    """The waiting engine's input for one look at a segment's query check: VALID (or not reported:
    nothing to wait for) -> ``Finished(segment)``, INVALID -> ``Rejected(SendGrid's message)``,
    anything else -> ``Pending``."""
    from airflow_provider_sgseg.rules import waiting

    state, message = query_validation(segment)
    if state == "VALID":
        return waiting.Finished(segment, "query validation is VALID")
    if state == "":
        return waiting.Finished(segment, "SendGrid reports no status.query_validation")
    if state == "INVALID":
        return waiting.Rejected(message)
    return waiting.Pending(f"query validation is {state}")


def waiting_summary(
    result: Verdict,
    watermark: datetime.datetime | None,
    polled_at: datetime.datetime,
    delay: float,
    deadline: Deadline | None = None,
) -> str:
    """The log line for a poll that found the segment not populated yet."""
    mark = parse_instant(watermark)
    sample_at = result.sample_updated_at
    return (
        f"not populated yet: {result.reason}. contacts_count={result.contacts_count}, "
        f"sample_updated_at={sample_at.isoformat() if sample_at else None}, "
        f"watermark={mark.isoformat() if mark else None}; "
        f"{next_poll_text(polled_at, delay, deadline)}"
    )


@dataclass(frozen=True)
class Deadline:
    """When a wait must end: ``at``, set by ``name`` (``timeout``, ``execution_timeout``...);
    ``polls_at_it``: whether the wait still takes a last look then (the sensor's poke loop does
    at its own ``timeout``; a task killed by ``execution_timeout`` or a trigger at its deadline
    does not)."""

    at: datetime.datetime
    name: str
    polls_at_it: bool = False


def next_poll_text(polled_at: datetime.datetime, delay: float, deadline: Deadline | None = None) -> str:
    """When the next poll really is: ``next poll at T (in N s)``, or, when the ``deadline`` comes
    first, the last poll it allows or that no poll comes before it."""
    next_poll = polled_at + datetime.timedelta(seconds=delay)
    if deadline is None or next_poll < deadline.at:
        return f"next poll at {next_poll.isoformat()} (in {delay:.0f} s)"
    left = max((deadline.at - polled_at).total_seconds(), 0.0)
    if deadline.polls_at_it:
        return f"last poll at {deadline.at.isoformat()} (in {left:.0f} s), when {deadline.name} runs out"
    later = "" if next_poll == deadline.at else f" (the next one would be at {next_poll.isoformat()})"
    return (
        f"no further poll: {deadline.name} ends the wait at {deadline.at.isoformat()} "
        f"(in {left:.0f} s){later}"
    )


def next_poll_delay(
    segment: Mapping[str, Any], now: datetime.datetime, bounds: pacing.WaitBounds = SEGMENT_WAIT_BOUNDS
) -> float:
    """Deprecated (0.2.0's ``population.next_poll_delay``): use
    :func:`airflow_provider_sgseg.rules.pacing.poll_delay` with the segment's
    ``next_sample_update``, as the sensor and the trigger do."""
    warnings.warn(
        "next_poll_delay is deprecated; use airflow_provider_sgseg.rules.pacing.poll_delay",
        AirflowProviderDeprecationWarning,
        stacklevel=2,
    )
    return pacing.poll_delay(parse_instant(segment.get("next_sample_update")), now, bounds)


def segment_outcome(result: Verdict, segment: Mapping[str, Any]) -> waiting.Outcome:
    """The waiting engine's input for one look: populated -> ``Finished(result)``, invalid ->
    ``Rejected``, waiting -> ``Pending`` until SendGrid's ``next_sample_update``."""
    # Imported here: DAG files import this module (the sensor's defaults) but run no wait.
    from airflow_provider_sgseg.rules import waiting

    if result.status == "populated":
        return waiting.Finished(result, result.reason)
    if result.status == "invalid":
        return waiting.Rejected(result.reason)
    return waiting.Pending(result.reason, parse_instant(segment.get("next_sample_update")))


def poll_log_line(
    segment_id: str,
    action: waiting.Wait,
    result: Verdict | None,
    watermark: datetime.datetime | None,
    now: datetime.datetime,
    deadline: Deadline | None = None,
) -> str:
    """The task log line for a poll after which the wait goes on: why, and when the next poll is
    (``result``: this poll's verdict, ``None`` when it failed; ``deadline``: when the wait must
    end, so a poll it cuts off is not announced)."""
    if action.failures or result is None:
        return f"Segment {segment_id}: {action.reason}; {next_poll_text(now, action.delay, deadline)}"
    return f"Segment {segment_id} {waiting_summary(result, watermark, now, action.delay, deadline)}"
