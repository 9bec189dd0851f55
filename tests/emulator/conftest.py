"""Fixtures for the emulator's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sgseg_emulator.pytest_plugin import EmulatorHandle


@pytest.fixture
def api(sendgrid_emulator: EmulatorHandle) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=sendgrid_emulator.base_url,
        headers={"Authorization": f"Bearer {sendgrid_emulator.api_key}"},
        timeout=10,
        verify=False,
    ) as client:
        yield client
