"""The base of every SendGrid operator.

What operators share with the sensor (the hook, the time seams, deferral deadlines) lives in
:mod:`airflow_provider_sgseg.task`; ``SendGridTaskMixin`` and ``DEFAULT_CONN_ID`` are still
importable from here.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from airflow_provider_sgseg.task import DEFAULT_CONN_ID, SendGridTaskMixin

__all__ = ["DEFAULT_CONN_ID", "SendGridBaseOperator", "SendGridTaskMixin"]


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
