"""What an OpenAI answer holds: the responder's text, JSON for a requested format, or the
tool call that ``tool_choice`` forces; as a Chat Completions choice or Responses output.

Formats are checked as the API checks them: Chat Completions' ``response_format`` and
Responses' ``text.format``, ``json_schema`` (with a ``name``) or ``json_object`` (whose
prompt must mention JSON).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import ApiError
from ._ids import new_id
from ._json_schema import instance_of, json_answer
from ._openai_errors import invalid, invalid_type, missing
from ._openai_params import optional_object, optional_str
from ._openai_tools import CallKind, Tool, chat_forced_tool, responses_forced_tool
from ._responder import count_tokens, truncate_to_tokens

FORMAT_TYPES = ("text", "json_object", "json_schema")
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Call:
    """One tool call of an answer: `arguments` is JSON text, or free text for a custom tool."""

    kind: CallKind
    name: str
    arguments: str


@dataclass(frozen=True)
class Plan:
    """How to turn the responder's text into the answer: a forced call, a format, or as is."""

    tool: Tool | None = None
    schema: Mapping[str, Any] | None = None
    """The JSON schema the text must follow (``{"type": "object"}`` for ``json_object``)."""

    def call(self, text: str) -> Call | None:
        """The forced tool call, its arguments built from `text`, if the request forces one."""
        if self.tool is None:
            return None
        if self.tool.kind == "custom":
            return Call("custom", self.tool.name, text)
        arguments = instance_of(self.tool.schema, text)
        return Call(self.tool.kind, self.tool.name, json.dumps(arguments, separators=(",", ":")))

    def text(self, text: str) -> str:
        """The message text: `text`, or JSON for the requested schema (`json_answer`)."""
        return text if self.schema is None else json_answer(self.schema, text)


def chat_plan(body: Mapping[str, Any], prompt_text: str) -> Plan:
    """The plan of a Chat Completions body (`prompt_text`: all its messages' text)."""
    schema = _format(body.get("response_format"), "response_format", "json_schema",
                     "messages", prompt_text)
    return Plan(tool=chat_forced_tool(body), schema=schema)


def responses_plan(body: Mapping[str, Any], prompt_text: str) -> Plan:
    """The plan of a Responses body (`prompt_text`: its instructions and input text)."""
    text = optional_object(body, "text") or {}
    schema = _format(text.get("format"), "text.format", None, "input", prompt_text)
    return Plan(tool=responses_forced_tool(body), schema=schema)


# -- answers ---------------------------------------------------------------------------------


def chat_choice(index: int, plan: Plan, said: str, stops: list[str],
                limit: int | None) -> tuple[dict[str, Any], int]:
    """One choice of a completion and its output tokens: a forced call, or the text."""
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None,
                               "annotations": []}
    call = plan.call(said)
    if call is not None:
        if call.kind == "legacy":
            message["function_call"] = {"name": call.name, "arguments": call.arguments}
        else:
            message["tool_calls"] = [_chat_tool_call(call)]
        finish = "function_call" if call.kind == "legacy" else "tool_calls"
        tokens = _call_tokens(call)
    else:
        text, finish = plan.text(said), "stop"
        for stop in stops:
            text = text.split(stop, 1)[0]
        if limit is not None and count_tokens(text) > limit:
            text, finish = truncate_to_tokens(text, limit), "length"
        message["content"] = text
        tokens = count_tokens(text)
    return {"index": index, "message": message, "logprobs": None, "finish_reason": finish}, tokens


def _chat_tool_call(call: Call) -> dict[str, Any]:
    if call.kind == "custom":
        return {"id": new_id("call_", 24), "type": "custom",
                "custom": {"name": call.name, "input": call.arguments}}
    return {"id": new_id("call_", 24), "type": "function",
            "function": {"name": call.name, "arguments": call.arguments}}


def _call_tokens(call: Call) -> int:
    return count_tokens(call.name) + count_tokens(call.arguments) + 1


def responses_output(plan: Plan, said: str,
                     limit: int | None) -> tuple[list[dict[str, Any]], int, bool]:
    """(output items, output tokens, complete?): a forced call's item, or a message."""
    call = plan.call(said)
    if call is not None:
        if call.kind == "custom":
            item = {"id": new_id("ctc_", 48), "type": "custom_tool_call",
                    "call_id": new_id("call_", 24), "name": call.name, "input": call.arguments}
        else:
            item = {"id": new_id("fc_", 48), "type": "function_call", "status": "completed",
                    "arguments": call.arguments, "call_id": new_id("call_", 24),
                    "name": call.name}
        return [item], _call_tokens(call), True
    text = plan.text(said)
    complete = limit is None or count_tokens(text) <= limit
    if limit is not None and not complete:
        text = truncate_to_tokens(text, limit)
    message = {"id": new_id("msg_", 48), "type": "message",
               "status": "completed" if complete else "incomplete", "role": "assistant",
               "content": [{"type": "output_text", "text": text, "annotations": [],
                            "logprobs": []}]}
    return [message], count_tokens(text), complete


# -- formats ---------------------------------------------------------------------------------


def _format(value: object, param: str, nested: str | None, prompt_param: str,
            prompt_text: str) -> Mapping[str, Any] | None:
    """The schema a format asks for; `nested` names the member holding ``name`` and
    ``schema`` (Chat Completions nests them, Responses does not)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_type(param, "an object", value)
    kind = optional_str({f"{param}.type": value.get("type")}, f"{param}.type", FORMAT_TYPES)
    if kind is None:
        raise missing(f"{param}.type")
    if kind == "json_object":
        if "json" not in prompt_text.lower():
            raise ApiError(400, f"'{prompt_param}' must contain the word 'json' in some form, to "
                                f"use '{param}' of type 'json_object'.", param=prompt_param)
        return {"type": "object"}
    if kind == "text":
        return None
    where = f"{param}.{nested}" if nested else param
    spec = value.get(nested) if nested else value
    if spec is None:
        raise missing(where)
    if not isinstance(spec, dict):
        raise invalid_type(where, "an object", spec)
    name = spec.get("name")
    if name is None:
        raise missing(f"{where}.name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise invalid(f"{where}.name", "string does not match pattern. Expected a string that "
                                       "matches the pattern '^[a-zA-Z0-9_-]+$'.",
                      code="invalid_value")
    schema = spec.get("schema")
    if schema is None:
        return {"type": "object"}
    if not isinstance(schema, dict):
        raise invalid_type(f"{where}.schema", "an object", schema)
    return schema
