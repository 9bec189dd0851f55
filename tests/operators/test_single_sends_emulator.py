"""SendGridSingleSendOperator against the emulator (manual clock), over loopback HTTP.

A task retry is a second ``execute`` of a fresh operator built from the same arguments, which
is what Airflow does; the emulator's request log and its record of sends say what happened.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle

from airflow_provider_sgseg.exceptions import SendGridInputError, SendGridServerError
from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
from airflow_provider_sgseg.operators.single_sends import SendGridSingleSendOperator
from airflow_provider_sgseg.version_compat import AirflowFailException

SINGLE_SENDS = "/v3/marketing/singlesends"
SCHEDULE_PATH = r"^/v3/marketing/singlesends/[^/]+/schedule$"
NAME = "Weekly digest 2026-11-26"
EXAMPLE_COM = "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.email LIKE '%@example.com'"
POPULATE = 15 * 60 + 1  # SendGrid's (and the emulator's default) first-sample delay, plus a second


class RecordingTaskInstance:
    """The one piece of the Airflow runtime the operator touches: ``ti.xcom_push``."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def run(operator: SendGridSingleSendOperator) -> tuple[dict[str, Any], dict[str, Any]]:
    ti = RecordingTaskInstance()
    result = operator.execute({"ti": ti})  # type: ignore[arg-type]
    return result, ti.xcom


def make_operator(segment_id: str, **changes: Any) -> SendGridSingleSendOperator:
    args: dict[str, Any] = {
        "task_id": "send",
        "name": NAME,
        "segment_ids": [segment_id],
        "subject": "Your digest",
        "html_content": "<p>Hello</p>",
        "sender_id": 1,
        "custom_unsubscribe_url": "https://example.com/unsubscribe",
    }
    args.update(changes)
    return SendGridSingleSendOperator(**args)


def populated_segment(emulator: EmulatorHandle, matching: int, others: int = 2) -> str:
    """A segment of ``matching`` contacts, sampled (the emulator's clock moved past the first sample)."""
    contacts = [{"email": f"reader{n}@example.com"} for n in range(matching)]
    contacts += [{"email": f"other{n}@example.org"} for n in range(others)]
    emulator.admin.seed_contacts(contacts)
    hook = SendGridMarketingHook()
    segment_id = str(hook.create_segment("Digest readers", EXAMPLE_COM)["id"])
    emulator.admin.advance_clock(POPULATE)
    assert hook.get_segment(segment_id, contacts_sample=False)["contacts_count"] == matching
    return segment_id


def calls(emulator: EmulatorHandle, method: str, path_regex: str = "") -> list[dict[str, Any]]:
    return [
        r
        for r in emulator.admin.requests(method=method, path_prefix=SINGLE_SENDS)
        if re.search(path_regex, r["path"])
    ]


