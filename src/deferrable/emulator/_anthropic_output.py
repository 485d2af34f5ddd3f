"""What an Anthropic answer holds beyond plain text: the ``tool_use`` block that
``tool_choice`` forces (``any``, or ``tool`` by name), or JSON for
``output_config.format``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._errors import ApiError
from ._ids import new_id
from ._json_schema import instance_of, json_answer

CHOICE_TYPES = ("auto", "any", "tool", "none")


def check_output_config(params: Mapping[str, Any]) -> None:
    """Raise the 400 for a malformed ``output_config.format`` or ``tool_choice``."""
    config = params.get("output_config")
    if config is not None and not isinstance(config, dict):
        raise ApiError(400, "output_config: Input should be a valid dictionary")
    fmt = (config or {}).get("format")
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
            raise ApiError(400, "output_config.format.type: Input should be 'json_schema'")
        if not isinstance(fmt.get("schema"), dict):
            raise ApiError(400, "output_config.format.schema: Field required")
    choice = params.get("tool_choice")
    if choice is not None and (not isinstance(choice, dict)
                               or choice.get("type") not in CHOICE_TYPES):
        raise ApiError(400, "tool_choice: Input tag does not match any of the expected tags: "
                            "'auto', 'any', 'tool', 'none'")
    if isinstance(choice, dict) and choice["type"] == "tool" \
            and not isinstance(choice.get("name"), str):
        raise ApiError(400, "tool_choice.tool.name: Field required")


def forced_tool_use(params: Mapping[str, Any], text: str) -> dict[str, Any] | None:
    """The ``tool_use`` block `tool_choice` forces, its input built from `text`, if any.

    ``any`` takes the first tool with an ``input_schema``; ``tool`` the one named, which
    must be among `tools`.
    """
    choice = params.get("tool_choice")
    if not isinstance(choice, dict) or choice.get("type") not in ("any", "tool"):
        return None
    tools = [t for t in params.get("tools") or []
             if isinstance(t, dict) and isinstance(t.get("name"), str)]
    if choice["type"] == "tool":
        tool = next((t for t in tools if t["name"] == choice["name"]), None)
        if tool is None:
            raise ApiError(400, f"tool_choice.name: Tool '{choice['name']}' not found in "
                                "`tools`")
    else:
        tool = next((t for t in tools if isinstance(t.get("input_schema"), dict)), None)
        if tool is None:
            return None
    schema = tool.get("input_schema") or {"type": "object"}
    return {"type": "tool_use", "id": new_id("toolu_01", 22), "name": tool["name"],
            "input": instance_of(schema, text)}


def structured_text(params: Mapping[str, Any], text: str) -> str:
    """`text`, or JSON valid against ``output_config.format.schema`` when one is asked for."""
    fmt = (params.get("output_config") or {}).get("format")
    if not isinstance(fmt, dict):
        return text
    return json_answer(fmt.get("schema") or {"type": "object"}, text)
