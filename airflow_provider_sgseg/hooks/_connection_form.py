"""The connection form for Airflow < 3.2, built from the declarative one in provider info.

Airflow 3.2+ reads ``conn-fields`` and ``ui-field-behaviour`` from ``get_provider_info`` and never
imports the hook for them. Airflow 3.0 and 3.1 only ask the hook's classmethods
``get_connection_form_widgets`` / ``get_ui_field_behaviour``; these functions answer them from
that same declaration, so the form is written once.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_sgseg.get_provider_info import connection_type_info


def form_widgets() -> dict[str, Any]:
    """``{field: wtforms.StringField}`` for each ``conn-fields`` entry (wtforms: the UI's own dep).

    Every field is a text field: the hook parses numbers itself (``timeout`` as float seconds),
    and 3.0/3.1 offer no float field.
    """
    from wtforms import StringField
    from wtforms.validators import Optional

    fields: dict[str, dict[str, Any]] = connection_type_info()["conn-fields"]
    widgets: dict[str, Any] = {}
    for name, spec in fields.items():
        default = spec.get("schema", {}).get("default")
        widgets[name] = StringField(
            spec["label"],
            validators=[Optional()],
            description=spec.get("description", ""),
            default=None if default is None else str(default),
        )
    return widgets


def field_behaviour() -> dict[str, Any]:
    """``ui-field-behaviour`` in the classmethod's spelling (``hidden_fields``, not ``hidden-fields``)."""
    behaviour: dict[str, Any] = connection_type_info()["ui-field-behaviour"]
    return {key.replace("-", "_"): value for key, value in behaviour.items()}
