"""The OpenAI adapter's shortcut past the SDK's body transform is exact."""

from __future__ import annotations

from typing import Any

import pytest
from openai._utils import maybe_transform

from deferrable.providers.openai import _ENDPOINTS, CHAT, EMBEDDINGS, RESPONSES, _plain_json

BODIES: list[tuple[str, dict[str, Any]]] = [
    (CHAT, {"model": "gpt-6.2-sol", "max_completion_tokens": 50, "temperature": 0.2,
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "tools": [{"type": "function", "function": {
                "name": "f", "parameters": {"type": "object", "properties": {}}}}],
            "tool_choice": "auto", "metadata": {"k": "v"}, "prompt_cache_key": "p",
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "s", "schema": {"type": "object"}, "strict": True}}}),
    (RESPONSES, {"model": "gpt-6.2-sol", "instructions": "Be brief.", "max_output_tokens": 64,
                 "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
                 "text": {"format": {"type": "json_schema", "name": "s",
                                     "schema": {"type": "object"}}},
                 "reasoning": {"effort": "low"}}),
    (EMBEDDINGS, {"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 8,
                  "encoding_format": "base64"}),
]


@pytest.mark.parametrize(("endpoint", "body"), BODIES)
def test_transform_leaves_plain_json_bodies_unchanged(endpoint: str, body: dict[str, Any]) -> None:
    """For plain JSON bodies the SDK's transform is the identity, so skipping it is exact."""
    assert _plain_json(body)
    assert maybe_transform(body, _ENDPOINTS[endpoint].params) == body


def test_other_values_are_not_plain() -> None:
    """Bytes, dates and other objects send a body through the SDK's transform."""
    assert not _plain_json({"input": [b"raw"]})
    assert not _plain_json({"metadata": {"when": object()}})
