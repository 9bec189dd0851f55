"""Deprecated: :mod:`airflow_provider_sgseg.rules.validation` since 0.3.0; removed in 1.0.

Importing it warns once; every validator of 0.2.0 is here under its name and signature.
"""

from __future__ import annotations

from airflow_provider_sgseg._deprecated import warn_renamed
from airflow_provider_sgseg.rules.validation import *  # noqa: F403  (0.2.0's names, all still there)

warn_renamed("airflow_provider_sgseg.validation", "airflow_provider_sgseg.rules.validation", stacklevel=2)
