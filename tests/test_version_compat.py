"""version_compat: the version flags and the names that moved between Airflow 3.0 and 3.3."""

from __future__ import annotations

import asyncio
import importlib.metadata

import pytest

from airflow_provider_sgseg import version_compat
from airflow_provider_sgseg.version_compat import version_tuple


@pytest.mark.parametrize(
    ("version", "expected"), [("3.0.6", (3, 0)), ("3.3.0rc1", (3, 3)), ("3.10.2.post1", (3, 10))]
)
def test_version_tuple(version: str, expected: tuple[int, int]) -> None:
    assert version_tuple(version) == expected


def test_version_tuple_rejects_what_is_no_version() -> None:
    with pytest.raises(ValueError, match="not an Airflow version: 'main'"):
        version_tuple("main")


def test_flags_follow_the_installed_airflow() -> None:
    installed = version_tuple(importlib.metadata.version("apache-airflow-core"))
    assert (installed >= (3, 1)) == version_compat.AIRFLOW_V_3_1_PLUS
    assert (installed >= (3, 2)) == version_compat.AIRFLOW_V_3_2_PLUS
    assert (installed >= (3, 3)) == version_compat.AIRFLOW_V_3_3_PLUS


def test_task_exceptions_are_the_ones_this_airflow_raises_and_catches() -> None:
    module = "airflow.sdk.exceptions" if version_compat.AIRFLOW_V_3_2_PLUS else "airflow.exceptions"
    for name in ("AirflowException", "AirflowFailException", "AirflowSkipException", "TaskDeferred"):
        assert getattr(version_compat, name).__module__ == module, name
    assert issubclass(version_compat.AirflowFailException, version_compat.AirflowException)


def test_aget_connection_reads_an_environment_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """3.1+: BaseHook.aget_connection; 3.0: the sync lookup in a thread. Same connection either way."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_SGSEG_COMPAT",
        '{"conn_type": "sendgrid_marketing", "host": "https://api.eu.sendgrid.com", "password": "SG.x"}',
    )
    connection = asyncio.run(version_compat.aget_connection("sgseg_compat"))
    assert connection.conn_id == "sgseg_compat"
    assert connection.host == "https://api.eu.sendgrid.com"


def test_event_trigger_names_load_on_first_use_and_shared_streams_follow_the_line() -> None:
    code = (
        "import airflow_provider_sgseg.version_compat as v\nprint('airflow.triggers.base' in sys.modules)\n"
    )
    import subprocess
    import sys

    shown = subprocess.run(
        [sys.executable, "-c", "import sys\n" + code], capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == "False"  # a DAG file that uses no event trigger does not pay for it
    from airflow.triggers.base import BaseEventTrigger, TriggerEvent

    assert version_compat.BaseEventTrigger is BaseEventTrigger
    assert version_compat.TriggerEvent is TriggerEvent
    assert version_compat.HAS_SHARED_STREAMS == version_compat.AIRFLOW_V_3_3_PLUS
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        version_compat.Nope  # noqa: B018
