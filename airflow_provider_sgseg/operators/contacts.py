"""Contacts in and out of SendGrid: the upsert and export operators, under their first module path.

The operators live in :mod:`~airflow_provider_sgseg.operators.contacts_upsert` and
:mod:`~airflow_provider_sgseg.operators.contacts_export`; DAGs importing from this module keep
working.
"""

from __future__ import annotations

from airflow_provider_sgseg.exceptions import SendGridRowError
from airflow_provider_sgseg.operators._contact_jobs import DEFAULT_BOUNDS, DEFAULT_WAIT_TIMEOUT
from airflow_provider_sgseg.operators.contacts_export import EXPORT_STATE_KEY, SendGridExportContactsOperator
from airflow_provider_sgseg.operators.contacts_upsert import (
    DEFAULT_IMPORT_THRESHOLD,
    MAX_REPORTED_ROWS,
    UPSERT_STATE_KEY,
    SendGridUpsertContactsOperator,
)
from airflow_provider_sgseg.rules.batching import MAX_IMPORT_BYTES, MAX_IMPORT_ROWS

__all__ = [
    "DEFAULT_BOUNDS",
    "DEFAULT_IMPORT_THRESHOLD",
    "DEFAULT_WAIT_TIMEOUT",
    "EXPORT_STATE_KEY",
    "MAX_IMPORT_BYTES",
    "MAX_IMPORT_ROWS",
    "MAX_REPORTED_ROWS",
    "UPSERT_STATE_KEY",
    "SendGridExportContactsOperator",
    "SendGridRowError",
    "SendGridUpsertContactsOperator",
]
