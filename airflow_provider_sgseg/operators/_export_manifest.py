"""Which files in an export ``destination`` the export operator wrote: its manifest.

A rerun into the same directory overwrites ``contacts-<n>.<csv|json>[.gz]``, but an earlier run
may have left more files (a bigger export), or the other type or compression: a reader of the
folder would read those stale members too. The operator records the names it writes in
:data:`MANIFEST_NAME` (before writing them, so a crashed try's files are known too) and, once a
download is complete, deletes the earlier ones it does not write again. It never deletes a file
no manifest names: such files (from a release without manifests, or anyone else's) are only
named in a warning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

# Hidden (a leading dot: shell and Python globs, Spark and Hadoop skip it) and neither .csv nor .json.
MANIFEST_NAME = ".sgseg-export-manifest"
# The names the operator writes; a manifest naming anything else (a path, another file) is not followed.
EXPORT_FILE_NAME = re.compile(r"contacts-[1-9][0-9]*\.(csv|json)(\.gz)?")


def file_names(count: int, file_type: str) -> set[str]:
    """The names ``count`` export files may get in the directory (with and without ``.gz``)."""
    names = {f"contacts-{number}.{file_type}" for number in range(1, count + 1)}
    return names | {f"{name}.gz" for name in names}


def recorded(directory: Any, log: Any) -> set[str]:
    """The export file names the manifest in ``directory`` lists (none without one)."""
    manifest = directory / MANIFEST_NAME
    if not manifest.exists():
        return set()
    try:
        names = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError, TypeError) as error:
        log.warning("Ignoring the unreadable export manifest %s: %s", manifest, error)
        return set()
    return {name for name in names if isinstance(name, str) and EXPORT_FILE_NAME.fullmatch(name)}


def record(directory: Any, names: Iterable[str]) -> None:
    """Write the manifest of ``directory``: ``names`` (file names in it)."""
    body = {"written_by": "airflow-provider-sgseg SendGridExportContactsOperator", "files": sorted(names)}
    (directory / MANIFEST_NAME).write_text(json.dumps(body, indent=1) + "\n")


def clear_stale(directory: Any, earlier: set[str], written: set[str], log: Any) -> list[str]:
    """Delete the files of ``earlier`` runs not in ``written``, record ``written``, and warn about
    export-like files no manifest names. Returns the deleted paths."""
    removed = []
    for name in sorted(earlier - written):
        path = directory / name
        if path.exists():
            path.unlink()
            removed.append(str(path))
    record(directory, written)
    if removed:
        log.info("Deleted %d file(s) an earlier export into %s wrote: %s", len(removed), directory, removed)
    unknown = sorted(
        entry.name
        for entry in directory.iterdir()
        if EXPORT_FILE_NAME.fullmatch(entry.name) and entry.name not in written
    )
    if unknown:
        log.warning(
            "%s also holds %s, which no export manifest names (an earlier release's export, or not this "
            "operator's): left as they are; a reader of the whole folder would read them too",
            directory,
            unknown,
        )
    return removed
