"""What both triggers share: the hook a wait polls with (and the ``hook_params`` a trigger
carries to build it), the time seams, and requests bounded by the wait's deadline.

A trigger's kwargs are stored in Airflow's trigger table, so they carry only the task's JSON-safe
``hook_params`` (as dbt Cloud's triggers do), never the API key: the triggerer looks the key up
from the connection id itself. A :class:`~airflow_provider_sgseg.hooks._retry.RetryPolicy`
travels as its numbers (its injected sleep and clock stay behind).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

import pendulum
from airflow.triggers.base import BaseTrigger

from airflow_provider_sgseg.exceptions import SendGridTransportError

if TYPE_CHECKING:
    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

T = TypeVar("T")

# hook_params names that may hold a secret: never written to the trigger table.
_SECRET_HINTS = ("key", "secret", "password", "token")


def failure_status(error: BaseException) -> str:
    """The event status of a wait that ended on an unexpected ``error``: ``"invalid"`` for a
    definitive one (an ``AirflowFailException``: bad input, a connection without an API key, which
    a retry would meet again: no retries), else ``"error"`` (the task's retries apply)."""
    from airflow_provider_sgseg.version_compat import AirflowFailException

    return "invalid" if isinstance(error, AirflowFailException) else "error"


def to_trigger(hook_params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``(json_safe, left_out)``: the hook params a trigger may carry, and the names left out
    (values that are not plain JSON, or names and values that may hold a secret)."""
    carried: dict[str, Any] = {}
    left_out: list[str] = []
    for name, value in hook_params.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {
                field.name: getattr(value, field.name)
                for field in dataclasses.fields(value)
                if _is_json(getattr(value, field.name))
            }
        secret = any(hint in name.lower() for hint in _SECRET_HINTS) or "SG." in json.dumps(
            value, default=str
        )
        if secret or not _is_json(value):
            left_out.append(name)
        else:
            carried[name] = value
    return carried, left_out


def from_trigger(hook_params: dict[str, Any] | None) -> dict[str, Any]:
    """The keyword arguments for the hook, from a trigger's ``hook_params`` (``retry`` back to
    a :class:`RetryPolicy`)."""
    params = dict(hook_params or {})
    if isinstance(params.get("retry"), dict):
        from airflow_provider_sgseg.hooks._retry import RetryPolicy

        params["retry"] = RetryPolicy(**params["retry"])
    return params


def wait_hook(sendgrid_conn_id: str, hook_params: dict[str, Any]) -> SendGridMarketingHook:
    """The hook of a wait: one attempt per poll (the wait's own loop is the retry, paced by
    SendGrid's schedule) unless ``hook_params`` names a ``retry`` policy. A wait SendGrid names
    is sat out exactly, without jitter: a wait lasts until the named reset."""
    from airflow_provider_sgseg.hooks._retry import NO_RETRY
    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

    params = {"retry": NO_RETRY, **hook_params, "exact_named_waits": True}
    return SendGridMarketingHook(sendgrid_conn_id, **params)


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


class SendGridWaitTrigger(BaseTrigger):
    """Base of the provider's triggers: time seams, the wait's hook, bounded requests."""

    sendgrid_conn_id: str
    hook_params: dict[str, Any]

    # Test seams: what time it is and how to wait. Methods, so a test can patch them on the
    # class (making a sleep advance the emulator's clock) without anything being serialised.
    def now(self) -> datetime.datetime:
        """The current time (aware, UTC); a test seam."""
        return pendulum.now("UTC")

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; a test seam."""
        await asyncio.sleep(seconds)

    def _hook_params_kwarg(self) -> dict[str, Any]:
        """``{"hook_params": ...}`` for ``serialize()`` when there are any; rows without them
        stay as earlier releases wrote them."""
        return {"hook_params": self.hook_params} if self.hook_params else {}

    def wait_hook(self) -> SendGridMarketingHook:
        """The hook to poll with (:func:`wait_hook` with this trigger's ``hook_params``)."""
        return wait_hook(self.sendgrid_conn_id, from_trigger(self.hook_params))

    async def before(self, deadline: datetime.datetime | None, request: Awaitable[T]) -> T:
        """``request``'s answer, cut off at ``deadline`` so a slow answer cannot hold the wait
        past it.

        :raises SendGridTransportError: no answer before ``deadline`` (a transient failure).
        """
        remaining = None if deadline is None else deadline.timestamp() - self.now().timestamp()
        try:
            async with asyncio.timeout(remaining):
                return await request
        except TimeoutError as error:
            raise SendGridTransportError(f"no answer before the wait's deadline {deadline}") from error
