"""The results leg's part of `make demo` (dags/sendgrid_single_send.py: wait_for_results,
land_results): the rows landed in the demo's SQLite warehouse, as an analyst would query them."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DAG_ID = "sendgrid_single_send"
TASK_ID = "land_results"


def summary_lines(landed: Mapping[str, Any], warehouse: Path) -> list[str]:
    """The landed rows (sent, delivered, opened, clicked) and the table they are in.

    :param landed: the ``land_results`` task's XCom (``SendGridSingleSendStatsOperator``'s summary).
    :param warehouse: the SQLite file of the demo's warehouse connection.
    """
    table, links_table = str(landed.get("table")), str(landed.get("links_table"))
    with contextlib.closing(sqlite3.connect(warehouse)) as db:
        rows = db.execute(
            "SELECT single_send_id, aggregation, requests, delivered, unique_opens, unique_clicks, "
            f"provisional FROM {table} ORDER BY aggregation = 'total', aggregation"
        ).fetchall()
        links = db.execute(f"SELECT url, clicks FROM {links_table} ORDER BY url_location").fetchall()
    state = "provisional" if landed.get("provisional") else "settled"
    lines = [f"results landed in {table} ({len(rows)} rows, {state}) and {links_table} ({len(links)} rows):"]
    for single_send_id, aggregation, sent, delivered, opened, clicked, _ in rows:
        lines.append(
            f"  {single_send_id} {aggregation:<10} sent {sent}, delivered {delivered}, "
            f"opened {opened}, clicked {clicked}"
        )
    lines += [f"  link {url}: {clicks} clicks" for url, clicks in links]
    return lines
