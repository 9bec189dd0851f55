"""SendGridSingleSendStatsOperator against the emulator: paging, A/B, links, SQLite and CSV
landings, reruns without duplicates, a failure mid-landing leaving the old rows."""

from __future__ import annotations

import csv
import datetime
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Asset, AssetAlias
from airflow.sdk.execution_time.context import OutletEventAccessors
from sgseg_emulator.pytest_plugin import EmulatorHandle
from sgseg_emulator.stats import final_counts

from airflow_provider_sgseg.exceptions import SendGridInputError
from airflow_provider_sgseg.operators import _stats_landing
from airflow_provider_sgseg.operators.stats import STATS_ASSET_ALIAS, SendGridSingleSendStatsOperator
from airflow_provider_sgseg.rules import summaries
from airflow_provider_sgseg.rules.stats import METRICS
from airflow_provider_sgseg.version_compat import AirflowFailException
from tests.helpers import last_info_line
from tests.operators.test_single_sends_emulator import RecordingTaskInstance
from tests.stats_helpers import HOUR, PERIOD, api_client, sent_single_send

UNKNOWN_ID = "6b2b2a0e-7e1f-4b8b-9a53-0c1c3d5e6f70"
STATS_PATH = "/v3/marketing/stats/singlesends"


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    database = tmp_path / "warehouse.db"
    sqlite3.connect(database).close()
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    return database


@pytest.fixture
def on_emulator_clock(sendgrid_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SendGridSingleSendStatsOperator, "now", lambda self: sendgrid_emulator.admin.now())


def context() -> Any:
    return {"outlet_events": OutletEventAccessors(), "ti": RecordingTaskInstance()}


