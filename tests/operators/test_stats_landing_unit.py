"""operators/_stats_landing: the SQL a landing sends, per dialect (the landings themselves run
against SQLite in tests/operators/test_stats_emulator.py and PostgreSQL in make e2e)."""

from __future__ import annotations

from typing import Any

from airflow_provider_sgseg.operators import _stats_landing


class RecordingConnection:
    def __init__(self) -> None:
        self.statements: list[str] = []
        self.committed = False

    def cursor(self) -> RecordingConnection:
        return self

    def execute(self, sql: str, parameters: Any = None) -> None:
        self.statements.append(sql)

    def executemany(self, sql: str, rows: Any) -> None:
        self.statements.append(sql)

    def commit(self) -> None:
        self.committed = True

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


class PostgresLikeHook:
    conn_type = "postgres"
    placeholder = "%s"

    def __init__(self) -> None:
        self.connection = RecordingConnection()

    def get_conn(self) -> RecordingConnection:
        return self.connection


def test_postgres_landings_into_the_same_tables_take_turns_before_creating_them() -> None:
    # Two first landings at once (mapped stats tasks on a fresh warehouse) failed with
    # "duplicate key value violates unique constraint pg_type_typname_nsp_index": PostgreSQL's
    # CREATE TABLE IF NOT EXISTS is not safe against a concurrent one.
    hook = PostgresLikeHook()
    _stats_landing.land_tables(hook, "stats", "links", ["id"], [], [])
    statements = hook.connection.statements
    assert statements[0].startswith("SELECT pg_advisory_xact_lock(")
    assert statements[1].startswith("CREATE TABLE IF NOT EXISTS stats")
    assert hook.connection.committed
