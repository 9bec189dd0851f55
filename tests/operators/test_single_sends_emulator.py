"""SendGridSingleSendOperator against the emulator (manual clock), over loopback HTTP.

A task retry is a second ``execute`` of a fresh operator built from the same arguments, which
is what Airflow does; the emulator's request log and its record of sends say what happened.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import pendulum
import pytest
from airflow.exceptions import AirflowProviderDeprecationWarning
from sgseg_emulator.pytest_plugin import EmulatorHandle

from airflow_provider_sgseg.exceptions import SendGridInputError, SendGridServerError
from airflow_provider_sgseg.hooks.marketing import SendGridMarketingHook
from airflow_provider_sgseg.operators.single_sends import SendGridSingleSendOperator
from airflow_provider_sgseg.version_compat import AirflowFailException
from tests.helpers import last_info_line

SINGLE_SENDS = "/v3/marketing/singlesends"
SCHEDULE_PATH = r"^/v3/marketing/singlesends/[^/]+/schedule$"
NAME = "Weekly digest 2026-11-26"
EXAMPLE_COM = "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.email LIKE '%@example.com'"
POPULATE = 15 * 60 + 1  # SendGrid's (and the emulator's default) first-sample delay, plus a second
SEGMENT_ID = "8a3c1f3e-4a5b-4c6d-9e7f-0a1b2c3d4e5f"  # a well-formed id no request reaches


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
        "send_at": "now",
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

    result, xcom = run(make_operator(segment_id, min_contacts=5))

    assert result["status"] == "scheduled"
    assert result["send_at"]
    assert xcom == {
        "single_send_id": result["single_send_id"],
        "audience_gate": result["audience_gate"],
        # the "SendGrid Single Send" link's data: scheduled, so it names the Single Send
        "sendgrid_links": {
            "api_base_url": sendgrid_emulator.base_url,
            "single_send_id": result["single_send_id"],
        },
    }
    assert result["audience_gate"]["passed"] is True
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
        {"min_contacts": "several"},
        {"max_contacts": -1},
        {"min_contacts": 5, "max_contacts": 4},
        {"max_sample_age": "a while"},
        {"expected_contacts": 100, "tolerance": "lots"},
        {"watermark": "yesterday-ish"},
        {"send_at": "2020-01-01T00:00:00Z"},
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


def test_min_contacts_refuses_a_too_small_audience_before_creating_anything(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=2)

    with pytest.raises(AirflowFailException, match=r"2 contacts.*fewer than min_contacts=3"):
        run(make_operator(segment_id, min_contacts="3"))

    assert calls(sendgrid_emulator, "POST") == []  # the gate runs before any write
    assert calls(sendgrid_emulator, "PUT", SCHEDULE_PATH) == []
    assert sendgrid_emulator.admin.sends() == []
    assert SendGridMarketingHook().find_single_sends_by_name(NAME) == []


def test_min_contacts_refuses_a_segment_not_populated_yet(sendgrid_emulator: EmulatorHandle) -> None:
    sendgrid_emulator.admin.seed_contacts([{"email": "reader@example.com"}])
    segment_id = str(SendGridMarketingHook().create_segment("Fresh", EXAMPLE_COM)["id"])

    with pytest.raises(AirflowFailException, match=r"0 contacts.*fewer than min_contacts=1"):
        run(make_operator(segment_id, min_contacts=1))

    assert sendgrid_emulator.admin.sends() == []


def test_require_min_contacts_still_works_and_warns(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=2)
    with pytest.warns(AirflowProviderDeprecationWarning, match="require_min_contacts"):
        operator = make_operator(segment_id, require_min_contacts="3")
    with pytest.raises(AirflowFailException, match="fewer than min_contacts=3"):
        run(operator)
    assert calls(sendgrid_emulator, "POST") == []


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


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"subject": "Your NEW digest"}, "email_config.subject"),
        ({"html_content": "<p>Hello again</p>"}, "email_config.html_content"),
        ({"plain_content": "Hello in plain text"}, "email_config.plain_content"),
        ({"sender_id": 2}, "email_config.sender_id"),
        ({"custom_unsubscribe_url": "https://example.com/other"}, "email_config.custom_unsubscribe_url"),
        ({"custom_unsubscribe_url": None, "suppression_group_id": 7}, "email_config.suppression_group_id"),
        ({"html_content": None, "subject": None, "design_id": "d-1"}, "email_config.design_id"),
        ({"categories": ["digest"]}, "categories"),
    ],
)
def test_a_draft_left_with_other_content_is_refused_not_sent(
    sendgrid_emulator: EmulatorHandle, change: dict[str, Any], field: str
) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=3)
    sendgrid_emulator.admin.add_fault("status", method="PUT", path=SCHEDULE_PATH, status=503)
    with pytest.raises(SendGridServerError):  # a failed run leaves its draft behind
        run(make_operator(segment_id))

    with pytest.raises(
        AirflowFailException, match=rf"draft Single Send named .* its .*{re.escape(field)}.* differ"
    ):
        run(make_operator(segment_id, **change))  # the DAG changed; the rerun finds the old draft

    assert len(calls(sendgrid_emulator, "PUT", SCHEDULE_PATH)) == 1  # only the failed one
    assert len(calls(sendgrid_emulator, "POST")) == 1
    assert calls(sendgrid_emulator, "PATCH") == calls(sendgrid_emulator, "DELETE") == []
    assert live_sends(sendgrid_emulator) == []


def test_a_draft_with_the_same_content_is_reused_even_with_generated_plain_text(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=3)
    draft = SendGridMarketingHook().run(
        make_operator(segment_id, categories=["a", "b"]).build_request().create
    )
    # SendGrid fills in what the task left to it (plain text from the HTML, the editor).
    assert draft["email_config"]["generate_plain_content"] is True

    result, _ = run(make_operator(segment_id, categories=["b", "a"]))

    assert result["single_send_id"] == draft["id"] and result["status"] == "scheduled"
    assert len(calls(sendgrid_emulator, "POST")) == 1


def test_a_scheduled_send_with_other_content_is_left_as_it_is(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=3)
    first, _ = run(make_operator(segment_id))

    result, _ = run(make_operator(segment_id, subject="Changed after it was scheduled"))

    assert result["single_send_id"] == first["single_send_id"]
    assert result["status"] == "triggered"  # sent, not scheduled again
    assert len(calls(sendgrid_emulator, "PUT", SCHEDULE_PATH)) == 1
    assert calls(sendgrid_emulator, "PATCH") == []


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


# --- issue 21: the time and the audience ------------------------------------------------------


def test_a_past_send_at_is_refused_before_any_request(sendgrid_emulator: EmulatorHandle) -> None:
    """Seen: a template rendered 04:00Z at 09:16Z and the emulator sent it at once."""
    past = (sendgrid_emulator.admin.now() - datetime.timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(SendGridInputError) as caught:
        run(make_operator("8a3c1f3e-4a5b-4c6d-9e7f-0a1b2c3d4e5f", send_at=past))
    message = str(caught.value)
    assert past in message
    assert "before the current time" in message and "if_past='now'" in message
    assert re.search(r"current time \d{4}-\d{2}-\d{2}T", message)
    assert sendgrid_emulator.admin.requests(path_prefix="/v3/") == []


def test_if_past_now_sends_a_past_send_at_at_once(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=2)
    past = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=5)).isoformat()
    result, _ = run(make_operator(segment_id, send_at=past, if_past="now"))
    (schedule,) = calls(sendgrid_emulator, "PUT", SCHEDULE_PATH)
    assert schedule["json"] == {"send_at": "now"}
    assert result["status"] == "scheduled"


def test_a_send_at_within_the_clock_skew_counts_as_now(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=2)
    moments_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=20)
    run(make_operator(segment_id, send_at=moments_ago))
    (schedule,) = calls(sendgrid_emulator, "PUT", SCHEDULE_PATH)
    assert schedule["json"] == {"send_at": "now"}


def test_a_future_send_at_is_scheduled_as_given(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=2)
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)
    result, _ = run(make_operator(segment_id, send_at=later))
    expected = later.strftime("%Y-%m-%dT%H:%M:%SZ")
    (schedule,) = calls(sendgrid_emulator, "PUT", SCHEDULE_PATH)
    assert schedule["json"] == {"send_at": expected}
    assert result["send_at"] == expected and result["status"] == "scheduled"


def test_if_past_takes_only_fail_or_now() -> None:
    with pytest.raises(SendGridInputError, match="if_past"):
        make_operator("8a3c1f3e-4a5b-4c6d-9e7f-0a1b2c3d4e5f", if_past="later")


def test_leaving_send_at_out_warns_and_still_sends_now(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=2)
    args = {"task_id": "send", "name": NAME, "segment_ids": [segment_id], "subject": "Your digest"}
    args.update(html_content="<p>Hello</p>", sender_id=1, custom_unsubscribe_url="https://example.com/u")
    with pytest.warns(AirflowProviderDeprecationWarning, match="send_at becomes required"):
        operator = SendGridSingleSendOperator(**args)
    result, _ = run(operator)
    (schedule,) = calls(sendgrid_emulator, "PUT", SCHEDULE_PATH)
    assert schedule["json"] == {"send_at": "now"}
    assert result["status"] == "scheduled"


def test_max_contacts_refuses_a_too_large_audience_naming_the_segment(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=4)
    ti = RecordingTaskInstance()
    with pytest.raises(AirflowFailException) as caught:
        make_operator(segment_id, max_contacts=3).execute({"ti": ti})  # type: ignore[arg-type]
    message = str(caught.value)
    assert segment_id in message and "'Digest readers'" in message
    assert "4 contacts" in message and "more than max_contacts=3" in message
    assert calls(sendgrid_emulator, "POST") == []
    assert ti.xcom["audience_gate"]["passed"] is False
    assert ti.xcom["audience_gate"]["segments"][0]["failures"] == ["more than max_contacts=3"]


@pytest.mark.parametrize(
    ("expected", "tolerance", "passes"),
    [(10, 0, True), (12, 1, False), (12, 2, True), (11, "5%", False), (11, "10%", True), ("10", "0", True)],
)
def test_expected_contacts_with_an_absolute_or_relative_tolerance(
    sendgrid_emulator: EmulatorHandle, expected: object, tolerance: object, passes: bool
) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=10)
    operator = make_operator(segment_id, expected_contacts=expected, tolerance=tolerance)
    if passes:
        result, _ = run(operator)
        assert result["audience_gate"]["rules"]["expected_contacts"] == int(str(expected))
        assert result["status"] == "scheduled"
        return
    with pytest.raises(
        AirflowFailException, match=rf"expected_contacts={expected} with tolerance {tolerance}"
    ):
        run(operator)
    assert calls(sendgrid_emulator, "POST") == []


def test_expected_contacts_per_segment_from_a_rendered_dict(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=3)
    operator = make_operator(segment_id, expected_contacts="{{ params.counts }}")
    operator.render_template_fields({"params": {"counts": f"{{'{segment_id}': 30}}"}})  # type: ignore[arg-type]
    with pytest.raises(AirflowFailException, match="expected_contacts=30"):
        run(operator)


def test_max_sample_age_refuses_a_stale_sample(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=3)
    sampled = SendGridMarketingHook().get_segment(segment_id, contacts_sample=False)["sample_updated_at"]
    operator = make_operator(segment_id, max_sample_age=datetime.timedelta(minutes=10))
    # The worker's clock is the judge: pretend it is two hours after the sample.
    operator.now = lambda: pendulum.parse(sampled) + datetime.timedelta(hours=2)  # type: ignore[method-assign]
    operator.send_at = "now"
    with pytest.raises(AirflowFailException, match=r"sample 7200 s old, older than max_sample_age=600 s"):
        run(operator)
    assert calls(sendgrid_emulator, "POST") == []


def test_a_watermark_refuses_a_sample_not_newer(sendgrid_emulator: EmulatorHandle) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=3)
    sampled = SendGridMarketingHook().get_segment(segment_id, contacts_sample=False)["sample_updated_at"]
    with pytest.raises(AirflowFailException, match="sample not newer than watermark"):
        run(make_operator(segment_id, watermark={"watermark": sampled}))
    result, _ = run(make_operator(segment_id, watermark="2000-01-01T00:00:00Z", max_sample_age=3600))
    assert result["audience_gate"]["passed"] is True


def test_the_gate_needs_segments(sendgrid_emulator: EmulatorHandle) -> None:
    with pytest.raises(SendGridInputError, match="segment_ids must be given"):
        run(make_operator(None, segment_ids=None, send_to_all=True, max_contacts=10))
    assert sendgrid_emulator.admin.requests(path_prefix="/v3/") == []


@pytest.mark.parametrize("rendered", ["None", "", None])
@pytest.mark.parametrize("rule", ["min_contacts", "max_contacts", "max_sample_age", "expected_contacts"])
def test_a_gate_rule_that_renders_to_nothing_fails_before_any_request(
    sendgrid_emulator: EmulatorHandle, rule: str, rendered: object
) -> None:
    # e.g. expected_contacts="{{ ti.xcom_pull(task_ids='count_in_warehouse') }}" when that task
    # pushed nothing (or a typo in task_ids): the gate must not send with the rule switched off.
    operator = make_operator(SEGMENT_ID, **{rule: "{{ ti.xcom_pull(task_ids='count_in_warehouse') }}"})
    setattr(operator, rule, rendered)  # what rendering gave (None with native rendering)
    with pytest.raises(SendGridInputError, match=rf"{rule} .*rendered to nothing"):
        run(operator)
    assert sendgrid_emulator.admin.requests(path_prefix="/v3/") == []


def test_require_min_contacts_rendering_to_nothing_still_means_no_check(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=2)
    with pytest.warns(AirflowProviderDeprecationWarning):
        operator = make_operator(segment_id, require_min_contacts="{{ params.minimum }}")
    operator.min_contacts = "None"  # 0.2.0: a rule that rendered to nothing was no check
    result, _ = run(operator)
    assert result["status"] == "scheduled"
    assert result["audience_gate"] is None


# --- issue 23: the last log line ---------------------------------------------------------------


def test_the_send_ends_its_log_with_time_audience_sizes_and_the_gates_verdict(
    sendgrid_emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    segment_id = populated_segment(sendgrid_emulator, matching=5)
    capsys.readouterr()
    result, _ = run(make_operator(segment_id, min_contacts=5))
    line = last_info_line(capsys.readouterr().out)
    assert line == (
        f"Single Send {NAME!r} ({result['single_send_id']}) is scheduled for {result['send_at']}; "
        f"audience gate passed at {result['audience_gate']['checked_at']} "
        f"(segment 'Digest readers' ({segment_id}) 5 contacts)."
    )
    run(make_operator(segment_id, min_contacts=5))  # a retry: SendGrid has sent it meanwhile
    assert last_info_line(capsys.readouterr().out).startswith(
        f"Single Send {NAME!r} ({result['single_send_id']}) was already "
    )
