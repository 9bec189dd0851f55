"""Operators for SendGrid Segments V2: create, get, list, update, delete and manual refresh.

Every operator validates its (rendered) arguments before the first request, builds its hook
lazily on the worker, and returns JSON-safe XCom. The hook module (and with it httpx) is
imported only when a task runs, so parsing a DAG stays cheap.

Non-idempotent POSTs (create, refresh) are never retried blindly. A retried task looks for
server-side evidence of what an earlier try did before sending anything:

* create: segment names are unique, so the segment is looked up by name first;
* refresh: the earlier try records the segment's ``last_refreshed_at`` in Airflow's task state
  store before posting; if SendGrid's value has moved since, that refresh was accepted.

Airflow < 3.3 has no task state store. There a retry takes as its own what SendGrid shows
happened since the DAG run started (a segment created, a refresh recorded); docs/operators.md
says exactly where that is weaker than the state-store path.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseOperatorLink

from airflow_provider_sgseg.exceptions import (
    ErrorDetail,
    SegmentQueryInvalidError,
    SendGridForbiddenError,
    SendGridInputError,
    SendGridNotFoundError,
    SendGridRateLimitError,
    SendGridResponseError,
    SendGridServerError,
    SendGridTransportError,
    SendGridValidationError,
)
from airflow_provider_sgseg.links import SEGMENT_ID_XCOM_KEY, SendGridSegmentLink, push_link_data
from airflow_provider_sgseg.operators._dry_run import (
    QUERY_NOT_VALIDATED,
    described,
    dry_run_argument,
    dry_run_result,
    is_dry_run,
    read_only,
)
from airflow_provider_sgseg.operators._refused import refused
from airflow_provider_sgseg.operators.base import SendGridBaseOperator
from airflow_provider_sgseg.rules import summaries, validation
from airflow_provider_sgseg.rules.instants import parse_instant
from airflow_provider_sgseg.rules.segment_definition import (
    differences,
    field_changes,
    same_parents,
    same_query,
)
from airflow_provider_sgseg.state_store import TaskStateStore, earlier_tries_since
from airflow_provider_sgseg.version_compat import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_sgseg.rules.refresh_quota import RefreshDecision
    from airflow_provider_sgseg.rules.requests import CreateSegment, DeleteSegment, UpdateSegment


IF_EXISTS_MODES = ("reuse", "update", "fail")
ON_QUOTA_EXHAUSTED_MODES = ("fail", "skip", "wait")

# A worker's clock is not SendGrid's: by default, wake up a minute after the quota lifts.
DEFAULT_QUOTA_WAIT_MARGIN = 60.0

XCOM_RETURN_KEY = "return_value"  # where Airflow keeps a task's return value

# Keys in Airflow's task state store (shared by all tries of one task instance in one DAG run).
REFRESH_ATTEMPT_KEY = "sendgrid_refresh_attempt"
REFRESH_RESULT_KEY = "sendgrid_refresh_result"
CREATE_ATTEMPT_KEY = "sendgrid_create_attempt"
DELETE_ATTEMPT_KEY = "sendgrid_delete_attempt"

# The refresh result's watermark under its 0.2.0 name too, so DAGs (and task state) written for
# 0.2.0 keep reading it; removed in 1.0.
LEGACY_WATERMARK_KEY = "sample_updated_at_before"


def _refresh_result(
    segment_id: object, job_id: object, requested_at: object, watermark: object, **extra: Any
) -> dict[str, Any]:
    """The refresh operator's XCom: ``watermark`` under both its names, then ``extra``."""
    return {
        "segment_id": segment_id,
        "job_id": job_id,
        "requested_at": requested_at,
        "watermark": watermark,
        LEGACY_WATERMARK_KEY: watermark,
        **extra,
    }


def _watermark_of(record: Mapping[str, Any]) -> Any:
    """The watermark of a stored attempt or result, also one 0.2.0 stored under its old name."""
    return record["watermark"] if "watermark" in record else record.get(LEGACY_WATERMARK_KEY)


class SendGridSegmentBaseOperator(SendGridBaseOperator):
    """What the segment operators share beyond :class:`SendGridBaseOperator`: the segment-id XCom
    behind :class:`SendGridSegmentLink` and the wait for SendGrid's query validation.

    :param clock: deprecated since 0.3.0 (removed in 1.0): a callable giving the current aware
        time, used instead of :meth:`now`.
    :param sleep: deprecated since 0.3.0 (removed in 1.0): a callable waiting a number of
        seconds, used instead of :meth:`sleep`.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime.datetime] | None = None,
        sleep: Callable[[float], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if clock is not None or sleep is not None:
            from airflow_provider_sgseg._deprecated import warn_renamed

            warn_renamed(f"{type(self).__name__}'s clock/sleep", "a patched now()/sleep() method")
        if clock is not None:
            self.now = clock  # type: ignore[method-assign]
        if sleep is not None:
            self.sleep = sleep  # type: ignore[method-assign,assignment]

    def _push_segment_id(self, context: Context, segment_id: str) -> None:
        context["ti"].xcom_push(key=SEGMENT_ID_XCOM_KEY, value=segment_id)
        push_link_data(context, self.hook, segment_id=segment_id)

    def _wait_until_valid(
        self,
        segment: Mapping[str, Any],
        *,
        interval: float,
        timeout: float,
        on_invalid: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Poll ``GET /v3/marketing/segments/2.0/{id}`` every ``interval`` s until SendGrid has
        validated the query, on the waiting engine (:mod:`airflow_provider_sgseg.rules.waiting`).

        INVALID calls ``on_invalid(segment_id)`` (clean-up), then fails without retries. Still
        pending after ``timeout`` s raises ``TimeoutError``; more transient failures in a row than
        the engine tolerates raise ``AirflowException``: the task's retries apply to both.
        """
        from airflow_provider_sgseg.rules import waiting
        from airflow_provider_sgseg.rules.pacing import WaitBounds
        from airflow_provider_sgseg.rules.population import validation_outcome

        bounds = WaitBounds(floor=interval, ceiling=interval, interval=interval)
        deadline = self.now() + datetime.timedelta(seconds=timeout)
        segment_id = str(segment.get("id"))
        current, state = dict(segment), waiting.WaitState()
        outcome: waiting.Outcome = validation_outcome(current)
        last_error: Exception | None = None
        while True:
            action = waiting.step(state, outcome, self.now(), bounds, deadline)
            if isinstance(action, waiting.Done):
                if action.reason != "query validation is VALID":
                    self.log.warning("Segment %s: %s; not waiting for validation.", segment_id, action.reason)
                return current
            if isinstance(action, waiting.Invalid):
                error = SegmentQueryInvalidError(
                    f"SendGrid rejected the query of segment {segment_id!r}",
                    details=[ErrorDetail(action.reason, field="query_dsl")],
                )
                if on_invalid is not None:
                    on_invalid(segment_id)
                # Retrying cannot fix a query: fail without burning retries.
                raise AirflowFailException(str(error)) from error
            if isinstance(action, waiting.Timeout):
                raise TimeoutError(f"Segment {segment_id!r} query validation {action.reason}") from last_error
            if isinstance(action, waiting.Failed):
                raise AirflowException(
                    f"Gave up waiting for segment {segment_id!r} query validation: {action.reason}"
                ) from last_error
            self.log.info("Segment %s: %s; checking again in %g s", segment_id, action.reason, action.delay)
            self.sleep(action.delay)
            state = action.state
            try:
                current = self.hook.get_segment(segment_id, contacts_sample=False)
            except waiting.TRANSIENT_ERRORS as failure:
                last_error, outcome = failure, waiting.transient(failure)
            else:
                outcome = validation_outcome(current)


