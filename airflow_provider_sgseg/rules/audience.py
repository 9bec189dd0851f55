"""The pre-send gate: does every target segment look like the audience the DAG expects? No I/O.

:class:`AudienceGate` holds the rules a DAG gives :class:`SendGridSingleSendOperator` (built from
rendered arguments by :func:`audience_gate`); :func:`evaluate` applies them to SendGrid's Get
Segment body for each target segment and returns a :class:`GateVerdict` whose ``to_dict()`` is
the XCom record. Rules, each checked per segment:

* ``min_contacts`` <= ``contacts_count`` <= ``max_contacts``;
* ``sample_updated_at`` at most ``max_sample_age`` seconds before now, and newer than the
  ``watermark`` when one is given (same rule as the segment sensor's);
* ``|contacts_count - expected_contacts| <= tolerance``: an absolute number of contacts (``50``)
  or a share of the expected count (``"5%"``).

A segment without a ``contacts_count`` or ``sample_updated_at`` (not sampled yet) fails every
rule that reads it.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.rules import validation
from airflow_provider_sgseg.rules.instants import parse_instant
from airflow_provider_sgseg.rules.population import watermark_from

# Strings a template renders when the upstream value was absent.
_ABSENT = frozenset({"", "none", "null"})

# The rules that, once set by a DAG, may not render to nothing (see :func:`audience_gate`).
# ``watermark`` is read as the segment sensor reads it (nothing rendered: no watermark), and
# ``require_min_contacts`` (0.2.0) kept "nothing rendered: no check", so neither is here.
REQUIRED_WHEN_GIVEN = ("min_contacts", "max_contacts", "max_sample_age", "expected_contacts")


@dataclass(frozen=True)
class Tolerance:
    """How far a count may be from the expected one: ``value`` contacts, or ``value`` percent."""

    value: float
    relative: bool

    def allowed(self, expected: int) -> float:
        """The largest allowed difference (contacts) from ``expected``."""
        return expected * self.value / 100 if self.relative else self.value

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.relative else f"{self.value:g}"


@dataclass(frozen=True)
class AudienceGate:
    """The rules; ``None`` switches a rule off. ``expected_contacts``: one count for every
    segment, or a count per segment id. ``max_sample_age`` in seconds."""

    min_contacts: int | None = None
    max_contacts: int | None = None
    max_sample_age: float | None = None
    watermark: datetime.datetime | None = None
    expected_contacts: int | Mapping[str, int] | None = None
    tolerance: Tolerance = Tolerance(0, relative=False)

    @property
    def active(self) -> bool:
        """Whether any rule is switched on."""
        rules = (self.min_contacts, self.max_contacts, self.max_sample_age, self.watermark)
        return any(rule is not None for rule in rules) or self.expected_contacts is not None

    def expected_for(self, segment_id: str) -> int | None:
        """The expected count for ``segment_id`` (None: not given for it)."""
        if isinstance(self.expected_contacts, Mapping):
            return self.expected_contacts.get(segment_id)
        return self.expected_contacts


@dataclass(frozen=True)
class SegmentCheck:
    """One segment's numbers and the rules it broke (``failures``, empty when it passed)."""

    segment_id: str
    name: str | None
    contacts_count: int | None
    sample_updated_at: str | None
    failures: tuple[str, ...]

    def describe(self) -> str:
        """``segment 'name' (id): 1234 contacts, sampled at ...`` plus the broken rules."""
        head = (
            f"segment {self.name!r} ({self.segment_id}): {self.contacts_count} contacts, "
            f"sampled at {self.sample_updated_at}"
        )
        return f"{head}: {'; '.join(self.failures)}" if self.failures else f"{head}: passed"


