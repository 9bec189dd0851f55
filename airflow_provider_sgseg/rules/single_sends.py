"""Pure Single Send rules: build and check the request SendGrid would accept, compare audiences.

The operator (:mod:`airflow_provider_sgseg.operators.single_sends`) calls these before any
request; no I/O here.
"""

from __future__ import annotations

import datetime
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.rules import validation

if TYPE_CHECKING:
    from airflow_provider_sgseg.rules.requests import CreateSingleSend


# A Single Send in one of these states has been handed to SendGrid for sending.
SENT_STATUSES = frozenset({"scheduled", "triggered"})

# What to do with a send_at that has passed: refuse it, or send at once.
IF_PAST_MODES = ("fail", "now")
# Worker and SendGrid clocks differ, and rendering plus the checks take a moment: a send_at at
# most this many seconds in the past counts as "now" (SendGrid refuses a past send_at).
SEND_AT_CLOCK_SKEW = 60.0


@dataclass(frozen=True)
class SingleSendRequest:
    """A validated Single Send: the draft to create and when to send it."""

    create: CreateSingleSend
    send_at: str  # "now" or "YYYY-MM-DDTHH:MM:SSZ"

    @property
    def name(self) -> str:
        return self.create.name

    @property
    def segment_ids(self) -> list[str]:
        return list(self.create.segment_ids or ())

    @property
    def list_ids(self) -> list[str]:
        return list(self.create.list_ids or ())

    @property
    def send_to_all(self) -> bool:
        return self.create.send_to_all

    @property
    def email_config(self) -> dict[str, Any]:
        from airflow_provider_sgseg.rules.requests import json_value

        config: dict[str, Any] = json_value(self.create.email_config or {})
        return config

    @property
    def categories(self) -> list[str] | None:
        return list(self.create.categories) if self.create.categories else None


def build_single_send_request(
    *,
    name: object,
    segment_ids: object = None,
    list_ids: object = None,
    send_to_all: object = False,
    subject: object = None,
    html_content: object = None,
    plain_content: object = None,
    design_id: object = None,
    sender_id: object = None,
    suppression_group_id: object = None,
    custom_unsubscribe_url: object = None,
    categories: object = None,
    send_at: object = "now",
) -> SingleSendRequest:
    """Check every rule SendGrid would check at schedule time; raise ``SendGridInputError`` on the first.

    Values may arrive as rendered template strings, so numbers and booleans written as text are
    accepted. The name, recipients and categories are checked by :class:`CreateSingleSend`; the
    rules here are the ones a draft may break but a send may not.
    """
    # Imported here: the operator module imports this one, and DAG parsing needs no request classes.
    from airflow_provider_sgseg.rules.requests import CreateSingleSend

    email_config: dict[str, Any] = {"sender_id": _positive_int("sender_id", sender_id)}
    email_config.update(_content(subject, html_content, plain_content, design_id))
    email_config.update(_unsubscribe(suppression_group_id, custom_unsubscribe_url))
    create = CreateSingleSend(
        name,  # type: ignore[arg-type]  # rendered values, checked by CreateSingleSend
        segment_ids=segment_ids,  # type: ignore[arg-type]
        list_ids=list_ids,  # type: ignore[arg-type]
        send_to_all=send_to_all,  # type: ignore[arg-type]
        email_config=email_config,
        categories=categories,  # type: ignore[arg-type]
    )
    if not (create.segment_ids or create.list_ids or create.send_to_all):
        raise SendGridInputError(
            "send_to", None, "give at least one of segment_ids or list_ids, or set send_to_all=True"
        )
    return SingleSendRequest(create=create, send_at=validation.send_at(send_at))


