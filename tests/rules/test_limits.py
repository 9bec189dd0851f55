"""Every limit is a named constant in one module, rules/limits.py; no other module defines one."""

from __future__ import annotations

import ast
from pathlib import Path

from airflow_provider_sgseg.hooks import marketing
from airflow_provider_sgseg.rules import batching, contacts, limits, pacing, requests, stats, validation

PACKAGE = Path(limits.__file__).resolve().parent.parent
LIMITS = {name for name in vars(limits) if name.isupper()}


def test_the_earlier_homes_of_the_limits_still_name_the_same_values() -> None:
    homes = {
        batching: (
            "MAX_CONTACTS_PER_UPSERT", "MAX_UPSERT_BYTES", "MAX_IMPORT_ROWS", "MAX_IMPORT_BYTES",
            "DEFAULT_MAX_LINE_BYTES", "DECOMPRESSED_BYTES_PER_FILE_MB", "DEFAULT_EXPORT_FILE_MB",
        ),
        validation: (
            "NAME_MAX_LENGTH", "SINGLE_SEND_MAX_SEGMENTS", "SINGLE_SEND_MAX_LISTS",
            "SINGLE_SEND_MAX_CATEGORIES", "LIST_FILTER_MAX_IDS",
        ),
        requests: ("SINGLE_SENDS_PAGE_SIZE", "LISTS_PAGE_SIZE"),
        stats: ("STATS_PAGE_SIZE", "MAX_IDS_PER_LIST"),
        pacing: ("MAX_SERVER_WAIT",),
        contacts: ("MAX_ALTERNATE_EMAILS",),
        marketing: ("MAX_PAGES",),
    }  # fmt: skip
    for module, names in homes.items():
        for name in names:
            assert getattr(module, name) == getattr(limits, name), f"{module.__name__}.{name}"
    assert limits.MAX_UPSERT_BYTES == 6_000_000 and limits.MAX_SERVER_WAIT == 86_400


def test_no_other_module_assigns_a_limit() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "limits.py":
            continue
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Name) and target.id in LIMITS:
                    offenders.append(f"{path.relative_to(PACKAGE)}: {target.id}")
    assert len(LIMITS) > 15 and offenders == []
