"""Provider metadata read by Airflow's ProvidersManager. Import-free on purpose.

The connection form is declared here (``conn-fields``, ``ui-field-behaviour``) so Airflow draws
it without importing the hook. List only modules and classes that exist: discovery imports some
of them and logs a warning for each one it cannot find.

Placeholders: Airflow 3.3's form applies ``ui-field-behaviour`` placeholders to the standard fields
only (host, password). An extra field gets one only from its JSON Schema ``examples``, and only
as a text field: the input then shows a "Start typing to see options" placeholder and offers the
examples as suggestions (number fields draw no placeholder at all). So ``timeout`` is a text
field with examples; the hook reads it as a number and rejects anything else.
"""

from __future__ import annotations

from typing import Any

INTEGRATION = "SendGrid Marketing Campaigns"
HOOK_CLASS = "airflow_provider_sgseg.hooks.marketing.SendGridMarketingHook"
# Offered as suggestions under the extra fields (see the module docstring).
SUBUSER_EXAMPLE = "marketing-subuser"
TIMEOUT_EXAMPLE = "30"


def get_provider_info() -> dict[str, Any]:
    """Airflow's provider metadata for this distribution (dict; no imports, no I/O)."""
    from airflow_provider_sgseg import __version__

    return {
        "package-name": "airflow-provider-sgseg",
        "name": "SendGrid Marketing Segments",
        "description": (
            "Twilio SendGrid Marketing Campaigns Segments V2: refresh, wait until populated, send."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://www.twilio.com/docs/sendgrid/api-reference/segmenting-contacts-v2",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_provider_sgseg.hooks.marketing"]},
        ],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_sgseg.operators.segments",
                    "airflow_provider_sgseg.operators.single_sends",
                    "airflow_provider_sgseg.operators.contacts",
                    "airflow_provider_sgseg.operators.contacts_upsert",
                    "airflow_provider_sgseg.operators.contacts_export",
                    "airflow_provider_sgseg.operators.stats",
                ],
            },
        ],
        "sensors": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_sgseg.sensors.segments",
                    "airflow_provider_sgseg.sensors.stats",
                ],
            },
        ],
        "triggers": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "airflow_provider_sgseg.triggers.segments",
                    "airflow_provider_sgseg.triggers.contacts",
                    "airflow_provider_sgseg.triggers.stats",
                ],
            },
        ],
        # Full class paths of BaseOperatorLink subclasses (imported at discovery).
        "extra-links": [
            "airflow_provider_sgseg.links.SendGridSegmentLink",
            "airflow_provider_sgseg.links.SendGridSingleSendLink",
        ],
        "connection-types": [connection_type_info()],
    }


def connection_type_info() -> dict[str, Any]:
    """The ``sendgrid_marketing`` connection type: its hook and its form (declarative)."""
    return {
        "connection-type": "sendgrid_marketing",
        "hook-class-name": HOOK_CLASS,
        "hook-name": "SendGrid Marketing",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port", "login"],
            "relabeling": {"password": "API key"},
            "placeholders": {
                "host": "https://api.sendgrid.com",
                "password": "SG.xxxxxxxx",
                "on_behalf_of": "subuser username (optional)",
                "timeout": "30",
            },
        },
        "conn-fields": {
            "on_behalf_of": {
                "label": "Subuser (on-behalf-of)",
                "schema": {"type": ["string", "null"], "examples": [SUBUSER_EXAMPLE]},
                "description": "Act for this subuser: sent as the on-behalf-of header. "
                "Use the parent account's API key.",
            },
            "timeout": {
                "label": "Timeout (seconds)",
                "schema": {"type": ["string", "null"], "examples": [TIMEOUT_EXAMPLE]},
                "description": "Read/write timeout per request, in seconds (default 30); "
                "connecting waits at most 10 s.",
            },
        },
    }