class SendGridCreateSegmentOperator(SendGridSegmentBaseOperator):
    """Create a segment, or reuse the one with the same name (SendGrid names are unique).

    A retried task finds the segment its earlier try created instead of duplicating it. The DAG
    is the segment's definition: an existing segment of that name is reused only when its
    ``query_dsl`` (compared up to whitespace, see
    :mod:`airflow_provider_sgseg.rules.segment_definition`) and ``parent_list_ids`` are the DAG's.
    A segment this task created whose query SendGrid marks INVALID is deleted before the task
    fails, so fixing the query and re-running starts clean.

    :param name: segment name, 1..100 characters (templated).
    :param query_dsl: Segments V2 SQL (templated, shown as SQL).
    :param parent_list_ids: at most one list id to build the segment from (templated).
    :param if_exists: what to do when a segment with this name exists: ``"reuse"`` it when its
        definition is the DAG's (else fail, naming both queries), ``"update"`` its query to the
        DAG's, or ``"fail"`` (a segment an earlier try of this task created is still its own).
        ``parent_list_ids`` cannot be changed in place: a difference there always fails.
    :param wait_for_validation: poll until ``status.query_validation`` is ``VALID``;
        ``INVALID`` fails the task at once, without retries, with SendGrid's message.
    :param validation_poll_interval: seconds between polls.
    :param validation_timeout: seconds to wait for validation before failing (retriable).
    :param dry_run: only read (``GET``), and report what the task would do (templated: ``"True"``/
        ``"False"`` are read as bools). It fails where the real run would (``if_exists`` refusing
        the existing segment), does not wait for validation and cannot tell whether SendGrid would
        accept a new query: SendGrid validates a query only once it is created or changed.

    Returns the segment (dict) and pushes its id to XCom key ``segment_id``. A dry run returns
    ``{"dry_run": True, "action": "create"|"reuse"|"update", "segment_id" (None for create),
    "name", "query_dsl", "parent_list_ids", "changes" ({field: {"from", "to"}}),
    "query_validation" (the reused segment's ``status.query_validation``, else why it is not
    checked), "would_send" (["POST /v3/marketing/segments/2.0 (...)"] or the PATCH; [] to
    reuse)}`` and pushes ``segment_id`` only for a segment that exists.
    """

    operator_extra_links: Sequence[BaseOperatorLink] = (SendGridSegmentLink(),)

    template_fields: Sequence[str] = ("name", "query_dsl", "parent_list_ids", "sendgrid_conn_id", "dry_run")
    template_fields_renderers = {"query_dsl": "sql"}

    def __init__(
        self,
        *,
        name: str,
        query_dsl: str,
        parent_list_ids: list[str] | str | None = None,
        if_exists: str = "reuse",
        wait_for_validation: bool = True,
        validation_poll_interval: float = 10.0,
        validation_timeout: float = 600.0,
        dry_run: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.query_dsl = query_dsl
        self.parent_list_ids = parent_list_ids
        self.dry_run = dry_run_argument(dry_run)  # type: ignore[assignment,method-assign]
        self.if_exists = validation.choice("if_exists", if_exists, IF_EXISTS_MODES)
        self.wait_for_validation = validation.flag("wait_for_validation", wait_for_validation)
        self.validation_poll_interval = validation.seconds(
            "validation_poll_interval", validation_poll_interval
        )
        self.validation_timeout = validation.seconds("validation_timeout", validation_timeout)

    def execute(self, context: Context) -> dict[str, Any]:
        """Create the segment (or reuse/update one of the same name, per ``if_exists``).

        Endpoints: ``GET /v3/marketing/segments/2.0`` (by name), ``POST
        /v3/marketing/segments/2.0`` (sent once), ``PATCH .../{id}`` (``if_exists="update"``),
        ``GET .../{id}`` while waiting for validation. Returns the segment (Get Segment body).

        :raises SendGridInputError: a bad rendered value, before any request.
        :raises AirflowFailException: SendGrid refused the query (400/409/422, or ``INVALID``: a
            segment this task created is deleted first), ``if_exists="fail"`` met an existing
            segment, or ``if_exists="reuse"`` met one with another definition.
        :raises TimeoutError: validation still pending after ``validation_timeout`` seconds.
        :raises SendGridError: any other failure (see the hook's "Errors").
        """
        from airflow_provider_sgseg.rules.requests import CreateSegment

        request = CreateSegment(self.name, self.query_dsl, self.parent_list_ids)
        name, query = request.name, request.query_dsl
        store = TaskStateStore(context)
        if is_dry_run(self.dry_run):
            return self._dry_run(context, request, store)
        self._query_updated: str | None = None  # set when if_exists="update" changes the query

        existing = self._find_by_name(name)
        if existing is not None:
            ours = self._created_by_earlier_try(context, store, existing, name, query)
            segment = self._use_existing(existing, request, ours=ours)
        else:
            segment, ours = self._create(request, store)

        self._push_segment_id(context, str(segment["id"]))
        if self.wait_for_validation:

            def delete_own_invalid(segment_id: str) -> None:
                if ours:
                    self._delete_invalid(segment_id, name, store)

            segment = self._wait_until_valid(
                segment,
                interval=self.validation_poll_interval,
                timeout=self.validation_timeout,
                on_invalid=delete_own_invalid,
            )
        if existing is None:
            change = "created by this task" if ours else "created meanwhile by another writer; reused"
        elif ours:
            change = "created by an earlier try of this task; reused"
        else:
            change = self._query_updated or "already existed as the DAG defines it; reused"
        self.log.info("%s", summaries.segment_created(segment, change))
        return segment

    def _delete_invalid(self, segment_id: str, name: str, store: TaskStateStore) -> None:
        """Delete the INVALID segment this task created (``DELETE .../{id}``), so nothing half-done
        stays behind. A failed delete raises its (retriable) error: the retry finds the segment
        as its own, sees INVALID again and deletes it then."""
        self.log.warning("Segment %r (%s) that this task created is INVALID; deleting it.", name, segment_id)
        with contextlib.suppress(SendGridNotFoundError):  # already gone
            self.hook.delete_segment(segment_id)
        store.delete(CREATE_ATTEMPT_KEY)
        self.log.info("Deleted the INVALID segment %s.", segment_id)

    def _created_by_earlier_try(
        self, context: Context, store: TaskStateStore, existing: Mapping[str, Any], name: str, query: str
    ) -> bool:
        """Whether an earlier try of this task instance created ``existing``."""
        if store.available:
            attempt = store.get(CREATE_ATTEMPT_KEY)  # written just before that try's POST
            return (
                attempt is not None
                and attempt.get("name") == name
                and same_query(attempt.get("query_dsl"), query)
            )
        # Airflow < 3.3: created (by SendGrid's clock) after this DAG run started, on a retry.
        since = earlier_tries_since(context)
        created = parse_instant(existing.get("created_at"))
        ours = since is not None and created is not None and created >= since
        if ours:
            self.log.info(
                "Segment %r was created at %s, after this DAG run started: taking it as an earlier "
                "try's (no task state store on this Airflow).",
                name,
                created.isoformat() if created else None,
            )
        return ours

    def _find_by_name(self, name: str) -> dict[str, Any] | None:
        matches = self.hook.find_segments_by_name(name)
        return dict(matches[0]) if matches else None

    def _create(self, request: CreateSegment, store: TaskStateStore) -> tuple[dict[str, Any], bool]:
        """The segment, and whether this task created it."""
        name, query = request.name, request.query_dsl
        store.set(CREATE_ATTEMPT_KEY, {"name": name, "query_dsl": query})
        try:
            created = self.hook.run(request)
        except (SendGridTransportError, SendGridServerError, SendGridResponseError) as error:
            # The POST is never retried, but SendGrid may have created the segment before the
            # answer was lost: adopt it if it is there, otherwise let Airflow retry the task.
            adopted = self._find_by_name(name)
            if adopted is None:
                raise
            self.log.warning(
                "Creating segment %r failed (%s) but SendGrid did create it (id %s); using it.",
                name,
                error,
                adopted.get("id"),
            )
            return self._use_existing(adopted, request, ours=True), True
        except SendGridValidationError as error:
            store.delete(CREATE_ATTEMPT_KEY)  # refused: this POST created nothing a retry could own
            # Another writer may have taken the name between our lookup and our POST.
            raced = self._find_by_name(name)
            if raced is None:
                raise refused(f"creating segment {name!r}", error) from error
            self.log.warning("Segment %r was created meanwhile by another writer (id %s).", name, raced["id"])
            return self._use_existing(raced, request, ours=False), False
        self.log.info("Created segment %r (id %s).", name, created.get("id"))
        return dict(created), True

    def _dry_run(self, context: Context, request: CreateSegment, store: TaskStateStore) -> dict[str, Any]:
        """The real run's reads and ``if_exists`` decision; the write it would send, reported."""
        from airflow_provider_sgseg.rules.requests import UpdateSegment

        read_only(self.hook)
        name, query, parents = request.name, request.query_dsl, list(request.parent_list_ids or [])
        report: dict[str, Any] = {"name": name, "query_dsl": query, "parent_list_ids": parents}
        existing = self._find_by_name(name)
        if existing is None:
            changes = field_changes(None, name=name, query_dsl=query, parent_list_ids=parents)
            report.update(action="create", segment_id=None, changes=changes)
            report["query_validation"] = QUERY_NOT_VALIDATED
            summary = f"no segment is named {name!r}: the real run would create it"
            return dry_run_result(self.log, summary, [described(request, f"create {name!r}")], report)
        ours = self._created_by_earlier_try(context, store, existing, name, query)
        current, update = self._existing_definition(existing, request, ours=ours)  # raises as the real run
        segment_id = str(current["id"])
        self._push_segment_id(context, segment_id)
        changes = field_changes(current, query_dsl=query, parent_list_ids=parents)
        report.update(action="update" if update else "reuse", segment_id=segment_id, changes=changes)
        if update:
            report["query_validation"] = QUERY_NOT_VALIDATED
            summary = (
                f"segment {name!r} ({segment_id}) exists with another query: the real run would update it"
            )
            would_send = [described(UpdateSegment(segment_id, None, query), "its query_dsl")]
            return dry_run_result(self.log, summary, would_send, report)
        report["query_validation"] = (current.get("status") or {}).get("query_validation")
        summary = f"segment {name!r} ({segment_id}) exists as the DAG defines it: the real run would reuse it"
        return dry_run_result(self.log, summary, [], report)

    def _use_existing(
        self, existing: dict[str, Any], request: CreateSegment, *, ours: bool
    ) -> dict[str, Any]:
        """Return the segment named like ``request`` per ``if_exists``; ``ours``: this task created it."""
        current, update = self._existing_definition(existing, request, ours=ours)
        name, segment_id = request.name, str(current["id"])
        if not update:
            self.log.info(
                "Segment %r already exists as the DAG defines it (id %s); reusing it.", name, segment_id
            )
            return current
        self.log.info("Segment %r exists with a different query; updating it (id %s).", name, segment_id)
        self._query_updated = "already existed with another query; its query_dsl was updated"
        try:
            return dict(self.hook.update_segment(segment_id, query_dsl=request.query_dsl))
        except SendGridValidationError as error:
            raise refused(f"updating segment {segment_id}", error) from error

    def _existing_definition(
        self, existing: dict[str, Any], request: CreateSegment, *, ours: bool
    ) -> tuple[dict[str, Any], bool]:
        """The existing segment named like ``request`` (read in full) and whether ``if_exists``
        has its query updated to the DAG's; raises where ``if_exists`` refuses it."""
        name, query, parents = request.name, request.query_dsl, request.parent_list_ids
        segment_id = str(existing["id"])
        if self.if_exists == "fail" and not ours:
            raise AirflowFailException(
                f"Segment {name!r} already exists (id {segment_id}) and if_exists='fail'."
            )
        # The list endpoint omits query_dsl; read the segment to compare definitions.
        current = self.hook.get_segment(segment_id, contacts_sample=False)
        found = differences(current, query, parents)
        if not found:
            return dict(current), False
        if same_parents(current, parents):  # only the query differs
            if self.if_exists == "update":
                return dict(current), True
            fix = "Pass if_exists='update' to make it the DAG's query, or give the segment another name."
        else:
            fix = (
                "SendGrid cannot change a segment's parent_list_ids: delete the segment "
                "(SendGridDeleteSegmentOperator) or give the DAG's segment another name."
            )
        raise AirflowFailException(
            f"Segment {name!r} (id {segment_id}) exists but is not the one the DAG defines: "
            f"{'; '.join(found)}. if_exists={self.if_exists!r} never uses a segment with another "
            f"definition. {fix}"
        )


class SendGridGetSegmentOperator(SendGridSegmentBaseOperator):
    """Read one segment.

    :param segment_id: the segment's UUID (templated).
    :param contacts_sample: include SendGrid's ``contacts_sample`` (up to 50 contacts).
    """

    operator_extra_links: Sequence[BaseOperatorLink] = (SendGridSegmentLink(),)

    template_fields: Sequence[str] = ("segment_id", "sendgrid_conn_id")

    def __init__(self, *, segment_id: str, contacts_sample: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.segment_id = segment_id
        self.contacts_sample = contacts_sample

    def execute(self, context: Context) -> dict[str, Any]:
        """``GET /v3/marketing/segments/2.0/{segment_id}``: the segment (dict); pushes ``segment_id``.

        :raises SendGridInputError: a bad rendered value, before any request.
        :raises SendGridNotFoundError: no such segment (404).
        :raises SendGridError: any other failure (see the hook's "Errors").
        """
        from airflow_provider_sgseg.rules.requests import GetSegment

        request = GetSegment(self.segment_id, self.contacts_sample)
        segment = self.hook.run(request)
        self._push_segment_id(context, request.segment_id)
        self.log.info("%s", summaries.segment_read(segment))
        return segment


class SendGridListSegmentsOperator(SendGridSegmentBaseOperator):
    """List segments, optionally filtered (SendGrid ignores the list filters when ``ids`` is given).

    :param ids: segment ids to fetch (templated).
    :param parent_list_ids: up to 50 list ids; segments built from any of them (templated).
    :param no_parent_list_id: also (or only) segments without a parent list.
    """

    template_fields: Sequence[str] = ("ids", "parent_list_ids", "sendgrid_conn_id")

    def __init__(
        self,
        *,
        ids: list[str] | str | None = None,
        parent_list_ids: list[str] | str | None = None,
        no_parent_list_id: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ids = ids
        self.parent_list_ids = parent_list_ids
        self.no_parent_list_id = no_parent_list_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """``GET /v3/marketing/segments/2.0``: segment summaries (list of dicts).

        :raises SendGridInputError: a bad rendered value, before any request.
        :raises SendGridError: any failure (see the hook's "Errors").
        """
        from airflow_provider_sgseg.rules.requests import ListSegments

        request = ListSegments(self.ids, self.parent_list_ids, self.no_parent_list_id)
        segments = self.hook.run(request)
        self.log.info("%s", summaries.segments_listed(segments))
        return segments


class SendGridUpdateSegmentOperator(SendGridSegmentBaseOperator):
    """Rename a segment and/or change its query; only the fields given are sent.

    :param segment_id: the segment's UUID (templated).
    :param name: new name, 1..100 characters (templated).
    :param query_dsl: new Segments V2 SQL (templated, shown as SQL).
    :param wait_for_validation: as for :class:`SendGridCreateSegmentOperator`.
    :param dry_run: only read (``GET``), and report what the PATCH would change (templated:
        ``"True"``/``"False"`` are read as bools). A missing segment fails as the real run would,
        and so does a new name another segment has (SendGrid keeps names unique); whether
        SendGrid accepts a new query is not checked: it validates a query only once it is changed.

    Returns the updated segment (dict). A dry run returns ``{"dry_run": True, "segment_id",
    "action": "update"|"none", "segment" ({name, query_dsl, parent_list_ids} now), "changes"
    ({field: {"from", "to"}}; ``parent_list_ids`` never changes), "query_validation" (the
    current ``status.query_validation``, or why a new query is not checked), "would_send"
    (["PATCH /v3/marketing/segments/2.0/{id} (...)"], sent even when nothing changes)}``.
    """

    operator_extra_links: Sequence[BaseOperatorLink] = (SendGridSegmentLink(),)

    template_fields: Sequence[str] = ("segment_id", "name", "query_dsl", "sendgrid_conn_id", "dry_run")
    template_fields_renderers = {"query_dsl": "sql"}

    def __init__(
        self,
        *,
        segment_id: str,
        name: str | None = None,
        query_dsl: str | None = None,
        wait_for_validation: bool = True,
        validation_poll_interval: float = 10.0,
        validation_timeout: float = 600.0,
        dry_run: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if name is None and query_dsl is None:
            raise SendGridInputError("name/query_dsl", None, "give a new name, a new query_dsl or both")
        self.segment_id = segment_id
        self.name = name
        self.query_dsl = query_dsl
        self.dry_run = dry_run_argument(dry_run)  # type: ignore[assignment,method-assign]
        self.wait_for_validation = validation.flag("wait_for_validation", wait_for_validation)
        self.validation_poll_interval = validation.seconds(
            "validation_poll_interval", validation_poll_interval
        )
        self.validation_timeout = validation.seconds("validation_timeout", validation_timeout)

    def execute(self, context: Context) -> dict[str, Any]:
        """``PATCH /v3/marketing/segments/2.0/{segment_id}`` (then ``GET`` it while validating a new
        query): the updated segment (dict).

        :raises SendGridInputError: a bad rendered value, before any request.
        :raises AirflowFailException: SendGrid refused the change (400/409/422) or the query is INVALID.
        :raises TimeoutError: validation still pending after ``validation_timeout`` seconds.
        :raises SendGridError: any other failure (see the hook's "Errors").
        """
        from airflow_provider_sgseg.rules.requests import UpdateSegment

        request = UpdateSegment(self.segment_id, self.name, self.query_dsl)
        if is_dry_run(self.dry_run):
            return self._dry_run(context, request)
        self._push_segment_id(context, request.segment_id)
        try:
            segment = self.hook.run(request)
        except SendGridValidationError as error:
            raise refused(f"updating segment {request.segment_id}", error) from error
        if self.wait_for_validation and request.query_dsl is not None:
            segment = self._wait_until_valid(
                segment, interval=self.validation_poll_interval, timeout=self.validation_timeout
            )
        self.log.info("%s", summaries.segment_updated(segment, request.name, request.query_dsl))
        return segment

    def _dry_run(self, context: Context, request: UpdateSegment) -> dict[str, Any]:
        """Read the segment (and who has the new name); report the PATCH's changes field by field."""
        read_only(self.hook)
        segment_id = request.segment_id
        current = self.hook.get_segment(segment_id, contacts_sample=False)  # 404 as the PATCH would
        self._push_segment_id(context, segment_id)
        changes = field_changes(current, name=request.name, query_dsl=request.query_dsl)
        if "name" in changes:
            holders = [
                s for s in self.hook.find_segments_by_name(str(request.name)) if s.get("id") != segment_id
            ]
            if holders:
                raise AirflowFailException(
                    f"Dry run: SendGrid would refuse renaming segment {segment_id} to {request.name!r}: "
                    f"segment {holders[0].get('id')} has that name (segment names are unique)."
                )
        segment = {key: current.get(key) for key in ("name", "query_dsl", "parent_list_ids")}
        validated = (current.get("status") or {}).get("query_validation")
        report = {
            "segment_id": segment_id,
            "action": "update" if changes else "none",
            "segment": segment,
            "changes": changes,
            "query_validation": QUERY_NOT_VALIDATED if "query_dsl" in changes else validated,
        }
        changed = ", ".join(changes) or "nothing (the PATCH would send the same values)"
        summary = f"segment {current.get('name')!r} ({segment_id}): the real run would change {changed}"
        fields = ", ".join(request.call().json)
        return dry_run_result(self.log, summary, [described(request, f"set {fields}")], report)


class SendGridDeleteSegmentOperator(SendGridSegmentBaseOperator):
    """Delete a segment, unless a scheduled Single Send still targets it.

    Before the ``DELETE /v3/marketing/segments/2.0/{id}``, the operator reads every page of
    ``GET /v3/marketing/singlesends`` once, then each *scheduled* Single Send
    (``GET /v3/marketing/singlesends/{id}``: the list carries no recipients). If any targets the
    segment the task fails, without retries, naming each one's id, name and ``send_at``:
    SendGrid may delete the segment anyway, and the send would then go out without its contacts.

    :param segment_id: the segment's UUID (templated).
    :param missing_ok: treat a segment SendGrid does not have as success. Existence is read from
        ``GET /v3/marketing/segments/2.0?ids=<id>``, which answers 200 at every SendGrid base URL
        (with or without the segment), so a 404 caused by a wrong host is never mistaken for a
        missing segment: that fails with ``SendGridConfigError``. Even without ``missing_ok``, a
        retry of a try whose DELETE was sent (task state store) accepts a missing segment.
    :param force: delete even when scheduled Single Sends target the segment (they are named in a
        warning). A refusal from SendGrid (400, 409, 422) still fails the task without retries.
    :param dry_run: take every check above with reads only (``GET``) and report which segment
        would be deleted, or that it does not exist; fail where the real run would (templated:
        ``"True"``/``"False"`` are read as bools).

    Returns ``{"segment_id", "deleted"}``: ``deleted`` is False when it was already gone.
    Raises ``SendGridNotFoundError`` for a missing segment without ``missing_ok``. A dry run
    returns ``{"dry_run": True, "segment_id", "deleted": False, "would_delete", "segment"
    ({name, contacts_count, parent_list_ids}, None when missing), "scheduled_single_sends"
    ([{id, name, send_at}] that target it, with ``force``), "would_send"}``.
    """

    template_fields: Sequence[str] = ("segment_id", "sendgrid_conn_id", "dry_run")

    def __init__(
        self,
        *,
        segment_id: str,
        missing_ok: bool = False,
        force: bool = False,
        dry_run: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.segment_id = segment_id
        self.missing_ok = missing_ok
        self.force = force
        self.dry_run = dry_run_argument(dry_run)  # type: ignore[assignment,method-assign]

    def execute(self, context: Context) -> dict[str, Any]:
        """``GET /v3/marketing/segments/2.0?ids={id}``, ``GET /v3/marketing/singlesends`` (scheduled
        users), ``DELETE /v3/marketing/segments/2.0/{id}``: ``{"segment_id", "deleted"}``.

        :raises SendGridInputError: a bad rendered value, before any request.
        :raises SendGridNotFoundError: the segment is missing and ``missing_ok`` is False.
        :raises AirflowFailException: scheduled Single Sends target it (without ``force``), or
            SendGrid refused the delete (400/409/422).
        :raises SendGridError: any other failure (see the hook's "Errors").
        """
        from airflow_provider_sgseg.rules.requests import DeleteSegment

        request = DeleteSegment(self.segment_id)
        segment_id = request.segment_id
        missing_ok = validation.flag("missing_ok", self.missing_ok)
        force = validation.flag("force", self.force)
        dry_run = is_dry_run(self.dry_run)
        if dry_run:
            read_only(self.hook)
        store = TaskStateStore(context)
        earlier = store.get(DELETE_ATTEMPT_KEY)
        sent_before = earlier is not None and earlier.get("segment_id") == segment_id
        if not self.hook.segment_exists(segment_id):
            if not (missing_ok or sent_before):
                raise SendGridNotFoundError(
                    f"Segment {segment_id} does not exist (SendGrid's segment list has no such id); "
                    "set missing_ok=True to accept that"
                )
            why = "an earlier try deleted it" if sent_before else "missing_ok=True"
            if dry_run:
                self.log.info("Segment %s does not exist; nothing to delete (%s).", segment_id, why)
                report = {"segment_id": segment_id, "deleted": False, "would_delete": False, "segment": None}
                return dry_run_result(self.log, f"segment {segment_id} does not exist", [], report)
            self.log.info("%s", summaries.segment_deleted(segment_id, False, why))
            return {"segment_id": segment_id, "deleted": False}

        if users := self._scheduled_sends_to(segment_id):
            named = "; ".join(
                f"{send.get('id')} ({send.get('name')!r}, send_at {send.get('send_at')})" for send in users
            )
            if not force:
                raise AirflowFailException(
                    f"Not deleting segment {segment_id}: scheduled Single Send(s) target it: {named}. "
                    "Deleting it could send them to nobody from this segment. Cancel or change those "
                    "sends, or set force=True."
                )
            self.log.warning(
                "Deleting segment %s although scheduled Single Send(s) target it (force=True): %s",
                segment_id,
                named,
            )
        if dry_run:
            return self._dry_run(request, users)

        store.set(DELETE_ATTEMPT_KEY, {"segment_id": segment_id})
        try:
            self.hook.run(request)
        except SendGridValidationError as error:
            store.delete(DELETE_ATTEMPT_KEY)  # refused: nothing was deleted
            raise refused(f"deleting segment {segment_id}", error) from error
        except SendGridNotFoundError:
            # It existed a moment ago: a repeat of our own DELETE (after a lost answer) found it
            # gone. The list read says whether it really is.
            if self.hook.segment_exists(segment_id):
                raise
            self.log.info("Segment %s was already gone when the DELETE was repeated.", segment_id)
        self.log.info("%s", summaries.segment_deleted(segment_id, True))
        return {"segment_id": segment_id, "deleted": True}

    def _dry_run(self, request: DeleteSegment, users: list[dict[str, Any]]) -> dict[str, Any]:
        """Every check passed: report the segment the real run would delete (one more read)."""
        segment_id = request.segment_id
        current = self.hook.get_segment(segment_id, contacts_sample=False)
        segment = {key: current.get(key) for key in ("name", "contacts_count", "parent_list_ids")}
        sends = [{key: send.get(key) for key in ("id", "name", "send_at")} for send in users]
        report = {
            "segment_id": segment_id,
            "deleted": False,
            "would_delete": True,
            "segment": segment,
            "scheduled_single_sends": sends,
        }
        summary = f"the real run would delete segment {segment['name']!r} ({segment_id})"
        return dry_run_result(self.log, summary, [described(request)], report)

    def _scheduled_sends_to(self, segment_id: str) -> list[dict[str, Any]]:
        """The scheduled Single Sends whose ``send_to.segment_ids`` holds the segment."""
        users = []
        for summary in self.hook.list_single_sends():
            if summary.get("status") != "scheduled":
                continue
            try:
                send = self.hook.get_single_send(str(summary.get("id")))
            except SendGridNotFoundError:
                continue  # deleted since the list was read
            segment_ids = (send.get("send_to") or {}).get("segment_ids") or []
            if send.get("status") == "scheduled" and segment_id in segment_ids:
                users.append(send)
        return users


class SendGridRefreshSegmentOperator(SendGridSegmentBaseOperator):
    """Manually refresh a segment, within SendGrid's quota, never spending a refresh twice.

    SendGrid allows 2 manual refreshes per segment per day (reset at midnight in
    ``user_time_zone``), one per hour, and 10 per account per day (reset at 00:00 UTC). The
    segment is read first and the quota rules applied; a 429 from SendGrid is handled the same way.

    :param segment_id: the segment's UUID (templated).
    :param user_time_zone: IANA zone whose midnight resets the daily count (templated).
    :param on_quota_exhausted: ``"fail"`` (no retries burned; the error says which rule and when
        the next refresh is allowed), ``"skip"`` (task skipped), or ``"wait"`` (defer, freeing the
        worker slot, until the quota allows it, then refresh).
    :param quota_wait_margin: in ``"wait"`` mode, seconds to wait beyond the moment the quota
        lifts (slack for clock skew between the worker and SendGrid).

    Returns ``{"segment_id", "job_id", "requested_at", "watermark", "sample_updated_at_before"}``.
    ``watermark`` is the segment's ``sample_updated_at`` before the refresh: the
    watermark for waiting until the refreshed sample lands. ``sample_updated_at_before`` is the
    same value under its 0.2.0 name (deprecated; removed in 1.0). ``job_id`` is None when a retry found
    that an earlier try's refresh had been accepted but its answer was lost. A refresh skipped for
    quota (``"skip"``) leaves the same dict as its XCom, with ``job_id`` and ``requested_at`` None
    and a ``skipped`` reason, so a sensor given ``watermark=<this task>.output`` waits for
    SendGrid's next regular sample.
    """

    operator_extra_links: Sequence[BaseOperatorLink] = (SendGridSegmentLink(),)

    template_fields: Sequence[str] = ("segment_id", "user_time_zone", "sendgrid_conn_id")

    def __init__(
        self,
        *,
        segment_id: str,
        user_time_zone: str,
        on_quota_exhausted: str = "fail",
        quota_wait_margin: float = DEFAULT_QUOTA_WAIT_MARGIN,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.segment_id = segment_id
        self.user_time_zone = user_time_zone
        self.on_quota_exhausted = validation.choice(
            "on_quota_exhausted", on_quota_exhausted, ON_QUOTA_EXHAUSTED_MODES
        )
        self.quota_wait_margin = validation.seconds("quota_wait_margin", quota_wait_margin, allow_zero=True)

    def execute(self, context: Context) -> dict[str, Any]:
        """``GET /v3/marketing/segments/2.0/{id}`` then, if the quota allows, ``POST
        /v3/marketing/segments/2.0/refresh/{id}`` (sent at most once per task instance):
        ``{"segment_id", "job_id", "requested_at", "watermark", "sample_updated_at_before"}``.

        :raises SendGridInputError: a bad rendered value, before any request.
        :raises AirflowSkipException: quota used up and ``on_quota_exhausted="skip"``.
        :raises AirflowFailException: quota used up and ``on_quota_exhausted="fail"``, or SendGrid
            refused the refresh (400/409/422).
        :raises TaskDeferred: quota used up and ``on_quota_exhausted="wait"``.
        :raises SendGridError: any other failure (see the hook's "Errors").
        """
        result = self._refresh(context)
        self.log.info("%s", self._summary(result))
        return result

    def execute_after_wait(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after waiting for the quota: check again, then refresh (on the worker).

        :raises AirflowTaskTimeout: ``execution_timeout`` ran out while deferred (retries apply).
        """
        self.check_execution_deadline(context)
        result = self._refresh(context)
        self.log.info("%s", self._summary(result))
        return result

    def _summary(self, result: Mapping[str, Any]) -> str:
        """The last log line: the refresh spent, refreshes left today and when the next is allowed
        (worked out from the segment read before the refresh: this try's POST, or an earlier try's
        that the read does not show yet; or as SendGrid reports it now when the read shows the
        earlier try's refresh)."""
        from airflow_provider_sgseg.rules import refresh_quota

        segment, zone = self._refresh_read
        by_this_try = self._refreshed_here
        if by_this_try or self._read_before_refresh:
            left, next_at = refresh_quota.after_refresh(
                segment, zone, parse_instant(result["requested_at"]) or self.now()
            )
        else:
            now = self.now()
            left = refresh_quota.refreshes_left(segment, zone, now)
            next_at = refresh_quota.decide(segment, zone, now).next_allowed_at
        return summaries.refresh_spent(result, segment, zone, left, next_at, by_this_try=by_this_try)

    def _refresh(self, context: Context) -> dict[str, Any]:
        from airflow_provider_sgseg.rules import refresh_quota
        from airflow_provider_sgseg.rules.requests import GetSegment, RefreshSegment

        request = RefreshSegment(self.segment_id, self.user_time_zone)
        segment_id, zone = request.segment_id, request.user_time_zone
        read = GetSegment(segment_id, contacts_sample=False)
        store = TaskStateStore(context)
        self._push_segment_id(context, segment_id)

        segment = self.hook.run(read)
        self._refresh_read, self._refreshed_here = (segment, zone), False  # for the summary
        self._read_before_refresh = False  # the read shows no trace of the refresh it reports
        earlier = self._earlier_refresh(context, store, segment_id, segment)
        if earlier is not None:
            return earlier

        # An earlier try's POST whose answer was never seen and of which the segment shows no trace.
        unresolved = store.get(REFRESH_ATTEMPT_KEY)
        if unresolved is not None and unresolved.get("segment_id") != segment_id:
            unresolved = None
        since = earlier_tries_since(context)
        if not store.available and since is not None:
            # Airflow < 3.3: an earlier try may have posted, and nothing recorded it. If so, its
            # sample is newer than the one the segment shows now.
            unresolved = {
                "segment_id": segment_id,
                "requested_at": since.isoformat(),
                "watermark": segment.get("sample_updated_at"),
            }

        decision = refresh_quota.decide(segment, zone, self.now())
        if not decision.allowed:
            self._quota_exhausted(context, decision, segment_id, segment)

        requested_at = self.now()
        attempt = {
            "segment_id": segment_id,
            "requested_at": requested_at.isoformat(),
            "last_refreshed_at_before": segment.get("last_refreshed_at"),
            "refreshes_used_before": segment.get("refreshes_used"),
            "watermark": segment.get("sample_updated_at"),
        }
        store.set(REFRESH_ATTEMPT_KEY, attempt)
        try:
            answer = self.hook.run(request)
        except SendGridRateLimitError as error:
            if unresolved is not None:
                # SendGrid may set last_refreshed_at only when a refresh completes (INFERRED), so
                # the earlier POST can be accepted yet invisible; its hourly spacing then answers
                # this one with 429. Take it as accepted rather than wait and spend a second one.
                earlier_result = self._result_of(unresolved)
                self.log.warning(
                    "SendGrid answered 429 (%s) after an earlier try's refresh of segment %s whose "
                    "answer was lost: taking that refresh as accepted, not refreshing again.",
                    error,
                    segment_id,
                )
                store.set(REFRESH_RESULT_KEY, earlier_result)
                self._read_before_refresh = True
                return earlier_result
            store.delete(REFRESH_ATTEMPT_KEY)  # refused: nothing was spent
            self.log.info("SendGrid refused the refresh with 429: %s", error)
            self._quota_exhausted(
                context,
                refresh_quota.decide_after_rate_limit(segment, zone, self.now(), error.reset_at),
                segment_id,
                segment,
            )
        except SendGridForbiddenError as error:
            store.delete(REFRESH_ATTEMPT_KEY)
            # SendGrid's 403 here means the plan has no manual refresh: retrying cannot help.
            raise AirflowFailException(
                f"SendGrid refused the manual refresh of segment {segment_id} (403: manual refresh "
                f"needs a Marketing Campaigns Basic or Advanced plan): {error}"
            ) from error
        except SendGridValidationError as error:
            store.delete(REFRESH_ATTEMPT_KEY)  # refused: nothing was spent
            raise refused(f"the manual refresh of segment {segment_id}", error) from error
        except (SendGridTransportError, SendGridServerError, SendGridResponseError) as error:
            # The request may have been processed before the answer was lost: look, don't re-post.
            after = self.hook.run(read)
            adopted = self._accepted_result(attempt, after)
            if adopted is None:
                raise
            self.log.warning(
                "Refresh answer lost (%s) but SendGrid recorded the refresh; not re-posting.", error
            )
            store.set(REFRESH_RESULT_KEY, adopted)
            self._refreshed_here = True  # this try's POST, its answer lost
            return adopted

        result = _refresh_result(
            segment_id,
            answer.get("job_id") if isinstance(answer, Mapping) else None,
            attempt["requested_at"],
            attempt["watermark"],
        )
        store.set(REFRESH_RESULT_KEY, result)
        self.log.info("SendGrid accepted the refresh of segment %s (job %s).", segment_id, result["job_id"])
        self._refreshed_here = True
        return result

    def _earlier_refresh(
        self, context: Context, store: TaskStateStore, segment_id: str, segment: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The result of an earlier try of this task instance whose refresh SendGrid accepted."""
        if store.available:
            result = store.get(REFRESH_RESULT_KEY)
            if result is not None and result.get("segment_id") == segment_id:
                self.log.info(
                    "An earlier try already refreshed segment %s; returning its result.", segment_id
                )
                named = {k: v for k, v in result.items() if k not in ("watermark", LEGACY_WATERMARK_KEY)}
                return _refresh_result(**named, watermark=_watermark_of(result))
            attempt = store.get(REFRESH_ATTEMPT_KEY)
            if attempt is None or attempt.get("segment_id") != segment_id:
                return None
            adopted = self._accepted_result(attempt, segment)
            if adopted is not None:
                self.log.warning(
                    "An earlier try's refresh of segment %s was accepted (its answer was lost); "
                    "not refreshing again.",
                    segment_id,
                )
                store.set(REFRESH_RESULT_KEY, adopted)
            return adopted
        # Airflow < 3.3 (no task state store): on a retry, a refresh that SendGrid recorded
        # after this DAG run started counts as an earlier try's.
        started = earlier_tries_since(context)
        last = parse_instant(segment.get("last_refreshed_at"))
        if started is not None and last is not None and last >= started:
            self.log.warning(
                "Segment %s was refreshed at %s, after this DAG run started; not refreshing again.",
                segment_id,
                last.isoformat(),
            )
            # A sample from before (or the second of) the refresh is the one it replaces; a refresh
            # samples after a delay, so a newer one is its own.
            sample = parse_instant(segment.get("sample_updated_at"))
            replaced = segment.get("sample_updated_at") if sample is not None and sample <= last else None
            return _refresh_result(segment_id, None, last.isoformat(), replaced)
        return None

    @staticmethod
    def _accepted_result(attempt: Mapping[str, Any], segment: Mapping[str, Any]) -> dict[str, Any] | None:
        """The result for ``attempt`` if ``segment`` shows a refresh recorded after it began
        (:func:`~airflow_provider_sgseg.rules.adoption.refresh_accepted`)."""
        from airflow_provider_sgseg.rules.adoption import refresh_accepted

        if not refresh_accepted(attempt, segment):
            return None
        return SendGridRefreshSegmentOperator._result_of(attempt)

    @staticmethod
    def _result_of(attempt: Mapping[str, Any]) -> dict[str, Any]:
        """The XCom result for a recorded attempt whose 202 was never seen (so no ``job_id``)."""
        return _refresh_result(
            attempt.get("segment_id"), None, attempt.get("requested_at"), _watermark_of(attempt)
        )

    def _quota_exhausted(
        self, context: Context, decision: RefreshDecision, segment_id: str, segment: Mapping[str, Any]
    ) -> NoReturn:
        message = f"Cannot refresh segment now ({decision.blocked_by}): {decision.reason}"
        if self.on_quota_exhausted == "skip":
            # A skipped task leaves no return value, and a sensor reading refresh_segment.output
            # would log Airflow's error-level "XCom not found". Leave one it understands: wait for
            # a sample newer than the one SendGrid has now (SendGrid still samples on its own).
            skipped = _refresh_result(
                segment_id, None, None, segment.get("sample_updated_at"), skipped=message
            )
            context["ti"].xcom_push(key=XCOM_RETURN_KEY, value=skipped)
            self.log.info("%s", self._skipped_summary(segment_id, decision))
            raise AirflowSkipException(message)
        if self.on_quota_exhausted == "wait" and decision.next_allowed_at is not None:
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            wanted = decision.next_allowed_at + datetime.timedelta(seconds=self.quota_wait_margin)
            moment = self.capped_server_wait(context, wanted, f"The quota ({decision.blocked_by})")
            self.log.info("%s. Deferring until %s.", message, moment.isoformat())
            self.defer(trigger=DateTimeTrigger(moment=moment), method_name="execute_after_wait")
        raise AirflowFailException(message)

    def _skipped_summary(self, segment_id: str, decision: RefreshDecision) -> str:
        from airflow_provider_sgseg.rules import refresh_quota

        segment, zone = self._refresh_read
        left = refresh_quota.refreshes_left(segment, zone, self.now())
        return summaries.refresh_skipped(
            segment_id, segment, zone, left, decision.blocked_by, decision.next_allowed_at
        )