def live_sends(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    return [s for s in emulator.admin.sends() if s["status"] != "cancelled"]


def test_creates_the_draft_schedules_it_and_the_emulator_sends_it(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=5)

    result, xcom = run(make_operator(segment_id, require_min_contacts=5))

    assert result["status"] == "scheduled"
    assert result["send_at"]
    assert xcom == {"single_send_id": result["single_send_id"]}
    assert len(calls(sendgrid_emulator, "POST")) == 1
    assert len(calls(sendgrid_emulator, "PUT", SCHEDULE_PATH)) == 1
    (send,) = live_sends(sendgrid_emulator)
    assert send["single_send_id"] == result["single_send_id"]
    assert send["status"] == "triggered"
    assert send["recipient_count"] == 5
    draft = SendGridMarketingHook().get_single_send(result["single_send_id"])
    assert draft["send_to"]["segment_ids"] == [segment_id]
    assert draft["email_config"]["custom_unsubscribe_url"] == "https://example.com/unsubscribe"


@pytest.mark.parametrize(
    "changes",
    [
        {"segment_ids": [f"{n:08d}-2222-4333-8444-555555555555" for n in range(11)]},
        {"sender_id": None},
        {"custom_unsubscribe_url": None},
        {"html_content": None},
        {"segment_ids": None},
        {"send_at": "next tuesday"},
        {"require_min_contacts": "several"},
    ],
)
def test_bad_input_fails_before_any_request(
    sendgrid_emulator: EmulatorHandle, changes: dict[str, Any]
) -> None:
    segment_id = "8a3c1f3e-4a5b-4c6d-9e7f-0a1b2c3d4e5f"
    with pytest.raises(SendGridInputError):
        run(make_operator(segment_id, **changes))
    assert sendgrid_emulator.admin.requests(path_prefix="/v3/") == []


def test_a_retry_reuses_its_draft_after_a_failed_schedule(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=3)
    sendgrid_emulator.admin.add_fault("status", method="PUT", path=SCHEDULE_PATH, status=503)

    with pytest.raises(SendGridServerError):
        run(make_operator(segment_id))
    result, xcom = run(make_operator(segment_id))  # the task's retry

    assert len(calls(sendgrid_emulator, "POST")) == 1, "the retry created a second draft"
    (send,) = live_sends(sendgrid_emulator)
    assert send["single_send_id"] == result["single_send_id"] == xcom["single_send_id"]
    assert result["status"] == "scheduled"


def test_a_lost_schedule_answer_is_read_back_and_never_scheduled_again(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=3)
    # SendGrid schedules the send, then the connection drops before its answer arrives.
    sendgrid_emulator.admin.add_fault("drop", method="PUT", path=SCHEDULE_PATH, when="after")

    first, _ = run(make_operator(segment_id))
    retry, _ = run(make_operator(segment_id))

    assert first["status"] in ("scheduled", "triggered")
    assert retry["single_send_id"] == first["single_send_id"]
    assert len(calls(sendgrid_emulator, "PUT", SCHEDULE_PATH)) == 1
    assert len(live_sends(sendgrid_emulator)) == 1
    assert len(sendgrid_emulator.admin.sends()) == 1


def test_a_lost_create_answer_finds_the_draft_instead_of_creating_another(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=3)
    sendgrid_emulator.admin.add_fault(
        "drop", method="POST", path=r"^/v3/marketing/singlesends$", when="after"
    )

    result, _ = run(make_operator(segment_id))

    assert len(calls(sendgrid_emulator, "POST")) == 1
    (found,) = SendGridMarketingHook().find_single_sends_by_name(NAME)
    assert found["id"] == result["single_send_id"]
    assert len(live_sends(sendgrid_emulator)) == 1


@pytest.mark.parametrize("status", [400, 409, 422])
@pytest.mark.parametrize(
    ("method", "path"), [("POST", r"^/v3/marketing/singlesends$"), ("PUT", SCHEDULE_PATH)]
)
def test_a_refused_create_or_schedule_fails_without_retries(
    sendgrid_emulator: EmulatorHandle, method: str, path: str, status: int
) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=3)
    body = {"errors": [{"field": "email_config.sender_id", "message": "sender 1 does not exist"}]}
    sendgrid_emulator.admin.add_fault("status", method=method, path=path, status=status, body=body)

    with pytest.raises(AirflowFailException) as caught:
        run(make_operator(segment_id))

    action = "creating Single Send" if method == "POST" else "scheduling Single Send"
    assert f"SendGrid rejected {action}" in str(caught.value)
    assert f"(HTTP {status}, not retried)" in str(caught.value)
    assert "email_config.sender_id: sender 1 does not exist" in str(caught.value)
    assert [c["status"] for c in calls(sendgrid_emulator, method, path)] == [status]
    assert live_sends(sendgrid_emulator) == []


def test_require_min_contacts_refuses_a_too_small_audience(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=2)

    with pytest.raises(AirflowFailException, match=r"require_min_contacts=3.*has 2 contacts"):
        run(make_operator(segment_id, require_min_contacts="3"))

    assert calls(sendgrid_emulator, "PUT", SCHEDULE_PATH) == []
    assert sendgrid_emulator.admin.sends() == []
    (draft,) = SendGridMarketingHook().find_single_sends_by_name(NAME)
    assert draft["status"] == "draft"


def test_require_min_contacts_refuses_a_segment_not_populated_yet(sendgrid_emulator: EmulatorHandle) -> None:
    sendgrid_emulator.admin.seed_contacts([{"email": "reader@example.com"}])
    segment_id = str(SendGridMarketingHook().create_segment("Fresh", EXAMPLE_COM)["id"])

    with pytest.raises(AirflowFailException, match="has 0 contacts"):
        run(make_operator(segment_id, require_min_contacts=1))

    assert sendgrid_emulator.admin.sends() == []


def test_an_existing_send_with_the_same_name_but_other_recipients_is_not_sent(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=3)
    other = "8a3c1f3e-4a5b-4c6d-9e7f-0a1b2c3d4e5f"
    SendGridMarketingHook().create_single_send(NAME, segment_ids=[other])

    with pytest.raises(AirflowFailException, match="different recipients"):
        run(make_operator(segment_id))

    assert calls(sendgrid_emulator, "PUT", SCHEDULE_PATH) == []
    assert len(calls(sendgrid_emulator, "POST")) == 1  # only the one made above


def test_templates_render_into_the_request(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=1)
    operator = make_operator(
        "{{ params.segment_id }}",
        name="Digest {{ ds }}",
        sender_id="{{ params.sender }}",
        segment_ids=["{{ params.segment_id }}"],
    )
    context: dict[str, Any] = {"ds": "2026-11-26", "params": {"segment_id": segment_id, "sender": 7}}
    operator.render_template_fields(context)  # type: ignore[arg-type]

    result, _ = run(operator)

    single_send = SendGridMarketingHook().get_single_send(result["single_send_id"])
    assert single_send["name"] == "Digest 2026-11-26"
    assert single_send["email_config"]["sender_id"] == 7
    assert single_send["send_to"]["segment_ids"] == [segment_id]
