"""JSON objects that keep the text they were read from, so that writing one again (a
result line into the journal) costs no second encoding."""

from __future__ import annotations

import json
from typing import Any


class ReadJSON(dict[str, Any]):
    """A JSON object and the `text` it was read from (written as is: change neither)."""

    __slots__ = ("text",)
    text: str


def read_json(text: str) -> Any:
    """The JSON value of `text`: a `ReadJSON` when it is an object."""
    value = json.loads(text)
    if not isinstance(value, dict):
        return value
    kept = ReadJSON(value)
    kept.text = text
    return kept


_encode = json.JSONEncoder(separators=(",", ":")).encode


def compact_json(value: Any) -> str:
    """`value` as compact JSON; a `ReadJSON` in it (a value of the object, or of an object
    in it) is written as the text it was read from."""
    if type(value) is ReadJSON:
        return value.text
    if type(value) is dict and _holds_read_json(value, 2):
        return "{" + ",".join([f"{_encode(key)}:{compact_json(item)}"
                               for key, item in value.items()]) + "}"
    return _encode(value)


def _holds_read_json(value: dict[Any, Any], depth: int) -> bool:
    """Whether a `ReadJSON` is among the values of `value` (or theirs, `depth` levels)."""
    found = False
    for key, item in value.items():
        if type(key) is not str:
            return False
        if type(item) is ReadJSON or (
                depth > 1 and type(item) is dict and _holds_read_json(item, depth - 1)):
            found = True
    return found
