"""Tokens of one call by price class, from the usage its provider returned.

The providers count differently: Anthropic's ``input_tokens`` excludes the tokens written
to and read from the cache (reported beside it), while OpenAI's ``prompt_tokens`` /
``input_tokens`` include the cached ones (``cached_tokens`` is a part of them). `Tokens`
always holds disjoint classes, so that each is priced once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

CLASSES = ("input", "cache_write", "cache_write_long", "cache_read", "output")


@dataclass(frozen=True)
class Tokens:
    """Disjoint token counts: uncached input, cache writes at the standard retention
    (Anthropic 5 minutes, OpenAI 30 minutes) and the long one (1 hour, 12 hours), cache
    reads, output."""

    input: int = 0
    cache_write: int = 0
    cache_write_long: int = 0
    cache_read: int = 0
    output: int = 0

    @property
    def prompt(self) -> int:
        """Every input token of the request (uncached, written and read)."""
        return self.input + self.cache_write + self.cache_write_long + self.cache_read

    @property
    def total(self) -> int:
        """Every token, input and output."""
        return self.prompt + self.output

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def as_dict(self) -> dict[str, int]:
        """The counts by class."""
        return asdict(self)


def anthropic_tokens(usage: Any) -> Tokens:
    """Tokens of an Anthropic ``usage`` (object or JSON): input excludes the cache; the
    writes split by TTL when the provider says how (else they count as 5-minute)."""
    written = _int(usage, "cache_creation_input_tokens")
    split = _get(usage, "cache_creation")
    one_hour = _int(split, "ephemeral_1h_input_tokens")
    return Tokens(input=_int(usage, "input_tokens"), cache_write=max(0, written - one_hour),
                  cache_write_long=one_hour, cache_read=_int(usage, "cache_read_input_tokens"),
                  output=_int(usage, "output_tokens"))


def openai_tokens(usage: Any) -> Tokens:
    """Tokens of an OpenAI ``usage`` (chat completions, responses or embeddings; object or
    JSON): the prompt count includes the cached tokens, which are taken out of it."""
    if _get(usage, "prompt_tokens") is not None:  # chat completions, embeddings
        prompt = _int(usage, "prompt_tokens")
        details = _get(usage, "prompt_tokens_details")
        output = _int(usage, "completion_tokens")
    else:  # responses
        prompt = _int(usage, "input_tokens")
        details = _get(usage, "input_tokens_details")
        output = _int(usage, "output_tokens")
    cached = _int(details, "cached_tokens")
    written = _int(details, "cache_write_tokens")
    long = _int(_get(details, "cache_write_tokens_details"), "ttl_12h_tokens")
    return Tokens(input=max(0, prompt - cached - written), cache_write=max(0, written - long),
                  cache_write_long=long, cache_read=cached, output=output)


def _get(holder: Any, name: str) -> Any:
    if holder is None:
        return None
    if isinstance(holder, dict):
        return holder.get(name)
    return getattr(holder, name, None)


def _int(holder: Any, name: str) -> int:
    value = _get(holder, name)
    return int(value) if isinstance(value, (int, float)) else 0
