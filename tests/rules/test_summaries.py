"""The wording of every task's last log line (rules/summaries.py) and the quota numbers behind the
refresh's (rules/refresh_quota.py)."""

from __future__ import annotations

import datetime
from typing import Any

import pendulum

from airflow_provider_sgseg.rules import refresh_quota, summaries

UTC = datetime.timezone.utc
SEGMENT_ID = "3b2b1b58-1f5d-4c5e-9d3a-5c6f1a2b3c4d"


def test_counts_plurals_and_first_few() -> None:
    assert summaries.counted(1, "row") == "1 row"
    assert summaries.counted(1234, "row") == "1,234 rows"
    assert summaries.counted(2, "batch", "batches") == "2 batches"
    assert summaries.first_few([1, 2, 3]) == "1, 2, 3"
    assert summaries.first_few(list(range(1, 9))) == "1, 2, 3, 4, 5 and 3 more"
    assert summaries.first_few([4, 9], total=40) == "4, 9 and 38 more"


def test_in_zones_gives_utc_and_the_segments_zone() -> None:
    moment = datetime.datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    assert summaries.in_zones(moment, "Europe/Amsterdam") == (
        "2026-03-02T06:00:00+00:00 UTC (2026-03-02T07:00:00+01:00 Europe/Amsterdam)"
    )
    assert summaries.in_zones(moment, "UTC") == "2026-03-02T06:00:00+00:00 UTC"
    assert summaries.in_zones(None, "UTC") == "unknown"


UPSERT: dict[str, Any] = {
    "rows_read": 120,
    "refused_rows": 7,
    "refused": [{"row": n} for n in (4, 17, 90, 91, 95, 100, 118)],
    "merged_rows": 2,
    "method": "batches",
    "batches": 1,
    "job_ids": ["job-1"],
    "created_count": 100,
    "updated_count": 9,
    "errored_count": 2,
}


def test_upsert_summary_counts_every_outcome_and_names_refused_rows_and_jobs() -> None:
    assert summaries.upsert(UPSERT) == (
        "Upsert done: 120 rows read, 100 created, 9 updated, 2 errored at SendGrid, 7 refused locally "
        "(rows 4, 17, 90, 91, 95 and 2 more), 2 rows merged into an earlier row of the same contact; "
        "sent as 1 batch (1 job: job-1)."
    )


def test_upsert_summary_of_imports_and_of_an_empty_source() -> None:
    imported = {**UPSERT, "method": "import", "batches": 2, "job_ids": ["a", "b"], "refused_rows": 0}
    imported.update(merged_rows=0, rejected_rows_path="file:///tmp/rejected.csv")
    line = summaries.upsert(imported)
    assert "0 refused locally;" in line and "sent as 2 import files (2 jobs: a, b)" in line
    assert line.endswith("Rejected rows: file:///tmp/rejected.csv.")
    assert summaries.upsert({"rows_read": 0}) == (
        "Upsert done: the source is empty: 0 rows read, nothing sent to SendGrid."
    )


def test_upsert_summary_of_a_retry_says_which_batches_an_earlier_try_sent() -> None:
    retried = {**UPSERT, "batches": 3, "reused_batches": 2, "job_ids": ["j1", "j2", "j3"]}
    assert summaries.upsert(retried).endswith(
        "sent as 3 batches, 2 of them accepted in an earlier try and not sent again (3 jobs: j1, j2, j3)."
    )


def test_export_summary_gives_rows_contact_count_files_and_destination() -> None:
    result = {
        "export_id": "exp-1",
        "paths": ["/data/out/contacts-1.csv.gz", "/data/out/contacts-2.csv.gz"],
        "row_count": 1500,
        "contact_count": 1500,
        "expires_at": "2026-03-05T00:00:00Z",
        "file_type": "csv",
    }
    assert summaries.export(result, [SEGMENT_ID], [], "/data/out") == (
        f"Export exp-1 of segments {SEGMENT_ID} done: 1,500 rows written (SendGrid's contact_count "
        "1,500) in 2 csv files (contacts-1.csv.gz, contacts-2.csv.gz) at /data/out; URLs expire at "
        "2026-03-05T00:00:00Z."
    )
    assert "of segments a and lists b done" in summaries.export(result, ["a"], ["b"], "x")


