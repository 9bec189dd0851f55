"""Cheap checks of the benchmark harness (the benchmarks themselves run with `make bench`)."""

from __future__ import annotations

import datetime
import os

from benchmarks.report import Row, Section, format_table, results_markdown


def test_the_table_lines_up_and_says_pass_miss_or_info() -> None:
    rows = [
        Row("1a", "import cost", "5.8 ms", "≤ 10.0 ms", "HttpOperator 102.0 ms", True),
        Row("3c", "connections", "25", "≤ 20", "2,000", False),
        Row("5", "context only", "1", "—", "—", None),
    ]

    lines = format_table(rows).splitlines()

    assert lines[0].startswith("| #") and "verdict" in lines[0]
    assert set(lines[1]) == {"|", "-"}
    assert len({len(line) for line in lines}) == 1  # every line padded to the same width
    assert [line.split("|")[-2].strip() for line in lines[2:]] == ["PASS", "MISS", "info"]


def test_results_name_the_machine_the_date_and_every_row() -> None:
    rows = [Row("4", "hook overhead", "1.06x bare", "≤ 1.3x", "bare 900 µs", True)]
    when = datetime.datetime(2026, 11, 26, 7, 30, tzinfo=datetime.timezone.utc)

    text = results_markdown([Section("4. Hook overhead", rows, ["ratio 1.062"])], when, 12.0)

    assert "2026-11-26 07:30 UTC" in text
    assert f"- nproc: {os.cpu_count()}" in text
    assert "- apache-airflow: " in text and "- Python: " in text
    assert format_table(rows) in text
    assert "### 4. Hook overhead" in text and "- ratio 1.062" in text
