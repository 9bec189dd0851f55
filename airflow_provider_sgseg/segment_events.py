"""For the first task of a DAG scheduled by segment watchers: the events it has not handled yet.

On Airflow 3.0-3.2 a watcher keeps no state across triggerer restarts, so an event can repeat
(two triggerers briefly running one watcher during a failover). :func:`new_segment_events`
drops what an earlier run of the same DAG already took on. On 3.3+ (watermarks in the asset
state store) a restart repeats nothing, but the same overlap of two triggerers still can (the
store has no compare-and-set). See docs/events.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Context

VARIABLE_PREFIX = "sendgrid_segment_events"


def segment_samples_uri(segment_id: str) -> str:
    """The Asset URI for "segment ``segment_id`` has a new sample": the URI to give the Asset a
    ``SendGridSegmentEventTrigger`` watches (``x-sendgrid://segments/<id>/samples``)."""
    return f"x-sendgrid://segments/{segment_id}/samples"


def triggering_payloads(context: Context) -> list[dict[str, Any]]:
    """The payloads of the watcher events that started this DAG run (Asset event
    ``extra["payload"]``), oldest first; events of other kinds are left out."""
    payloads: list[dict[str, Any]] = []
    triggering = context.get("triggering_asset_events") or {}
    for events in triggering.values():
        for event in events:
            extra = getattr(event, "extra", None) or {}
            payload = extra.get("payload") if isinstance(extra, Mapping) else None
            if isinstance(payload, Mapping) and "segment_id" in payload:
                payloads.append(dict(payload))
    return payloads


def new_segment_events(context: Context) -> list[dict[str, Any]]:
    """The segment event payloads this DAG run has to handle.

    Remembers, per DAG and segment, the newest sample a run took on, in the Airflow Variable
    ``sendgrid_segment_events.<dag_id>`` (JSON). A repeated event (same segment, sample not
    newer) is dropped, unless this same run took it on before (a retry still handles it).

    :returns: the payloads (shape in ``SendGridSegmentEventTrigger``); never empty.
    :raises AirflowSkipException: every event of this run was handled by an earlier run (or the
        run was not started by a segment watcher); the task and, by default, its downstream
        tasks are skipped.
    """
    from airflow.sdk import Variable

    from airflow_provider_sgseg.rules.segment_events import unhandled
    from airflow_provider_sgseg.version_compat import AirflowSkipException

    dag_run = context["dag_run"]
    key = f"{VARIABLE_PREFIX}.{dag_run.dag_id}"
    payloads = triggering_payloads(context)
    if not payloads:
        raise AirflowSkipException(
            "No segment event: this run was not started by a segment watcher (a manual run or "
            "`airflow dags test` has none)"
        )
    handled = Variable.get(key, default=None, deserialize_json=True)
    fresh, newest = unhandled(payloads, handled if isinstance(handled, dict) else {}, dag_run.run_id)
    if not fresh:
        raise AirflowSkipException("No new segment event: this run's events were handled by an earlier run")
    Variable.set(key, newest, serialize_json=True)
    return fresh
