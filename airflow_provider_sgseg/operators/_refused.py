"""A SendGrid refusal ends the task at once: the same request can never succeed, so no retries."""

from __future__ import annotations

from airflow_provider_sgseg.exceptions import SendGridValidationError
from airflow_provider_sgseg.version_compat import AirflowFailException


def refused(action: str, error: SendGridValidationError) -> AirflowFailException:
    """The task failure for SendGrid's 400/409/422 to ``action``, with SendGrid's field and message."""
    return AirflowFailException(
        f"SendGrid rejected {action} (HTTP {error.status_code}, not retried): {error}"
    )
