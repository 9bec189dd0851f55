"""SendGrid UI URLs and the Airflow extra links that point at them.

The links read the id the operator pushed to XCom; they never open a connection, so the
API server can draw them without the API key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

SENDGRID_UI = "https://mc.sendgrid.com"

SEGMENT_ID_XCOM_KEY = "segment_id"
SINGLE_SEND_ID_XCOM_KEY = "single_send_id"


def segment_url(segment_id: str) -> str:
    """The segment's page in the SendGrid Marketing Campaigns UI."""
    return f"{SENDGRID_UI}/contacts/segments/{quote(segment_id, safe='')}"


def single_send_url(single_send_id: str) -> str:
    """The Single Send's stats page in the SendGrid Marketing Campaigns UI."""
    return f"{SENDGRID_UI}/single-sends/{quote(single_send_id, safe='')}/stats"


def _xcom_id(ti_key: TaskInstanceKey, key: str) -> str | None:
    from airflow.sdk.execution_time.xcom import XCom

    value = XCom.get_value(ti_key=ti_key, key=key)
    return value if isinstance(value, str) and value else None


class SendGridSegmentLink(BaseOperatorLink):
    """ "SendGrid segment": the segment whose id the task pushed to XCom key ``segment_id``."""

    name = "SendGrid segment"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The segment's SendGrid UI URL from the task's XCom ``segment_id`` ("" when there is none)."""
        segment_id = _xcom_id(ti_key, SEGMENT_ID_XCOM_KEY)
        return segment_url(segment_id) if segment_id else ""


class SendGridSingleSendLink(BaseOperatorLink):
    """ "SendGrid Single Send": the Single Send whose id the task pushed to XCom key ``single_send_id``."""

    name = "SendGrid Single Send"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The Single Send's SendGrid UI URL from the XCom ``single_send_id`` ("" if there is none)."""
        single_send_id = _xcom_id(ti_key, SINGLE_SEND_ID_XCOM_KEY)
        return single_send_url(single_send_id) if single_send_id else ""
