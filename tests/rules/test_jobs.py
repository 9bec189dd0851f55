"""Reading contacts job answers (import/upsert jobs, exports)."""

from __future__ import annotations

import datetime

import pytest

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


def test_adoptable_export_skips_an_export_whose_urls_name_another_file_type() -> None:
    from airflow_provider_sgseg.rules.jobs import adoptable_export

    attempt = datetime.datetime(2026, 1, 1, 10, 0, tzinfo=datetime.timezone.utc)

    def export(export_id: str, second: int, urls: list[str] | None) -> dict[str, object]:
        created = f"2026-01-01T10:00:{second:02d}Z"
        found = {"id": export_id, "status": "ready", "created_at": created, "segments": [{"ID": "s"}]}
        return found if urls is None else {**found, "urls": urls}

    ours = export("ours", 1, ["https://x.test/e/ours_1.csv.gz?sig=a.json"])
    theirs = export("theirs", 5, ["https://x.test/e/theirs_1.JSON?sig=b.csv"])
    assert adoptable_export([ours, theirs], ["s"], [], attempt, attempt, file_type="csv") == "ours"
    assert adoptable_export([ours, theirs], ["s"], [], attempt, attempt, file_type="json") == "theirs"
    # URLs that do not tell, or none yet (pending): a candidate as before, the download checks
    unknown = export("unknown", 7, ["https://x.test/download/7"])
    pending = export("pending", 9, None)
    assert adoptable_export([theirs, unknown], ["s"], [], attempt, attempt, file_type="csv") == "unknown"
    assert adoptable_export([theirs, pending], ["s"], [], attempt, attempt, file_type="csv") == "pending"
    assert adoptable_export([ours, theirs], ["s"], [], attempt, attempt) == "theirs"  # no type asked


def test_url_and_content_file_types() -> None:
    from airflow_provider_sgseg.rules.jobs import content_file_type, url_file_type

    assert url_file_type("https://s3.test/a/b_1.csv?X-Expires=1") == "csv"
    assert url_file_type("https://s3.test/a/b_1.json.gz") == "json"
    assert url_file_type("https://s3.test/a/b_1?name=b.csv") is None
    assert content_file_type(b'\n  {"EMAIL": "a@example.com"}\n') == "json"
    assert content_file_type(b"\xef\xbb\xbfEMAIL,FIRST_NAME\r\na@example.com,A\r\n") == "csv"
    assert content_file_type(b" \n") is None
    # cut or garbled (not a JSON object, not a header row): left to the row count, retryable
    assert content_file_type(b'{"results": [{"id": "truncated') is None
    assert content_file_type(b"<html><body>502 Bad Gateway</body></html>") is None
    assert content_file_type(b"\x89\xff\xfe binary") is None


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


def test_the_job_board_names_each_status_request_and_refuses_unknown_kinds() -> None:
    from airflow_provider_sgseg.exceptions import SendGridInputError
    from airflow_provider_sgseg.rules.jobs import JobBoard
    from airflow_provider_sgseg.rules.requests import GetExportStatus, GetImportStatus

    assert JobBoard("import", ["j"]).request("j") == GetImportStatus("j")
    assert JobBoard("export", ["e"]).request("e") == GetExportStatus("e")
    with pytest.raises(SendGridInputError, match="job_kind"):
        JobBoard("imports", ["j"])  # a typo used to read exports


@pytest.mark.parametrize(
    ("url", "expires"),
    [
        (
            "https://s3.example/f.csv?X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600&X-Amz-Signature=s",
            datetime.datetime(2026, 1, 1, 1, tzinfo=datetime.timezone.utc),
        ),
        (
            "https://storage.googleapis.com/b/f.csv?X-Goog-Date=20260101T000000Z&X-Goog-Expires=60",
            datetime.datetime(2026, 1, 1, 0, 1, tzinfo=datetime.timezone.utc),
        ),
        ("https://cdn.example/f.csv?Expires=1767225600&Signature=s", NOW),
        ("http://127.0.0.1/__files__/exports/x_1.csv?X-Expires=1767225600&X-Signature=s", NOW),
        ("https://files.example/f.csv?sig=s", None),
        ("https://s3.example/f.csv?X-Amz-Date=garbage&X-Amz-Expires=3600", None),
    ],
)
def test_a_download_urls_expiry_is_read_from_its_query(url: str, expires: datetime.datetime | None) -> None:
    from airflow_provider_sgseg.rules.jobs import url_expires_at, url_expiring

    assert url_expires_at(url) == expires
    soon = NOW + datetime.timedelta(seconds=60)  # within 120 s of NOW - 60 s
    assert url_expiring(url, NOW - datetime.timedelta(seconds=60)) is (
        expires is not None and expires <= soon
    )
    assert url_expiring(url, NOW - datetime.timedelta(hours=2)) is False
