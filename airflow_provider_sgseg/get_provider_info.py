"""Provider metadata read by Airflow's ProvidersManager. Import-free on purpose.

The connection form is declared here (``conn-fields``, ``ui-field-behaviour``) so Airflow draws
it without importing the hook. List only modules and classes that exist: discovery imports some
of them and logs a warning for each one it cannot find.

Placeholders: Airflow 3.3's form applies ``ui-field-behaviour`` placeholders to the standard fields
only (host, password). An extra field gets one only from its JSON Schema ``examples``, and only
as a text field: the input then shows a "Start typing to see options" placeholder and offers the
examples as suggestions (number fields draw no placeholder at all). So ``timeout`` is a text
field with examples; the hook reads it as a number and rejects anything else.

Port: hidden, except on Airflow 3.3.0 to 3.3.2. There the Test button posts ``port: 0`` for a
connection stored without a port (the UI sends ``Number(null)``), and the api-server refuses
that as "a different destination" with 400 Bad Request before the hook runs (apache/airflow#73298,
fixed after 3.3.2). A port stored with the connection is posted as it is, so the form shows Port
there, labelled with why.
"""

from __future__ import annotations

import re
from typing import Any

INTEGRATION = "SendGrid Marketing Campaigns"
HOOK_CLASS = "airflow_provider_sgseg.hooks.marketing.SendGridMarketingHook"
DEFAULT_CONN_ID = "sendgrid_default"  # every hook and task uses it unless told otherwise
# Offered as suggestions under the extra fields (see the module docstring).
SUBUSER_EXAMPLE = "marketing-subuser"
TIMEOUT_EXAMPLE = "30"
# Airflow releases whose Test button needs a stored port (see the module docstring).
TEST_BUTTON_NEEDS_PORT = ((3, 3, 0), (3, 3, 2))
PORT_LABEL = "Port (443 for SendGrid; the Test button of Airflow 3.3.0 to 3.3.2 needs it)"


def _airflow_release() -> tuple[int, int, int]:
    from airflow import __version__  # already imported: Airflow is what asks for provider info

    match = re.match(r"(\d+)\.(\d+)\.(\d+)", __version__)
    return (int(match[1]), int(match[2]), int(match[3])) if match else (0, 0, 0)


def port_shown(release: tuple[int, int, int] | None = None) -> bool:
    """Whether the form shows Port: on the Airflow releases whose Test button needs one."""
    first, last = TEST_BUTTON_NEEDS_PORT
    return first <= (release or _airflow_release()) <= last


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
            "airflow_provider_sgseg.links.SendGridContactsLink",
        ],
        "connection-types": [connection_type_info()],
    }


def connection_type_info(release: tuple[int, int, int] | None = None) -> dict[str, Any]:
    """The ``sendgrid_marketing`` connection type: its hook and its form (declarative).

    :param release: the Airflow release the form is for (default: the installed one); it decides
        whether Port is shown (:func:`port_shown`).
    """
    show_port = port_shown(release)
    return {
        "connection-type": "sendgrid_marketing",
        "hook-class-name": HOOK_CLASS,
        "hook-name": "SendGrid Marketing",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "login"] if show_port else ["schema", "port", "login"],
            "relabeling": {"password": "API key", **({"port": PORT_LABEL} if show_port else {})},
            "placeholders": {
                "host": "https://api.sendgrid.com",
                "password": "SG.xxxxxxxx",
                "on_behalf_of": "subuser username (optional)",
                "timeout": "30",
                **({"port": "443"} if show_port else {}),
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
