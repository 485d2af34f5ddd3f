"""Validate JSON against OpenAI's published schemas (`tests/data/openai_schemas.json`).

``validate_openai("Batch", body)`` checks `body` with `jsonschema` as JSON Schema 2020-12,
the dialect of OpenAPI 3.1, resolving ``#/components/schemas/...`` references through a
`referencing` registry. The batch line schemas, which only the spec's ``manual_spec``
branch carries, answer to their plain names (``"BatchRequestOutput"``) as well as to
``"manual_spec.BatchRequestOutput"``.

The stored schemas are OpenAI's, verbatim but for documentation. Three quirks of the spec
are adapted when they are loaded, each narrowly:

1. ``nullable: true`` (OpenAPI 3.0, used by the ``manual_spec`` schemas; ``main`` writes
   3.1's ``anyOf: [..., {type: "null"}]`` instead) also admits ``null``.
2. ``{"$recursiveRef": "#"}`` (a draft 2019-09 keyword, inside ``CompoundFilter``) becomes a
   ``$ref`` to the schema that declares ``$recursiveAnchor``. In 2020-12 the keyword is
   unknown, so the branch would accept anything and make every ``oneOf`` around it
   ambiguous.
3. An optional property (absent from ``required``) whose value is ``null`` is treated as
   absent. The API and the SDK send ``null`` for unset fields (``Batch.output_file_id``,
   ``Batch.errors``, ``failed_at``, ...; the spec's own examples do so), yet many of those
   properties are declared non-nullable. Required properties stay strict.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMA_FILE = Path(__file__).resolve().parent / "data" / "openai_schemas.json"
BASE_URI = "urn:deferrable-tests:openai-openapi"
REF_PREFIX = "#/components/schemas/"
MANUAL_PREFIX = "manual_spec."

_SCHEMA_KEYWORDS = ("items", "additionalProperties", "not", "if", "then", "else", "contains",
                    "propertyNames", "unevaluatedItems", "unevaluatedProperties")
_SCHEMA_LIST_KEYWORDS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_MAP_KEYWORDS = ("properties", "patternProperties", "$defs", "dependentSchemas")


def validate_openai(schema_name: str, instance: object) -> None:
    """Raise AssertionError, naming every failing path, unless `instance` fits `schema_name`."""
    errors = list(_validator(schema_name).iter_errors(instance))
    if errors:
        lines = sorted(_describe(error) for error in errors)
        raise AssertionError(f"not a valid OpenAI {schema_name}:\n  " + "\n  ".join(lines))


def schema_names() -> list[str]:
    """Every schema name the stored file holds."""
    return sorted(_schemas())


def provenance() -> dict[str, Any]:
    """Where the stored schemas come from (repository, branch, commit, date, licence)."""
    data: dict[str, Any] = _document()["provenance"]
    return data


def _describe(error: ValidationError) -> str:
    """``$.path: message``; for a failed ``anyOf`` / ``oneOf``, the most relevant branch."""
    best = best_match([error]) or error
    message = _shorten(best.message)
    if best.context:
        closest = best_match(best.context)
        if closest is not None:
            message += f"; closest branch: {closest.json_path}: {_shorten(closest.message)}"
    return f"{best.json_path}: {message}"


def _shorten(message: str, limit: int = 240) -> str:
    return message if len(message) <= limit else message[:limit] + "..."


@functools.cache
def _validator(schema_name: str) -> Draft202012Validator:
    schemas = _schemas()
    name = schema_name
    if name not in schemas and MANUAL_PREFIX + name in schemas:
        name = MANUAL_PREFIX + name
    if name not in schemas:
        raise KeyError(f"no OpenAI schema {schema_name!r} in {SCHEMA_FILE.name}")
    return Draft202012Validator({"$ref": BASE_URI + REF_PREFIX + name}, registry=_registry())


@functools.cache
def _registry() -> Registry[Any]:
    contents = {"components": {"schemas": _schemas()}}
    resource: Resource[Any] = DRAFT202012.create_resource(contents)
    registry: Registry[Any] = Registry().with_resource(BASE_URI, resource)
    return registry


@functools.cache
def _schemas() -> dict[str, Any]:
    raw: dict[str, Any] = _document()["schemas"]
    return {name: _adapt(copy.deepcopy(schema), name if "$recursiveAnchor" in schema else None)
            for name, schema in raw.items()}


@functools.cache
def _document() -> dict[str, Any]:
    with SCHEMA_FILE.open(encoding="utf-8") as file:
        data: dict[str, Any] = json.load(file)
    return data


def _adapt(schema: Any, anchor: str | None) -> Any:
    """`schema` with the quirks of the module docstring adapted, recursively, in place.

    `anchor` names the enclosing component schema when it declares ``$recursiveAnchor``.
    """
    if not isinstance(schema, dict):
        return schema
    if anchor is not None and schema == {"$recursiveRef": "#"}:
        return {"$ref": REF_PREFIX + anchor}
    for keyword in _SCHEMA_KEYWORDS:
        if keyword in schema:
            schema[keyword] = _adapt(schema[keyword], anchor)
    for keyword in _SCHEMA_LIST_KEYWORDS:
        if keyword in schema:
            schema[keyword] = [_adapt(item, anchor) for item in schema[keyword]]
    for keyword in _SCHEMA_MAP_KEYWORDS:
        if keyword in schema:
            schema[keyword] = {key: _adapt(item, anchor) for key, item in schema[keyword].items()}
    required = set(schema.get("required", ()))
    for key, item in schema.get("properties", {}).items():
        if key not in required:
            schema["properties"][key] = _or_null(item)
    if schema.pop("nullable", False) is True:
        return _or_null(schema)
    return schema


def _or_null(schema: Any) -> dict[str, Any]:
    """`schema`, or null; written with if/else so that errors come from `schema` itself."""
    return {"if": {"type": "null"}, "else": schema}
