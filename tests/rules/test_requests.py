"""The typed requests: validated when built, then described as one HTTP call and shaped answer."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_sgseg.exceptions import SendGridInputError, SendGridResponseError
from airflow_provider_sgseg.rules.requests import (
    Call,
    CreateFieldDefinition,
    CreateSegment,
    CreateSingleSend,
    DeleteSegment,
    ExportContacts,
    FindSingleSendsByName,
    GetExportStatus,
    GetFieldDefinitions,
    GetImportStatus,
    GetSegment,
    GetSingleSend,
    ImportContacts,
    ListPage,
    ListSegments,
    RefreshSegment,
    Request,
    Retry,
    ScheduleSingleSend,
    SegmentExists,
    UpdateSegment,
    UpsertContacts,
)

SEG = "6b2b2a0e-7e1f-4b8b-9a53-0c1c3d5e6f70"
SEG2 = "0f6c3f7d-2b9e-4c55-8f1a-7d3e2c1b0a99"
LIST = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
SS = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a98"
SEGMENTS = "/v3/marketing/segments/2.0"

# Each request built from raw (often rendered-template) values, and the call it must describe.
CALLS: list[tuple[Request[Any], Call]] = [
    (ListSegments(), Call("GET", SEGMENTS)),
    (
        ListSegments(ids=[SEG, SEG2, SEG], parent_list_ids=f"{LIST}, ", no_parent_list_id="true"),  # type: ignore[arg-type]
        Call(
            "GET",
            SEGMENTS,
            params=(("ids", SEG), ("ids", SEG2), ("parent_list_ids", LIST), ("no_parent_list_id", "true")),
        ),
    ),
    (GetSegment(f" {SEG} "), Call("GET", f"{SEGMENTS}/{SEG}", params=(("contacts_sample", "true"),))),
    (
        GetSegment(SEG, contacts_sample="False"),  # type: ignore[arg-type]
        Call("GET", f"{SEGMENTS}/{SEG}", params=(("contacts_sample", "false"),)),
    ),
    (
        CreateSegment(" Buyers ", " SELECT contact_id FROM contact_data ", LIST),
        Call(
            "POST",
            SEGMENTS,
            json={
                "name": "Buyers",
                "query_dsl": "SELECT contact_id FROM contact_data",
                "parent_list_ids": [LIST],
            },
            retry=Retry.SENT_ONCE,
        ),
    ),
    (
        CreateSegment("B", "SELECT 1"),
        Call("POST", SEGMENTS, json={"name": "B", "query_dsl": "SELECT 1"}, retry=Retry.SENT_ONCE),
    ),
    (
        UpdateSegment(SEG, query_dsl="SELECT 2"),
        Call("PATCH", f"{SEGMENTS}/{SEG}", json={"query_dsl": "SELECT 2"}),
    ),
    (UpdateSegment(SEG, name="New"), Call("PATCH", f"{SEGMENTS}/{SEG}", json={"name": "New"})),
    (DeleteSegment(SEG), Call("DELETE", f"{SEGMENTS}/{SEG}", empty_ok=True)),
    (
        RefreshSegment(SEG, "America/Chicago "),
        Call(
            "POST",
            f"{SEGMENTS}/refresh/{SEG}",
            json={"user_time_zone": "America/Chicago"},
            retry=Retry.NEVER,
            empty_ok=True,
        ),
    ),
    (
        CreateSingleSend(
            "Digest",
            segment_ids=[SEG],
            send_to_all="false",  # type: ignore[arg-type]
            email_config={"sender_id": 1},
            categories=["a", "a"],
        ),
        Call(
            "POST",
            "/v3/marketing/singlesends",
            json={
                "name": "Digest",
                "send_to": {"segment_ids": [SEG]},
                "email_config": {"sender_id": 1},
                "categories": ["a"],
            },
            retry=Retry.SENT_ONCE,
        ),
    ),
    (
        CreateSingleSend("Draft", send_to_all=True),
        Call(
            "POST",
            "/v3/marketing/singlesends",
            json={"name": "Draft", "send_to": {"all": True}},
            retry=Retry.SENT_ONCE,
        ),
    ),
    (GetSingleSend(SS), Call("GET", f"/v3/marketing/singlesends/{SS}")),
    (
        ScheduleSingleSend(
            SS, datetime.datetime(2026, 12, 1, 16, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
        ),
        Call(
            "PUT",
            f"/v3/marketing/singlesends/{SS}/schedule",
            json={"send_at": "2026-12-01T15:30:00Z"},
            retry=Retry.IF_NOTHING_SENT,
            empty_ok=True,
        ),
    ),
    (
        ListPage("/v3/marketing/singlesends", 100, "tok"),
        Call("GET", "/v3/marketing/singlesends", params=(("page_size", "100"), ("page_token", "tok"))),
    ),
    (GetFieldDefinitions(), Call("GET", "/v3/marketing/field_definitions")),
    (
        CreateFieldDefinition("tier", "Text"),
        Call(
            "POST",
            "/v3/marketing/field_definitions",
            json={"name": "tier", "field_type": "Text"},
            retry=Retry.SENT_ONCE,
        ),
    ),
    (
        UpsertContacts(b'{"contacts":[]}'),
        Call("PUT", "/v3/marketing/contacts", content=b'{"contacts":[]}', retry=Retry.SENT_ONCE),
    ),
    (
        ImportContacts(("_rf0_T", None, "e1_T"), [LIST]),
        Call(
            "PUT",
            "/v3/marketing/contacts/imports",
            json={"file_type": "csv", "field_mappings": ["_rf0_T", None, "e1_T"], "list_ids": [LIST]},
            retry=Retry.SENT_ONCE,
        ),
    ),
    (GetImportStatus("job-1"), Call("GET", "/v3/marketing/contacts/imports/job-1")),
    (
        ExportContacts(segment_ids=SEG, file_type="JSON", max_file_size=50),  # type: ignore[arg-type]
        Call(
            "POST",
            "/v3/marketing/contacts/exports",
            json={"file_type": "json", "segment_ids": [SEG], "max_file_size": 50},
            retry=Retry.SENT_ONCE,
        ),
    ),
    (GetExportStatus("exp-1"), Call("GET", "/v3/marketing/contacts/exports/exp-1")),
    # Without segments or lists SendGrid exports every contact (the operator refuses that).
    (
        ExportContacts(),
        Call("POST", "/v3/marketing/contacts/exports", json={"file_type": "csv"}, retry=Retry.SENT_ONCE),
    ),
]


@pytest.mark.parametrize(("request_", "expected"), CALLS, ids=lambda value: type(value).__name__)
def test_a_built_request_describes_its_call(request_: Request[Any], expected: Call) -> None:
    assert request_.call() == expected


# Each request refuses a bad value at once, naming the argument (the rules live in validation.py).
BAD: list[tuple[Callable[[], object], str]] = [
    (lambda: ListSegments(ids=["nope"]), "ids"),
    (
        lambda: ListSegments(
            parent_list_ids=[LIST] * 0 + [f"{n:08d}-2222-4333-8444-555555555555" for n in range(51)]
        ),
        "parent_list_ids",
    ),
    (lambda: GetSegment("None"), "segment_id"),
    (lambda: GetSegment(SEG, contacts_sample="maybe"), "contacts_sample"),  # type: ignore[arg-type]
    (lambda: CreateSegment("", "SELECT 1"), "segment_name"),
    (lambda: CreateSegment("x" * 101, "SELECT 1"), "segment_name"),
    (lambda: CreateSegment("Buyers", "  "), "query_dsl"),
    (lambda: CreateSegment("Buyers", "SELECT 1", [LIST, SEG]), "parent_list_ids"),
    (lambda: UpdateSegment(SEG), "update"),
    (lambda: UpdateSegment("12", name="x"), "segment_id"),
    (lambda: DeleteSegment(""), "segment_id"),
    (lambda: RefreshSegment(SEG, "+02:00"), "user_time_zone"),
    (
        lambda: CreateSingleSend(
            "Digest", segment_ids=[SEG] * 0 + [f"{n:08d}-2222-4333-8444-555555555555" for n in range(11)]
        ),
        "segment_ids",
    ),
    (lambda: CreateSingleSend("Digest", email_config="sender 1"), "email_config"),  # type: ignore[arg-type]
    (lambda: GetSingleSend("x"), "single_send_id"),
    (lambda: ScheduleSingleSend(SS, "2026-12-01T09:00:00"), "send_at"),
    (lambda: CreateFieldDefinition("tier", "Boolean"), "field_type"),
    (lambda: UpsertContacts(b""), "body"),
    (lambda: ImportContacts([]), "field_mappings"),
    (lambda: ImportContacts(["email", 3]), "field_mappings"),  # type: ignore[list-item]
    (lambda: ImportContacts(["email"], ["not-a-list-id"]), "list_ids"),
    (lambda: GetImportStatus("a/b"), "job_id"),
    (lambda: ListPage("https://elsewhere.example/v3/marketing/lists"), "path"),
    (lambda: ListPage("//elsewhere.example/v3/marketing/lists"), "path"),
    (lambda: ListPage("/v3/marketing/lists", page_size=0), "page_size"),
    (lambda: ListPage("/v3/marketing/lists", page_token=""), "page_token"),
    (lambda: UpsertContacts(b"x" * 6_000_001), "body"),
    (lambda: ExportContacts(segment_ids=["x"]), "segment_ids"),
    (lambda: ExportContacts(list_ids=[LIST], file_type="xml"), "file_type"),
    (lambda: ExportContacts(list_ids=[LIST], max_file_size=0), "max_file_size"),
    (lambda: GetExportStatus("../x"), "export_id"),
    (lambda: GetExportStatus(".."), "export_id"),
    (lambda: GetImportStatus("."), "job_id"),
]


@pytest.mark.parametrize(("build", "named"), BAD)
def test_a_bad_value_fails_when_the_request_is_built(build: Callable[[], object], named: str) -> None:
    with pytest.raises(SendGridInputError) as raised:
        build()
    assert raised.value.name.startswith(named)
    assert named in str(raised.value)


def test_uppercase_ids_are_sent_and_compared_as_sendgrid_spells_them() -> None:
    # SendGrid answers lowercase ids: an uppercase one must not go out (or be compared) as given.
    assert GetSegment(SEG.upper()).call().path == f"{SEGMENTS}/{SEG}"
    send = CreateSingleSend("Digest", segment_ids=[SEG.upper()], list_ids=[LIST.upper()])
    assert send.call().json == {"name": "Digest", "send_to": {"segment_ids": [SEG], "list_ids": [LIST]}}
    assert SegmentExists(SEG.upper()).result(Call("GET", SEGMENTS), {"results": [{"id": SEG}]})


def test_a_built_request_cannot_be_changed_afterwards() -> None:
    request = CreateSegment("Buyers", "SELECT 1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.name = ""  # type: ignore[misc]


def test_a_built_request_holds_no_list_or_dict_that_could_change() -> None:
    send = CreateSingleSend("Digest", segment_ids=[SEG], email_config={"sender_id": 1}, categories=["a"])
    export = ExportContacts(segment_ids=[SEG])
    for frozen in (send.segment_ids, send.categories, export.segment_ids):
        with pytest.raises(AttributeError):
            frozen.append("not-a-uuid")  # type: ignore[union-attr]
    with pytest.raises(TypeError):
        send.email_config["sender_id"] = 2  # type: ignore[index]
    assert send.call().json["send_to"] == {"segment_ids": [SEG]}
    assert send.call().json["email_config"] == {"sender_id": 1}


def test_nested_values_are_frozen_and_each_call_gets_its_own_copy() -> None:
    outside = {"x": {"y": [1]}, "sender_id": 1}
    send = CreateSingleSend("n", send_to_all=True, email_config=outside)
    outside["x"]["y"].append(2)  # type: ignore[index]
    with pytest.raises(TypeError):
        send.email_config["x"]["z"] = 1  # type: ignore[index]
    body = send.call().json
    body["email_config"]["x"]["y"].append(3)
    assert send.call().json["email_config"] == {"x": {"y": [1]}, "sender_id": 1}


@pytest.mark.parametrize(
    "config", [{"subject": datetime.date(2026, 1, 1)}, {"x": {1, 2}}, {3: "k"}, {"n": float("nan")}]
)
def test_email_config_must_be_plain_json(config: dict[Any, Any]) -> None:
    with pytest.raises(SendGridInputError, match="email_config"):
        CreateSingleSend("n", send_to_all=True, email_config=config)


def test_a_call_never_leaves_the_connections_host() -> None:
    for path in (
        "https://elsewhere.example/v3/x",
        "//elsewhere.example/v3/x",
        "/v3/../x",
        "v3/x",
        "/v3/x/..",
        "/v3/..",
        "/v3/x/.",
        "/v3/x?page_token=a",
        "/v3/x#f",
        "/v3/x\n",
        "/v3/a b",
        "/v3/a\\b",
    ):
        with pytest.raises(SendGridInputError, match="path"):
            Call("GET", path)


def test_rebuilding_a_request_revalidates_it() -> None:
    with pytest.raises(SendGridInputError, match="segment_name"):
        dataclasses.replace(CreateSegment("Buyers", "SELECT 1"), name="")


def test_segment_list_answers_in_either_documented_shape() -> None:
    request = ListSegments()
    call = request.call()
    assert request.result(call, {"results": [{"id": SEG}]}) == [{"id": SEG}]
    assert request.result(call, [{"id": SEG}]) == [{"id": SEG}]
    for wrong in ({"result": []}, "text", [1]):
        with pytest.raises(SendGridResponseError, match=r"GET /v3/marketing/segments/2\.0"):
            request.result(call, wrong)


def test_a_list_page_reads_the_next_token_never_the_host() -> None:
    request = ListPage("/v3/marketing/singlesends", 100)
    call = request.call()
    payload = {
        "result": [{"id": SS}],
        "_metadata": {
            "next": "https://elsewhere.example/v3/marketing/singlesends?page_size=100&page_token=abc"
        },
    }
    assert request.result(call, payload) == ([{"id": SS}], "abc")
    assert request.result(call, {"result": [], "_metadata": {}}) == ([], None)
    with pytest.raises(SendGridResponseError):
        request.result(call, {"result": "nope"})


def test_job_starting_requests_need_their_id_in_the_answer() -> None:
    export = ExportContacts(list_ids=[LIST])
    assert export.result(export.call(), {"id": "exp-9"}) == "exp-9"
    with pytest.raises(SendGridResponseError, match=r'"id"'):
        export.result(export.call(), {"job_id": "exp-9"})
    upsert = UpsertContacts(b"{}")
    with pytest.raises(SendGridResponseError, match='"job_id"'):
        upsert.result(upsert.call(), {})
    imports = ImportContacts(["email"])
    with pytest.raises(SendGridResponseError, match="upload_uri"):
        imports.result(imports.call(), {"job_id": "j"})


def test_empty_answers_are_success_only_where_the_call_allows_them() -> None:
    refresh = RefreshSegment(SEG, "UTC")
    assert refresh.result(refresh.call(), None) == {}
    get = GetSegment(SEG)
    with pytest.raises(SendGridResponseError, match="a JSON object"):
        get.result(get.call(), None)
    delete = DeleteSegment(SEG)
    assert delete.result(delete.call(), None) is None


def test_finding_single_sends_by_name_checks_the_name_once_and_matches_it_exactly() -> None:
    with pytest.raises(SendGridInputError) as caught:
        FindSingleSendsByName("n" * 101)
    assert caught.value.name == "single_send_name"
    lookup = FindSingleSendsByName("  Digest ")
    assert lookup.name == "Digest"  # normalised as CreateSingleSend's name is
    pages = [{"id": "a", "name": "Digest"}, {"id": "b", "name": "Digest 2"}, {"id": "c", "name": "digest"}]
    assert lookup.matches(iter(pages)) == [{"id": "a", "name": "Digest"}]
