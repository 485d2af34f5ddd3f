"""The 400s and 404s OpenAI's validation speaks (the HTTP layer renders their envelope)."""

from __future__ import annotations

from ._errors import ApiError


def missing(param: str) -> ApiError:
    """400 for a missing required parameter."""
    return ApiError(400, f"Missing required parameter: '{param}'.", param=param,
                    code="missing_required_parameter")


def unrecognized(param: str) -> ApiError:
    """400 for a parameter the endpoint does not know."""
    return ApiError(400, f"Unrecognized request argument supplied: {param}", param=param)


def invalid(param: str, message: str, code: str | None = "invalid_value") -> ApiError:
    """400 for a parameter with a bad value."""
    return ApiError(400, f"Invalid '{param}': {message}", param=param, code=code)


def invalid_type(param: str, expected: str, value: object) -> ApiError:
    """400 for a parameter of the wrong JSON type."""
    return ApiError(400, f"Invalid type for '{param}': expected {expected}, but got "
                         f"{_json_type(value)} instead.", param=param, code="invalid_type")


def not_found(kind: str, ident: str, param: str = "id") -> ApiError:
    """404 for an unknown object id (``No such File object: file-...``)."""
    return ApiError(404, f"No such {kind} object: {ident}", param=param)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
