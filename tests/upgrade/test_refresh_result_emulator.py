"""The refresh result's watermark under both names, against the emulator (manual clock).

0.2.0 called it ``sample_updated_at_before``; 0.3.0 calls it ``watermark`` and carries both until
1.0, also in a result a retry rebuilds from what a 0.2.0 try left in the task state store (an
upgrade between two tries of one task instance).
"""

from __future__ import annotations

from sgseg_emulator.pytest_plugin import EmulatorHandle

from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
from airflow_provider_sgseg.operators.segments import REFRESH_ATTEMPT_KEY, REFRESH_RESULT_KEY
from tests.operators.test_segments_emulator import TaskRun, new_segment, refresh_posts, refresher


def test_the_refresh_result_carries_the_watermark_under_both_names(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator)
    before = SendGridMarketingHook().get_segment(segment_id, contacts_sample=False)["sample_updated_at"]
    result = refresher(sendgrid_emulator, segment_id).execute(TaskRun().context())
    assert result["watermark"] == before
    assert result["sample_updated_at_before"] == before


def test_a_retry_returns_a_0_2_0_tries_result_with_both_names(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = new_segment(sendgrid_emulator)
    run = TaskRun()
    assert run.store is not None
    old_result = {
        "segment_id": segment_id,
        "job_id": "job-of-the-0.2.0-try",
        "requested_at": "2026-03-01T11:59:00+00:00",
        "sample_updated_at_before": "2026-03-01T11:00:00Z",
    }
    run.store.set(REFRESH_RESULT_KEY, old_result)
    result = refresher(sendgrid_emulator, segment_id).execute(run.context())
    assert result == {**old_result, "watermark": "2026-03-01T11:00:00Z"}
    assert refresh_posts(sendgrid_emulator) == []


def test_a_retry_adopting_a_0_2_0_tries_refresh_keeps_its_watermark(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    # The 0.2.0 try recorded its attempt, SendGrid accepted the POST, the answer was lost; then
    # the provider was upgraded and the task retried.
    segment_id = new_segment(sendgrid_emulator)
    hook = SendGridMarketingHook()
    before = hook.get_segment(segment_id, contacts_sample=False)
    run = TaskRun()
    assert run.store is not None
    run.store.set(
        REFRESH_ATTEMPT_KEY,
        {
            "segment_id": segment_id,
            "requested_at": sendgrid_emulator.admin.now().isoformat(),
            "last_refreshed_at_before": before.get("last_refreshed_at"),
            "refreshes_used_before": before.get("refreshes_used"),
            "sample_updated_at_before": before["sample_updated_at"],
        },
    )
    hook.refresh_segment(segment_id, "America/Chicago")
    result = refresher(sendgrid_emulator, segment_id).execute(run.context())
    assert result["job_id"] is None  # adopted, not posted again
    assert result["watermark"] == result["sample_updated_at_before"] == before["sample_updated_at"]
    assert len(refresh_posts(sendgrid_emulator)) == 1
