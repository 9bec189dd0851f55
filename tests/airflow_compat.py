"""Test-only Airflow names that moved between 3.0 and 3.3 (the provider's own: version_compat)."""

from __future__ import annotations

from airflow_provider_sgseg.version_compat import AIRFLOW_V_3_2_PLUS

if AIRFLOW_V_3_2_PLUS:
    DAGBAG_IMPORT = "from airflow.dag_processing.dagbag import DagBag"
    from airflow.dag_processing.dagbag import DagBag
else:
    DAGBAG_IMPORT = "from airflow.models.dagbag import DagBag"
    from airflow.models.dagbag import DagBag  # type: ignore[attr-defined,no-redef]

__all__ = ["DAGBAG_IMPORT", "DagBag"]
