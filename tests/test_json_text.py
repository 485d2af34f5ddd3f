"""JSON objects that keep their text: a result line is written to the journal as it was read."""

from __future__ import annotations

import json

from deferrable._json_text import ReadJSON, compact_json, read_json

LINE = '{"custom_id": "r-1",  "result": {"type": "succeeded", "text": "caf\\u00e9 ☕"}}'


def test_an_object_keeps_the_text_it_was_read_from() -> None:
    """read_json() gives the object's value and its text; other values come back plain."""
    line = read_json(LINE)
    assert isinstance(line, ReadJSON)
    assert line == json.loads(LINE)
    assert line.text == LINE
    assert read_json("[1, 2]") == [1, 2]
    assert not isinstance(read_json('"x"'), ReadJSON)


def test_a_kept_object_is_written_as_its_text_at_any_depth() -> None:
    """compact_json() writes a kept object's text verbatim (spacing and escapes included),
    also inside plain objects, and the result reads back to the same value."""
    line = read_json(LINE)
    record = {"batch": "b-1", "result": {"line": line, "status": "completed"},
              "received_at": 1.5, "delivered": True}
    text = compact_json(record)
    assert LINE in text
    assert json.loads(text) == {**record, "result": {"line": json.loads(LINE),
                                                     "status": "completed"}}
    assert compact_json(line) == LINE


def test_values_without_kept_objects_are_encoded_as_before() -> None:
    """Plain values (and objects with non-string keys) are the compact json.dumps text."""
    plain = {"batch": "b-1", "rows": [{"usd": 0.5}], "nested": {"a": None}}
    assert compact_json(plain) == json.dumps(plain, separators=(",", ":"))
    numbered = {1: read_json('{"a": 1}')}
    assert json.loads(compact_json(numbered)) == {"1": {"a": 1}}
