"""Extract the OpenAI component schemas the tests validate against into `openai_schemas.json`.

A developer tool, run by hand when the pinned specs change, never at test time. It reads
OpenAI's published OpenAPI files from ``../shared/specs/`` (see that folder's README), keeps
only the component schemas transitively referenced by the roots below, drops the
documentation-only keywords (`description`, `example`, `examples`, `x-oaiMeta`), and
writes deterministic JSON: sorted keys, one schema per line. It needs PyYAML, which the
project does not otherwise depend on::

    pip install pyyaml
    python tests/data/extract_openai_schemas.py            # from the project root

Schemas from ``main`` keep their names; the batch line schemas, which only the
``manual_spec`` branch still carries, are stored under ``manual_spec.<Name>`` so that they
can never shadow a schema of ``main``. Their internal references are rewritten to match.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
SPECS = HERE.parents[1].parent / "shared" / "specs"
REPOSITORY = "https://github.com/openai/openai-openapi"
REF_PREFIX = "#/components/schemas/"
MANUAL_PREFIX = "manual_spec."

SOURCES: dict[str, dict[str, Any]] = {
    "main": {
        "file": "openai-openapi.yaml",
        "path_in_repository": "openapi.yaml",
        "branch": "main",
        "commit": "f85dbe223d40e1a31cba812ab2d755c7e98a92a3",
        "commit_date": "2026-08-21",
        "prefix": "",
        "roots": [
            "Batch", "OpenAIFile", "ListBatchesResponse", "ListFilesResponse",
            "DeleteFileResponse", "CreateChatCompletionResponse", "CreateEmbeddingResponse",
            "Response", "ErrorResponse",
        ],
    },
    "manual_spec": {
        "file": "openai-openapi-manual-spec.yaml",
        "path_in_repository": "openapi.yaml",
        "branch": "manual_spec",
        "commit": "498c71ddf6f1c45b983f972ccabca795da211a3e",
        "commit_date": "2025-04-29",
        "prefix": MANUAL_PREFIX,
        "roots": ["BatchRequestInput", "BatchRequestOutput"],
    },
}

# Keywords that hold subschemas: a schema, a list of schemas, or a name -> schema map.
SCHEMA_KEYWORDS = frozenset({
    "items", "additionalProperties", "not", "if", "then", "else", "contains",
    "propertyNames", "unevaluatedItems", "unevaluatedProperties",
})
SCHEMA_LIST_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
SCHEMA_MAP_KEYWORDS = frozenset({"properties", "patternProperties", "$defs", "dependentSchemas"})
DOCUMENTATION_KEYWORDS = frozenset({"description", "example", "examples", "x-oaiMeta"})


def transform(schema: Any, prefix: str) -> Any:
    """`schema` without documentation keywords and with its references renamed by `prefix`."""
    if isinstance(schema, list):  # `items` as a list (OpenAPI 3.0 tuples), never seen in practice
        return [transform(item, prefix) for item in schema]
    if not isinstance(schema, dict):
        return schema  # boolean schemas
    result: dict[str, Any] = {}
    for keyword, value in schema.items():
        if keyword in DOCUMENTATION_KEYWORDS:
            continue
        if keyword == "$ref" and isinstance(value, str) and value.startswith(REF_PREFIX):
            result[keyword] = REF_PREFIX + prefix + value[len(REF_PREFIX):]
        elif keyword in SCHEMA_KEYWORDS:
            result[keyword] = transform(value, prefix)
        elif keyword in SCHEMA_LIST_KEYWORDS:
            result[keyword] = [transform(item, prefix) for item in value]
        elif keyword in SCHEMA_MAP_KEYWORDS:
            result[keyword] = {name: transform(item, prefix) for name, item in value.items()}
        else:
            result[keyword] = value  # data (enum, default, required, discriminator, ...)
    return result


def references(node: Any) -> Iterator[str]:
    """Every ``$ref`` string anywhere under `node`."""
    if isinstance(node, dict):
        for keyword, value in node.items():
            if keyword == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def closure(schemas: dict[str, Any], roots: Iterable[str]) -> list[str]:
    """The names of `roots` and of every component schema they reach, sorted."""
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        if name not in schemas:
            raise SystemExit(f"schema {name!r} is not in the spec")
        seen.add(name)
        for ref in references(schemas[name]):
            if not ref.startswith(REF_PREFIX):
                raise SystemExit(f"{name}: reference {ref!r} is not to a component schema")
            pending.append(ref[len(REF_PREFIX):])
    return sorted(seen)


def extract(specs: Path) -> dict[str, Any]:
    """The document written to `openai_schemas.json`."""
    provenance: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for key, source in SOURCES.items():
        raw = (specs / source["file"]).read_bytes()
        spec = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
        components = spec["components"]["schemas"]
        names = closure(components, source["roots"])
        for name in names:
            schemas[source["prefix"] + name] = transform(components[name], source["prefix"])
        provenance[key] = {
            "repository": REPOSITORY,
            "path": source["path_in_repository"],
            "branch": source["branch"],
            "commit": source["commit"],
            "commit_date": source["commit_date"],
            "sha256": hashlib.sha256(raw).hexdigest(),
            "openapi": spec["openapi"],
            "info_version": spec["info"]["version"],
            "licence": "MIT",
            "roots": source["roots"],
            "schema_prefix": source["prefix"],
            "schemas": len(names),
        }
    return {
        "provenance": {
            "note": "Component schemas of OpenAI's published OpenAPI description, reduced to "
                    "what the roots reference, documentation keywords removed. Generated by "
                    "tests/data/extract_openai_schemas.py; do not edit by hand.",
            "licence": "MIT",
            "copyright": "Copyright (c) OpenAI",
            "sources": provenance,
        },
        "schemas": schemas,
    }


def render(document: dict[str, Any]) -> str:
    """Sorted, compact JSON with one schema per line, so that regenerations diff well."""
    def dump(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    lines = ["{", f'"provenance":{dump(document["provenance"])},', '"schemas":{']
    names = sorted(document["schemas"])
    lines += [f"{dump(name)}:{dump(document['schemas'][name])}"
              + ("," if index < len(names) - 1 else "") for index, name in enumerate(names)]
    lines += ["}", "}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Write the extracted schemas; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=Path, default=SPECS, help="folder of the YAML specs")
    parser.add_argument("--output", type=Path, default=HERE / "openai_schemas.json")
    args = parser.parse_args(argv)
    text = render(extract(args.specs))
    json.loads(text)  # what we write must parse
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text.encode()):,} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
