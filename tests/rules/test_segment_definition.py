"""Whether an existing segment is the one the DAG defines: whitespace-tolerant query comparison."""

from __future__ import annotations

import pytest

from airflow_provider_sgseg.rules.segment_definition import (
    differences,
    field_changes,
    normalized_query,
    same_query,
)

QUERY = "SELECT contact_id, updated_at FROM contact_data WHERE country = 'DE'"
LIST = "11111111-2222-4333-8444-555555555555"


@pytest.mark.parametrize(
    "other",
    [
        QUERY,
        f"  {QUERY}\n",
        "SELECT contact_id ,updated_at\n\tFROM   contact_data WHERE country='DE'",
        "SELECT contact_id,updated_at FROM contact_data WHERE country= 'DE'",
    ],
)
def test_whitespace_outside_quotes_does_not_count(other: str) -> None:
    assert same_query(QUERY, other)
    assert normalized_query(other) == "SELECT contact_id,updated_at FROM contact_data WHERE country='DE'"


@pytest.mark.parametrize(
    "other",
    [
        QUERY.replace("'DE'", "'DE '"),
        QUERY.replace("'DE'", "'de'"),
        QUERY.replace("SELECT", "select"),
        QUERY.replace("country", "country_code"),
        QUERY.replace("contact_id,", "contact_id"),
    ],
)
def test_quoted_text_case_and_tokens_count(other: str) -> None:
    assert not same_query(QUERY, other)


def test_a_missing_query_is_never_the_same() -> None:
    assert not same_query(None, QUERY)


def test_differences_name_both_queries_and_parent_lists() -> None:
    segment = {"query_dsl": QUERY, "parent_list_ids": None}
    assert differences(segment, QUERY, []) == []
    assert differences({**segment, "parent_list_ids": []}, f" {QUERY} ", None) == []
    other = QUERY.replace("DE", "FR")
    assert differences(segment, other, [LIST]) == [
        f"its query_dsl is {QUERY!r}, the DAG's is {other!r}",
        f"its parent_list_ids are [], the DAG's are ['{LIST}']",
    ]


def test_field_changes_of_an_existing_segment_field_by_field() -> None:
    segment = {"name": "de", "query_dsl": QUERY, "parent_list_ids": None}
    assert field_changes(segment, name="de", query_dsl=f"  {QUERY}\n", parent_list_ids=[]) == {}
    other = QUERY.replace("DE", "FR")
    assert field_changes(segment, name="fr", query_dsl=other, parent_list_ids=[LIST]) == {
        "name": {"from": "de", "to": "fr"},
        "query_dsl": {"from": QUERY, "to": other},
        "parent_list_ids": {"from": [], "to": [LIST]},
    }
    assert field_changes(segment, name="fr") == {"name": {"from": "de", "to": "fr"}}  # None: not compared


def test_field_changes_of_a_segment_not_created_yet() -> None:
    assert field_changes(None, name="de", query_dsl=QUERY, parent_list_ids=[LIST]) == {
        "name": {"from": None, "to": "de"},
        "query_dsl": {"from": None, "to": QUERY},
        "parent_list_ids": {"from": None, "to": [LIST]},
    }
    assert "parent_list_ids" not in field_changes(None, name="de", query_dsl=QUERY, parent_list_ids=[])
