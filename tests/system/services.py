"""The services around Airflow: PostgreSQL, Redis and the emulator, started through the stack.

PostgreSQL and Redis come from Debian's packages (``make e2e`` installs them) and run on loopback
ports of their own with their data under the run's folder, never as the system services.
PostgreSQL refuses to run as root, so under root (CI) it runs as the ``postgres`` user that
Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from airflow_stack import AirflowStack, Component

T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.5) -> T:
    """Call ``check`` until it returns something truthy; AssertionError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def postgres_user() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def postgres_bin(name: str) -> str:
    """Debian keeps the server programs out of PATH, under /usr/lib/postgresql/<version>/bin."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise AssertionError(f"PostgreSQL's {name} not found: Debian's postgresql package is missing")
    return found[-1]


def start_postgres(stack: AirflowStack, data: Path, port: int) -> Component:
    """A throwaway cluster in ``data`` on 127.0.0.1:``port``, with an ``airflow`` user and database."""
    user = postgres_user()
    data.mkdir()
    if user is not None:
        account = pwd.getpwnam(user)
        os.chown(data, account.pw_uid, account.pw_gid)
    initdb = [postgres_bin("initdb"), "-D", str(data), "-U", "airflow", "-A", "trust", "-E", "UTF8"]
    with (stack.log_dir / "postgres-initdb.log").open("wb") as log:
        subprocess.run([*initdb, "--no-sync"], check=True, stdout=log, stderr=log, user=user, timeout=120)
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(data),
        "max_connections": "300",
        # A throwaway database: durability buys nothing and costs the shared CPU and disk.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    argv = [postgres_bin("postgres"), "-D", str(data)]
    for name, value in settings.items():
        argv += ["-c", f"{name}={value}"]
    server = stack.start("postgres", argv, user=user)
    url = f"postgresql://airflow@127.0.0.1:{port}"
    wait_for("PostgreSQL to accept connections", lambda: _execute(url + "/postgres", "SELECT 1"), 60)
    _execute(url + "/postgres", "CREATE DATABASE airflow")
    return server


def create_database(port: int, name: str) -> None:
    """``CREATE DATABASE name`` on the local server (owner airflow); nothing if it exists."""
    import psycopg2

    url = f"postgresql://airflow@127.0.0.1:{port}/postgres"

    connection = psycopg2.connect(url, connect_timeout=3)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if not cursor.fetchone():
                cursor.execute(f"CREATE DATABASE {name}")
    finally:
        connection.close()


def _execute(url: str, sql: str) -> bool:
    import psycopg2

    try:
        connection = psycopg2.connect(url, connect_timeout=3)
    except psycopg2.OperationalError:
        return False
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()
    return True


def start_redis(stack: AirflowStack, data: Path, port: int) -> Component:
    data.mkdir()
    redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
    argv = [redis_server, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data)]
    argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    server = stack.start("redis", argv)

    def pong() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    wait_for("Redis to answer PING", pong, 30)
    return server


def start_emulator(stack: AirflowStack, argv: list[str]) -> tuple[Component, str, str]:
    """``sgseg-emulator`` (``argv[0]``) on a free port; returns it, its base URL and its API key."""
    emulator = stack.start("emulator", argv)

    def listening() -> tuple[str, str] | None:
        for line in emulator.log_path.read_text().splitlines():
            # "sgseg-emulator listening on http://127.0.0.1:PORT api_key=KEY"
            if line.startswith("sgseg-emulator listening on "):
                words = line.split()
                key = next(word.split("=", 1)[1] for word in words if word.startswith("api_key="))
                return words[3], key
        if not emulator.alive():
            raise emulator.error("exited")
        return None

    base_url, api_key = wait_for("the emulator to listen", listening, 30)
    return emulator, base_url, api_key


def kill_group(component: Component) -> None:
    """``kill -9`` of the component and everything it started: its machine is gone, no clean-up."""
    component.remember_descendants()
    os.killpg(component.pid, 9)
    component.process.wait(timeout=30)