def due_send_at(send_at: str, now: datetime.datetime, if_past: str) -> str:
    """The ``send_at`` to schedule at ``now``: the value itself while in the future, ``"now"`` when
    it passed at most :data:`SEND_AT_CLOCK_SKEW` seconds ago or ``if_past="now"``.

    :raises SendGridInputError: ``send_at`` passed longer ago and ``if_past="fail"``; the message
        names the value, the current time and the rule.
    """
    if send_at == "now":
        return send_at
    moment = datetime.datetime.strptime(send_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    late = (now - moment).total_seconds()
    if late <= 0:
        return send_at
    if late <= SEND_AT_CLOCK_SKEW or if_past == "now":
        return "now"
    current = now.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise SendGridInputError(
        "send_at",
        send_at,
        f"is {late:.0f} s before the current time {current}; SendGrid sends only at a future time or "
        f"'now' (up to {SEND_AT_CLOCK_SKEW:g} s of clock skew is taken as 'now'). Render a later "
        "send_at, or pass if_past='now' to send at once when the time has passed",
    )


def same_recipients(single_send: Mapping[str, Any], request: SingleSendRequest) -> bool:
    """Whether an existing Single Send targets exactly the audience the request asks for."""
    send_to = single_send.get("send_to") or {}
    return (
        sorted(send_to.get("segment_ids") or []) == sorted(request.segment_ids)
        and sorted(send_to.get("list_ids") or []) == sorted(request.list_ids)
        and bool(send_to.get("all")) == request.send_to_all
    )


# email_config fields the task sets; a draft must hold the same (ids compared as text). One the
# task leaves unset must be empty in the draft, except the subject and plain text SendGrid may
# fill in itself (from a design; plain text generated from the HTML).
CONTENT_FIELDS = (
    "subject",
    "html_content",
    "plain_content",
    "design_id",
    "sender_id",
    "suppression_group_id",
    "custom_unsubscribe_url",
)
_FILLED_BY_SENDGRID = frozenset({"subject", "plain_content"})


def draft_differences(single_send: Mapping[str, Any], request: SingleSendRequest) -> list[str]:
    """What an existing Single Send holds differently from what the request would create:
    ``send_to``, ``categories`` and the ``email_config`` fields (as ``email_config.<field>``).
    Empty when it is the same send. With a design, the HTML is the design's, so it is not compared."""
    differences = [] if same_recipients(single_send, request) else ["send_to"]
    if sorted(single_send.get("categories") or []) != sorted(request.categories or []):
        differences.append("categories")
    held: Mapping[str, Any] = single_send.get("email_config") or {}
    wanted = request.email_config
    for field in CONTENT_FIELDS:
        want, have = wanted.get(field), held.get(field)
        if want is None:
            unset_ok = field in _FILLED_BY_SENDGRID or (field == "html_content" and "design_id" in wanted)
            if unset_ok or have in (None, ""):
                continue
        elif have is not None and str(have) == str(want):
            continue
        differences.append(f"email_config.{field}")
    return differences


def _content(subject: object, html: object, plain: object, design_id: object) -> dict[str, Any]:
    if design_id:
        if html or plain:
            raise SendGridInputError(
                "design_id", design_id, "use either design_id or html_content/plain_content, not both"
            )
        config: dict[str, Any] = {"design_id": str(design_id)}
        if subject:
            config["subject"] = str(subject)
        return config
    if not (html or plain):
        raise SendGridInputError("html_content", html, "give html_content and/or plain_content, or design_id")
    if not (isinstance(subject, str) and subject.strip()):
        raise SendGridInputError("subject", subject, "a non-empty subject is needed with html/plain content")
    config = {"subject": subject}
    if html:
        config["html_content"] = str(html)
    if plain:
        config["plain_content"] = str(plain)
        config["generate_plain_content"] = False
    return config


def _unsubscribe(group_id: object, url: object) -> dict[str, Any]:
    if group_id not in (None, ""):
        return {"suppression_group_id": _positive_int("suppression_group_id", group_id)}
    if url not in (None, ""):
        parts = urllib.parse.urlsplit(str(url))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SendGridInputError("custom_unsubscribe_url", url, "an absolute http(s) URL")
        return {"custom_unsubscribe_url": str(url)}
    raise SendGridInputError(
        "suppression_group_id", group_id, "give suppression_group_id or custom_unsubscribe_url"
    )


def _int(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise SendGridInputError(name, value, "an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise SendGridInputError(name, value, "an integer")


def _positive_int(name: str, value: object) -> int:
    if value is None or value == "":
        raise SendGridInputError(name, value, "required: a positive integer id")
    number = _int(name, value)
    if number < 1:
        raise SendGridInputError(name, value, "a positive integer id")
    return number
