"""JSON values that satisfy a JSON schema: what the emulator answers for structured outputs
and forced tool calls.

`instance_of(schema, hint)` follows ``$ref`` (``#``, ``#/$defs/...``, any JSON pointer),
``anyOf`` / ``oneOf`` / ``allOf``, ``const``, ``enum``, type lists, objects (``required``,
``additionalProperties``, ``minProperties``), arrays (``items``, ``prefixItems``, item
counts), string ``format``\\s and lengths, and numeric bounds and ``multipleOf``. It does not
generate strings for ``pattern``. Values are deterministic: strings are the `hint` (the
responder's text), an enum takes the member the hint names when there is one, and the rest
derive from a digest of the hint and the value's path. Nesting past `SHALLOW` levels leaves
out optional properties, prefers ``null`` branches and keeps arrays at their minimum, so
recursive schemas end.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import Any

SHALLOW = 3
"""Nesting depth past which only what the schema requires is generated."""
_MAX_REFS = 32
_MOVED = re.compile(r"\{([^{}]*)\}\s*$")
_MOVED_KEYWORDS = frozenset({
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
    "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"})
"""Constraints the anthropic SDK moves into a description as ``{minimum: 1, ...}``."""
_EPOCH = date(2024, 1, 1)


def instance_of(schema: object, hint: str = "") -> Any:
    """A JSON value valid against `schema`, with strings taken from `hint`."""
    root = schema if isinstance(schema, Mapping) else {}
    return _Builder(root, hint).value(schema, "", 0)


def json_answer(schema: object, text: str) -> str:
    """The JSON text of a structured answer: `text` itself when it already is a JSON object
    (a responder that answers in JSON decides), else `instance_of(schema, text)`."""
    try:
        given = json.loads(text)
    except ValueError:
        given = None
    if isinstance(given, dict):
        return text
    return json.dumps(instance_of(schema, text), ensure_ascii=False)


class _Builder:
    def __init__(self, root: Mapping[str, Any], hint: str) -> None:
        self._root = root
        self._hint = hint

    def value(self, schema: object, path: str, depth: int) -> Any:
        if schema is True or not isinstance(schema, Mapping):
            return self._hint if schema is True else None
        schema = _recover_moved(self._resolve(schema))
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self._member(schema["enum"], path)
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                rest = {k: v for k, v in schema.items() if k != key}
                return self.value({**rest, **self._resolve(self._branch(schema[key], depth))},
                                  path, depth)
        if isinstance(schema.get("allOf"), list):
            return self.value(self._merged(schema), path, depth)
        kind = self._kind(schema, depth)
        if kind == "object":
            return self._object(schema, path, depth)
        if kind == "array":
            return self._array(schema, path, depth)
        if kind == "string":
            return self._string(schema, path)
        if kind in ("integer", "number"):
            return _number(schema, kind == "integer", self._digest(path))
        if kind == "boolean":
            return self._digest(path) % 2 == 0
        return None

    # -- structure -----------------------------------------------------------------------

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        """`schema` with its ``$ref`` chain followed; sibling keywords stay."""
        for _ in range(_MAX_REFS):
            ref = schema.get("$ref")
            if not isinstance(ref, str):
                return schema
            target = self._pointer(ref)
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema

    def _pointer(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#"):
            return {}
        node: Any = self._root
        for part in filter(None, ref[1:].split("/")):
            key = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping):
                node = node.get(key)
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                return {}
        return node if isinstance(node, Mapping) else {}

    def _branch(self, branches: list[Any], depth: int) -> Mapping[str, Any]:
        """The ``anyOf`` / ``oneOf`` branch to follow: ``null`` when deep, else the first other."""
        schemas = [self._resolve(b) for b in branches if isinstance(b, Mapping)]
        nulls = [b for b in schemas if b.get("type") == "null"]
        others = [b for b in schemas if b.get("type") != "null"]
        if depth >= SHALLOW and nulls:
            return nulls[0]
        return (others or nulls or [{}])[0]

    def _merged(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        """An ``allOf`` folded into one schema: properties and ``required`` united."""
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            if not isinstance(part, Mapping):
                continue
            part = self._resolve(part)
            for key, item in part.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **item}
                elif key == "required":
                    merged["required"] = [*merged.get("required", []), *item]
                else:
                    merged.setdefault(key, item)
        return merged

    def _kind(self, schema: Mapping[str, Any], depth: int) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            others = [k for k in kind if k != "null"]
            return "null" if not others or (depth >= SHALLOW and "null" in kind) else str(others[0])
        if isinstance(kind, str):
            return kind
        if "properties" in schema or "additionalProperties" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        return "string"

    def _object(self, schema: Mapping[str, Any], path: str, depth: int) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        required = [name for name in schema.get("required") or [] if isinstance(name, str)]
        extra = schema.get("additionalProperties", True)
        result: dict[str, Any] = {}
        for name, sub in properties.items():
            if name in required or depth < SHALLOW:
                result[name] = self.value(sub, f"{path}/{name}", depth + 1)
        filler = extra if isinstance(extra, Mapping) else True
        for name in required:
            if name not in result:
                result[name] = self.value(filler, f"{path}/{name}", depth + 1)
        wanted = int(schema.get("minProperties") or 0)
        if not properties and isinstance(extra, Mapping) and depth < SHALLOW:
            wanted = max(wanted, 1)
        number = 0
        while len(result) < wanted and extra is not False:
            number += 1
            result.setdefault(f"key{number}", self.value(filler, f"{path}/key{number}", depth + 1))
        return result

    def _array(self, schema: Mapping[str, Any], path: str, depth: int) -> list[Any]:
        prefix = [p for p in schema.get("prefixItems") or [] if isinstance(p, (Mapping, bool))]
        items = schema.get("items", True)
        count = max(int(schema.get("minItems") or 0), len(prefix), 1 if depth < SHALLOW else 0)
        if isinstance(schema.get("maxItems"), int):
            count = min(count, schema["maxItems"])
        if items is False:
            count = min(count, len(prefix))
        return [self.value(prefix[i] if i < len(prefix) else items, f"{path}/{i}", depth + 1)
                for i in range(count)]

    # -- leaves --------------------------------------------------------------------------

    def _member(self, members: list[Any], path: str) -> Any:
        """The enum member the hint names, else one chosen by digest."""
        wanted = self._hint.strip().strip(".").lower()
        for member in members:
            if isinstance(member, str) and member.lower() == wanted:
                return member
        return members[self._digest(path) % len(members)]

    def _string(self, schema: Mapping[str, Any], path: str) -> str:
        digest = self._digest(path)
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS:
            return _FORMATS[fmt](digest)
        text = self._hint or "text"
        index = path.rsplit("/", 1)[-1]
        if index.isdigit() and index != "0":  # array elements differ (``uniqueItems``)
            text = f"{text} {int(index) + 1}"
        low = int(schema.get("minLength") or 0)
        high = schema.get("maxLength")
        if isinstance(high, int):
            text = text[:high]
        return text + "." * max(low - len(text), 0)

    def _digest(self, path: str) -> int:
        raw = hashlib.sha256(f"{self._hint}\0{path}".encode()).digest()
        return int.from_bytes(raw[:8], "big")


def _number(schema: Mapping[str, Any], integer: bool, digest: int) -> int | float:
    """A number within the schema's bounds (inclusive or exclusive) and `multipleOf`."""
    low, low_open = _bound(schema, "minimum", "exclusiveMinimum", lower=True)
    high, high_open = _bound(schema, "maximum", "exclusiveMaximum", lower=False)
    base = 1 + digest % 9
    if integer:
        lower = None if low is None else (math.floor(low) + 1 if low_open else math.ceil(low))
        upper = None if high is None else (math.ceil(high) - 1 if high_open else math.floor(high))
        if lower is not None and upper is not None:
            value = lower + base % (upper - lower + 1) if upper >= lower else lower
        elif lower is not None:
            value = lower + base
        else:
            value = base if upper is None else min(base, upper)
        return _multiple(value, schema.get("multipleOf"), lower, upper)
    if low is not None and high is not None:
        number: float = low + (high - low) * base / 10
    elif low is not None:
        number = low + base + 0.5
    else:
        number = base + 0.5 if high is None else min(base + 0.5, high - 1)
    return _multiple(number, schema.get("multipleOf"), low, high)


