"""The emulator's notion of "now": the wall clock, or a manual clock that only tests move."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


# The manual clock never passes the end of year 9998, so every instant it reaches (plus a
# SendGrid timing) can still be written as a four-digit year.
LATEST = datetime(9998, 12, 31, tzinfo=timezone.utc)


def to_iso(moment: datetime) -> str:
    """SendGrid's timestamp form: 'YYYY-MM-DDTHH:MM:SSZ' in UTC (RFC 3339: four-digit years)."""
    utc = moment.astimezone(timezone.utc)
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}Z"


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
        with self._lock:
            room = (LATEST - self._manual_now).total_seconds()
            if not 0 <= seconds <= room:
                raise ValueError(
                    f"seconds must be from 0 to {room:.0f} (the clock cannot pass {to_iso(LATEST)}), "
                    f"got {seconds!r}"
                )
            self._manual_now += timedelta(seconds=seconds)
            return self._manual_now

    def set(self, moment: datetime) -> None:
        """Set the manual clock to ``moment``."""
        with self._lock:
            self._manual_now = moment.astimezone(timezone.utc)
