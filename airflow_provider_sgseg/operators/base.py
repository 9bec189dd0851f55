"""What every SendGrid task shares: the connection id, the hook, and the time seams.

Operators derive from :class:`SendGridBaseOperator`; the sensor mixes :class:`SendGridTaskMixin`
into Airflow's ``BaseSensorOperator``. Either way the hook is built lazily (never at DAG parse
time) from ``sendgrid_conn_id`` and ``hook_params``, as dbt Cloud's operators do.
"""

from __future__ import annotations

import datetime
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import BaseOperator

from airflow_provider_sgseg.get_provider_info import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

__all__ = ["DEFAULT_CONN_ID", "SendGridBaseOperator", "SendGridTaskMixin"]


class SendGridTaskMixin:
    """The hook accessor and the time seams of a SendGrid task.

    ``now`` and ``sleep`` are methods so a test can patch them (e.g. to run on the emulator's
    clock) without anything reaching the task's signature or its serialised form.
    """

    sendgrid_conn_id: str
    hook_params: dict[str, Any]
    # Set by tasks whose own loop is the retry (a sensor): the hook tries each request once
    # unless ``hook_params`` names a ``retry`` policy.
    single_attempt_hook: bool = False

    @cached_property
    def hook(self) -> SendGridMarketingHook:
        """``SendGridMarketingHook(sendgrid_conn_id, **hook_params)``, built on first use."""
        from airflow_provider_sgseg.hooks._retry import NO_RETRY
        from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook

        params = {"retry": NO_RETRY, **self.hook_params} if self.single_attempt_hook else self.hook_params
        return SendGridMarketingHook(self.sendgrid_conn_id, **params)

    def now(self) -> datetime.datetime:
        """The current time (aware, UTC)."""
        return pendulum.now("UTC")

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        time.sleep(seconds)


class SendGridBaseOperator(SendGridTaskMixin, BaseOperator):
    """Base of every SendGrid operator.

    :param sendgrid_conn_id: Airflow connection of type ``sendgrid_marketing``.
    :param hook_params: keyword arguments for :class:`SendGridMarketingHook` beyond the
        connection id, e.g. ``{"retry": RetryPolicy(max_attempts=3)}``.
    """

    ui_color = "#1A82E2"

    def __init__(
        self,
        *,
        sendgrid_conn_id: str = DEFAULT_CONN_ID,
        hook_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sendgrid_conn_id = sendgrid_conn_id
        self.hook_params = dict(hook_params or {})