def _bound(schema: Mapping[str, Any], inclusive: str, exclusive: str,
           lower: bool) -> tuple[float | None, bool]:
    """(bound, open?) from a keyword pair, the stricter one winning; draft-4's boolean
    ``exclusiveMinimum`` / ``exclusiveMaximum`` understood."""
    closed = schema.get(inclusive) if _is_number(schema.get(inclusive)) else None
    opened = schema.get(exclusive)
    if opened is True:
        return closed, closed is not None
    if not _is_number(opened):
        return closed, False
    if closed is None:
        return opened, True
    stricter_open = opened >= closed if lower else opened <= closed
    return (opened, True) if stricter_open else (closed, False)


def _multiple(value: float, step: object, lower: float | None,
              upper: float | None) -> float:
    """`value` moved to a multiple of `step` that stays within the bounds when one does."""
    if not isinstance(step, (int, float)) or isinstance(step, bool) or step <= 0:
        return value
    count = math.ceil(value / step)
    if upper is not None and count * step > upper:
        count = math.floor(upper / step)
    if lower is not None and count * step < lower:
        count = math.ceil(lower / step)
    result = count * step
    return int(result) if isinstance(value, int) and float(result).is_integer() else result


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _recover_moved(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """`schema` with the constraints the anthropic SDK moved into its description back."""
    description = schema.get("description")
    match = _MOVED.search(description) if isinstance(description, str) else None
    if match is None:
        return schema
    recovered: dict[str, Any] = {}
    for part in match.group(1).split(", "):
        key, colon, raw = part.partition(": ")
        if not colon or key not in _MOVED_KEYWORDS or key in schema:
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if _is_number(value):
            recovered[key] = value
    return {**schema, **recovered} if recovered else schema


def _date(digest: int) -> str:
    return (_EPOCH + timedelta(days=digest % 1000)).isoformat()


def _time(digest: int) -> str:
    seconds = digest % 86_400
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


_FORMATS: dict[str, Callable[[int], str]] = {
    "date-time": lambda d: f"{_date(d)}T{_time(d >> 16)}Z",
    "date": _date,
    "time": lambda d: f"{_time(d)}Z",
    "duration": lambda d: f"PT{1 + d % 59}M",
    "email": lambda d: f"user{d % 1000}@example.com",
    "idn-email": lambda d: f"user{d % 1000}@example.com",
    "hostname": lambda d: f"host{d % 1000}.example.com",
    "idn-hostname": lambda d: f"host{d % 1000}.example.com",
    "uri": lambda d: f"https://example.com/{d % 1000}",
    "iri": lambda d: f"https://example.com/{d % 1000}",
    "uri-reference": lambda d: f"/items/{d % 1000}",
    "ipv4": lambda d: f"192.0.2.{d % 254 + 1}",
    "ipv6": lambda d: f"2001:db8::{d % 65535 + 1:x}",
    "uuid": lambda d: str(uuid.UUID(int=d << 64 | d, version=4)),
}
