"""Test-only Airflow differences between 3.0 and 3.3 (the provider's own: version_compat)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from airflow_provider_sgseg.version_compat import AIRFLOW_V_3_1_PLUS, AIRFLOW_V_3_2_PLUS, AIRFLOW_V_3_3_PLUS

if AIRFLOW_V_3_2_PLUS:
    DAGBAG_IMPORT = "from airflow.dag_processing.dagbag import DagBag"
    from airflow.dag_processing.dagbag import DagBag
else:
    DAGBAG_IMPORT = "from airflow.models.dagbag import DagBag"
    from airflow.models.dagbag import DagBag  # type: ignore[attr-defined,no-redef]


def sync_dags_for_dags_test(airflow_bin: Path, env: Mapping[str, str]) -> None:
    """Before ``airflow dags test`` on Airflow 3.0: write the DAGs to the metadata DB.

    3.1+ ``dags test`` syncs the DAG (and activates its Assets) itself; 3.0's does not, so a task
    with Asset outlets fails with AirflowInactiveAssetInInletOrOutletException. ``dags
    reserialize`` does what the DAG processor would have done.
    """
    if AIRFLOW_V_3_1_PLUS:
        return
    subprocess.run(
        [str(airflow_bin), "dags", "reserialize"], env=dict(env), check=True, capture_output=True, text=True
    )


def without_airflows_mask_requests(output: str) -> str:
    """``airflow dags test`` output minus Airflow's own debug lines that print a secret.

    Before 3.3, the in-process supervisor of ``dags test`` logs each message of the task at debug
    level, including ``MaskSecret(value='<the connection password>')``: Airflow's request to
    redact the key, sent for every connection it loads. Only those lines are dropped; the key
    anywhere else still fails the test.
    """
    if AIRFLOW_V_3_3_PLUS:
        return output
    return "\n".join(line for line in output.splitlines() if "msg=MaskSecret(value=" not in line)


__all__ = ["DAGBAG_IMPORT", "DagBag", "sync_dags_for_dags_test", "without_airflows_mask_requests"]
