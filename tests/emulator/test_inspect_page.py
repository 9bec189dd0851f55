"""``GET /__emulator__/inspect``: the read-only page a person opens from an Airflow extra link."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from sgseg_emulator import inspect_page
from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.emulator.helpers import READY_CONFIG, SEGMENTS, create_segment, person

INSPECT = "/__emulator__/inspect"
SINGLESENDS = "/v3/marketing/singlesends"


class Tables(HTMLParser):
    """Each ``<h2>`` section's table rows (cell texts), and the ``id``/``class`` of every row."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[list[str]]] = {}
        self.row_attributes: list[dict[str, str | None]] = []
        self.scripts = 0
        self._section = ""
        self._in: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        if tag == "h2":
            self._in, self._text = "h2", ""
        elif tag == "tr":
            self.sections.setdefault(self._section, []).append([])
            self.row_attributes.append(dict(attrs))
        elif tag in ("td", "th"):
            self._in, self._text = "cell", ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2" and self._in == "h2":
            self._section = self._text.strip()
            self._in = None
        elif tag in ("td", "th") and self._in == "cell":
            self.sections[self._section][-1].append(self._text.strip())
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._text += data


def read_page(base_url: str, **params: str) -> tuple[httpx.Response, Tables]:
    """The page as a browser gets it: no Authorization header."""
    response = httpx.get(base_url + INSPECT, params=params, timeout=10)
    tables = Tables()
    tables.feed(response.text)
    return response, tables


def records(tables: Tables, title_start: str) -> list[dict[str, str]]:
    """The rows of the section whose heading starts with ``title_start``, keyed by column name."""
    (title,) = [title for title in tables.sections if title.startswith(title_start)]
    header, *rows = tables.sections[title]
    return [dict(zip(header, row, strict=True)) for row in rows]


@pytest.fixture
def pipeline_left(api: httpx.Client, sendgrid_emulator: EmulatorHandle) -> dict[str, Any]:
    """What a DAG leaves: contacts, a segment, an upsert job, an export and a sent Single Send."""
    admin = sendgrid_emulator.admin
    admin.seed_contacts([person(i) for i in range(3)])
    query = "SELECT contact_id, updated_at FROM contact_data WHERE email LIKE '%@example.com'"
    segment = create_segment(api, "Weekly <readers> & co", query)
    upsert = api.put("/v3/marketing/contacts", json={"contacts": [person(7)]}).json()
    export = api.post("/v3/marketing/contacts/exports", json={"segment_ids": [segment["id"]]}).json()
    draft = api.post(
        SINGLESENDS,
        json={"name": "digest", "send_to": {"segment_ids": [segment["id"]]}, "email_config": READY_CONFIG},
    ).json()
    admin.advance_clock(15 * 60)  # the segment's first sample; the job and export are done
    scheduled = api.put(f"{SINGLESENDS}/{draft['id']}/schedule", json={"send_at": "now"}).json()
    return {
        "segment": api.get(f"{SEGMENTS}/{segment['id']}").json(),
        "upsert_job_id": upsert["job_id"],
        "export_id": export["id"],
        "single_send_id": draft["id"],
        "send_at": scheduled["send_at"],
        "query": query,
    }


def test_the_page_lists_what_a_dag_left_without_a_key(
    sendgrid_emulator: EmulatorHandle, pipeline_left: dict[str, Any]
) -> None:
    response, tables = read_page(sendgrid_emulator.base_url)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src" not in response.headers["content-security-policy"]  # default-src 'none'
    assert tables.scripts == 0
    segment = pipeline_left["segment"]
    (segment_row,) = records(tables, "Segments")
    assert segment_row == {
        "name": "Weekly <readers> & co",
        "id": segment["id"],
        "contacts": "4",
        "sample updated": segment["sample_updated_at"],
        "next sample": segment["next_sample_update"],
        "refreshes": "0 of 2 today",
        "status": "VALID",
        "query": pipeline_left["query"],
    }
    jobs = {row["id"]: row for row in records(tables, "Contacts jobs")}
    assert (jobs[pipeline_left["upsert_job_id"]]["kind"], jobs[pipeline_left["upsert_job_id"]]["status"]) == (
        "upsert",
        "completed",
    )
    export = jobs[pipeline_left["export_id"]]
    assert (export["kind"], export["status"]) == ("export", "ready")
    assert "contact_count 4" in export["counts"]
    (single_send,) = records(tables, "Single Sends")
    assert single_send == {
        "name": "digest",
        "id": pipeline_left["single_send_id"],
        "status": "triggered",
        "send_at": pipeline_left["send_at"],
        "recipients": "4",
    }
    newest, schedule, *older = records(tables, "Recent requests")
    assert (newest["method"], newest["path"], newest["status"]) == (
        "GET",
        f"{SEGMENTS}/{segment['id']}",
        "200",
    )
    schedule_path = f"{SINGLESENDS}/{pipeline_left['single_send_id']}/schedule"
    assert (schedule["method"], schedule["path"], schedule["status"]) == ("PUT", schedule_path, "201")
    assert {row["path"] for row in older} >= {SEGMENTS, "/v3/marketing/contacts/exports"}


