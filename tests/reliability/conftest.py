"""Shared pieces of the reliability suite: recording retry policies, a short-timeout connection,
ready-made segments and Single Sends on the emulator, and a tally of the faults injected."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sgseg_emulator.client import EmulatorAdmin
from sgseg_emulator.pytest_plugin import EmulatorHandle
from sgseg_emulator.server import EmulatorServer

from airflow_provider_sgseg.hooks.marketing import RetryPolicy, SendGridMarketingHook

SEGMENTS = "/v3/marketing/segments/2.0"
SINGLE_SENDS = "/v3/marketing/singlesends"
ALL_CONTACTS = "SELECT contact_id, updated_at FROM contact_data"
# The hook's clock in fault cases (2033-05-18): X-RateLimit-Reset epochs are built from it, so
# the wait the hook computes is exact. It is later than the emulator's clock on purpose.
FIXED_NOW = 2_000_000_000.0
FAST_CONN_ID = "sgseg_fast"
FAST_TIMEOUT = 0.5  # seconds; only the read-timeout cases use this connection
READY_EMAIL_CONFIG = {
    "subject": "Reliability",
    "html_content": "<p>hello</p>",
    "sender_id": 1,
    "suppression_group_id": 2,
}

FAULT_TALLY: dict[str, int] = {}


def record_faults(requests: list[dict[str, Any]]) -> int:
    """Count the faults the emulator really injected (from its request log) in the tally."""
    fired = [entry["fault"] for entry in requests if entry.get("fault")]
    for kind in fired:
        FAULT_TALLY[kind] = FAULT_TALLY.get(kind, 0) + 1
    return len(fired)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FAULT_TALLY:
        counts = ", ".join(f"{kind}={count}" for kind, count in sorted(FAULT_TALLY.items()))
        terminalreporter.write_line(
            f"sgseg reliability: {sum(FAULT_TALLY.values())} faults injected ({counts})"
        )


@dataclass
class Sleeps:
    """Waits the hook asked for; the injected sleep records them instead of sleeping."""

    seconds: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)

    def policy(self, max_attempts: int = 3) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=max_attempts,
            initial_wait=1.0,
            max_wait=60.0,
            jitter=0.0,
            sleep=self.sleep,
            async_sleep=self.async_sleep,
            clock=lambda: FIXED_NOW,
        )


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture(scope="session")
def _session_admin(sendgrid_emulator_server: EmulatorServer) -> Iterator[EmulatorAdmin]:
    # One admin client for the session: building an httpx client per test costs ~50 ms.
    admin = EmulatorAdmin(sendgrid_emulator_server.base_url, sendgrid_emulator_server.api_key)
    yield admin
    admin.close()


@pytest.fixture
def emulator(
    sendgrid_emulator_server: EmulatorServer, _session_admin: EmulatorAdmin, monkeypatch: pytest.MonkeyPatch
) -> EmulatorHandle:
    """The session's emulator (manual clock), reset, with ``sendgrid_default`` pointing at it and
    a second connection, ``sgseg_fast``, whose read timeout is short."""
    server = sendgrid_emulator_server
    _session_admin.reset()
    handle = EmulatorHandle(
        base_url=server.base_url, api_key=server.api_key, admin=_session_admin, server=server
    )
    for name, value in handle.conn_env().items():
        monkeypatch.setenv(name, value)
    fast = {
        "conn_type": "sendgrid_marketing",
        "host": server.base_url,
        "password": server.api_key,
        "extra": {"timeout": FAST_TIMEOUT},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{FAST_CONN_ID.upper()}", json.dumps(fast))
    return handle


_CLEAN_HOOKS: dict[str, SendGridMarketingHook] = {}


@pytest.fixture
def clean_hook(emulator: EmulatorHandle) -> SendGridMarketingHook:
    """A hook for set-up and inspection (no faults are armed while it is used), kept for the session."""
    hook = _CLEAN_HOOKS.get(emulator.base_url)
    if hook is None:
        hook = _CLEAN_HOOKS[emulator.base_url] = SendGridMarketingHook(retry=RetryPolicy(max_attempts=1))
    return hook


def armed_faults(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    """Faults still waiting for a request (the admin client has no method for this)."""
    faults: list[dict[str, Any]] = emulator.admin._call("GET", "/faults")["faults"]
    return faults


def ready_single_send(hook: SendGridMarketingHook, name: str, segment_id: str) -> dict[str, Any]:
    """A draft that SendGrid would accept for scheduling."""
    return hook.create_single_send(name, segment_ids=[segment_id], email_config=READY_EMAIL_CONFIG)
