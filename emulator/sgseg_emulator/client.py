"""``EmulatorAdmin``: a small httpx client for the emulator's /__emulator__/ admin API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx

from .clock import parse_iso


class EmulatorAdmin:
    """Client of the admin API under ``/__emulator__/`` (bearer ``api_key``); raises
    ``httpx.HTTPStatusError`` on a non-2xx answer. ``close()`` when done."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url + "/__emulator__",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            verify=False,  # plain HTTP to a local emulator; skips loading CA certificates
        )

    def close(self) -> None:
        """Close the underlying HTTP client."""
        self._client.close()

    def _call(self, method: str, path: str, json: Any = None, params: dict[str, str] | None = None) -> Any:
        response = self._client.request(method, path, json=json, params=params)
        response.raise_for_status()
        return response.json() if response.content else None

    def now(self) -> datetime:
        """The emulator's current time, aware UTC (``GET /__emulator__/clock``)."""
        return parse_iso(self._call("GET", "/clock")["now"])

    def advance_clock(self, seconds: float) -> datetime:
        """Move a manual clock ``seconds`` forward (``POST /__emulator__/clock/advance``); returns the new
        time. Due contact jobs and exports run before it answers."""
        return parse_iso(self._call("POST", "/clock/advance", {"seconds": seconds})["now"])

    def seed_contacts(self, contacts: Sequence[dict[str, Any]], list_ids: Sequence[str] = ()) -> int:
        """Insert or update contacts at once (``POST /__emulator__/contacts/bulk``), optionally adding them
        to ``list_ids``; returns how many were written."""
        return int(
            self._call("POST", "/contacts/bulk", {"contacts": list(contacts), "list_ids": list(list_ids)})[
                "count"
            ]
        )

    def add_events(self, events: Sequence[dict[str, Any]]) -> int:
        """Record engagement events (``POST /__emulator__/events``), each naming its contact by
        ``contact_id`` or ``email``; returns how many."""
        return int(self._call("POST", "/events", {"events": list(events)})["count"])

    def add_fault(
        self,
        kind: str,
        *,
        method: str | None = None,
        path: str | None = None,
        path_prefix: str | None = None,
        times: int = 1,
        when: str = "before",
        status: int | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
        seconds: float = 0.0,
    ) -> list[dict[str, Any]]:
        """Arm a fault for the next ``times`` requests matching ``method`` and ``path`` (a regex)
        or ``path_prefix``. ``kind``: "status", "delay", "drop", "malformed" or "drip"."""
        spec: dict[str, Any] = {"kind": kind, "times": times, "when": when, "headers": headers or {}}
        for name, value in (
            ("method", method),
            ("path", path),
            ("path_prefix", path_prefix),
            ("status", status),
            ("body", body),
        ):
            if value is not None:
                spec[name] = value
        if seconds:
            spec["seconds"] = seconds
        faults: list[dict[str, Any]] = self._call("POST", "/faults", spec)["faults"]
        return faults

    def clear_faults(self) -> None:
        """Disarm every fault (``DELETE /__emulator__/faults``)."""
        self._call("DELETE", "/faults")

    def requests(self, method: str | None = None, path_prefix: str | None = None) -> list[dict[str, Any]]:
        """Logged API requests, oldest first, filtered by HTTP ``method`` and/or ``path_prefix`` (``GET
        /__emulator__/requests``)."""
        params = {}
        if method is not None:
            params["method"] = method
        if path_prefix is not None:
            params["path_prefix"] = path_prefix
        entries: list[dict[str, Any]] = self._call("GET", "/requests", params=params)["requests"]
        return entries

    def sends(self) -> list[dict[str, Any]]:
        """Every Single Send schedule request and whether/when it was sent, to how many contacts."""
        sends: list[dict[str, Any]] = self._call("GET", "/sends")["sends"]
        return sends

    def reset(self, keep_contacts: bool = False) -> None:
        """Wipe everything and restore the startup settings and clock (``POST
        /__emulator__/reset``); ``keep_contacts`` keeps contacts, lists, custom field definitions
        and events (no need to seed again)."""
        self._call("POST", "/reset", {"keep_contacts": True} if keep_contacts else None)

    def config(self) -> dict[str, Any]:
        """The settings in force (``GET /__emulator__/config``); timings in seconds."""
        config: dict[str, Any] = self._call("GET", "/config")
        return config

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change runtime settings (``PATCH /__emulator__/config``), e.g. ``plan="free"`` or timings in
        seconds; returns the settings in force. 400 (``httpx.HTTPStatusError``) for an unknown or bad
        setting."""
        config: dict[str, Any] = self._call("PATCH", "/config", settings)
        return config

    def set_ab_test(
        self, single_send_id: str, variations: int = 2, test_percentage: int = 20
    ) -> dict[str, Any]:
        """Make a Single Send an A/B test (``POST /__emulator__/singlesends/{id}/ab_test``): its
        recipients split into ``variations`` test shares of ``test_percentage`` % in all, the rest
        to the first variation in the ``send`` phase. SendGrid's public API has no such field."""
        setting: dict[str, Any] = self._call(
            "POST",
            f"/singlesends/{single_send_id}/ab_test",
            {"variations": variations, "test_percentage": test_percentage},
        )
        return setting
