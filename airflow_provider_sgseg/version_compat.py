"""Airflow 3.0 through 3.3: every name that moved between minor versions, imported in one place.

The rest of the provider imports these names from here, never from their moving homes
(the official providers keep a ``version_compat.py`` for the same reason). Where each lives:

============================== ============================ ==================================
name                           Airflow 3.0 / 3.1            Airflow 3.2+
============================== ============================ ==================================
``conf``                       ``airflow.configuration``    ``airflow.sdk.configuration``
``AirflowException`` & co.     ``airflow.exceptions``       ``airflow.sdk.exceptions``
``BaseHook``                   ``airflow.hooks.base`` (3.0) ``airflow.sdk`` (3.1+)
``BaseHook.aget_connection``   missing in 3.0               3.1+
connection form                hook classmethods (< 3.2)    ``conn-fields`` in provider info
task state store               missing (< 3.3)              3.3+ (read via ``state_store.py``)
``BaseEventTrigger``           ``airflow.triggers.base``    same; 3.3+ adds shared streams
                                                            (``shared_stream_key`` & co.) and a
                                                            watcher's ``asset_state_store``
============================== ============================ ==================================
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION

if TYPE_CHECKING:
    from airflow.sdk import Connection
    from airflow.triggers.base import BaseEventTrigger, TriggerEvent

    HAS_SHARED_STREAMS: bool


def version_tuple(version: str) -> tuple[int, int]:
    """(major, minor) of a version string such as ``"3.0.6"`` or ``"3.3.0rc1"``."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        raise ValueError(f"not an Airflow version: {version!r}")
    return int(match[1]), int(match[2])


AIRFLOW_V_3_1_PLUS = version_tuple(AIRFLOW_VERSION) >= (3, 1)
AIRFLOW_V_3_2_PLUS = version_tuple(AIRFLOW_VERSION) >= (3, 2)
AIRFLOW_V_3_3_PLUS = version_tuple(AIRFLOW_VERSION) >= (3, 3)

if AIRFLOW_V_3_2_PLUS:
    from airflow.sdk.configuration import conf
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowRescheduleException,
        AirflowSensorTimeout,
        AirflowSkipException,
        AirflowTaskTimeout,
        TaskDeferred,
    )
else:
    from airflow.configuration import conf
    from airflow.exceptions import (  # type: ignore[attr-defined,no-redef]
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowRescheduleException,
        AirflowSensorTimeout,
        AirflowSkipException,
        AirflowTaskTimeout,
        TaskDeferred,
    )

if AIRFLOW_V_3_1_PLUS:
    from airflow.sdk import BaseHook
else:
    from airflow.hooks.base import BaseHook  # type: ignore[attr-defined,no-redef]


async def aget_connection(conn_id: str) -> Connection:
    """The Airflow connection ``conn_id``, looked up without blocking the event loop.

    3.1+: ``BaseHook.aget_connection``. 3.0 has only the sync lookup; it runs in a thread via
    asgiref's ``sync_to_async`` (an Airflow dependency), which a 3.0 triggerer needs: its
    supervisor channel answers sync calls only from threads that asgiref started.

    Outside a triggerer (``airflow dags test`` runs a deferred task's trigger in its own process)
    3.1 to 3.3's async lookup reads only environment variables and secrets backends: a connection
    stored in the metadata DB is "not defined" there. The sync lookup reads the DB, so it is
    asked before giving up.
    """
    from asgiref.sync import sync_to_async

    if AIRFLOW_V_3_1_PLUS:
        try:
            return await BaseHook.aget_connection(conn_id)
        except AirflowNotFoundException:
            pass
    connection: Connection = await sync_to_async(BaseHook.get_connection)(conn_id)
    return connection


def __getattr__(name: str) -> Any:
    # The trigger names load on first use: importing airflow.triggers.base costs ~65 ms, which
    # DAG files that use no event trigger should not pay at parse time.
    if name in ("BaseEventTrigger", "TriggerEvent", "HAS_SHARED_STREAMS"):
        from airflow.triggers import base

        if name == "HAS_SHARED_STREAMS":
            # One poll shared by sibling watchers (``shared_stream_key`` & co.): Airflow 3.3+.
            return hasattr(base.BaseEventTrigger, "shared_stream_key")
        return getattr(base, name)
    # ``task_state_store`` of 0.2.0, now in ``state_store`` (deprecated, removed in 1.0).
    from airflow_provider_sgseg._deprecated import moved_names

    return moved_names(__name__, {"task_state_store": "airflow_provider_sgseg.state_store:task_state_store"})(
        name
    )


__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "HAS_SHARED_STREAMS",
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowRescheduleException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "AirflowTaskTimeout",
    "BaseEventTrigger",
    "BaseHook",
    "TaskDeferred",
    "TriggerEvent",
    "aget_connection",
    "conf",
]
