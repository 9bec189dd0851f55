"""The hook's Single Send stats methods against the emulator: every page, 25 ids per list read,
the CSV export."""

from __future__ import annotations

import asyncio
import csv
import datetime
import io

import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle
from sgseg_emulator.stats import final_counts

from airflow_provider_sgseg.exceptions import SendGridInputError, SendGridNotFoundError
from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
from airflow_provider_sgseg.rules.requests import GetSingleSendStats, ListSingleSendStats
from tests.stats_helpers import HOUR, PERIOD, api_client, sent_single_send

UNKNOWN_ID = "6b2b2a0e-7e1f-4b8b-9a53-0c1c3d5e6f70"


def test_day_rows_over_every_page_and_links(sendgrid_emulator: EmulatorHandle) -> None:
    with api_client(sendgrid_emulator) as api:
        single_send_id = sent_single_send(api, sendgrid_emulator, contacts=100)
    sendgrid_emulator.admin.set_ab_test(single_send_id, variations=2, test_percentage=20)
    sendgrid_emulator.admin.advance_clock(PERIOD + 30 * 24 * HOUR)
    hook = SendGridMarketingHook()
    day = sendgrid_emulator.admin.now().date()
    start = (sendgrid_emulator.admin.now() - datetime.timedelta(seconds=PERIOD + 30 * 24 * HOUR)).date()
    rows = hook.get_single_send_stats(
        single_send_id,
        start_date=start,
        end_date=day,
        aggregated_by="day",
        group_by=["ab_variation", "ab_phase"],
    )
    assert len(rows) == 3 * 33  # 3 (variation, phase) pairs x 33 days: more than one page of 50
    stats_reads = sendgrid_emulator.admin.requests(
        path_prefix=f"/v3/marketing/stats/singlesends/{single_send_id}"
    )
    assert len(stats_reads) == 2
    assert sum(row["stats"]["requests"] for row in rows) == 100
    links = hook.get_single_send_link_stats(single_send_id)
    assert [link["url_location"] for link in links] == [0, 1, 2]


def test_list_reads_25_ids_per_request(sendgrid_emulator: EmulatorHandle) -> None:
    with api_client(sendgrid_emulator) as api:
        ids = [sent_single_send(api, sendgrid_emulator, contacts=1, first=n, name=f"s{n}") for n in range(27)]
    hook = SendGridMarketingHook()
    rows = hook.list_single_send_stats(ids)
    assert sorted(row["id"] for row in rows) == sorted(ids)
    assert len(sendgrid_emulator.admin.requests(path_prefix="/v3/marketing/stats/singlesends")) == 2
    with pytest.raises(SendGridInputError):
        ListSingleSendStats(ids)


def test_unknown_id_is_not_found_and_async_reads_the_same(sendgrid_emulator: EmulatorHandle) -> None:
    hook = SendGridMarketingHook()
    with pytest.raises(SendGridNotFoundError):
        hook.get_single_send_stats(UNKNOWN_ID, start_date="2026-01-01", end_date="2026-01-02")
    with api_client(sendgrid_emulator) as api:
        single_send_id = sent_single_send(api, sendgrid_emulator, contacts=10)
    sendgrid_emulator.admin.advance_clock(HOUR)
    request = GetSingleSendStats(single_send_id, "2000-01-01", "2100-01-01")
    rows = asyncio.run(hook.aget_single_send_stats(request))
    assert rows == hook.get_single_send_stats(single_send_id, start_date="2000-01-01", end_date="2100-01-01")
    assert rows[0]["stats"]["requests"] == 10


def test_the_csv_export_is_the_totals_as_text(sendgrid_emulator: EmulatorHandle) -> None:
    with api_client(sendgrid_emulator) as api:
        first = sent_single_send(api, sendgrid_emulator, contacts=40, name="first")
        second = sent_single_send(api, sendgrid_emulator, contacts=0, name="second")
    sendgrid_emulator.admin.advance_clock(PERIOD)
    hook = SendGridMarketingHook()
    text = hook.export_single_send_stats([first, second, UNKNOWN_ID], timezone="America/Chicago")
    rows = {row["Single Send ID"]: row for row in csv.DictReader(io.StringIO(text))}
    assert set(rows) == {first, second}  # an id SendGrid does not know has no line
    assert rows[first]["Single Send Name"] == "first"
    assert int(rows[first]["delivered"]) == final_counts(40)["delivered"] > 0
    (read,) = sendgrid_emulator.admin.requests(path_prefix="/v3/marketing/stats/singlesends/export")
    assert read["query"]["timezone"] == "America/Chicago"


def test_the_csv_export_takes_1_to_50_ids_and_refuses_bad_ones_before_any_request(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    hook = SendGridMarketingHook()
    logged = len(sendgrid_emulator.admin.requests())
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(51)]
    for bad, named in [([], "single_send_ids"), (ids, "single_send_ids"), (["nope"], "single_send_ids")]:
        with pytest.raises(SendGridInputError) as caught:
            hook.export_single_send_stats(bad)
        assert caught.value.name == named
    with pytest.raises(SendGridInputError) as caught:
        hook.export_single_send_stats(ids[:1], timezone="+01:00")
    assert caught.value.name == "timezone"
    assert len(sendgrid_emulator.admin.requests()) == logged
    assert hook.export_single_send_stats(ids[:50]).splitlines() == [
        hook.export_single_send_stats(ids[0]).splitlines()[0]
    ]  # 50 ids are one request; unknown ones leave the header alone