def rows(database: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as db:
        return db.execute(sql).fetchall()


def sent(emulator: EmulatorHandle, count: int, contacts: int = 20) -> list[str]:
    """``count`` Single Sends, each to the same ``contacts`` contacts."""
    with api_client(emulator) as api:
        return [
            sent_single_send(api, emulator, contacts=contacts if n == 0 else 0, name=f"spring {n}")
            for n in range(count)
        ]


def test_lands_day_rows_totals_and_links_in_sqlite_and_reruns_replace(
    sendgrid_emulator: EmulatorHandle, warehouse: Path, on_emulator_clock: None
) -> None:
    ids = sent(sendgrid_emulator, 2, contacts=300)
    sendgrid_emulator.admin.advance_clock(PERIOD + 2 * HOUR)
    operator = SendGridSingleSendStatsOperator(
        task_id="stats", single_send_ids=ids, destination_conn_id="warehouse", timezone="America/Chicago"
    )
    ctx = context()
    result = operator.execute(ctx)
    stats_rows = rows(warehouse, "SELECT * FROM sendgrid_single_send_stats")
    link_rows = rows(
        warehouse, "SELECT url, url_location, clicks, unique_clicks FROM sendgrid_single_send_links"
    )
    assert result["stats_rows"] == len(stats_rows) and result["link_rows"] == len(link_rows) == 6
    assert result["totals"]["requests"] == 600 and result["table"] == "sendgrid_single_send_stats"
    assert "rows" not in result and len(json.dumps(result)) < 1000  # compact XCom
    totals = rows(
        warehouse,
        "SELECT single_send_id, requests, delivered, unique_opens FROM sendgrid_single_send_stats "
        "WHERE aggregation = 'total' AND ab_variation = 'all'",
    )
    final = final_counts(300)
    assert sorted(totals) == sorted((i, 300, final["delivered"], final["unique_opens"]) for i in ids)
    days = rows(
        warehouse,
        "SELECT single_send_id, SUM(opens) FROM sendgrid_single_send_stats WHERE aggregation != 'total' "
        "GROUP BY single_send_id",
    )
    assert {opens for _, opens in days} == {final["opens"]}  # day rows add up to the total
    assert {unique for *_, unique in link_rows} == {None}
    # Asset events: one per Single Send through the default alias.
    events = ctx["outlet_events"][AssetAlias(STATS_ASSET_ALIAS)].asset_alias_events
    assert sorted(event.dest_asset_key.uri for event in events) == sorted(
        f"x-sendgrid://stats/singlesends/{i}" for i in ids
    )
    # A rerun later replaces the rows it owns: same count, newer values, no duplicates.
    sendgrid_emulator.admin.advance_clock(24 * HOUR)
    again = SendGridSingleSendStatsOperator(
        task_id="stats", single_send_ids=ids, destination_conn_id="warehouse"
    )
    again.execute(context())
    assert len(rows(warehouse, "SELECT * FROM sendgrid_single_send_links")) == 6
    keys = rows(
        warehouse,
        "SELECT COUNT(*), COUNT(DISTINCT single_send_id || aggregation || ab_variation || ab_phase) "
        "FROM sendgrid_single_send_stats",
    )
    assert keys[0][0] == keys[0][1] and rows(
        warehouse, "SELECT DISTINCT timezone FROM sendgrid_single_send_stats"
    ) == [("UTC",)]


def test_the_landing_ends_its_log_with_rows_totals_and_tables(
    sendgrid_emulator: EmulatorHandle,
    warehouse: Path,
    on_emulator_clock: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 23: the last INFO line says what landed where."""
    (single_send_id,) = sent(sendgrid_emulator, 1, contacts=30)
    sendgrid_emulator.admin.advance_clock(PERIOD + 2 * HOUR)
    operator = SendGridSingleSendStatsOperator(
        task_id="stats", single_send_ids=[single_send_id], destination_conn_id="warehouse"
    )
    capsys.readouterr()
    result = operator.execute(context())
    line = last_info_line(capsys.readouterr().out)
    assert line == summaries.stats_landed(result)
    assert line.startswith(
        f"Landed {result['stats_rows']} stats rows and {result['link_rows']} link rows of 1 "
    )
    assert "in tables sendgrid_single_send_stats/sendgrid_single_send_links; totals requests 30, " in line


def test_a_failure_mid_landing_leaves_the_previous_rows(
    sendgrid_emulator: EmulatorHandle,
    warehouse: Path,
    on_emulator_clock: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = sent(sendgrid_emulator, 1, contacts=100)
    sendgrid_emulator.admin.advance_clock(HOUR)
    SendGridSingleSendStatsOperator(
        task_id="s", single_send_ids=ids, destination_conn_id="warehouse"
    ).execute(context())
    before_stats = rows(warehouse, "SELECT * FROM sendgrid_single_send_stats ORDER BY 1, 2, 3, 4")
    before_links = rows(warehouse, "SELECT * FROM sendgrid_single_send_links ORDER BY 1, 2, 3, 4")
    sendgrid_emulator.admin.advance_clock(PERIOD)
    real_replace = _stats_landing.replace_rows

    def replace_then_fail_on_links(cursor: Any, table: str, *args: Any) -> None:
        real_replace(cursor, table, *args)  # the stats table is already replaced in the transaction
        if table == "sendgrid_single_send_links":
            raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(_stats_landing, "replace_rows", replace_then_fail_on_links)
    with pytest.raises(sqlite3.OperationalError):
        SendGridSingleSendStatsOperator(
            task_id="s", single_send_ids=ids, destination_conn_id="warehouse"
        ).execute(context())
    assert rows(warehouse, "SELECT * FROM sendgrid_single_send_stats ORDER BY 1, 2, 3, 4") == before_stats
    assert rows(warehouse, "SELECT * FROM sendgrid_single_send_links ORDER BY 1, 2, 3, 4") == before_links


def test_explicit_uppercase_ids_land(
    sendgrid_emulator: EmulatorHandle, warehouse: Path, on_emulator_clock: None
) -> None:
    # SendGrid answers lowercase ids: an uppercase one raised "SendGrid lists no Single Send".
    (single_send_id,) = sent(sendgrid_emulator, 1)
    sendgrid_emulator.admin.advance_clock(PERIOD + 2 * HOUR)
    operator = SendGridSingleSendStatsOperator(
        task_id="stats", single_send_ids=[single_send_id.upper()], destination_conn_id="warehouse"
    )
    result = operator.execute(context())
    assert result["single_send_ids"] == [single_send_id]
    assert rows(warehouse, "SELECT DISTINCT single_send_id FROM sendgrid_single_send_stats") == [
        (single_send_id,)
    ]


def test_ab_variations_and_phases_land_as_rows(
    sendgrid_emulator: EmulatorHandle, warehouse: Path, on_emulator_clock: None
) -> None:
    ids = sent(sendgrid_emulator, 1, contacts=500)
    sendgrid_emulator.admin.set_ab_test(ids[0], variations=2, test_percentage=20)
    sendgrid_emulator.admin.advance_clock(PERIOD)
    SendGridSingleSendStatsOperator(
        task_id="ab", single_send_ids=ids, aggregated_by="total", destination_conn_id="warehouse"
    ).execute(context())
    grouped = rows(
        warehouse,
        "SELECT ab_phase, COUNT(DISTINCT ab_variation), SUM(requests) FROM sendgrid_single_send_stats "
        "WHERE ab_variation != 'all' GROUP BY ab_phase ORDER BY ab_phase",
    )
    assert grouped == [("send", 1, 400), ("test", 2, 100)]
    links = rows(warehouse, "SELECT DISTINCT ab_phase FROM sendgrid_single_send_links ORDER BY 1")
    assert links == [("send",), ("test",)]


def test_pages_through_many_days_and_uses_the_fewest_requests(
    sendgrid_emulator: EmulatorHandle, on_emulator_clock: None, tmp_path: Path
) -> None:
    ids = sent(sendgrid_emulator, 27, contacts=2)
    sendgrid_emulator.admin.advance_clock(60 * 24 * HOUR)  # 61 day rows each: two pages of 50
    before = len(sendgrid_emulator.admin.requests())
    result = SendGridSingleSendStatsOperator(
        task_id="files", single_send_ids=ids, group_by=(), destination_path=str(tmp_path / "out")
    ).execute(context())
    requests = sendgrid_emulator.admin.requests()[before:]
    # 1 list of Single Sends + 2 totals reads (25 ids each) + 27 x (2 day pages + 1 links page).
    assert len(requests) == 1 + 2 + 27 * 3
    assert result["stats_rows"] == 27 * (61 + 1)
    with (tmp_path / "out" / "sendgrid_single_send_stats.csv").open() as handle:
        landed = list(csv.DictReader(handle))
    assert len(landed) == result["stats_rows"] and set(METRICS) <= set(landed[0])
    assert (tmp_path / "out" / "sendgrid_single_send_links.csv").exists()
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")] == []


def test_explicit_ids_are_read_by_id_when_that_is_fewer_requests(
    sendgrid_emulator: EmulatorHandle, on_emulator_clock: None
) -> None:
    # One explicit id listed every Single Send of the account (1 request per 100) for its send_at.
    ids = sent(sendgrid_emulator, 3)
    sendgrid_emulator.admin.advance_clock(PERIOD + 2 * HOUR)

    def reads(single_send_ids: list[str]) -> list[str]:
        before = len(sendgrid_emulator.admin.requests())
        SendGridSingleSendStatsOperator(
            task_id="t", single_send_ids=single_send_ids, aggregated_by="total", group_by=()
        ).execute(context())
        return [r["path"] for r in sendgrid_emulator.admin.requests()[before:] if "/stats/" not in r["path"]]

    assert reads(ids[:1]) == [f"/v3/marketing/singlesends/{ids[0]}"]
    assert reads(ids[:2]) == ["/v3/marketing/singlesends"]  # one list page holds both
    with pytest.raises(AirflowFailException, match=UNKNOWN_ID):
        reads([UNKNOWN_ID])


def test_selection_by_name_and_data_interval(
    sendgrid_emulator: EmulatorHandle, on_emulator_clock: None
) -> None:
    ids = sent(sendgrid_emulator, 2)
    sendgrid_emulator.admin.advance_clock(HOUR)
    now = sendgrid_emulator.admin.now()
    by_name = SendGridSingleSendStatsOperator(task_id="n", name="spring 1").execute(context())
    assert by_name["single_send_ids"] == [ids[1]]
    window = {
        **context(),
        "data_interval_start": now - datetime.timedelta(days=1),
        "data_interval_end": now,
    }
    in_interval = SendGridSingleSendStatsOperator(task_id="i", sent_in_data_interval=True).execute(window)
    assert sorted(in_interval["single_send_ids"]) == sorted(ids)


def test_bad_input_fails_before_any_request(sendgrid_emulator: EmulatorHandle) -> None:
    with pytest.raises(SendGridInputError, match="aggregated_by"):
        SendGridSingleSendStatsOperator(task_id="a", single_send_ids=[UNKNOWN_ID], aggregated_by="week")
    with pytest.raises(SendGridInputError, match="group_by"):
        SendGridSingleSendStatsOperator(task_id="g", single_send_ids=[UNKNOWN_ID], group_by=["step_id"])
    before = len(sendgrid_emulator.admin.requests())
    for arguments, name in [
        ({"single_send_ids": ["nope"]}, "single_send_ids"),
        ({"single_send_ids": [UNKNOWN_ID], "timezone": "CST"}, "timezone"),
        ({"single_send_ids": [UNKNOWN_ID], "table": "stats; DROP TABLE x"}, "table"),
        ({}, "single_send_ids"),
    ]:
        with pytest.raises(SendGridInputError) as raised:
            SendGridSingleSendStatsOperator(task_id="b", **arguments).execute(context())
        assert raised.value.name == name
    assert len(sendgrid_emulator.admin.requests()) == before
    with pytest.raises(AirflowFailException, match=UNKNOWN_ID):
        SendGridSingleSendStatsOperator(task_id="u", single_send_ids=[UNKNOWN_ID]).execute(context())


def test_asset_outlets_get_the_summary(
    sendgrid_emulator: EmulatorHandle, warehouse: Path, on_emulator_clock: None
) -> None:
    ids = sent(sendgrid_emulator, 1)
    table_asset = Asset("sqlite://warehouse/sendgrid_single_send_stats")
    ctx = context()
    SendGridSingleSendStatsOperator(
        task_id="t", single_send_ids=ids, destination_conn_id="warehouse", outlets=[table_asset]
    ).execute(ctx)
    assert ctx["outlet_events"][table_asset].extra["single_send_ids"] == ids


def test_the_stats_link_names_the_single_send_only_when_one_was_read(
    sendgrid_emulator: EmulatorHandle, on_emulator_clock: None, tmp_path: Path
) -> None:
    from airflow_provider_sgseg.links import SendGridSingleSendLink

    ids = sent(sendgrid_emulator, 2)
    base_url = sendgrid_emulator.base_url
    assert [type(link) for link in SendGridSingleSendStatsOperator.operator_extra_links] == [
        SendGridSingleSendLink
    ]
    one, both = context(), context()
    SendGridSingleSendStatsOperator(
        task_id="o", single_send_ids=ids[:1], destination_path=str(tmp_path)
    ).execute(one)
    SendGridSingleSendStatsOperator(task_id="b", single_send_ids=ids, destination_path=str(tmp_path)).execute(
        both
    )
    assert one["ti"].xcom == {"sendgrid_links": {"api_base_url": base_url, "single_send_id": ids[0]}}
    assert both["ti"].xcom == {"sendgrid_links": {"api_base_url": base_url}}  # no one page: no link


def test_events_are_emitted_only_for_sends_whose_rows_landed(
    sendgrid_emulator: EmulatorHandle, warehouse: Path, on_emulator_clock: None
) -> None:
    # An Asset event means "results landed": a draft's stats (0 rows) and a task with no
    # destination (nothing landed) emitted events all the same.
    (sent_id,) = sent(sendgrid_emulator, 1)
    with api_client(sendgrid_emulator) as api:
        created = api.post("/v3/marketing/singlesends", json={"name": "draft", "send_to": {"all": True}})
    draft_id = created.json()["id"]
    sendgrid_emulator.admin.advance_clock(PERIOD + 2 * HOUR)
    alias = AssetAlias(STATS_ASSET_ALIAS)
    table_asset = Asset("sqlite://warehouse/sendgrid_single_send_stats")

    ctx = context()
    SendGridSingleSendStatsOperator(
        task_id="t",
        single_send_ids=[sent_id, draft_id],
        destination_conn_id="warehouse",
        outlets=[alias, table_asset],
    ).execute(ctx)
    landed = [event.dest_asset_key.uri for event in ctx["outlet_events"][alias].asset_alias_events]
    assert landed == [f"x-sendgrid://stats/singlesends/{sent_id}"]
    assert ctx["outlet_events"][table_asset].extra["single_send_ids"] == [sent_id]

    ctx = context()
    result = SendGridSingleSendStatsOperator(task_id="t", single_send_ids=[sent_id]).execute(ctx)
    assert result["stats_rows"] > 0  # read, but landed nowhere
    assert ctx["outlet_events"][alias].asset_alias_events == []


def test_alias_events_carry_only_hashable_extras(
    sendgrid_emulator: EmulatorHandle, warehouse: Path, on_emulator_clock: None, tmp_path: Path
) -> None:
    # Airflow 3.0.6 registers alias events by frozenset(extra.items()): a list value failed the
    # task at its end ("unhashable type: 'list'") after the rows had landed.
    from airflow.sdk import AssetAlias

    ids = sent(sendgrid_emulator, 1)
    alias = AssetAlias("sendgrid_single_send_stats")
    ctx = context()
    SendGridSingleSendStatsOperator(
        task_id="t", single_send_ids=ids, destination_path=f"file://{tmp_path}/stats"
    ).execute(ctx)
    events = ctx["outlet_events"][alias].asset_alias_events
    assert len(events) == 1
    extra = events[0].extra
    frozenset(extra.items())  # raises TypeError for a list value
    assert extra["files"] and all(
        line.startswith(str(tmp_path)) or "stats" in line for line in extra["files"].splitlines()
    )


def test_ddl_per_dialect() -> None:
    sqlite = _stats_landing.create_table(
        "sqlite", "t", ("single_send_id", "requests", "provisional"), ("single_send_id",)
    )
    postgres = _stats_landing.create_table(
        "postgres", "s.t", ("single_send_id", "requests", "provisional", "landed_at"), ("single_send_id",)
    )
    assert sqlite == (
        "CREATE TABLE IF NOT EXISTS t (single_send_id TEXT NOT NULL, requests INTEGER, provisional INTEGER, "
        "PRIMARY KEY (single_send_id))"
    )
    assert (
        "requests BIGINT" in postgres
        and "provisional BOOLEAN" in postgres
        and "landed_at TIMESTAMPTZ" in postgres
    )


def test_a_destination_that_is_no_sql_connection_fails_before_any_request(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    # It was found only after every stats read (4 requests for one Single Send).
    before = len(sendgrid_emulator.admin.requests())
    with pytest.raises(SendGridInputError) as raised:
        SendGridSingleSendStatsOperator(
            task_id="d", single_send_ids=[UNKNOWN_ID], destination_conn_id="sendgrid_default"
        ).execute(context())
    assert raised.value.name == "destination_conn_id"
    assert len(sendgrid_emulator.admin.requests()) == before


def test_sent_in_data_interval_refuses_a_run_without_one(
    sendgrid_emulator: EmulatorHandle, on_emulator_clock: None
) -> None:
    # Asset-triggered runs have no data interval: the filter was dropped and every Single Send
    # matching the name was landed.
    sent(sendgrid_emulator, 2)
    before = len(sendgrid_emulator.admin.requests())
    no_interval = {**context(), "data_interval_start": None, "data_interval_end": None}
    with pytest.raises(SendGridInputError) as raised:
        SendGridSingleSendStatsOperator(task_id="i", name="spring*", sent_in_data_interval=True).execute(
            no_interval
        )
    assert raised.value.name == "sent_in_data_interval"
    assert len(sendgrid_emulator.admin.requests()) == before


def test_many_explicit_ids_in_a_large_account_are_read_by_id_after_the_first_page() -> None:
    # 3 ids, 1,000 Single Sends (10 pages): after page 1 (which holds one id), 2 reads by id
    # beat 9 more pages; in a 200-send account (1 page left) the list is cheaper.
    from airflow_provider_sgseg.exceptions import SendGridNotFoundError

    wanted = [f"00000000-0000-4000-8000-{n:012d}" for n in range(3)]

    class Hook:
        def __init__(self, count: int) -> None:
            self.count = count
            self.calls: list[str] = []

        def run(self, request: Any) -> Any:
            self.calls.append(f"page {request.page_token}")
            token = str(int(request.page_token or 0) + 1)
            items = [{"id": wanted[int(token) - 1]}] if int(token) <= 2 else []
            return items, None if int(token) * 100 >= self.count else token, self.count

        def get_single_send(self, single_send_id: str) -> dict[str, Any]:
            self.calls.append(f"get {single_send_id}")
            if single_send_id == wanted[2]:
                raise SendGridNotFoundError("no such Single Send")
            return {"id": single_send_id}

    operator = SendGridSingleSendStatsOperator(task_id="t", single_send_ids=wanted)
    large = operator.__dict__["hook"] = Hook(1000)
    assert operator._explicit(wanted) == [{"id": wanted[0]}, {"id": wanted[1]}]
    assert large.calls == ["page None", f"get {wanted[1]}", f"get {wanted[2]}"]
    small = operator.__dict__["hook"] = Hook(200)
    assert operator._explicit(wanted) == [{"id": wanted[0]}, {"id": wanted[1]}]
    assert small.calls == ["page None", "page 1"]  # the whole list: wanted[2] does not exist
