"""Sent Single Sends on the emulator, for the stats tests of every layer."""

from __future__ import annotations

import httpx
from sgseg_emulator.pytest_plugin import EmulatorHandle

from tests.emulator.helpers import person

SINGLESENDS = "/v3/marketing/singlesends"
HOUR = 3600.0
PERIOD = 48 * HOUR  # the emulator's default stats_growth_period: counts stop changing after it
LINKED_CONTENT = (
    '<p><a href="https://example.com/a">A</a> <a href="https://example.com/b">B</a> '
    '<a href="https://example.com/c">C</a> {{{unsubscribe}}}</p>'
)


def api_client(emulator: EmulatorHandle) -> httpx.Client:
    return httpx.Client(
        base_url=emulator.base_url, headers={"Authorization": f"Bearer {emulator.api_key}"}, timeout=10
    )


def sent_single_send(
    api: httpx.Client, emulator: EmulatorHandle, contacts: int = 200, name: str = "digest", first: int = 0
) -> str:
    """A Single Send with three links to every contact, sent now; ``contacts`` contacts seeded first
    (numbered from ``first``)."""
    if contacts:
        emulator.admin.seed_contacts([person(index) for index in range(first, first + contacts)])
    config = {"subject": "Digest", "html_content": LINKED_CONTENT, "sender_id": 1, "suppression_group_id": 2}
    created = api.post(SINGLESENDS, json={"name": name, "send_to": {"all": True}, "email_config": config})
    assert created.status_code == 201, created.text
    single_send_id: str = created.json()["id"]
    scheduled = api.put(f"{SINGLESENDS}/{single_send_id}/schedule", json={"send_at": "now"})
    assert scheduled.status_code == 201, scheduled.text
    return single_send_id