SEGMENT = {
    "id": SEGMENT_ID,
    "name": "active-nl",
    "contacts_count": 150,
    "sample_updated_at": "2026-03-01T10:00:00Z",
    "status": {"query_validation": "VALID"},
}


def test_refresh_summaries_spent_and_skipped() -> None:
    result = {"segment_id": SEGMENT_ID, "job_id": "job-9", "watermark": "2026-03-01T10:00:00Z"}
    next_at = datetime.datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    assert summaries.refresh_spent(result, SEGMENT, "Europe/Amsterdam", 1, next_at, by_this_try=True) == (
        f"Refreshed segment 'active-nl' ({SEGMENT_ID}): 1 refresh spent, job job-9; 1 refresh left "
        "today; next refresh allowed at 2026-03-02T11:00:00+00:00 UTC (2026-03-02T12:00:00+01:00 "
        "Europe/Amsterdam); watermark 2026-03-01T10:00:00Z."
    )
    earlier = summaries.refresh_spent(
        {**result, "job_id": None}, SEGMENT, "UTC", None, None, by_this_try=False
    )
    assert "1 refresh spent by an earlier try (not sent again), job unknown" in earlier
    assert "refreshes left today unknown; next refresh allowed at now" in earlier
    assert summaries.refresh_skipped(
        SEGMENT_ID, SEGMENT, "America/Chicago", 0, "segment_daily_limit", next_at
    ) == (
        f"Skipped the refresh of segment 'active-nl' ({SEGMENT_ID}) (segment_daily_limit): none spent; "
        "0 refreshes left today; next refresh allowed at 2026-03-02T11:00:00+00:00 UTC "
        "(2026-03-02T05:00:00-06:00 America/Chicago)."
    )


def test_refreshes_left_counts_only_todays_refreshes_in_the_segments_zone() -> None:
    now = datetime.datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # 13:00 in Amsterdam
    today = {"refreshes_used": 1, "max_refreshes": 2, "last_refreshed_at": "2026-03-02T08:00:00Z"}
    yesterday = {**today, "last_refreshed_at": "2026-03-01T22:00:00Z"}  # 23:00 on the 1st there
    assert refresh_quota.refreshes_left(today, "Europe/Amsterdam", now) == 1
    assert refresh_quota.refreshes_left(yesterday, "Europe/Amsterdam", now) == 2
    assert refresh_quota.refreshes_left({}, "UTC", now) is None


def test_after_refresh_gives_what_is_left_and_the_next_allowed_time() -> None:
    at = datetime.datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    fresh = {"refreshes_used": 0, "max_refreshes": 2, "last_refreshed_at": None}
    assert refresh_quota.after_refresh(fresh, "Europe/Amsterdam", at) == (1, at + datetime.timedelta(hours=1))
    second = {"refreshes_used": 1, "max_refreshes": 2, "last_refreshed_at": "2026-03-02T08:00:00Z"}
    left, next_at = refresh_quota.after_refresh(second, "Europe/Amsterdam", at)
    assert left == 0
    assert next_at == pendulum.datetime(2026, 3, 3, tz="Europe/Amsterdam")  # local midnight
    assert refresh_quota.after_refresh({}, "UTC", at) == (None, at + datetime.timedelta(hours=1))


