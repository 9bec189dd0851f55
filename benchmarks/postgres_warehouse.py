"""A throwaway PostgreSQL cluster for benchmark 6's PostgreSQL rows, as tests/system/services.py
starts one: Debian's server programs, a fresh data folder, a free loopback port, no durability.
PostgreSQL refuses to run as root, so under root it runs as Debian's ``postgres`` user."""

from __future__ import annotations

import contextlib
import glob
import io
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

DATABASE = "warehouse"


def available() -> bool:
    """Whether Debian's postgresql package (initdb, postgres) is installed."""
    return bool(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def _bin(name: str) -> str:
    return sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def postgres(rows: int) -> Iterator[dict[str, object]]:
    """A cluster whose ``warehouse`` database holds ``customers`` (``rows`` contacts, the SQLite
    warehouse's shape); yields its Airflow connection (``conn_type`` postgres) as a dict."""
    import psycopg2

    user = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="sgseg-bench-pg-"))
    data = folder / "data"
    data.mkdir()
    if user is not None:
        account = pwd.getpwnam(user)
        os.chown(folder, account.pw_uid, account.pw_gid)
        os.chown(data, account.pw_uid, account.pw_gid)
    port = _free_port()
    log = (folder / "postgres.log").open("wb")
    subprocess.run(
        [_bin("initdb"), "-D", str(data), "-U", "airflow", "-A", "trust", "-E", "UTF8", "--no-sync"],
        check=True,
        stdout=log,
        stderr=log,
        user=user,
        timeout=300,
    )
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(data),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    argv = [_bin("postgres"), "-D", str(data)]
    for name, value in settings.items():
        argv += ["-c", f"{name}={value}"]
    server = subprocess.Popen(argv, stdout=log, stderr=log, user=user)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                admin = psycopg2.connect(host="127.0.0.1", port=port, user="airflow", dbname="postgres")
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.5)
        admin.autocommit = True
        with contextlib.closing(admin), admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {DATABASE}")
        _load(port, rows)
        yield {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "port": port,
            "login": "airflow",
            "schema": DATABASE,
        }
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=60)
        if server.poll() is None:
            server.kill()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _load(port: int, rows: int) -> None:
    import psycopg2

    from benchmarks.contacts_pipeline import COUNTRIES

    with (
        contextlib.closing(
            psycopg2.connect(host="127.0.0.1", port=port, user="airflow", dbname=DATABASE)
        ) as db,
        db.cursor() as cursor,
    ):
        cursor.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT,"
            " city TEXT, country TEXT)"
        )
        step = 100_000
        for start in range(0, rows, step):
            lines = "".join(
                f"{n}\tcustomer{n}@example.com\tFirst{n}\tLast{n}\tCity{n % 97}\t{COUNTRIES[n % 4]}\n"
                for n in range(start, min(start + step, rows))
            )
            cursor.copy_expert("COPY customers FROM STDIN", io.StringIO(lines))
        db.commit()
