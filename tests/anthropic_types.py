"""Strict validation of emulator output against the installed `anthropic` SDK's types."""

from __future__ import annotations

from typing import TypeVar

import pydantic

Model = TypeVar("Model", bound=pydantic.BaseModel)


def validate_anthropic(model: type[Model], raw: str | bytes) -> Model:
    """Parse `raw` JSON as `model` in strict mode and refuse fields the type does not declare."""
    value = model.model_validate_json(raw, strict=True)
    _assert_declared(value, model.__name__)
    return value


def _assert_declared(value: object, path: str) -> None:
    if isinstance(value, pydantic.BaseModel):
        extra = value.model_extra or {}
        assert not extra, f"{path}: fields the SDK does not declare: {sorted(extra)}"
        for name in type(value).model_fields:
            _assert_declared(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _assert_declared(item, f"{path}[{index}]")
