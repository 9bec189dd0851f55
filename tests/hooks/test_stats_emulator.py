"""The hook's Single Send stats methods against the emulator: every page, 25 ids per list read."""

from __future__ import annotations

import asyncio
import datetime

import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

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
