"""The emulator's request bodies agree with the vendored SendGrid OpenAPI files, and bad ones are
refused in SendGrid's 400 shape naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sgseg_emulator import request_bodies
from sgseg_emulator.errors import ApiError

from tests.emulator.spec_schemas import SPEC_DIR, SPEC_FILES

# (body type, spec, path, method)
DECLARED = [
    (request_bodies.SegmentCreate, "segments", "/v3/marketing/segments/2.0", "post"),
    (request_bodies.SegmentUpdate, "segments", "/v3/marketing/segments/2.0/{segment_id}", "patch"),
    (request_bodies.NameOnly, "lists", "/v3/marketing/lists", "post"),
    (request_bodies.FieldDefinitionCreate, "custom_fields", "/v3/marketing/field_definitions", "post"),
    (
        request_bodies.NameOnly,
        "custom_fields",
        "/v3/marketing/field_definitions/{custom_field_id}",
        "patch",
    ),
    (request_bodies.ContactsUpsert, "contacts", "/v3/marketing/contacts", "put"),
    (request_bodies.ExportCreate, "contacts", "/v3/marketing/contacts/exports", "post"),
    (request_bodies.ImportCreate, "contacts", "/v3/marketing/contacts/imports", "put"),
    (request_bodies.SingleSendCreate, "singlesends", "/v3/marketing/singlesends", "post"),
]
# Keywords compared between a declared property and the spec's.
COMPARED = ("type", "minLength", "maxLength", "minItems", "maxItems", "enum")


def _resolver(document: dict[str, Any]) -> Any:
    def resolve(node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = {**{k: v for k, v in node.items() if k != "$ref"}, **target}
        return node

    return resolve


def spec_request_schema(spec: str, path: str, method: str) -> tuple[dict[str, Any], Any]:
    document = json.loads((SPEC_DIR / SPEC_FILES[spec]).read_text())
    resolve = _resolver(document)
    body = resolve(document["paths"][path][method]["requestBody"])
    return resolve(body["content"]["application/json"]["schema"]), resolve


def declared_schema(body_type: type[Any]) -> tuple[dict[str, Any], Any]:
    schema = request_bodies.adapter(body_type).json_schema()
    resolve = _resolver(schema)
    return schema, resolve


def _without_null(node: dict[str, Any], resolve: Any) -> dict[str, Any]:
    """A declared ``X | None`` is X here (the emulator also accepts null where SendGrid's
    clients send it, e.g. ``categories: null``)."""
    node = resolve(node)
    options = [resolve(option) for option in node.get("anyOf", []) if option.get("type") != "null"]
    node = options[0] if len(options) == 1 else node
    if "const" in node:  # a one-value Literal: the spec writes it as a one-item enum
        node = {**node, "enum": [node["const"]]}
    return node


def _compare(where: str, declared: dict[str, Any], spec: dict[str, Any], d_res: Any, s_res: Any) -> list[str]:
    problems = []
    declared, spec = _without_null(declared, d_res), s_res(spec)
    for keyword in COMPARED:
        if declared.get(keyword) != spec.get(keyword):
            problems.append(f"{where}: {keyword} {declared.get(keyword)!r} != spec {spec.get(keyword)!r}")
    if spec.get("type") == "array":
        problems += _compare(f"{where}[]", declared.get("items", {}), spec.get("items", {}), d_res, s_res)
    if spec.get("type") == "object" and "properties" in spec:
        problems += _compare_object(where, declared, spec, d_res, s_res)
    return problems


def _compare_object(
    where: str, declared: dict[str, Any], spec: dict[str, Any], d_res: Any, s_res: Any
) -> list[str]:
    problems = []
    spec_properties = spec.get("properties", {})
    for name, node in declared.get("properties", {}).items():
        if name not in spec_properties:
            problems.append(f"{where}.{name}: not in the spec")
        else:
            problems += _compare(f"{where}.{name}", node, spec_properties[name], d_res, s_res)
    if sorted(declared.get("required", [])) != sorted(spec.get("required", [])):
        problems.append(f"{where}: required {declared.get('required')} != spec {spec.get('required')}")
    return problems


@pytest.mark.parametrize(
    ("body_type", "spec", "path", "method"), DECLARED, ids=lambda v: getattr(v, "__name__", v)
)
def test_declared_body_agrees_with_the_spec(body_type: type[Any], spec: str, path: str, method: str) -> None:
    declared, d_res = declared_schema(body_type)
    expected, s_res = spec_request_schema(spec, path, method)
    assert _compare_object("body", declared, expected, d_res, s_res) == []
    # and every declared property is compared: none is silently skipped
    assert set(declared["properties"]) <= set(expected["properties"])


def test_the_comparison_catches_a_disagreement() -> None:
    declared, d_res = declared_schema(request_bodies.NameOnly)
    expected, s_res = spec_request_schema("lists", "/v3/marketing/lists", "post")
    shorter = {**expected, "properties": {"name": {**expected["properties"]["name"], "maxLength": 50}}}
    assert _compare_object("body", declared, shorter, d_res, s_res) == ["body.name: maxLength 100 != spec 50"]


@pytest.mark.parametrize(
    ("body_type", "body", "errors"),
    [
        (
            request_bodies.SegmentCreate,
            {},
            [("name", "name is required"), ("query_dsl", "query_dsl is required")],
        ),
        (
            request_bodies.SegmentUpdate,
            {"name": None},
            [("name", "name must be a string, got None")],
        ),
        (
            request_bodies.SingleSendCreate,
            {"name": "n", "send_to": {"list_ids": ["x"] * 51}},
            [("send_to.list_ids", "send_to.list_ids accepts at most 50 items, got 51")],
        ),
        (
            request_bodies.ImportCreate,
            {"file_type": "csv", "field_mappings": ["_rf2_T", 7]},
            [("field_mappings[1]", "field_mappings[1] must be a string, got 7")],
        ),
        (
            request_bodies.FieldDefinitionCreate,
            {"name": "x" * 101, "field_type": "Bool"},
            [
                ("name", "name must be a string of 1 to 100 characters"),
                ("field_type", "field_type must be one of Text, Number, Date, got 'Bool'"),
            ],
        ),
        (request_bodies.ExportCreate, [], [("body", "the request body must be an object, got []")]),
    ],
)
def test_a_bad_body_is_one_400_naming_each_field(
    body_type: type[Any], body: Any, errors: list[tuple[str, str]]
) -> None:
    with pytest.raises(ApiError) as caught:
        request_bodies.checked(body_type, body)
    assert caught.value.status == 400
    assert caught.value.body == {
        "errors": [{"field": field, "message": message} for field, message in errors]
    }


def test_a_good_body_comes_back_whole_with_members_the_spec_does_not_list() -> None:
    body = {"name": "n", "query_dsl": "SELECT 1", "parent_list_ids": None, "extra": 1}
    assert request_bodies.checked(request_bodies.SegmentCreate, body) is body
