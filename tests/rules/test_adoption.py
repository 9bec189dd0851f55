"""What a retry adopts instead of writing again: the refresh and export rules side by side."""

from __future__ import annotations

import datetime

from airflow_provider_sgseg.rules import adoption, jobs
from airflow_provider_sgseg.rules.adoption import refresh_accepted

BEFORE = {"last_refreshed_at_before": "2026-01-01T09:00:00Z", "refreshes_used_before": 2}


def test_a_refresh_is_accepted_when_the_segment_shows_it_by_its_own_values() -> None:
    assert refresh_accepted(BEFORE, {"last_refreshed_at": "2026-01-01T10:00:00Z", "refreshes_used": 2})
    assert refresh_accepted(BEFORE, {"last_refreshed_at": "2026-01-01T09:00:00Z", "refreshes_used": 3})
    assert not refresh_accepted(BEFORE, {"last_refreshed_at": "2026-01-01T09:00:00Z", "refreshes_used": 2})
    # Never refreshed before: any recorded refresh is the attempt's; a non-int count is no evidence.
    assert refresh_accepted({}, {"last_refreshed_at": "2026-01-01T10:00:00Z"})
    assert not refresh_accepted({"refreshes_used_before": True}, {"refreshes_used": 5})


def test_the_export_rules_live_beside_the_refresh_rule_and_keep_their_old_names() -> None:
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    assert jobs.adoptable_export is adoption.adoptable_export
    assert jobs.export_reusable is adoption.export_reusable
    assert jobs.ADOPTION_SKEW == adoption.ADOPTION_SKEW == 300.0
    assert adoption.export_reusable({"status": "pending"}, now)
