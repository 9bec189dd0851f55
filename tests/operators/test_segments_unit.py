"""Segment operators without a server: construction, templating, input checks, import cost."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.links import SendGridSegmentLink
from airflow_provider_sgseg.operators import segments
from airflow_provider_sgseg.operators.segments import (
    SendGridCreateSegmentOperator,
    SendGridDeleteSegmentOperator,
    SendGridGetSegmentOperator,
    SendGridListSegmentsOperator,
    SendGridRefreshSegmentOperator,
    SendGridUpdateSegmentOperator,
)
from tests.helpers import modules_imported_by

SEGMENT_ID = "6c1f6d1e-9d3b-4a6f-8f2e-0d7c2b1a9e55"
LIST_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
QUERY = "SELECT contact_id, updated_at FROM contact_data WHERE country = 'DE'"
MODULE_PATH = Path(segments.__file__)


class RecordingTi:
    """The part of a task instance the operators touch: XCom pushes and the try number."""

    def __init__(self) -> None:
        self.try_number = 1
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def all_operators() -> list[Any]:
    return [
        SendGridCreateSegmentOperator(task_id="create", name="n", query_dsl=QUERY),
        SendGridGetSegmentOperator(task_id="get", segment_id=SEGMENT_ID),
        SendGridListSegmentsOperator(task_id="list"),
        SendGridUpdateSegmentOperator(task_id="update", segment_id=SEGMENT_ID, name="n"),
        SendGridDeleteSegmentOperator(task_id="delete", segment_id=SEGMENT_ID),
        SendGridRefreshSegmentOperator(task_id="refresh", segment_id=SEGMENT_ID, user_time_zone="UTC"),
    ]


# --- import and construction are cheap -------------------------------------------------------


def test_importing_the_module_loads_no_hook_http_or_retry_library() -> None:
    # airflow.sdk itself imports httpx, so measure what this module adds on top of the SDK.
    new = modules_imported_by(
        "import airflow_provider_sgseg.operators.segments",
        setup="from airflow.sdk import BaseOperator, BaseOperatorLink\n"
        "from airflow_provider_sgseg.version_compat import AirflowFailException",
    )
    unwanted = ("httpx", "tenacity", "airflow_provider_sgseg.hooks", "airflow.providers.standard.triggers")
    assert sorted(m for m in new if m.startswith(unwanted)) == []


def test_module_has_no_top_level_import_of_httpx_or_the_hook() -> None:
    tree = ast.parse(MODULE_PATH.read_text())
    top_level: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            top_level.append(node.module)
    assert not [name for name in top_level if name.startswith(("httpx", "tenacity"))]
    assert "airflow_provider_sgseg.hooks.marketing" not in top_level


def test_init_builds_no_hook_and_needs_no_connection() -> None:
    for operator in all_operators():
        assert "hook" not in operator.__dict__
        assert operator.sendgrid_conn_id == "sendgrid_default"
    custom = SendGridGetSegmentOperator(task_id="g", segment_id=SEGMENT_ID, sendgrid_conn_id="does_not_exist")
    assert custom.sendgrid_conn_id == "does_not_exist"
    assert "hook" not in custom.__dict__


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (
            lambda: SendGridCreateSegmentOperator(task_id="c", name="n", query_dsl=QUERY, if_exists="merge"),
            "if_exists",
        ),
        (
            lambda: SendGridRefreshSegmentOperator(
                task_id="r", segment_id=SEGMENT_ID, user_time_zone="UTC", on_quota_exhausted="retry"
            ),
            "on_quota_exhausted",
        ),
        (lambda: SendGridUpdateSegmentOperator(task_id="u", segment_id=SEGMENT_ID), "name/query_dsl"),
        (
            lambda: SendGridRefreshSegmentOperator(
                task_id="r", segment_id=SEGMENT_ID, user_time_zone="UTC", quota_wait_margin=-1
            ),
            "quota_wait_margin",
        ),
        (
            lambda: SendGridCreateSegmentOperator(
                task_id="c", name="n", query_dsl=QUERY, validation_timeout=0
            ),
            "validation_timeout",
        ),
    ],
)
def test_bad_options_fail_at_parse_time(factory: Any, name: str) -> None:
    with pytest.raises(SendGridInputError) as caught:
        factory()
    assert caught.value.name == name


# --- templating ------------------------------------------------------------------------------


def test_template_fields_cover_ids_names_queries_zones_and_lists() -> None:
    conn = "sendgrid_conn_id"  # every task's (tests/test_task_templating.py)
    dry = "dry_run"  # every task that writes (tests/operators/test_dry_runs_emulator.py)
    create_fields = {"name", "query_dsl", "parent_list_ids", conn, dry}
    assert set(SendGridCreateSegmentOperator.template_fields) == create_fields
    assert SendGridCreateSegmentOperator.template_fields_renderers == {"query_dsl": "sql"}
    assert set(SendGridUpdateSegmentOperator.template_fields) == {
        "segment_id",
        "name",
        "query_dsl",
        conn,
        dry,
    }
    assert SendGridUpdateSegmentOperator.template_fields_renderers == {"query_dsl": "sql"}
    assert set(SendGridGetSegmentOperator.template_fields) == {"segment_id", conn}
    assert set(SendGridDeleteSegmentOperator.template_fields) == {"segment_id", conn, dry}
    assert set(SendGridListSegmentsOperator.template_fields) == {"ids", "parent_list_ids", conn}
    assert set(SendGridRefreshSegmentOperator.template_fields) == {"segment_id", "user_time_zone", conn}


def test_templates_render_from_params() -> None:
    with DAG("render_check", schedule=None, params={"country": "DE", "zone": "Europe/Berlin"}):
        create = SendGridCreateSegmentOperator(
            task_id="c",
            name="customers-{{ params.country }}",
            query_dsl="SELECT contact_id FROM contact_data WHERE country = '{{ params.country }}'",
        )
        refresh = SendGridRefreshSegmentOperator(
            task_id="r", segment_id=SEGMENT_ID, user_time_zone="{{ params.zone }}"
        )
    context: Any = {"params": {"country": "DE", "zone": "Europe/Berlin"}}
    create.render_template_fields(context)
    refresh.render_template_fields(context)
    assert create.name == "customers-DE"
    assert create.query_dsl.endswith("country = 'DE'")
    assert refresh.user_time_zone == "Europe/Berlin"


def test_segment_operators_carry_the_segment_link() -> None:
    for operator in (all_operators()[i] for i in (0, 1, 3, 5)):
        assert any(isinstance(link, SendGridSegmentLink) for link in operator.operator_extra_links)


# --- bad rendered input fails before any request ---------------------------------------------
# The connection does not exist: had the operator built a hook or sent anything, the error would
# be a connection lookup failure, not the input error asserted here.


def _context() -> dict[str, Any]:
    return {"ti": RecordingTi(), "task_state_store": None}


@pytest.mark.parametrize(
    ("operator", "name"),
    [
        (SendGridCreateSegmentOperator(task_id="c", name="None", query_dsl=QUERY), "segment_name"),
        (SendGridCreateSegmentOperator(task_id="c", name="", query_dsl=QUERY), "segment_name"),
        (SendGridCreateSegmentOperator(task_id="c", name="x" * 101, query_dsl=QUERY), "segment_name"),
        (SendGridCreateSegmentOperator(task_id="c", name="n", query_dsl="  "), "query_dsl"),
        (SendGridCreateSegmentOperator(task_id="c", name="n", query_dsl=None), "query_dsl"),  # type: ignore[arg-type]
        (
            SendGridCreateSegmentOperator(
                task_id="c", name="n", query_dsl=QUERY, parent_list_ids=[LIST_ID, SEGMENT_ID]
            ),
            "parent_list_ids",
        ),
        (SendGridGetSegmentOperator(task_id="g", segment_id="None"), "segment_id"),
        (SendGridGetSegmentOperator(task_id="g", segment_id=""), "segment_id"),
        (SendGridGetSegmentOperator(task_id="g", segment_id="1234"), "segment_id"),
        (SendGridListSegmentsOperator(task_id="l", ids=["nope"]), "ids"),
        (SendGridListSegmentsOperator(task_id="l", parent_list_ids="None"), "parent_list_ids"),
        (SendGridUpdateSegmentOperator(task_id="u", segment_id=SEGMENT_ID, name=""), "segment_name"),
        (SendGridUpdateSegmentOperator(task_id="u", segment_id=SEGMENT_ID, query_dsl="None"), "query_dsl"),
        (SendGridDeleteSegmentOperator(task_id="d", segment_id=None), "segment_id"),  # type: ignore[arg-type]
        (
            SendGridRefreshSegmentOperator(task_id="r", segment_id=SEGMENT_ID, user_time_zone=""),
            "user_time_zone",
        ),
        (
            SendGridRefreshSegmentOperator(task_id="r", segment_id=SEGMENT_ID, user_time_zone="None"),
            "user_time_zone",
        ),
        (
            SendGridRefreshSegmentOperator(task_id="r", segment_id=SEGMENT_ID, user_time_zone="+05:30"),
            "user_time_zone",
        ),
        (
            SendGridRefreshSegmentOperator(task_id="r", segment_id=SEGMENT_ID, user_time_zone="Mars/Base"),
            "user_time_zone",
        ),
        (SendGridRefreshSegmentOperator(task_id="r", segment_id="x", user_time_zone="UTC"), "segment_id"),
    ],
)
def test_bad_rendered_values_fail_before_any_request(operator: Any, name: str) -> None:
    operator.sendgrid_conn_id = "does_not_exist"
    context = _context()
    with pytest.raises(SendGridInputError) as caught:
        operator.execute(context)
    assert caught.value.name.startswith(name)  # list items are named like "ids[0]"
    assert "hook" not in operator.__dict__
    assert context["ti"].pushed == {}


def test_non_templated_flags_and_durations_are_checked_when_the_dag_is_parsed() -> None:
    with pytest.raises(SendGridInputError, match="wait_for_validation"):
        SendGridCreateSegmentOperator(task_id="c", name="n", query_dsl=QUERY, wait_for_validation="nope")
    with pytest.raises(SendGridInputError, match="validation_timeout"):
        SendGridCreateSegmentOperator(task_id="c", name="n", query_dsl=QUERY, validation_timeout=float("nan"))
    rendered = SendGridUpdateSegmentOperator(
        task_id="u", segment_id=SEGMENT_ID, query_dsl=QUERY, wait_for_validation="false"
    )
    assert rendered.wait_for_validation is False
