"""OpenAI tool definitions and the tool a ``tool_choice`` forces, checked as the API checks
them: Chat Completions' ``tools`` (``function`` / ``custom``) with ``"required"``, a named
tool or ``allowed_tools`` in ``required`` mode, and the legacy ``functions`` with a named
``function_call``; Responses' flatter shapes, where a hosted tool's choice is not forced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._errors import ApiError
from ._openai_errors import invalid, invalid_type, missing
from ._openai_params import optional_str

CallKind = Literal["function", "custom", "legacy"]
"""A tool call, a custom tool call, or a legacy ``function_call`` (Chat Completions)."""
Named = Callable[[Mapping[str, Any], str], tuple[str, list[str] | None]]
"""Reads an object tool choice as (``"forced"`` or ``"auto"``, the tool names it allows)."""
TOOL_CHOICES = ("none", "auto", "required")


@dataclass(frozen=True)
class Tool:
    """A tool the answer may be forced to call."""

    kind: CallKind
    name: str
    schema: Mapping[str, Any]


def chat_forced_tool(body: Mapping[str, Any]) -> Tool | None:
    """The tool a Chat Completions body forces: by ``tool_choice``, else ``function_call``."""
    tools = _chat_tools(body.get("tools"))
    tool = _forced(body.get("tool_choice"), tools, bool(tools), "tool_choice", _chat_named)
    if tool is None:
        functions = _legacy_functions(body.get("functions"))
        tool = _forced(body.get("function_call"), functions, bool(functions), "function_call",
                       _legacy_named)
    return tool


def responses_forced_tool(body: Mapping[str, Any]) -> Tool | None:
    """The function or custom tool a Responses body's ``tool_choice`` forces (none when only
    hosted tools could answer it)."""
    declared = bool(_list(body.get("tools"), "tools"))
    return _forced(body.get("tool_choice"), _responses_tools(body.get("tools")), declared,
                   "tool_choice", _responses_named)


def responses_tools_echo(body: Mapping[str, Any]) -> list[Any]:
    """The ``tools`` a response echoes: function tools with their defaults filled in
    (``description`` null, ``strict`` true, ``parameters``), others as sent."""
    return [{**tool, "description": tool.get("description"),
             "parameters": tool.get("parameters"), "strict": tool.get("strict", True)}
            if tool.get("type") == "function" else tool
            for tool in _list(body.get("tools"), "tools")]


def _chat_tools(value: object) -> list[Tool]:
    tools = []
    for index, tool in enumerate(_list(value, "tools")):
        where = f"tools[{index}]"
        kind = tool.get("type", "function")
        if kind not in ("function", "custom"):
            raise invalid(f"{where}.type", f"Invalid value: '{kind}'. Supported values are: "
                                           "'function' and 'custom'.")
        spec = tool.get(kind)
        if not isinstance(spec, dict):
            raise missing(f"{where}.{kind}")
        tools.append(_tool(kind, spec, where + f".{kind}"))
    return tools


def _responses_tools(value: object) -> list[Tool]:
    return [_tool(str(tool.get("type")), tool, f"tools[{index}]")
            for index, tool in enumerate(_list(value, "tools"))
            if tool.get("type") in ("function", "custom")]


def _legacy_functions(value: object) -> list[Tool]:
    return [_tool("legacy", spec, f"functions[{index}]")
            for index, spec in enumerate(_list(value, "functions"))]


def _tool(kind: str, spec: Mapping[str, Any], where: str) -> Tool:
    name = spec.get("name")
    if not isinstance(name, str):
        raise missing(f"{where}.name")
    schema = spec.get("parameters") if kind != "custom" else None
    if schema is not None and not isinstance(schema, dict):
        raise invalid_type(f"{where}.parameters", "an object", schema)
    kinds: dict[str, CallKind] = {"custom": "custom", "legacy": "legacy"}
    return Tool(kinds.get(kind, "function"), name, schema or {"type": "object", "properties": {}})


def _list(value: object, param: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid_type(param, "an array", value)
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise invalid_type(f"{param}[{index}]", "an object", item)
    return value


# -- tool choice -----------------------------------------------------------------------------


def _forced(choice: object, tools: Sequence[Tool], declared: bool, param: str,
            named: Named) -> Tool | None:
    """The tool `choice` forces, if any: the first of `tools` it allows. `declared` says
    whether the request has any tools (hosted ones included)."""
    if choice is None:
        return None
    if isinstance(choice, str):
        optional_str({param: choice}, param, TOOL_CHOICES if param == "tool_choice"
                     else ("none", "auto"))
        if choice != "required":
            return None
        mode, names = "forced", None
    elif isinstance(choice, dict):
        mode, names = named(choice, param)
    else:
        raise invalid_type(param, "a string or an object", choice)
    if mode != "forced":
        return None
    if not declared:
        raise ApiError(400, f"Invalid value for '{param}': '{param}' is only allowed when "
                            f"'{'functions' if param == 'function_call' else 'tools'}' are "
                            "specified.", param=param)
    candidates = [tool for tool in tools if names is None or tool.name in names]
    if not candidates and names is not None and len(names) == 1:
        raise ApiError(400, f"Invalid value for '{param}': no tool named "
                            f"{', '.join(repr(n) for n in names or [])} is in 'tools'.",
                       param=param)
    return candidates[0] if candidates else None


def _chat_named(choice: Mapping[str, Any], param: str) -> tuple[str, list[str] | None]:
    kind = choice.get("type")
    if kind in ("function", "custom"):
        spec = choice.get(kind)
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise missing(f"{param}.{kind}.name")
        return "forced", [spec["name"]]
    if kind == "allowed_tools":
        allowed = choice.get("allowed_tools")
        if not isinstance(allowed, dict):
            raise missing(f"{param}.allowed_tools")
        names = [str((t.get(t.get("type", "function")) or {}).get("name"))
                 for t in allowed.get("tools") or [] if isinstance(t, dict)]
        return ("forced" if allowed.get("mode") == "required" else "auto"), names
    raise invalid(f"{param}.type", f"Invalid value: '{kind}'. Supported values are: 'function', "
                                   "'custom', and 'allowed_tools'.")


def _responses_named(choice: Mapping[str, Any], param: str) -> tuple[str, list[str] | None]:
    kind = choice.get("type")
    if kind in ("function", "custom"):
        if not isinstance(choice.get("name"), str):
            raise missing(f"{param}.name")
        return "forced", [choice["name"]]
    if kind == "allowed_tools":
        names = [str(t.get("name")) for t in choice.get("tools") or [] if isinstance(t, dict)]
        return ("forced" if choice.get("mode") == "required" else "auto"), names
    if not isinstance(kind, str):
        raise missing(f"{param}.type")
    return "auto", None  # a hosted tool (web search, file search, ...): answered with text


def _legacy_named(choice: Mapping[str, Any], param: str) -> tuple[str, list[str] | None]:
    if not isinstance(choice.get("name"), str):
        raise missing(f"{param}.name")
    return "forced", [choice["name"]]
