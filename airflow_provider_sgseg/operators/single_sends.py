"""Send a Single Send to segments and lists: create the draft, then schedule it, once.

SendGrid's create endpoint only makes a draft; a separate ``PUT .../schedule`` sends it. Neither
call is safe to repeat blindly, so the Single Send's *name* is the idempotency key: before
creating, the operator looks for a Single Send with that name. Its own draft from an earlier try
is reused (only when it holds the task's recipients and content); one that is already scheduled
or triggered is returned as it is and never scheduled again.
"""

from __future__ import annotations

import datetime
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.exceptions import AirflowProviderDeprecationWarning

from airflow_provider_sgseg.exceptions import (
    SendGridInputError,
    SendGridServerError,
    SendGridTransportError,
    SendGridValidationError,
)
from airflow_provider_sgseg.links import SINGLE_SEND_ID_XCOM_KEY, SendGridSingleSendLink, push_link_data
from airflow_provider_sgseg.operators._dry_run import (
    described,
    dry_run_argument,
    dry_run_result,
    is_dry_run,
    read_only,
)
from airflow_provider_sgseg.operators._refused import refused
from airflow_provider_sgseg.operators.base import SendGridBaseOperator
from airflow_provider_sgseg.rules import summaries, validation
from airflow_provider_sgseg.rules.audience import AudienceGate, GateVerdict, audience_gate, evaluate
from airflow_provider_sgseg.rules.single_sends import (
    IF_PAST_MODES,
    SENT_STATUSES,
    SingleSendRequest,
    build_single_send_request,
    draft_differences,
    due_send_at,
)
from airflow_provider_sgseg.version_compat import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

# An answer that never came back (or a 5xx) does not prove the request was not applied.
UNCERTAIN_ERRORS = (SendGridTransportError, SendGridServerError)

# Where the pre-send gate's verdict is pushed (also part of the return value).
AUDIENCE_GATE_XCOM_KEY = "audience_gate"


