"""One emulator instance: settings, clock, storage, faults, request log and rate-limit window."""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .clock import Clock, parse_iso, to_iso, utc_now
from .config import RUNTIME_FIELDS, EmulatorConfig, check_values
from .contacts_jobs import ContactJobs
from .exports import Exports
from .faults import FaultBook
from .file_store import FileStore
from .membership import Membership
from .segments import Segments
from .single_sends import SingleSends
from .stats import Stats
from .store import Store

_CLOCK_KEY = "manual_clock_now"
NOMINAL_RATE_LIMIT = 600  # own copy of SendGrid's documented per-minute limit (the emulator is the oracle)
MAX_LOGGED_REQUESTS = 50_000  # oldest entries are dropped beyond this


@dataclass(frozen=True)
class RateVerdict:
    """Whether a request is within the rate limit, and the ``X-RateLimit-*`` headers to send."""

    allowed: bool
    headers: dict[str, str]


class Emulator:
    """One emulator: settings, clock, store, files, the resources wired to them, faults, the request log and
    the background worker for due jobs."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.initial_config = config
        self.config = config
        self.store = Store(config.db_path)
        self._start_time = parse_iso(config.start_time) if config.start_time else utc_now()
        saved = self.store.get_meta(_CLOCK_KEY) if config.clock == "manual" else None
        self.clock = Clock(config.clock, parse_iso(saved) if saved else self._start_time)
        self.faults = FaultBook()
        self.request_log: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._rate_lock = threading.Lock()
        self._rate_window_start = 0.0
        self._rate_count = 0
        self.files = FileStore(config.db_path, self.store)
        self.membership = Membership(self.store, self.clock, self.current_config)
        self.single_sends = SingleSends(self.store, self.clock, self.membership.members_of)
        self.stats = Stats(self.store, self.clock, self.current_config, self.single_sends)
        self.segments = Segments(
            self.store, self.clock, self.current_config, self.membership, self.single_sends
        )
        self.contact_jobs = ContactJobs(self.store, self.clock, self.current_config, self.files)
        self.exports = Exports(self.store, self.clock, self.current_config, self.files, self.membership)
        self._work_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._closed = threading.Event()
        if self.store.has_pending_work():  # left by an earlier run on the same --db file
            self.start_worker()

    def close(self) -> None:
        """Stop the worker and close the store and file host."""
        self._closed.set()
        if self._worker is not None:
            self._worker.join(timeout=10)
        self.store.close()
        self.files.close()

    def _due_work(self) -> tuple[tuple[str, Callable[[sqlite3.Row], None]], ...]:
        return (("contact_jobs", self.contact_jobs.run), ("exports", self.exports.build))

    def work_is_due(self) -> bool:
        """Whether a contact job or export is due by now."""
        now = to_iso(self.now())
        return any(self.store.next_due(table, now, "rowid") is not None for table, _ in self._due_work())

    def run_due_work(self) -> None:
        """Apply every contact job and build every export that is due, oldest first, one at a
        time (a backlog of 6 MB upsert payloads is never loaded at once)."""
        with self._work_lock:
            for table, run in self._due_work():
                while (row := self.store.next_due(table, to_iso(self.now()))) is not None:
                    run(row)

    def work_added(self) -> None:
        """After a job or export is created: make sure it will run. On a manual clock, work due
        now runs before the answer (tests see its effect at once); on a real clock the worker
        runs it, so a request never waits for a large import."""
        self.start_worker()
        if self.clock.mode == "manual" and self.work_is_due():
            self.run_due_work()

    def start_worker(self) -> None:
        """On a real clock, a background thread runs work as it falls due (a manual clock runs
        it when advanced)."""
        if self.clock.mode != "real" or self._worker is not None:
            return
        self._worker = threading.Thread(target=self._work_loop, name="sgseg-emulator-jobs", daemon=True)
        self._worker.start()

    def _work_loop(self) -> None:
        while not self._closed.wait(0.1):
            if self.work_is_due():
                self.run_due_work()

    def now(self) -> datetime:
        """The emulator's current time, aware UTC."""
        return self.clock.now()

    def current_config(self) -> EmulatorConfig:
        """The settings now in force (models call this at use; ``configure`` replaces them)."""
        return self.config

    def advance_clock(self, seconds: float) -> datetime:
        """Move a manual clock ``seconds`` forward (saved with a db file) and run the work that fell due;
        ``ValueError`` on a real clock."""
        moment = self.clock.advance(seconds)
        self.store.set_meta(_CLOCK_KEY, to_iso(moment))
        self.run_due_work()
        return moment

    def reset(self, keep_contacts: bool = False) -> None:
        """Wipe all data, faults and the log; restore the initial settings and clock.

        ``keep_contacts`` keeps the contact data (contacts, their lists, custom field definitions
        and engagement events), so a seeded emulator can start over without seeding again.
        Contact jobs, exports and their files go either way.
        """
        with self._work_lock:
            self.store.wipe(keep_contacts=keep_contacts)
            self.files.wipe()
        self.membership.forget_compiled()
        self.faults.clear()
        with self._log_lock:
            self.request_log.clear()
        with self._rate_lock:
            self._rate_window_start, self._rate_count = 0.0, 0
        self.config = self.initial_config
        self.clock.set(self._start_time)
        if self.config.clock == "manual":
            self.store.set_meta(_CLOCK_KEY, to_iso(self._start_time))

    def configure(self, changes: dict[str, Any]) -> EmulatorConfig:
        """Apply runtime setting ``changes`` and return the settings in force; ``ValueError``/``TypeError``
        for a setting that cannot change or a bad value."""
        unknown = set(changes) - RUNTIME_FIELDS
        if unknown:
            raise ValueError(f"these settings cannot be changed at runtime: {', '.join(sorted(unknown))}")
        merged = {**self.config.public_dict(), **changes}
        check_values(merged)
        self.config = self.config.replace(**changes)
        return self.config

    def log_request(self, entry: dict[str, Any]) -> None:
        """Append one request to the log (the oldest go beyond ``MAX_LOGGED_REQUESTS``)."""
        with self._log_lock:
            self.request_log.append(entry)
            if len(self.request_log) > MAX_LOGGED_REQUESTS:
                del self.request_log[: len(self.request_log) - MAX_LOGGED_REQUESTS]

    def logged_requests(self) -> list[dict[str, Any]]:
        """Copies of the logged requests, oldest first."""
        with self._log_lock:
            return [dict(entry) for entry in self.request_log]

    def count_request(self) -> RateVerdict:
        """Count one API request in the current window (emulator clock) and say if it may pass."""
        window = self.config.rate_limit_window
        limit = self.config.rate_limit
        now = self.now().timestamp()
        with self._rate_lock:
            window_start = math.floor(now / window) * window
            if window_start != self._rate_window_start:
                self._rate_window_start, self._rate_count = window_start, 0
            self._rate_count += 1
            count = self._rate_count
        shown_limit = limit if limit is not None else NOMINAL_RATE_LIMIT
        headers = {
            "X-RateLimit-Limit": str(shown_limit),
            "X-RateLimit-Remaining": str(max(0, shown_limit - count)),
            "X-RateLimit-Reset": str(int(window_start + window)),
        }
        return RateVerdict(allowed=limit is None or count <= limit, headers=headers)
