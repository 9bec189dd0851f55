"""SendGridSingleSendOperator without a server: template fields, cheap imports, its link."""

from __future__ import annotations

from airflow_provider_sgseg.operators.single_sends import SendGridSingleSendOperator
from tests.helpers import modules_imported_by


def test_templated_fields_cover_every_id_name_and_content() -> None:
    fields = set(SendGridSingleSendOperator.template_fields)
    for name in ("name", "segment_ids", "list_ids", "subject", "html_content", "sender_id", "send_at"):
        assert name in fields


def test_init_builds_no_hook_and_module_import_does_not_load_it() -> None:
    # Import in a fresh interpreter: DAG parsing must not pull in the hook (and its HTTP stack).
    code = (
        "from airflow_provider_sgseg.operators.single_sends import SendGridSingleSendOperator as Op\n"
        "Op(task_id='t', name='n', segment_ids=['x'], sender_id=1)\n"
    )
    assert "airflow_provider_sgseg.hooks.marketing" not in modules_imported_by(code)


def test_the_single_send_link_reads_the_pushed_xcom_key() -> None:
    from airflow_provider_sgseg.links import SINGLE_SEND_ID_XCOM_KEY, SendGridSingleSendLink

    links = SendGridSingleSendOperator.operator_extra_links
    assert [type(link) for link in links] == [SendGridSingleSendLink]
    assert SINGLE_SEND_ID_XCOM_KEY == "single_send_id"
