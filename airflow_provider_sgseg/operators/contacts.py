"""Contacts in and out of SendGrid: the upsert and export operators, under their first module path.

The operators live in :mod:`~airflow_provider_sgseg.operators.contacts_upsert` and
:mod:`~airflow_provider_sgseg.operators.contacts_export`; DAGs importing from this module keep
working.
"""

from __future__ import annotations

from airflow_provider_sgseg.exceptions import SendGridRowError
from airflow_provider_sgseg.operators._contact_jobs import DEFAULT_WAIT_TIMEOUT, JOB_WAIT_BOUNDS
from airflow_provider_sgseg.operators.contacts_export import EXPORT_STATE_KEY, SendGridExportContactsOperator
from airflow_provider_sgseg.operators.contacts_upsert import (
    DEFAULT_IMPORT_THRESHOLD,
    MAX_REPORTED_ROWS,
    UPSERT_STATE_KEY,
    SendGridUpsertContactsOperator,
)
from airflow_provider_sgseg.rules.batching import MAX_IMPORT_BYTES, MAX_IMPORT_ROWS

DEFAULT_BOUNDS = JOB_WAIT_BOUNDS  # its name here before JOB_WAIT_BOUNDS

__all__ = [
    "DEFAULT_BOUNDS",
    "DEFAULT_IMPORT_THRESHOLD",
    "DEFAULT_WAIT_TIMEOUT",
    "EXPORT_STATE_KEY",
    "JOB_WAIT_BOUNDS",
    "MAX_IMPORT_BYTES",
    "MAX_IMPORT_ROWS",
    "MAX_REPORTED_ROWS",
    "UPSERT_STATE_KEY",
    "SendGridExportContactsOperator",
    "SendGridRowError",
    "SendGridUpsertContactsOperator",
]
