"""Apache Airflow provider for the Twilio SendGrid Marketing Campaigns Segments V2 API.

Kept import-free on purpose: Airflow imports provider packages while parsing DAGs.
"""

__version__ = "0.3.0"