class SendGridSingleSendOperator(SendGridBaseOperator):
    """
    Create a Single Send draft and schedule it (``send_at="now"`` sends it immediately).

    Safe under task retries: the Single Send's ``name`` identifies it, so give each send its own
    name (e.g. ``"Weekly digest {{ ds }}"``). A retry reuses the draft an earlier try created and
    never schedules a Single Send that is already scheduled or triggered.

    :param name: Single Send name (1..100 chars); also the idempotency key. Templated.
    :param segment_ids: up to 10 segment ids (a single id string is accepted). Templated.
    :param list_ids: up to 50 list ids. Templated.
    :param send_to_all: send to all contacts instead of segments/lists.
    :param subject: subject line; needed with ``html_content``/``plain_content``. Templated.
    :param html_content: HTML body (code editor). Templated.
    :param plain_content: plain-text body; SendGrid generates one from the HTML when omitted. Templated.
    :param design_id: a SendGrid design to use instead of ``html_content``/``plain_content``. Templated.
    :param sender_id: id of a verified sender. Templated.
    :param suppression_group_id: unsubscribe group id; this or ``custom_unsubscribe_url``. Templated.
    :param custom_unsubscribe_url: your own unsubscribe page. Templated.
    :param categories: up to 10 categories. Templated.
    :param send_at: ``"now"``, or a timezone-aware datetime / ISO 8601 string with an offset, in
        the future (SendGrid refuses a past one; up to 60 s of clock skew is taken as ``"now"``).
        Leaving it out means ``"now"`` and is deprecated: it becomes required. Templated.
    :param if_past: what a ``send_at`` that has passed does: ``"fail"`` (default: a
        ``SendGridInputError`` before any request) or ``"now"`` (send at once).
    :param min_contacts: pre-send gate: every target segment has at least this many contacts.
        Templated. (``require_min_contacts``: its 0.2.0 name, deprecated.)
    :param max_contacts: pre-send gate: every target segment has at most this many contacts. Templated.
    :param max_sample_age: pre-send gate: every target segment's ``sample_updated_at`` is at most
        this old (seconds or ``timedelta``). Templated.
    :param watermark: pre-send gate: every target segment's sample is newer than this (ISO 8601,
        datetime, or the refresh operator's XCom). Templated.
    :param expected_contacts: pre-send gate: each target segment's count is within ``tolerance``
        of this (an integer for all segments, or ``{segment_id: count}``), e.g. an upstream count
        from the warehouse. Templated.
    :param tolerance: for ``expected_contacts``: a number of contacts (``50``) or a percentage
        (``"5%"``); default 0. Templated.
    :param dry_run: take every check (the time, an existing Single Send of that name, the gate)
        with reads only (``GET``) and report what the real run would create and schedule, without
        creating or scheduling anything (templated: ``"True"``/``"False"`` are read as bools). It
        fails where the real run would fail before its first write, a failing gate included.

    A gate rule given here that renders to nothing (``None``, ``"None"``, ``""``: an XCom never
    pushed) raises ``SendGridInputError`` before any request; it never switches the rule off.

    The gate runs right before the Single Send is created and scheduled, on SendGrid's Get
    Segment answer for every target segment; a failing gate raises ``AirflowFailException``
    before any write, naming each segment, its numbers and the rule. Its verdict is logged and
    pushed to XCom key ``audience_gate`` (and returned under ``"audience_gate"``). It checks the
    audience when the send is scheduled, not when it goes out.
    :param sendgrid_conn_id: connection of type ``sendgrid_marketing``.
    :param hook_params: keyword arguments for the hook (see :class:`SendGridBaseOperator`).
    :return: ``{"single_send_id", "status", "send_at", "audience_gate"}``; XCom key
        ``single_send_id`` (pushed once created). The "SendGrid Single Send" extra link (its stats)
        appears once the Single Send is scheduled or sent, not for a draft or a failed schedule.
        A dry run returns
        ``{"dry_run": True, "single_send_id" (an existing draft's, else None), "status" (its
        status, else None), "send_at" (what would be scheduled), "audience_gate", "name",
        "send_to" ({segment_ids, list_ids, all}), "would_send" (["POST /v3/marketing/singlesends
        (...)", "PUT /v3/marketing/singlesends/{id}/schedule (...)"], [] when already scheduled)}``.
    :raises AirflowFailException: SendGrid refused the create or the schedule (400, 409, 422): the
        same request cannot succeed, so no retries; the message carries SendGrid's field and message.
    """

    template_fields: Sequence[str] = (
        "name",
        "segment_ids",
        "list_ids",
        "subject",
        "html_content",
        "plain_content",
        "design_id",
        "sender_id",
        "suppression_group_id",
        "custom_unsubscribe_url",
        "categories",
        "send_at",
        "min_contacts",
        "max_contacts",
        "max_sample_age",
        "watermark",
        "expected_contacts",
        "tolerance",
        "sendgrid_conn_id",
        "dry_run",
    )
    template_fields_renderers = {"html_content": "html"}
    operator_extra_links = (SendGridSingleSendLink(),)

    def __init__(
        self,
        *,
        name: str,
        segment_ids: str | Sequence[str] | None = None,
        list_ids: str | Sequence[str] | None = None,
        send_to_all: bool = False,
        subject: str | None = None,
        html_content: str | None = None,
        plain_content: str | None = None,
        design_id: str | None = None,
        sender_id: int | str | None = None,
        suppression_group_id: int | str | None = None,
        custom_unsubscribe_url: str | None = None,
        categories: Sequence[str] | None = None,
        send_at: str | datetime.datetime | None = None,
        if_past: str = "fail",
        min_contacts: int | str | None = None,
        max_contacts: int | str | None = None,
        max_sample_age: float | str | datetime.timedelta | None = None,
        watermark: Any = None,
        expected_contacts: int | str | Mapping[str, int] | None = None,
        tolerance: int | str = 0,
        require_min_contacts: int | str | None = None,
        dry_run: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.dry_run = dry_run_argument(dry_run)  # type: ignore[assignment,method-assign]
        self.segment_ids = segment_ids
        self.list_ids = list_ids
        self.send_to_all = send_to_all
        self.subject = subject
        self.html_content = html_content
        self.plain_content = plain_content
        self.design_id = design_id
        self.sender_id = sender_id
        self.suppression_group_id = suppression_group_id
        self.custom_unsubscribe_url = custom_unsubscribe_url
        self.categories = categories
        if send_at is None:
            warnings.warn(
                "SendGridSingleSendOperator without send_at sends at once; send_at becomes required "
                "in airflow-provider-sgseg 1.0. Pass send_at='now' or the time the send should go out.",
                AirflowProviderDeprecationWarning,
                stacklevel=1,  # this module: Airflow shows deprecations from "airflow..." modules only
            )
            send_at = "now"
        self.send_at = send_at
        self.if_past = validation.choice("if_past", if_past, IF_PAST_MODES)
        # The gate rules this DAG set: one that renders to nothing later (an XCom never pushed)
        # fails the task instead of switching its rule off.
        set_here = {
            "min_contacts": min_contacts,
            "max_contacts": max_contacts,
            "max_sample_age": max_sample_age,
            "expected_contacts": expected_contacts,
        }
        self._gate_rules_given = frozenset(name for name, value in set_here.items() if value is not None)
        if require_min_contacts is not None:
            warnings.warn(
                "SendGridSingleSendOperator's 'require_min_contacts' is deprecated and will be removed "
                "in airflow-provider-sgseg 1.0; use 'min_contacts'",
                AirflowProviderDeprecationWarning,
                stacklevel=1,
            )
            if min_contacts is None:
                min_contacts = require_min_contacts
        self.min_contacts = min_contacts
        self.max_contacts = max_contacts
        self.max_sample_age = max_sample_age
        self.watermark = watermark
        self.expected_contacts = expected_contacts
        self.tolerance = tolerance

    def build_request(self) -> SingleSendRequest:
        """The validated request from the (rendered) arguments; no I/O."""
        return build_single_send_request(
            name=self.name,
            segment_ids=self.segment_ids,
            list_ids=self.list_ids,
            send_to_all=self.send_to_all,
            subject=self.subject,
            html_content=self.html_content,
            plain_content=self.plain_content,
            design_id=self.design_id,
            sender_id=self.sender_id,
            suppression_group_id=self.suppression_group_id,
            custom_unsubscribe_url=self.custom_unsubscribe_url,
            categories=self.categories,
            send_at=self.send_at,
        )

    def get_hook(self) -> SendGridMarketingHook:
        """Deprecated since 0.3.0 (removed in 1.0): the task's :attr:`hook`."""
        from airflow_provider_sgseg._deprecated import warn_renamed

        warn_renamed("SendGridSingleSendOperator.get_hook()", "SendGridSingleSendOperator.hook")
        return self.hook

    def build_gate(self) -> AudienceGate:
        """The pre-send gate from the (rendered) arguments; no I/O."""
        return audience_gate(
            min_contacts=self.min_contacts,
            max_contacts=self.max_contacts,
            max_sample_age=self.max_sample_age,
            watermark=self.watermark,
            expected_contacts=self.expected_contacts,
            tolerance=self.tolerance,
            given=self._gate_rules_given,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        """Check the time, find the draft or gate the audience and create it, schedule it once.

        Endpoints: ``GET /v3/marketing/singlesends`` (by name), ``GET .../{id}``, ``GET
        /v3/marketing/segments/2.0/{id}`` (the gate, per target segment), ``POST
        /v3/marketing/singlesends`` (sent once), ``PUT /v3/marketing/singlesends/{id}/schedule``.
        Returns ``{"single_send_id", "status", "send_at", "audience_gate"}``.

        :raises SendGridInputError: a bad rendered value, or a ``send_at`` in the past with
            ``if_past="fail"``, before any request.
        :raises AirflowFailException: SendGrid refused (400/409/422), a Single Send of that name
            has other recipients (or, a draft, other content: ``rules.single_sends.draft_differences``),
            or the audience gate failed (nothing created or scheduled).
        :raises SendGridError: any other failure (see the hook's "Errors").
        """
        # Every check that needs no server runs before the hook exists.
        request = self.build_request()
        gate = self.build_gate()
        if gate.active and not request.segment_ids:
            raise SendGridInputError(
                "segment_ids",
                self.segment_ids,
                "the audience gate (min_contacts, max_contacts, max_sample_age, watermark, "
                "expected_contacts) checks segments, so segment_ids must be given",
            )
        send_at = due_send_at(request.send_at, self.now(), self.if_past)
        if send_at != request.send_at:
            self.log.warning(
                "send_at %s has passed; sending now (if_past=%r).", request.send_at, self.if_past
            )
        dry_run = is_dry_run(self.dry_run)
        hook = read_only(self.hook) if dry_run else self.hook
        # Pushed before anything exists: the Single Send link stays empty until it is scheduled.
        push_link_data(context, hook)

        single_send = self._find_existing(hook, request)
        if single_send is not None and single_send.get("status") in SENT_STATUSES:
            single_send_id = str(single_send["id"])
            context["ti"].xcom_push(key=SINGLE_SEND_ID_XCOM_KEY, value=single_send_id)
            push_link_data(context, hook, single_send_id=single_send_id)
            result = _result(single_send_id, single_send, None)
            self.log.info(
                "%s Not scheduling it again.", summaries.single_send(request.name, result, already=True)
            )
            if dry_run:
                return dry_run_result(self.log, "the real run would create and schedule nothing", [], result)
            return result

        verdict = self._check_audience(context, hook, request.segment_ids, gate) if gate.active else None
        if dry_run:
            return self._dry_run(context, request, single_send, send_at, verdict)
        if single_send is None:
            single_send = self._create(hook, request)
        single_send_id = str(single_send["id"])
        context["ti"].xcom_push(key=SINGLE_SEND_ID_XCOM_KEY, value=single_send_id)
        scheduled = self._schedule(hook, single_send_id, send_at)
        push_link_data(context, hook, single_send_id=single_send_id)
        result = _result(single_send_id, scheduled, verdict)
        self.log.info("%s", summaries.single_send(request.name, result))
        return result

    def _dry_run(
        self,
        context: Context,
        request: SingleSendRequest,
        draft: Mapping[str, Any] | None,
        send_at: str,
        verdict: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Every check passed: report the draft the real run would create and the schedule it would send."""
        from airflow_provider_sgseg.rules.requests import SINGLE_SENDS_PATH

        would_send = []
        if draft is None:
            would_send.append(described(request.create, f"create the draft {request.name!r}"))
            single_send_id = None
        else:
            single_send_id = str(draft["id"])
            context["ti"].xcom_push(key=SINGLE_SEND_ID_XCOM_KEY, value=single_send_id)
        would_send.append(
            f"PUT {SINGLE_SENDS_PATH}/{single_send_id or '<new id>'}/schedule (send_at {send_at})"
        )
        report = {
            "single_send_id": single_send_id,
            "status": None if draft is None else draft.get("status"),
            "send_at": send_at,
            "audience_gate": verdict,
            "name": request.name,
            "send_to": {
                "segment_ids": request.segment_ids,
                "list_ids": request.list_ids,
                "all": request.send_to_all,
            },
        }
        which = "a new draft" if draft is None else f"the draft {single_send_id}"
        summary = f"the real run would schedule {which} {request.name!r} for {send_at}"
        return dry_run_result(self.log, summary, would_send, report)

    def _create(self, hook: SendGridMarketingHook, request: SingleSendRequest) -> dict[str, Any]:
        try:
            created = hook.run(request.create)
        except SendGridValidationError as error:
            raise refused(f"creating Single Send {request.name!r}", error) from error
        except UNCERTAIN_ERRORS:
            # SendGrid may have created the draft even though its answer was lost: look before
            # failing, so the Airflow retry does not create a second one either.
            existing = self._find_existing(hook, request)
            if existing is None:
                raise
            self.log.warning("Create answer was lost, but SendGrid has the draft %s.", existing["id"])
            return existing
        self.log.info("Created Single Send draft %r (%s).", request.name, created["id"])
        return created

    def _find_existing(
        self, hook: SendGridMarketingHook, request: SingleSendRequest
    ) -> dict[str, Any] | None:
        matches = hook.find_single_sends_by_name(request.name)
        if not matches:
            return None
        if len(matches) > 1:
            self.log.warning(
                "%d Single Sends are named %r; Single Send names should be unique per send.",
                len(matches),
                request.name,
            )
        already_sent = [s for s in matches if s.get("status") in SENT_STATUSES]
        chosen = already_sent[0] if already_sent else max(matches, key=lambda s: str(s.get("created_at")))
        details = hook.get_single_send(str(chosen["id"]))
        differences = draft_differences(details, request)
        if "send_to" in differences:
            raise AirflowFailException(
                f"A Single Send named {request.name!r} ({chosen['id']}, status {details.get('status')}) "
                f"already exists with different recipients {details.get('send_to')!r}. The name identifies "
                "the send across retries: use a different name, or delete that Single Send."
            )
        if differences and details.get("status") not in SENT_STATUSES:
            # Scheduling it would send another email than this task's (e.g. a draft a failed run
            # left behind, before its subject or HTML changed); it may also be someone's own.
            raise AirflowFailException(
                f"A draft Single Send named {request.name!r} ({chosen['id']}) already exists, but its "
                f"{', '.join(differences)} differ from this task's. The name identifies the send across "
                "retries; the task neither updates nor sends a draft with other content: delete that "
                "draft (then clear the task), or use a different name."
            )
        if differences:
            self.log.warning(
                "Single Send %r (%s) is already %s with other %s than this task's; leaving it as it is.",
                request.name,
                chosen["id"],
                details.get("status"),
                ", ".join(differences),
            )
        self.log.info(
            "Found Single Send %r (%s), status %s.", request.name, chosen["id"], details.get("status")
        )
        return details

    def _check_audience(
        self, context: Context, hook: SendGridMarketingHook, segment_ids: list[str], gate: AudienceGate
    ) -> dict[str, Any]:
        """Read every target segment, apply the gate, log and push its verdict; raise if it failed."""
        segments = [
            (segment_id, hook.get_segment(segment_id, contacts_sample=False)) for segment_id in segment_ids
        ]
        verdict: GateVerdict = evaluate(gate, segments, self.now())
        record = verdict.to_dict()
        context["ti"].xcom_push(key=AUDIENCE_GATE_XCOM_KEY, value=record)
        if not verdict.passed:
            raise AirflowFailException(
                f"Not sending: {verdict.summary()}\nNo Single Send was created or scheduled."
            )
        self.log.info("%s", verdict.summary())
        return record

    def _schedule(self, hook: SendGridMarketingHook, single_send_id: str, send_at: str) -> dict[str, Any]:
        try:
            answer = hook.schedule_single_send(single_send_id, send_at=send_at)
        except SendGridValidationError as error:
            raise refused(f"scheduling Single Send {single_send_id}", error) from error
        except UNCERTAIN_ERRORS:
            # The schedule may have been applied before the answer was lost. Read it back rather
            # than sending the PUT again.
            current = hook.get_single_send(single_send_id)
            if current.get("status") in SENT_STATUSES:
                self.log.warning("Schedule answer was lost, but SendGrid shows it %s.", current.get("status"))
                return current
            raise
        # SendGrid answers {"send_at", "status"}; read the Single Send back if that is missing.
        return answer if answer.get("status") else hook.get_single_send(single_send_id)


def optional_min_contacts(value: object) -> int | None:
    """Deprecated since 0.3.0 (removed in 1.0): 0.2.0's check of ``require_min_contacts``, None (no
    check) or an integer >= 0; use :func:`airflow_provider_sgseg.rules.audience.count_or_none`.

    :raises SendGridInputError: not an integer >= 0, naming ``require_min_contacts``.
    """
    from airflow_provider_sgseg._deprecated import warn_renamed
    from airflow_provider_sgseg.rules.audience import count_or_none

    warn_renamed(f"{__name__}.optional_min_contacts", "airflow_provider_sgseg.rules.audience.count_or_none")
    return count_or_none("require_min_contacts", value)


def same_recipients(single_send: Mapping[str, Any], request: Any) -> bool:
    """Deprecated (0.2.0's ``operators.single_sends.same_recipients``): use
    :func:`airflow_provider_sgseg.rules.single_sends.same_recipients`, which this calls."""
    from airflow_provider_sgseg._deprecated import warn_renamed
    from airflow_provider_sgseg.rules import single_sends

    warn_renamed(f"{__name__}.same_recipients", "airflow_provider_sgseg.rules.single_sends.same_recipients")
    return single_sends.same_recipients(single_send, request)


def _result(
    single_send_id: str, single_send: Mapping[str, Any], audience: dict[str, Any] | None
) -> dict[str, Any]:
    send_at = single_send.get("send_at")
    return {
        "single_send_id": single_send_id,
        "status": single_send.get("status"),
        "send_at": None if send_at is None else str(send_at),
        "audience_gate": audience,
    }
