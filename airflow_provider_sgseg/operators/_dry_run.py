"""Dry runs (``dry_run=True``): every read and check of the real run, no write.

A dry run takes the real run's decisions on the same reads and fails where the real run would
fail before its first write, with the same error. Where the real run would write, it records the
request it would send instead, and returns a report (XCom) marked ``"dry_run": True``. Its hook
refuses every request but a ``GET``, so a write reached by mistake fails the task instead of
changing the account. Nothing is written to the task state store either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.rules import validation
from airflow_provider_sgseg.version_compat import AirflowFailException

if TYPE_CHECKING:
    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
    from airflow_provider_sgseg.rules.requests import Request

DRY_RUN_KEY = "dry_run"  # in every dry run's XCom, True
QUERY_NOT_VALIDATED = (
    "not checked: SendGrid validates a query only when a segment is created or its query changed, "
    "both writes a dry run does not send"
)


def dry_run_argument(value: object) -> bool | str:
    """``dry_run`` as given to an operator: a bool, or text a template renders to ``True``/``False``.

    The operators keep it as ``self.dry_run``, in place of ``BaseOperator.dry_run()`` (render the
    templates and log them), which Airflow 3 no longer calls (``airflow tasks render`` does that).

    :raises SendGridInputError: anything else, when the DAG is parsed.
    """
    if isinstance(value, bool | str):
        return value
    raise SendGridInputError(DRY_RUN_KEY, value, "must be True, False or a template rendering to one")


def is_dry_run(value: object) -> bool:
    """The rendered ``dry_run``. :raises SendGridInputError: not a yes/no value."""
    return validation.flag(DRY_RUN_KEY, value)


def read_only(hook: SendGridMarketingHook) -> SendGridMarketingHook:
    """``hook``, refusing every request but a ``GET`` (every hook method sends through ``run``).

    :raises AirflowFailException: (from the hook) a request that would write; no retries, as a
        retry would meet the same refusal.
    """
    send = hook.run

    def run(request: Any) -> Any:
        call = request.call()
        if call.method != "GET":
            raise AirflowFailException(
                f"Dry run: refusing to send {call.method} {call.path}; a dry run only reads."
            )
        return send(request)

    hook.run = run  # type: ignore[method-assign]
    return hook


def described(request: Request[Any], what: str = "") -> str:
    """``"METHOD path (what)"`` of a request the real run would send."""
    call = request.call()
    return f"{call.method} {call.path}" + (f" ({what})" if what else "")


def dry_run_result(
    log: Any, summary: str, would_send: Sequence[str], result: dict[str, Any]
) -> dict[str, Any]:
    """Log (on the task's ``log``) ``summary`` and each request the real run would send.
    Returns the XCom: ``{"dry_run": True, **result, "would_send": [...]}``."""
    log.info("Dry run: %s", summary)
    for request in would_send:
        log.info("Dry run: the real run would send %s", request)
    log.info("Dry run: nothing was written to SendGrid (%d write(s) left out).", len(would_send))
    return {DRY_RUN_KEY: True, **result, "would_send": list(would_send)}