def test_segment_operator_summaries_say_what_changed_and_what_was_found() -> None:
    assert summaries.segment_created(SEGMENT, "created by this task") == (
        f"Segment 'active-nl' ({SEGMENT_ID}) created by this task; query validation VALID; 150 contacts "
        "(sample of 2026-03-01T10:00:00Z)."
    )
    assert summaries.segment_read({**SEGMENT, "contacts_sample": [{}, {}]}) == (
        f"Found segment 'active-nl' ({SEGMENT_ID}): 150 contacts (sample of 2026-03-01T10:00:00Z), "
        "query validation VALID; 2 contacts in contacts_sample."
    )
    assert summaries.segments_listed([SEGMENT]) == f"Found 1 segment: 'active-nl' ({SEGMENT_ID})."
    assert summaries.segments_listed([]) == "Found 0 segments."
    assert summaries.segment_updated(SEGMENT, "active-nl", "SELECT 1") == (
        f"Updated segment 'active-nl' ({SEGMENT_ID}): name set to 'active-nl' and query_dsl replaced; "
        "query validation VALID; 150 contacts (sample of 2026-03-01T10:00:00Z)."
    )
    assert summaries.segment_deleted(SEGMENT_ID, True) == f"Deleted segment {SEGMENT_ID}."
    assert summaries.segment_deleted(SEGMENT_ID, False, "missing_ok=True") == (
        f"Segment {SEGMENT_ID} was already gone: nothing deleted (missing_ok=True)."
    )
    pending = {**SEGMENT, "status": {"query_validation": "PENDING"}, "contacts_count": None}
    pending.pop("sample_updated_at")
    assert "query validation PENDING; ? contacts (no sample yet)" in summaries.segment_created(pending, "x")


def test_single_send_summary_gives_time_audience_sizes_and_the_gate_verdict() -> None:
    gate = {
        "passed": True,
        "checked_at": "2026-03-02T12:00:00+00:00",
        "segments": [{"segment_id": SEGMENT_ID, "name": "active-nl", "contacts_count": 150}],
    }
    result = {"single_send_id": "ss-1", "status": "scheduled", "send_at": "2026-03-03T09:00:00Z"}
    assert summaries.single_send("Digest", {**result, "audience_gate": gate}) == (
        "Single Send 'Digest' (ss-1) is scheduled for 2026-03-03T09:00:00Z; audience gate passed at "
        f"2026-03-02T12:00:00+00:00 (segment 'active-nl' ({SEGMENT_ID}) 150 contacts)."
    )
    assert summaries.single_send("Digest", {**result, "audience_gate": None}).endswith(
        "no audience gate set (audience sizes not read)."
    )
    already = summaries.single_send("Digest", {**result, "status": "triggered"}, already=True)
    assert already.startswith("Single Send 'Digest' (ss-1) was already triggered for ")


def test_sensor_summaries() -> None:
    result = {"segment_id": SEGMENT_ID, "contacts_count": 150, "sample_updated_at": "2026-03-01T10:00:00Z"}
    assert summaries.segment_populated(result, "active-nl", 100) == (
        f"Segment populated: segment 'active-nl' ({SEGMENT_ID}) counts 150 contacts (min_contacts=100) "
        "in the sample of 2026-03-01T10:00:00Z."
    )
    assert summaries.segment_populated(result, None, 1).startswith(
        f"Segment populated: segment {SEGMENT_ID} "
    )
    stats = {
        "single_send_id": "ss-1",
        "send_at": "2026-03-03T09:00:00Z",
        "provisional": False,
        "counts": {"delivered": 140, "opens": 20},
        "changed_at": "2026-03-03T10:00:00Z",
    }
    assert summaries.stats_settled(stats) == (
        "Single Send ss-1 stats settled: sent at 2026-03-03T09:00:00Z; counts delivered 140, opens 20; "
        "last change at 2026-03-03T10:00:00Z."
    )
    assert "stats provisional:" in summaries.stats_settled({**stats, "provisional": True})


def test_stats_operator_summary() -> None:
    result = {
        "single_send_ids": ["ss-1", "ss-2"],
        "stats_rows": 4,
        "link_rows": 1,
        "totals": {"requests": 1000, "delivered": 990},
        "table": "sendgrid_stats",
        "links_table": "sendgrid_links",
        "files": [],
        "provisional": True,
    }
    assert summaries.stats_landed(result) == (
        "Landed 4 stats rows and 1 link row of 2 Single Sends (ss-1, ss-2) in tables "
        "sendgrid_stats/sendgrid_links (provisional); totals requests 1,000, delivered 990."
    )
    nowhere = {**result, "table": None, "files": ["/x/a.csv"], "provisional": False}
    assert "in files /x/a.csv; totals" in summaries.stats_landed(nowhere)
