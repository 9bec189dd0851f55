"""Names that shipped in 0.1.0 or 0.2.0 and have since been renamed or moved.

Each keeps working until :data:`REMOVED_IN` and says so with an
``AirflowProviderDeprecationWarning``, attributed to the provider's own module: Airflow's warning
filter shows deprecation warnings from modules named ``airflow...`` only, so one attributed to the
DAG file was never seen. Where the DAG file is parsed (the dag-processor's log, ``airflow dags
test``, ``python your_dag.py``) the warning is printed; Airflow 3 keeps no DAG warning for it.
CHANGELOG.md's "Deprecated" list names every one.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from airflow.exceptions import AirflowProviderDeprecationWarning

REMOVED_IN = "1.0"


def warn_renamed(old: str, new: str, *, stacklevel: int = 2) -> None:
    """Warn that ``old`` is deprecated in favour of ``new`` (both as a user would write them)."""
    warnings.warn(
        f"{old} is deprecated and will be removed in airflow-provider-sgseg {REMOVED_IN}; use {new}",
        AirflowProviderDeprecationWarning,
        stacklevel=stacklevel,
    )


def moved_names(module: str, moves: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving each old name in ``moves`` from its new home, with a warning.

    :param module: the module the names used to live in (its ``__name__``).
    :param moves: old name -> ``"new.module:new_name"``.
    """

    def __getattr__(name: str) -> Any:
        target = moves.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        new_module, _, new_name = target.partition(":")
        warn_renamed(f"{module}.{name}", f"{new_module}.{new_name}")
        return getattr(importlib.import_module(new_module), new_name)

    return __getattr__


# The sensor's and the trigger's module constants of 0.2.0, now the waiting engine's.
WAIT_CONSTANTS = {
    "TRANSIENT_ERRORS": "airflow_provider_sgseg.rules.waiting:TRANSIENT_ERRORS",
    "EVENT_STATUSES": "airflow_provider_sgseg.rules.waiting:EVENT_STATUSES",
    "DEFAULT_MAX_CONSECUTIVE_FAILURES": (
        "airflow_provider_sgseg.rules.pacing:DEFAULT_MAX_CONSECUTIVE_FAILURES"
    ),
}
# The hook module's connection defaults of 0.2.0, now with the connection settings.
HOOK_CONSTANTS = {
    name: f"airflow_provider_sgseg.hooks._settings:{name}"
    for name in ("DEFAULT_BASE_URL", "DEFAULT_TIMEOUT", "MAX_CONNECT_TIMEOUT", "USER_AGENT")
}
