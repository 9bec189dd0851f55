"""Single Send stats: delivery at send time, deterministic growth that settles, the four endpoints
with their paging and parameters, every answer checked against the stats spec."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle
from sgseg_emulator.stats import METRICS, counts_at, final_counts, link_clicks

from tests.emulator.spec_schemas import component, validate, validate_response
from tests.stats_helpers import HOUR, PERIOD, SINGLESENDS, sent_single_send

STATS = "/v3/marketing/stats/singlesends"
BY_ID = STATS + "/{id}"
LINKS = STATS + "/{id}/links"


def read(api: httpx.Client, path: str, spec_path: str, **params: Any) -> dict[str, Any]:
    answer = api.get(path, params=params)
    assert answer.status_code == 200, answer.text
    validate_response(answer.json(), "stats", spec_path, "get", 200)
    body: dict[str, Any] = answer.json()
    return body


def totals(api: httpx.Client, single_send_id: str, **params: Any) -> dict[str, int]:
    params = {"start_date": "2000-01-01", "end_date": "2100-01-01", **params}
    body = read(api, f"{STATS}/{single_send_id}", BY_ID, **params)
    assert len(body["results"]) == 1
    stats: dict[str, int] = body["results"][0]["stats"]
    return stats


def test_the_model_grows_monotonically_and_settles_at_the_period() -> None:
    final = final_counts(1000)
    assert final["requests"] == 1000
    assert final["delivered"] + final["bounces"] == 1000
    earlier = counts_at(final, 0, PERIOD)
    assert set(earlier.values()) == {0}
    for hours in (1, 2, 6, 12, 24, 47, 48, 100):
        later = counts_at(final, hours * HOUR, PERIOD)
        assert all(later[name] >= earlier[name] for name in METRICS)
        earlier = later
    assert counts_at(final, PERIOD, PERIOD) == final == counts_at(final, 10 * PERIOD, PERIOD)
    assert counts_at(final, PERIOD / 2, PERIOD)["opens"] < final["opens"]
    assert sum(link_clicks(101, 3)) == 101
    assert link_clicks(101, 3)[0] > link_clicks(101, 3)[2]


def test_a_sent_single_send_reports_stats_that_grow_then_settle(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    single_send_id = sent_single_send(api, sendgrid_emulator, contacts=200)
    assert totals(api, single_send_id) == dict.fromkeys(METRICS, 0)  # the send is this instant
    sendgrid_emulator.admin.advance_clock(HOUR)
    first = totals(api, single_send_id)
    assert first["requests"] == 200  # delivery done within 1/48 of the period
    assert 0 < first["opens"] < final_counts(200)["opens"]
    sendgrid_emulator.admin.advance_clock(24 * HOUR)
    second = totals(api, single_send_id)
    assert second["opens"] > first["opens"]
    sendgrid_emulator.admin.advance_clock(PERIOD)
    settled = totals(api, single_send_id)
    assert settled == final_counts(200)
    sendgrid_emulator.admin.advance_clock(10 * HOUR)
    assert totals(api, single_send_id) == settled


def test_a_draft_has_no_stats_and_an_unknown_id_is_404(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    created = api.post(SINGLESENDS, json={"name": "draft"})
    body = read(api, f"{STATS}/{created.json()['id']}", BY_ID, start_date="2000-01-01")
    assert body["results"] == []
    missing = api.get(f"{STATS}/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404


def test_day_rows_in_a_timezone_sum_to_the_total_and_page_by_page_token(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    single_send_id = sent_single_send(api, sendgrid_emulator, contacts=300)
    sendgrid_emulator.admin.advance_clock(PERIOD + 5 * 24 * HOUR)  # settled, 7 or 8 calendar days
    window = {"start_date": "2000-01-01", "end_date": "2100-01-01", "timezone": "America/Chicago"}
    rows: list[dict[str, Any]] = []
    token: str | None = None
    pages = 0
    while True:
        params = {**window, "aggregated_by": "day", "page_size": 3}
        body = read(
            api, f"{STATS}/{single_send_id}", BY_ID, **params, **({"page_token": token} if token else {})
        )
        pages += 1
        assert len(body["results"]) <= 3
        rows.extend(body["results"])
        next_url = body["_metadata"].get("next")
        if not next_url:
            break
        token = httpx.URL(next_url).params["page_token"]
    assert pages == -(-len(rows) // 3) and len(rows) >= 6
    days = [row["aggregation"] for row in rows]
    assert days == sorted(days) and len(set(days)) == len(days)
    assert {row["ab_variation"] for row in rows} == {"all"}
    summed = {name: sum(row["stats"][name] for row in rows) for name in METRICS}
    assert summed == totals(api, single_send_id, timezone="America/Chicago") == final_counts(300)
    # A narrower range narrows the day rows; the spec's default range (2021) holds none of them.
    first_day = days[0]
    narrowed = read(
        api, f"{STATS}/{single_send_id}", BY_ID, aggregated_by="day", start_date=first_day, end_date=first_day
    )
    assert [row["aggregation"] for row in narrowed["results"]] == [first_day]
    assert read(api, f"{STATS}/{single_send_id}", BY_ID, aggregated_by="day")["results"] == []


def test_ab_tests_group_by_variation_and_phase(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> None:
    single_send_id = sent_single_send(api, sendgrid_emulator, contacts=400)
    sendgrid_emulator.admin.set_ab_test(single_send_id, variations=2, test_percentage=20)
    sendgrid_emulator.admin.advance_clock(PERIOD)
    window = {"start_date": "2000-01-01", "end_date": "2100-01-01"}
    grouped = read(api, f"{STATS}/{single_send_id}", BY_ID, group_by="ab_variation,ab_phase", **window)
    keys = {(row["ab_variation"], row["ab_phase"]) for row in grouped["results"]}
    variations = {variation for variation, _ in keys}
    assert len(keys) == 3 and len(variations) == 2
    assert {phase for _, phase in keys} == {"test", "send"}
    assert sum(row["stats"]["requests"] for row in grouped["results"]) == 400
    by_phase = read(api, f"{STATS}/{single_send_id}", BY_ID, group_by=["ab_phase"], **window)
    assert {(row["ab_variation"], row["ab_phase"]) for row in by_phase["results"]} == {
        ("all", "test"),
        ("all", "send"),
    }
    test_requests = sum(row["stats"]["requests"] for row in by_phase["results"] if row["ab_phase"] == "test")
    assert test_requests == 80


def test_links_are_listed_top_down_with_their_clicks(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    single_send_id = sent_single_send(api, sendgrid_emulator, contacts=500)
    sendgrid_emulator.admin.advance_clock(PERIOD)
    body = read(api, f"{STATS}/{single_send_id}/links", LINKS)
    assert [row["url_location"] for row in body["results"]] == [0, 1, 2]
    assert [row["url"] for row in body["results"]] == [f"https://example.com/{x}" for x in "abc"]
    assert body["total_clicks"] == sum(row["clicks"] for row in body["results"])
    assert body["total_clicks"] == final_counts(500)["clicks"]
    paged = read(api, f"{STATS}/{single_send_id}/links", LINKS, page_size=2)
    assert len(paged["results"]) == 2 and "next" in paged["_metadata"]
    sendgrid_emulator.admin.set_ab_test(single_send_id, variations=3, test_percentage=30)
    tests = read(api, f"{STATS}/{single_send_id}/links", LINKS, ab_phase_id="test", group_by="ab_variation")
    assert {row["ab_phase"] for row in tests["results"]} == {"test"}
    assert len({row["ab_variation"] for row in tests["results"]}) == 3


def test_the_list_gives_totals_of_sent_single_sends_only(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    first = sent_single_send(api, sendgrid_emulator, contacts=50, name="one")
    second = sent_single_send(api, sendgrid_emulator, contacts=0, name="two")
    api.post(SINGLESENDS, json={"name": "a draft"})
    sendgrid_emulator.admin.advance_clock(PERIOD)
    body = read(api, STATS, STATS)
    assert {row["id"] for row in body["results"]} == {first, second}
    assert all(row["aggregation"] == "total" and row["ab_phase"] == "all" for row in body["results"])
    only = read(api, STATS, STATS, singlesend_ids=second, page_size=1)
    assert [row["id"] for row in only["results"]] == [second]


def test_the_csv_export_has_a_line_per_single_send(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle
) -> None:
    single_send_id = sent_single_send(api, sendgrid_emulator, contacts=100)
    sendgrid_emulator.admin.advance_clock(PERIOD)
    answer = api.get(f"{STATS}/export", params={"ids": single_send_id, "timezone": "Europe/Paris"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 1 and rows[0]["Single Send ID"] == single_send_id
    assert int(rows[0]["delivered"]) == final_counts(100)["delivered"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        (BY_ID, {"aggregated_by": "week"}, "aggregated_by"),
        (BY_ID, {"start_date": "2024/01/01"}, "start_date"),
        (BY_ID, {"start_date": "2024-02-01", "end_date": "2024-01-01"}, "start_date"),
        (BY_ID, {"timezone": "Mars/Olympus"}, "timezone"),
        (BY_ID, {"group_by": "campaign"}, "group_by"),
        (BY_ID, {"page_size": "51"}, "page_size"),
        (LINKS, {"ab_phase_id": "all"}, "ab_phase_id"),
        (STATS, {"singlesend_ids": "not-a-uuid"}, "singlesend_ids"),
        (STATS + "/export", {}, "ids"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle, path: str, params: dict[str, str], field: str
) -> None:
    single_send_id = sent_single_send(api, sendgrid_emulator, contacts=1)
    answer = api.get(path.replace("{id}", single_send_id), params=params)
    assert answer.status_code == 400, answer.text
    validate(answer.json(), component("stats", "ErrorResponse"))  # the spec's Stats400
    assert field in [error["field"] for error in answer.json()["errors"]]
