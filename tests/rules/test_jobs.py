"""Reading contacts job answers (import/upsert jobs, exports)."""

from __future__ import annotations

import datetime

from airflow_provider_sgseg.rules import waiting
from airflow_provider_sgseg.rules.jobs import (
    ExportResult,
    ImportResult,
    all_jobs,
    export_outcome,
    export_reusable,
    import_outcome,
    job_payload,
)

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def test_import_pending_then_errored_with_counts() -> None:
    assert isinstance(import_outcome("j1", {"status": "pending"}), waiting.Pending)
    outcome = import_outcome(
        "j1",
        {
            "status": "errored",
            "results": {
                "requested_count": 3,
                "created_count": 1,
                "updated_count": 1,
                "errored_count": 1,
                "errors_url": "https://x/errors",
            },
        },
    )
    assert isinstance(outcome, waiting.Finished)
    assert job_payload(outcome.value) == {
        "job_id": "j1",
        "status": "errored",
        "requested_count": 3,
        "created_count": 1,
        "updated_count": 1,
        "errored_count": 1,
        "errors_url": "https://x/errors",
    }


def test_failed_import_is_finished_for_the_operator_to_judge() -> None:
    outcome = import_outcome("j2", {"status": "failed", "results": {"errored_count": 5}})
    assert isinstance(outcome, waiting.Finished) and outcome.value.status == "failed"


def test_export_states() -> None:
    assert isinstance(export_outcome("e", {"status": "pending"}), waiting.Pending)
    failure = export_outcome("e", {"status": "failure", "message": "segment gone"})
    assert failure == waiting.Rejected("SendGrid export e failed: segment gone")
    ready = export_outcome(
        "e",
        {"status": "ready", "urls": ["u1", "u2"], "contact_count": 7, "expires_at": "2026-01-02T00:00:00Z"},
    )
    assert isinstance(ready, waiting.Finished)
    assert ready.value == ExportResult(
        "e", ["u1", "u2"], 7, datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)
    )


def test_export_reusable_until_it_fails_or_nearly_expires() -> None:
    assert export_reusable({"status": "pending"}, NOW)
    assert export_reusable({"status": "ready", "expires_at": "2026-01-01T01:00:00Z"}, NOW)
    assert not export_reusable({"status": "ready", "expires_at": "2026-01-01T00:01:00Z"}, NOW)
    assert not export_reusable({"status": "failure"}, NOW)


def test_all_jobs_waits_for_the_slowest_and_stops_on_any_rejection() -> None:
    done = waiting.Finished(ImportResult("a", "completed", {}, None))
    assert isinstance(all_jobs({"a": done, "b": waiting.Pending("b")}), waiting.Pending)
    assert isinstance(all_jobs({"a": done, "b": waiting.Transient("503")}), waiting.Transient)
    assert all_jobs({"a": waiting.Pending("a"), "b": waiting.Rejected("no")}) == waiting.Rejected("no")
    finished = all_jobs({"a": done})
    assert isinstance(finished, waiting.Finished) and set(finished.value) == {"a"}


def test_adoptable_export_matches_request_and_time() -> None:
    from airflow_provider_sgseg.rules.jobs import adoptable_export

    attempt = datetime.datetime(2026, 1, 1, 10, 0, tzinfo=datetime.timezone.utc)
    exports = [
        {"id": "old", "status": "ready", "created_at": "2026-01-01T09:00:00Z", "segments": [{"ID": "s"}]},
        {"id": "other", "status": "pending", "created_at": "2026-01-01T10:00:05Z", "segments": [{"ID": "t"}]},
        {"id": "ours", "status": "pending", "created_at": "2026-01-01T10:00:01Z", "segments": [{"ID": "s"}]},
        {"id": "gone", "status": "failure", "created_at": "2026-01-01T10:00:09Z", "segments": [{"ID": "s"}]},
    ]
    assert adoptable_export(exports, ["s"], [], attempt, attempt) == "ours"
    assert adoptable_export(exports, ["s"], ["l"], attempt, attempt) is None


def test_job_board_reads_only_unfinished_jobs_and_classifies_errors() -> None:
    from airflow_provider_sgseg.exceptions import SendGridNotFoundError, SendGridRateLimitError
    from airflow_provider_sgseg.rules.jobs import JobBoard

    board = JobBoard("import", ["a", "b"])
    assert board.to_read() == ["a", "b"]
    board.answered("a", {"status": "completed"})
    reset = datetime.datetime(2026, 1, 1, 0, 5, tzinfo=datetime.timezone.utc)
    board.failed("b", SendGridRateLimitError("429", reset_at=reset))
    assert board.outcome() == waiting.Transient("429", reset)
    assert board.to_read() == ["b"]  # "a" ended: never read again
    board.failed("b", SendGridNotFoundError("gone"))
    assert isinstance(board.outcome(), waiting.Rejected)
    board.to_read()
    board.answered("b", {"status": "errored", "results": {"errored_count": 1}})
    done = board.outcome()
    assert isinstance(done, waiting.Finished) and set(done.value) == {"a", "b"}
