"""Server-held conversations: the beta Messages ``thread`` parameter.

``{"type": "create"}`` keeps the request's history, ``system`` and ``tools`` and the reply
under the reply's ``id``; ``{"type": "continue", "previous_message_id": ...}`` answers
that held history followed by the request's new messages (possibly none), with the held
``system`` and ``tools``, and keeps the result under the new reply's ``id``. Each reply can
be continued once. An unknown id is ``thread_not_found`` (404); a second continue of one
reply is ``thread_already_continued`` (400), as the SDK's thread runner expects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import ApiError

CREATE_ONLY = ("system", "tools")
"""Fields a thread keeps from its ``create``; a ``continue`` may not send them."""


def check_thread(params: Mapping[str, Any]) -> bool:
    """Raise the 400 for a malformed ``thread``; whether the request continues a thread."""
    thread = params.get("thread")
    if thread is None:
        return False
    if not isinstance(thread, dict) or thread.get("type") not in ("create", "continue"):
        raise ApiError(400, "thread: Input tag does not match any of the expected tags: "
                            "'create', 'continue'")
    if thread["type"] == "create":
        return False
    if not isinstance(thread.get("previous_message_id"), str):
        raise ApiError(400, "thread.continue.previous_message_id: Field required")
    for name in CREATE_ONLY:
        if name in params:
            raise ApiError(400, f"{name}: cannot be sent with `thread.type: \"continue\"`; the "
                                f"thread keeps the `{name}` it was created with")
    return True


@dataclass(frozen=True)
class _Held:
    """One reply's turn: its parent reply, the thread's create-only fields, and the
    messages this turn added (the new request messages, then the reply)."""

    parent: str | None
    fields: dict[str, Any]
    messages: list[Any]


class ThreadStore:
    """Every held reply of one emulator, live and batch alike (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}
        self._continued: set[str] = set()

    def answer(self, params: Mapping[str, Any],
               reply: Callable[[Mapping[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """`reply(full)` for `params` within its thread, if it has one: a continue's held
        history, system and tools put back into `full`, and the reply held after."""
        thread = params.get("thread")
        if not isinstance(thread, dict):
            return reply(params)
        parent = thread.get("previous_message_id") if thread["type"] == "continue" else None
        full = dict(params) if parent is None else self._claim(parent, params)
        try:
            message = reply(full)
        except BaseException:
            if parent is not None:
                with self._lock:
                    self._continued.discard(parent)
            raise
        turn = [*params["messages"], {"role": "assistant", "content": message["content"]}]
        fields = {name: full[name] for name in CREATE_ONLY if name in full}
        with self._lock:
            self._held[message["id"]] = _Held(parent, fields, turn)
        return message

    def _claim(self, parent: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The full params of a continue from `parent`, which is marked continued."""
        with self._lock:
            held = self._held.get(parent)
            if held is None:
                raise ApiError(404, f"No thread state found for previous_message_id '{parent}'. "
                                    "Replay the conversation with `thread: {\"type\": "
                                    "\"create\"}`.", code="thread_not_found")
            if parent in self._continued:
                raise ApiError(400, f"The message '{parent}' has already been continued; "
                                    "continue from the thread's most recent message `id`.",
                               code="thread_already_continued")
            self._continued.add(parent)
            history = self._history(parent)
        return {**params, **held.fields, "messages": [*history, *params["messages"]]}

    def _history(self, reply_id: str) -> list[Any]:
        """Every message of the thread up to and including the reply `reply_id`."""
        turns: list[list[Any]] = []
        current: str | None = reply_id
        while current is not None:
            held = self._held[current]
            turns.append(held.messages)
            current = held.parent
        return [message for turn in reversed(turns) for message in turn]
