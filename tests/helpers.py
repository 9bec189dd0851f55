"""Helpers shared by tests in several folders."""

from __future__ import annotations

import contextlib
import http.server
import json
import pickle
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

_PROBE = """\
import json as _json, sys as _sys
{setup}
_before = set(_sys.modules)
{code}
print(_json.dumps(sorted(set(_sys.modules) - _before)))
"""


# Run by a Python process of its own: argv[1] the DB's URI, stdin a pickled (sql, params) or
# None for a dump; stdout the pickled rows (or dump lines).
_READ_METADATA_DB = """
import pickle, sqlite3, sys
query = pickle.load(sys.stdin.buffer)
db = sqlite3.connect(sys.argv[1], uri=True)
try:
    answer = list(db.iterdump()) if query is None else db.execute(*query).fetchall()
finally:
    db.close()
pickle.dump(answer, sys.stdout.buffer)
"""


class _Rows(list[Any]):
    def fetchone(self) -> Any:
        return self[0] if self else None

    def fetchall(self) -> list[Any]:
        return list(self)


class MetadataDB:
    """The SQLite metadata DB of an ``AIRFLOW_HOME``, read-only, each query read by a Python process
    of its own (``execute(sql, params)`` gives rows with ``fetchone``/``fetchall``; ``iterdump``).

    Airflow keeps this DB in WAL mode, written by its processes' connections. Read from the test
    process, it was "database disk image is malformed" after some runs (twice in CI, on 3.3.2,
    under load), while the file itself checked ``ok`` and Airflow went on using it: what the test
    process had of it was stale. A process per read has nothing of its own to go stale, and a
    read-only connection never checkpoints (SQLite before 3.51.3 has a WAL-reset race).
    """

    def __init__(self, airflow_home: Path) -> None:
        self.uri = (Path(airflow_home) / "airflow.db").resolve().as_uri() + "?mode=ro"

    def _read(self, query: tuple[str, Any] | None) -> list[Any]:
        done = subprocess.run(
            [sys.executable, "-I", "-c", _READ_METADATA_DB, self.uri],
            input=pickle.dumps(query),
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
        answer: list[Any] = pickle.loads(done.stdout)
        return answer

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Rows:
        return _Rows(self._read((sql, tuple(params))))

    def iterdump(self) -> Iterator[str]:
        return iter(self._read(None))


@contextlib.contextmanager
def metadata_db(airflow_home: Path) -> Iterator[MetadataDB]:
    """:class:`MetadataDB` of ``airflow_home`` for the ``with`` block."""
    yield MetadataDB(airflow_home)


def modules_imported_by(code: str, *, setup: str = "") -> set[str]:
    """The modules that running ``code`` in a fresh interpreter loads, after ``setup`` has run.

    ``setup`` imports what the measured code may take for granted (``airflow.sdk`` itself loads
    httpx, for one). A failing ``code`` (an exception, a failed ``assert``) fails the caller.
    """
    result = subprocess.run(
        [sys.executable, "-c", _PROBE.format(setup=setup, code=code)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


# The example DAGs (dags/) under `airflow dags test` against a short-timings emulator
# (EmulatorConfig.short_timings): the segment is the Dutch readers, the sensor polls every few
# seconds and gives up after 90 s, and the Single Send DAG wants at least 100 recipients.
PIPELINE_AUDIENCE = 150  # the Dutch readers in PIPELINE_CONTACTS, whom the segment selects
PIPELINE_CONTACTS = [
    *({"email": f"lezer{n}@example.nl", "country": "NL"} for n in range(PIPELINE_AUDIENCE)),
    *({"email": f"reader{n}@example.com", "country": "US"} for n in range(50)),
]


def pipeline_dag_settings(segment_name: str) -> dict[str, str]:
    """Environment for the refresh and Single Send example DAGs, segment named ``segment_name``."""
    return {
        "SGSEG_SEGMENT_NAME": segment_name,
        "SGSEG_QUERY_DSL": "SELECT c.contact_id, c.updated_at FROM contact_data AS c WHERE c.country = 'NL'",
        "SGSEG_TIME_ZONE": "Europe/Amsterdam",
        "SGSEG_POLL_FLOOR_SECONDS": "1",
        "SGSEG_POLL_CEILING_SECONDS": "5",
        "SGSEG_POLL_SLACK_SECONDS": "0.5",
        "SGSEG_WAIT_TIMEOUT_SECONDS": "90",
        "SGSEG_REQUIRE_MIN_CONTACTS": "100",
        "SGSEG_SEND_ENABLED": "true",
        "SGSEG_STATS_SETTLE_SECONDS": "3",  # the results leg: the emulator's stats settle 20 s after a send
    }


@contextlib.contextmanager
def not_sendgrid_server() -> Iterator[str]:
    """A loopback HTTP server that answers every request 404, yielding its base URL.

    It stands for a host that is not SendGrid's API (a web server, a proxy, the wrong port of a
    gateway). Its body is SendGrid's own for an unknown route, so nothing but the URL can tell.
    """
    body = json.dumps({"errors": [{"field": None, "message": "resource not found"}]}).encode()

    class NotFound(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def around_request(hook: Any, request_type: type, *, before: Any = None, after: Any = None) -> None:
    """Make ``hook.run`` call ``before(request)`` / ``after(request)`` around each request of
    ``request_type`` (e.g. another writer racing a POST, or a crash once SendGrid has it).
    ``after`` runs whether the request succeeded or raised."""
    real_run = hook.run

    def run(request: Any) -> Any:
        if not isinstance(request, request_type):
            return real_run(request)
        if before is not None:
            before(request)
        try:
            return real_run(request)
        finally:
            if after is not None:
                after(request)

    hook.run = run


_LOG_LINE = re.compile(r"^\S+ \[(?P<level>\w+)\s*\] (?P<message>.*?)\s+\[(?P<logger>\w+(?:\.\w+)+)\]")
# Airflow 3.0's logging in tests: ``[<time>] {<file>:<line>} INFO - <message>``.
_CLASSIC_LOG_LINE = re.compile(r"^\[[^\]]+\] \{(?P<file>[^}:]+):\d+\} (?P<level>[A-Z]+) - (?P<message>.*)$")
# httpx logs each request at INFO in the classic format (structlog shows only dotted loggers).
_NOT_TASK_FILES = {"_client.py"}


def task_log_lines(stdout: str, level: str | None = None) -> list[str]:
    """The messages of a task's log lines in ``stdout`` (Airflow's structlog writes task logs there
    in tests: ``<time> [info     ] <message>  [<logger>] ...``; Airflow 3.0's classic format
    ``[<time>] {<file>:<line>} INFO - <message>``), optionally of one ``level``."""
    lines = []
    for line in stdout.splitlines():
        found = _LOG_LINE.match(line)
        if found and (level is None or found["level"] == level):
            lines.append(found["message"])
            continue
        classic = _CLASSIC_LOG_LINE.match(line)
        if (
            classic
            and classic["file"] not in _NOT_TASK_FILES
            and (level is None or classic["level"].lower() == level)
        ):
            lines.append(classic["message"])
    return lines


def last_info_line(stdout: str) -> str:
    """The last INFO message in ``stdout`` (see :func:`task_log_lines`)."""
    infos = task_log_lines(stdout, "info")
    assert infos, f"no INFO line in: {stdout[-2000:]}"
    return infos[-1]
