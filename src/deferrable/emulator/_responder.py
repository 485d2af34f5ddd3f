"""What the emulator answers: a deterministic, pluggable responder (prompt -> text)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_WORD = re.compile(r"[a-z']+")
_POSITIVE = frozenset((
    "good", "great", "excellent", "love", "loved", "lovely", "amazing", "wonderful", "fantastic",
    "happy", "best", "perfect", "nice", "enjoyed", "recommend", "delightful", "superb", "pleasant",
    "awesome"))
_NEGATIVE = frozenset((
    "bad", "terrible", "awful", "hate", "hated", "poor", "worst", "boring", "broken",
    "disappointing", "disappointed", "slow", "rude", "refund", "useless", "horrible", "mediocre",
    "annoying", "dirty"))


@dataclass(frozen=True)
class Prompt:
    """One request, reduced to what a responder needs to decide its answer."""

    provider: str
    """``"anthropic"`` or ``"openai"``."""
    endpoint: str
    """The API path, e.g. ``"/v1/messages"`` or ``"/v1/chat/completions"``."""
    model: str
    system: str
    turns: tuple[tuple[str, str], ...]
    """(role, text) of each message, in order."""
    params: Mapping[str, Any]
    """The request body as sent."""

    @property
    def last_user_text(self) -> str:
        """The text of the last user turn ('' when there is none)."""
        for role, text in reversed(self.turns):
            if role == "user":
                return text
        return ""


Responder = Callable[[Prompt], str]


def default_responder(prompt: Prompt) -> str:
    """Answer deterministically: a sentiment label when asked for sentiment, else a short
    acknowledgement that quotes the start of the prompt and a digest of all of it."""
    text = prompt.last_user_text
    lowered = text.lower()
    if "sentiment" in lowered or "sentiment" in prompt.system.lower():
        words = _WORD.findall(lowered)
        score = sum(w in _POSITIVE for w in words) - sum(w in _NEGATIVE for w in words)
        return "positive" if score > 0 else "negative" if score < 0 else "neutral"
    digest = hashlib.sha256(f"{prompt.model}\n{prompt.system}\n{text}".encode()).hexdigest()[:8]
    opening = " ".join(text.split()[:12])
    return f"Noted ({digest}): {opening}" if opening else f"Noted ({digest})."


def count_tokens(text: str) -> int:
    """Tokens in `text`, at the usual four characters a token."""
    return (len(text) + 3) // 4


def truncate_to_tokens(text: str, tokens: int) -> str:
    """The longest prefix of `text` that counts at most `tokens` tokens."""
    return text[: max(tokens, 0) * 4]