@dataclass(frozen=True)
class GateVerdict:
    """The gate's answer for all target segments, evaluated at ``checked_at``."""

    checks: tuple[SegmentCheck, ...]
    checked_at: datetime.datetime
    rules: Mapping[str, Any]

    @property
    def passed(self) -> bool:
        return not any(check.failures for check in self.checks)

    def summary(self) -> str:
        """One line per segment, for the task log and the error."""
        verdict = "passed" if self.passed else "FAILED"
        lines = "\n".join(f"  - {check.describe()}" for check in self.checks)
        return (
            f"Audience gate {verdict} at {self.checked_at.isoformat()} (rules {dict(self.rules)}):\n{lines}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe record for XCom: ``{"passed", "checked_at", "rules", "segments": [...]}``."""
        return {
            "passed": self.passed,
            "checked_at": self.checked_at.isoformat(),
            "rules": dict(self.rules),
            "segments": [
                {
                    "segment_id": check.segment_id,
                    "name": check.name,
                    "contacts_count": check.contacts_count,
                    "sample_updated_at": check.sample_updated_at,
                    "failures": list(check.failures),
                }
                for check in self.checks
            ],
        }


def audience_gate(
    *,
    min_contacts: object = None,
    max_contacts: object = None,
    max_sample_age: object = None,
    watermark: object = None,
    expected_contacts: object = None,
    tolerance: object = 0,
    given: Collection[str] = (),
) -> AudienceGate:
    """The gate from (rendered) DAG arguments.

    ``min_contacts``/``max_contacts``/``expected_contacts``: integers >= 0 (digit strings too);
    ``expected_contacts`` may also be a dict ``{segment_id: count}``. ``max_sample_age``: seconds
    (> 0) or a ``timedelta``. ``watermark``: as the segment sensor's. ``tolerance``: an integer
    number of contacts or a percentage string such as ``"5%"``.

    ``given``: the names of the rules among :data:`REQUIRED_WHEN_GIVEN` that the DAG set (before
    rendering). Such a rule rendering to nothing (``None``, ``"None"``, ``""``: typically an XCom
    that was never pushed) is an error: the gate never drops a rule the DAG asked for.

    :raises SendGridInputError: a value outside those shapes, a given rule that rendered to
        nothing, or ``min_contacts`` above ``max_contacts``.
    """
    rendered = {
        "min_contacts": min_contacts,
        "max_contacts": max_contacts,
        "max_sample_age": max_sample_age,
        "expected_contacts": expected_contacts,
    }
    for name in REQUIRED_WHEN_GIVEN:
        if name in given and _absent(rendered[name]):
            raise SendGridInputError(
                name,
                rendered[name],
                "was set but rendered to nothing (an upstream XCom that was never pushed?); the "
                "gate does not send with a rule switched off: fix the template or leave the rule out",
            )
    low = count_or_none("min_contacts", min_contacts)
    high = count_or_none("max_contacts", max_contacts)
    if low is not None and high is not None and low > high:
        raise SendGridInputError("max_contacts", high, f"must be at least min_contacts ({low})")
    return AudienceGate(
        min_contacts=low,
        max_contacts=high,
        max_sample_age=_age_or_none(max_sample_age),
        watermark=watermark_from(watermark),
        expected_contacts=_expected(expected_contacts),
        tolerance=_tolerance(tolerance),
    )


def evaluate(
    gate: AudienceGate, segments: Sequence[tuple[str, Mapping[str, Any]]], now: datetime.datetime
) -> GateVerdict:
    """Apply ``gate`` to each ``(segment_id, Get Segment body)`` at ``now``."""
    return GateVerdict(
        tuple(_check(gate, segment_id, body, now) for segment_id, body in segments), now, _rules(gate)
    )


def _check(
    gate: AudienceGate, segment_id: str, body: Mapping[str, Any], now: datetime.datetime
) -> SegmentCheck:
    raw_count = body.get("contacts_count")
    count = raw_count if isinstance(raw_count, int) and not isinstance(raw_count, bool) else None
    sampled = parse_instant(body.get("sample_updated_at"))
    failures: list[str] = []
    if gate.min_contacts is not None and (count is None or count < gate.min_contacts):
        failures.append(f"fewer than min_contacts={gate.min_contacts}")
    if gate.max_contacts is not None and (count is None or count > gate.max_contacts):
        failures.append(f"more than max_contacts={gate.max_contacts}")
    if gate.max_sample_age is not None:
        age = None if sampled is None else (now - sampled).total_seconds()
        if age is None or age > gate.max_sample_age:
            shown = "no sample" if age is None else f"sample {age:.0f} s old"
            failures.append(f"{shown}, older than max_sample_age={gate.max_sample_age:g} s")
    if gate.watermark is not None and (sampled is None or sampled <= gate.watermark):
        failures.append(f"sample not newer than watermark {gate.watermark.isoformat()}")
    expected = gate.expected_for(segment_id)
    if expected is not None:
        allowed = gate.tolerance.allowed(expected)
        if count is None or abs(count - expected) > allowed:
            failures.append(
                f"expected_contacts={expected} with tolerance {gate.tolerance} "
                f"(allowed {expected - allowed:g}..{expected + allowed:g})"
            )
    name = body.get("name")
    return SegmentCheck(
        segment_id,
        str(name) if name is not None else None,
        count,
        sampled.isoformat() if sampled is not None else None,
        tuple(failures),
    )


def _rules(gate: AudienceGate) -> dict[str, Any]:
    rules: dict[str, Any] = {
        "min_contacts": gate.min_contacts,
        "max_contacts": gate.max_contacts,
        "max_sample_age": gate.max_sample_age,
        "watermark": gate.watermark.isoformat() if gate.watermark else None,
        "expected_contacts": (
            dict(gate.expected_contacts)
            if isinstance(gate.expected_contacts, Mapping)
            else gate.expected_contacts
        ),
        "tolerance": str(gate.tolerance) if gate.expected_contacts is not None else None,
    }
    return {name: value for name, value in rules.items() if value is not None}


def _absent(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in _ABSENT)


def count_or_none(name: str, value: object) -> int | None:
    """An optional count of contacts: None, or an integer >= 0 (a digit string is read)."""
    if _absent(value):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SendGridInputError(name, value, "must be an integer >= 0")
    return value


def _age_or_none(value: object) -> float | None:
    if _absent(value):
        return None
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    elif isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise SendGridInputError("max_sample_age", value, "must be seconds > 0 or a timedelta") from None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise SendGridInputError("max_sample_age", value, "must be seconds > 0 or a timedelta")
    return float(value)


def _expected(value: object) -> int | dict[str, int] | None:
    if isinstance(value, str) and value.strip().startswith("{"):
        value = validation.rendered_literal("expected_contacts", value.strip(), "must be a dict")
    if isinstance(value, Mapping):
        counts = {str(key): count_or_none(f"expected_contacts[{key!r}]", item) for key, item in value.items()}
        return {key: count for key, count in counts.items() if count is not None}
    return count_or_none("expected_contacts", value)


def _tolerance(value: object) -> Tolerance:
    rule = "an integer number of contacts >= 0, or a percentage such as '5%'"
    if _absent(value):
        return Tolerance(0, relative=False)
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            percent = float(value.strip()[:-1])
        except ValueError:
            raise SendGridInputError("tolerance", value, rule) from None
        if not math.isfinite(percent) or percent < 0:
            raise SendGridInputError("tolerance", value, rule)
        return Tolerance(percent, relative=True)
    try:
        count = count_or_none("tolerance", value)
    except SendGridInputError:
        raise SendGridInputError("tolerance", value, rule) from None
    return Tolerance(count or 0, relative=False)
