"""Request-body checks shared by OpenAI's endpoints: known and required parameters, models,
integers and strings, each failing with the 400 or 404 the API gives."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from ._errors import ApiError
from ._openai_errors import invalid, invalid_type, missing, unrecognized

ModelKind = Literal["chat", "embedding"]
CHAT_PREFIXES = ("gpt-", "o1", "o3", "o4", "chatgpt-", "codex-")
EMBEDDING_PREFIX = "text-embedding-"


def check_params(body: Mapping[str, Any], allowed: frozenset[str],
                 required: Iterable[str]) -> None:
    """Reject a parameter outside `allowed` and a missing (or null) required one."""
    for name in body:
        if name not in allowed:
            raise unrecognized(name)
    for name in required:
        if body.get(name) is None:
            raise missing(name)


def check_model(model: object, kind: ModelKind, endpoint: str) -> str:
    """`model` if it names a model of `kind`; else the API's 400 or 404."""
    if not isinstance(model, str):
        raise invalid_type("model", "a string", model)
    is_embedding = model.startswith(EMBEDDING_PREFIX)
    is_chat = model.startswith(CHAT_PREFIXES)
    if not (is_chat or is_embedding):
        raise ApiError(404, f"The model `{model}` does not exist or you do not have access to it.",
                       param="model", code="model_not_found")
    if kind == "chat" and is_embedding:
        raise ApiError(404, f"This is not a chat model and thus not supported in the "
                            f"{endpoint} endpoint.", param="model", code="model_not_found")
    if kind == "embedding" and not is_embedding:
        raise ApiError(404, f"The model `{model}` does not support embeddings.",
                       param="model", code="model_not_found")
    return model


def optional_int(body: Mapping[str, Any], name: str, minimum: int,
                 maximum: int | None = None) -> int | None:
    """The integer parameter `name` (None when absent), within its bounds."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(name, "an integer", value)
    if value < minimum:
        raise invalid(name, f"integer below minimum value. Expected a value >= {minimum}, "
                            f"but got {value} instead.", code="integer_below_min_value")
    if maximum is not None and value > maximum:
        raise invalid(name, f"integer above maximum value. Expected a value <= {maximum}, "
                            f"but got {value} instead.", code="integer_above_max_value")
    return value


def optional_str(body: Mapping[str, Any], name: str,
                 choices: Iterable[str] | None = None) -> str | None:
    """The string parameter `name` (None when absent), one of `choices` when given."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_type(name, "a string", value)
    if choices is not None:
        options = list(choices)
        if value not in options:
            listed = ", ".join(f"'{option}'" for option in options)
            raise invalid(name, f"Invalid value: '{value}'. Supported values are: {listed}.")
    return value


def optional_object(body: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """The object parameter `name` (None when absent)."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_type(name, "an object", value)
    return value


def check_metadata(value: object, param: str = "metadata") -> dict[str, str] | None:
    """`metadata`: at most 16 string pairs, keys up to 64 characters, values up to 512."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_type(param, "an object", value)
    if len(value) > 16:
        raise invalid(param, f"too many properties. Expected an object with at most 16 "
                             f"properties, but got an object with {len(value)} properties "
                             f"instead.", code="object_above_max_properties")
    for key, item in value.items():
        if len(key) > 64:
            raise invalid(param, f"key '{key[:16]}...' is too long. Expected a key with at "
                                 f"most 64 characters.", code="string_above_max_length")
        if not isinstance(item, str):
            raise invalid_type(f"{param}.{key}", "a string", item)
        if len(item) > 512:
            raise invalid(f"{param}.{key}", "string too long. Expected a string with maximum "
                                            "length 512.", code="string_above_max_length")
    return dict(value)


def check_stream(body: Mapping[str, Any]) -> None:
    """`stream` a boolean; `stream_options` an object of booleans."""
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid_type("stream", "a boolean", stream)
    options = optional_object(body, "stream_options") or {}
    for name in ("include_usage", "include_obfuscation"):
        value = options.get(name)
        if value is not None and not isinstance(value, bool):
            raise invalid_type(f"stream_options.{name}", "a boolean", value)
