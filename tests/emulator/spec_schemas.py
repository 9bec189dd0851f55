"""Validate emulator responses against the official SendGrid OpenAPI files in tests/spec/.

Schemas are addressed by JSON pointer into a spec file, so ``$ref``s resolve inside that file.
The files say OpenAPI 3.1 but still mark optional values with 3.0's ``nullable: true``, which JSON
Schema ignores; we honour it (``type: X`` becomes ``type: [X, "null"]``), as the authors meant.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_DIR = Path(__file__).resolve().parent.parent / "spec"
SPEC_FILES = {
    "segments": "tsg_mc_segments_2.0_v3.json",
    "contacts": "tsg_mc_contacts_v3.json",
    "lists": "tsg_mc_lists_v3.json",
    "singlesends": "tsg_mc_singlesends_v3.json",
    "custom_fields": "tsg_mc_custom_fields_v3.json",
    "stats": "tsg_mc_stats_v3.json",
}


def _honour_nullable(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: _honour_nullable(value) for key, value in node.items()}
        if node.get("nullable") is True and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        return node
    if isinstance(node, list):
        return [_honour_nullable(item) for item in node]
    return node


@functools.cache
def _registry() -> Registry:
    registry: Registry = Registry()
    for name, filename in SPEC_FILES.items():
        document = _honour_nullable(json.loads((SPEC_DIR / filename).read_text()))
        registry = registry.with_resource(f"urn:sendgrid:{name}", Resource(document, DRAFT202012))
    return registry


def spec_document(spec: str) -> dict[str, Any]:
    document: dict[str, Any] = _registry()[f"urn:sendgrid:{spec}"].contents
    return document


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def component(spec: str, name: str) -> dict[str, Any]:
    return {"$ref": f"urn:sendgrid:{spec}#/components/schemas/{name}"}


def response_schema(spec: str, path: str, method: str, status: int) -> dict[str, Any]:
    pointer = "/".join(
        [
            "#",
            "paths",
            _escape(path),
            method.lower(),
            "responses",
            str(status),
            "content",
            "application~1json",
            "schema",
        ]
    )
    return {"$ref": f"urn:sendgrid:{spec}{pointer}"}


def validate(instance: Any, schema: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError when ``instance`` does not match ``schema``."""
    Draft202012Validator(schema, registry=_registry()).validate(instance)


def validate_response(instance: Any, spec: str, path: str, method: str, status: int) -> None:
    validate(instance, response_schema(spec, path, method, status))
