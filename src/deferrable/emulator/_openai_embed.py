"""Embeddings: deterministic unit vectors from a hash of each input, float32-exact so that
the float and base64 encodings decode to identical numbers."""

from __future__ import annotations

import array
import base64
import hashlib
import json
import math
import sys
from collections.abc import Mapping
from typing import Any

from ._errors import ApiError
from ._openai_errors import invalid, invalid_type
from ._openai_params import optional_int, optional_str
from ._responder import count_tokens

NATIVE_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072,
                     "text-embedding-ada-002": 1536}
DEFAULT_DIMENSIONS = 1536
MAX_INPUTS = 2048
MAX_INPUT_TOKENS = 8192
MAX_REQUEST_TOKENS = 300_000
_BAD_INPUT = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."


def input_count(value: object) -> int:
    """How many embedding inputs `input` holds (for the batch-wide input limit)."""
    if isinstance(value, list) and value and not all(isinstance(item, int) for item in value):
        return len(value)
    return 1


def embeddings_body(body: Mapping[str, Any], model: str) -> tuple[dict[str, Any], int]:
    """The Embeddings response for `body` and its prompt tokens."""
    inputs = _inputs(body.get("input"))
    dimensions = _dimensions(body, model)
    encoding = optional_str(body, "encoding_format", ("float", "base64")) or "float"
    data = []
    tokens = 0
    for index, item in enumerate(inputs):
        used = len(item) if isinstance(item, list) else count_tokens(item)
        if used > MAX_INPUT_TOKENS:
            raise ApiError(400, f"This model's maximum context length is {MAX_INPUT_TOKENS} "
                                f"tokens, however you requested {used} tokens in input {index}. "
                                "Please reduce your prompt.", param="input")
        tokens += used
        values = vector(model, item, dimensions)
        embedding: list[float] | str = values if encoding == "float" else encode_base64(values)
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    if tokens > MAX_REQUEST_TOKENS:
        raise ApiError(400, f"Requested {tokens} tokens, max {MAX_REQUEST_TOKENS} tokens per "
                            "request", param="input", code="max_tokens_per_request")
    response = {"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    return response, tokens


def vector(model: str, item: str | list[int], dimensions: int) -> list[float]:
    """A unit vector for `item`, every component exactly a float32."""
    key = json.dumps([model, item], separators=(",", ":")).encode()
    raw = array.array("h", hashlib.shake_256(key).digest(2 * dimensions))
    norm = math.sqrt(sum(value * value for value in raw)) or 1.0
    return array.array("f", [value / norm for value in raw]).tolist()


def encode_base64(values: list[float]) -> str:
    """`values` as base64 of little-endian float32, as the API sends them."""
    packed = array.array("f", values)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()


def _inputs(value: object) -> list[str | list[int]]:
    if isinstance(value, str):
        if not value:
            raise ApiError(400, _BAD_INPUT, param="input")
        return [value]
    if not isinstance(value, list):
        raise invalid_type("input", "a string or an array", value)
    if not value:
        raise ApiError(400, _BAD_INPUT, param="input")
    if len(value) > MAX_INPUTS:
        raise invalid("input", f"array too long. Expected an array with maximum length "
                               f"{MAX_INPUTS}, but got an array with length {len(value)} "
                               "instead.", code="array_above_max_length")
    if all(_is_token(item) for item in value):
        return [list(value)]
    if all(isinstance(item, str) and item for item in value):
        return list(value)
    if all(isinstance(item, list) and item and all(_is_token(t) for t in item)
           for item in value):
        return [list(item) for item in value]
    raise ApiError(400, _BAD_INPUT, param="input")


def _is_token(item: object) -> bool:
    return isinstance(item, int) and not isinstance(item, bool) and item >= 0


def _dimensions(body: Mapping[str, Any], model: str) -> int:
    native = NATIVE_DIMENSIONS.get(model, DEFAULT_DIMENSIONS)
    requested = optional_int(body, "dimensions", 1)
    if requested is None:
        return native
    if not model.startswith("text-embedding-3"):
        raise ApiError(400, "This model does not support specifying dimensions.",
                       param="dimensions")
    if requested > native:
        raise invalid("dimensions", f"integer above maximum value. Expected a value <= "
                                    f"{native}, but got {requested} instead.",
                      code="integer_above_max_value")
    return requested
