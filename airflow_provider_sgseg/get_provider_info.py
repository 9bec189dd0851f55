"""Provider metadata read by Airflow's ProvidersManager. Import-free on purpose."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    from airflow_provider_sgseg import __version__

    return {
        "package-name": "airflow-provider-sgseg",
        "name": "SendGrid Marketing Segments",
        "description": "Twilio SendGrid Marketing Campaigns Segments V2: refresh, wait until populated, send.",
        "versions": [__version__],
        "hook-class-names": ["airflow_provider_sgseg.hooks.marketing.SendGridMarketingHook"],
        "connection-types": [
            {
                "connection-type": "sendgrid_marketing",
                "hook-class-name": "airflow_provider_sgseg.hooks.marketing.SendGridMarketingHook",
            }
        ],
    }
