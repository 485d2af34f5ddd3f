"""Chat Completions messages and Responses input, reduced to a `Prompt`, a token count, and
the cacheable prefix (everything but the last message)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._errors import ApiError
from ._openai_errors import invalid, invalid_type, missing
from ._responder import Prompt, count_tokens

CHAT_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
SYSTEM_ROLES = ("system", "developer")
MESSAGE_OVERHEAD = 4
"""Tokens each message costs beyond its text (role and separators)."""
PRIMING = 3
"""Tokens every prompt costs for the assistant's reply to begin."""
_PLACEHOLDERS = {"image_url": "[image]", "input_image": "[image]", "input_audio": "[audio]",
                 "file": "[file]", "input_file": "[file]"}


@dataclass(frozen=True)
class PromptShape:
    """A request's prompt as the generator needs it."""

    prompt: Prompt
    tokens: int
    """All prompt tokens (cached ones included)."""
    prefix_tokens: int
    """Tokens of everything but the last message: what prompt caching may reuse."""
    prefix_material: tuple[str, tuple[Any, ...]]
    """What the prefix holds (tools and formats, then messages), for `prefix_digest`."""

    @property
    def text(self) -> str:
        """The text of every message, system ones included."""
        return "\n".join([self.prompt.system, *(text for _, text in self.prompt.turns)])

    def prefix_digest(self) -> str:
        """A digest of the prefix: the cache key's core."""
        material = json.dumps(self.prefix_material, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(material.encode()).hexdigest()


def chat_shape(body: Mapping[str, Any], model: str) -> PromptShape:
    """The prompt of a Chat Completions body (`messages` already known to be present)."""
    messages = body["messages"]
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array", messages)
    if not messages:
        raise invalid("messages", "empty array. Expected an array with minimum length 1, but "
                                  "got an empty array instead.", code="empty_array")
    rendered = [_chat_message(message, index) for index, message in enumerate(messages)]
    extras = _extras(body, ("tools", "functions", "response_format"))
    return _shape("/v1/chat/completions", model, body, rendered, extras, messages[:-1])


def responses_shape(body: Mapping[str, Any], model: str) -> PromptShape:
    """The prompt of a Responses body: `instructions` plus `input` (a string or items)."""
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid_type("instructions", "a string", instructions)
    items = body.get("input")
    if items is None:
        raise missing("input")
    if isinstance(items, str):
        rendered = [("user", items)]
        prefix_items: list[Any] = []
    elif isinstance(items, list):
        if not items:
            raise invalid("input", "empty array. Expected an array with minimum length 1, but "
                                   "got an empty array instead.", code="empty_array")
        rendered = [_input_item(item, index) for index, item in enumerate(items)]
        prefix_items = items[:-1]
    else:
        raise invalid_type("input", "a string or an array", items)
    if instructions:
        rendered.insert(0, ("developer", instructions))
    extras = _extras(body, ("tools", "text"))
    return _shape("/v1/responses", model, body, rendered, extras,
                  [instructions or "", *prefix_items])


def _shape(endpoint: str, model: str, body: Mapping[str, Any],
           rendered: Sequence[tuple[str, str]], extras: str,
           prefix_parts: Sequence[Any]) -> PromptShape:
    system = "\n\n".join(text for role, text in rendered if role in SYSTEM_ROLES)
    turns = tuple((role, text) for role, text in rendered if role not in SYSTEM_ROLES)
    costs = [count_tokens(text) + MESSAGE_OVERHEAD for _, text in rendered]
    extra_tokens = count_tokens(extras) if extras else 0
    tokens = PRIMING + extra_tokens + sum(costs)
    prefix_tokens = PRIMING + extra_tokens + sum(costs[:-1])
    prompt = Prompt(provider="openai", endpoint=endpoint, model=model, system=system,
                    turns=turns, params=body)
    return PromptShape(prompt=prompt, tokens=tokens, prefix_tokens=prefix_tokens,
                       prefix_material=(extras, tuple(prefix_parts)))


def _extras(body: Mapping[str, Any], names: Sequence[str]) -> str:
    """Request parts that sit before the messages in the model's prompt (tools, formats)."""
    present = {name: body[name] for name in names if body.get(name) is not None}
    return json.dumps(present, sort_keys=True, separators=(",", ":")) if present else ""


def _chat_message(message: object, index: int) -> tuple[str, str]:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise invalid_type(where, "an object", message)
    role = message.get("role")
    if role is None:
        raise missing(f"{where}.role")
    if role not in CHAT_ROLES:
        listed = ", ".join(f"'{name}'" for name in CHAT_ROLES)
        raise invalid(f"{where}.role", f"Invalid value: '{role}'. Supported values are: "
                                       f"{listed}.")
    content = message.get("content")
    if content is None and role not in ("assistant", "function"):
        raise missing(f"{where}.content")
    text = _content_text(content, f"{where}.content")
    calls = message.get("tool_calls") or message.get("function_call")
    if calls:
        text = (text + "\n" if text else "") + json.dumps(calls, sort_keys=True)
    return role, text


def _input_item(item: object, index: int) -> tuple[str, str]:
    where = f"input[{index}]"
    if not isinstance(item, dict):
        raise invalid_type(where, "an object", item)
    kind = item.get("type", "message")
    if kind == "message" or "role" in item:
        role = item.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise invalid(f"{where}.role", f"Invalid value: '{role}'. Supported values are: "
                                           "'user', 'assistant', 'system', and 'developer'.")
        return role, _content_text(item.get("content"), f"{where}.content")
    if kind == "function_call_output":
        return "tool", _content_text(item.get("output"), f"{where}.output")
    return "assistant", json.dumps(item, sort_keys=True)


def _content_text(content: object, where: str) -> str:
    """The text of a message's content: a string, or the text of its parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid_type(where, "a string or an array", content)
    texts = []
    for position, part in enumerate(content):
        if not isinstance(part, dict):
            raise invalid_type(f"{where}[{position}]", "an object", part)
        kind = part.get("type")
        if "text" in part and isinstance(part["text"], str):
            texts.append(part["text"])
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
        elif isinstance(kind, str) and kind in _PLACEHOLDERS:
            texts.append(_PLACEHOLDERS[kind])
        else:
            raise ApiError(400, f"Invalid content part type at '{where}[{position}]': {kind!r}.",
                           param=f"{where}[{position}].type", code="invalid_value")
    return "\n".join(texts)
