"""The emulator's notion of "now": the wall clock, or a manual clock that only tests move."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def to_iso(moment: datetime) -> str:
    """SendGrid's timestamp form: 'YYYY-MM-DDTHH:MM:SSZ' in UTC."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 timestamp; a value without offset is taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


class Clock:
    """Real (wall time) or manual (frozen until advanced). Thread-safe."""

    def __init__(self, mode: str, start: datetime | None = None) -> None:
        self.mode = mode
        self._lock = threading.Lock()
        self._manual_now = (start or utc_now()).astimezone(timezone.utc)

    def now(self) -> datetime:
        """The current time, aware UTC (the wall clock, or the manual clock's setting)."""
        if self.mode == "real":
            return datetime.now(timezone.utc)
        with self._lock:
            return self._manual_now

    def advance(self, seconds: float) -> datetime:
        """Move a manual clock ``seconds`` forward and return the new time; ``ValueError`` on a real clock or
        for negative seconds."""
        if self.mode != "manual":
            raise ValueError("the clock can only be advanced in manual mode (--clock manual)")
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self._manual_now += timedelta(seconds=seconds)
            return self._manual_now

    def set(self, moment: datetime) -> None:
        """Set the manual clock to ``moment``."""
        with self._lock:
            self._manual_now = moment.astimezone(timezone.utc)