def test_the_page_never_shows_the_key_and_is_not_logged(
    sendgrid_emulator: EmulatorHandle, pipeline_left: dict[str, Any]
) -> None:
    before = sendgrid_emulator.admin.requests()

    response, _ = read_page(sendgrid_emulator.base_url)

    assert sendgrid_emulator.api_key not in response.text
    assert "Bearer" not in response.text
    assert "<readers>" not in response.text  # names are escaped, not markup
    assert sendgrid_emulator.admin.requests() == before  # the page reads state; it is no API call


def test_only_the_page_is_open_the_rest_of_the_admin_api_needs_the_key(
    sendgrid_emulator: EmulatorHandle,
) -> None:
    assert httpx.get(sendgrid_emulator.base_url + "/__emulator__/requests").status_code == 401
    assert httpx.post(sendgrid_emulator.base_url + INSPECT).status_code == 401


@pytest.mark.parametrize(
    ("parameter", "id_key", "row_prefix"),
    [
        ("segment_id", "segment", "segment-"),
        ("job_id", "export_id", "job-"),
        ("job_id", "upsert_job_id", "job-"),
        ("single_send_id", "single_send_id", "single-send-"),
    ],
)
def test_a_link_marks_the_object_it_names(
    sendgrid_emulator: EmulatorHandle,
    pipeline_left: dict[str, Any],
    parameter: str,
    id_key: str,
    row_prefix: str,
) -> None:
    value = pipeline_left[id_key]
    object_id = value["id"] if isinstance(value, dict) else value

    response, tables = read_page(sendgrid_emulator.base_url, **{parameter: object_id})

    assert response.status_code == 200
    marked = [attributes for attributes in tables.row_attributes if attributes.get("class") == "selected"]
    assert marked == [{"id": row_prefix + object_id, "class": "selected"}]
    assert f'href="#{row_prefix}{object_id}"' in response.text


@pytest.mark.parametrize("parameter", ["segment_id", "single_send_id", "job_id"])
def test_an_unknown_object_is_a_404_page_that_says_so(
    sendgrid_emulator: EmulatorHandle, parameter: str
) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"

    response, tables = read_page(sendgrid_emulator.base_url, **{parameter: unknown})

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert f"{unknown} in this emulator" in response.text
    assert not [attributes for attributes in tables.row_attributes if attributes.get("class") == "selected"]


def test_two_objects_at_once_are_refused(sendgrid_emulator: EmulatorHandle) -> None:
    response, _ = read_page(sendgrid_emulator.base_url, segment_id="a", job_id="b")

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "give at most one of segment_id, job_id"


def test_each_table_shows_the_newest_rows_first(
    api: httpx.Client, sendgrid_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inspect_page, "MAX_ROWS", 2)
    for n in range(3):
        create_segment(api, f"segment {n}")
        api.post(SINGLESENDS, json={"name": f"draft {n}"}).raise_for_status()
        sendgrid_emulator.admin.advance_clock(1)  # creation times a second apart

    _, tables = read_page(sendgrid_emulator.base_url)

    assert [row["name"] for row in records(tables, "Segments")] == ["segment 2", "segment 1"]
    assert [row["name"] for row in records(tables, "Single Sends")] == ["draft 2", "draft 1"]
