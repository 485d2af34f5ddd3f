"""List prices per model and token class, dated and sourced; extendable from a file or code.

Prices are USD per million tokens at the live (standard) rate. A batch costs half of
every class, cache writes and reads included (both providers), stacking with caching and
with long-context rates. Sources are the providers' pricing and model pages as compiled
in the project's wire spec (§4) on 2026-11-21, unless an entry names another. A class a
provider does not publish is None: a call with tokens in it is "price unknown", never $0.

Add or override models with ``DEFERRABLE_PRICES=/path/prices.json`` or `register_prices()`;
the JSON maps a model id to the fields of `Price` (see `price_from_json`).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ._tokens import Tokens

BATCH_DISCOUNT = 0.5
"""Share of the live price a batch pays, on every token class."""
AS_OF = "2026-11-21"


@dataclass(frozen=True)
class LongContext:
    """A request whose prompt exceeds `threshold` tokens pays these multiples on all of it."""

    threshold: int
    input: float
    """Multiple of the input and cache classes."""
    output: float


@dataclass(frozen=True)
class Price:
    """Live USD per million tokens, by class (None: not published)."""

    input: float
    output: float
    cache_write: float | None
    """The standard cache write (Anthropic 5 minutes, OpenAI 30 minutes)."""
    cache_write_long: float | None
    """The long cache write (Anthropic 1 hour, OpenAI 12 hours)."""
    cache_read: float | None
    as_of: str = AS_OF
    source: str = "wire spec §4"
    long_context: LongContext | None = None

    def cost(self, tokens: Tokens, *, batch: bool) -> float | None:
        """What `tokens` cost (USD), at the batch price when `batch`; None when they
        include a class whose price is unknown."""
        rates = {"input": self.input, "cache_write": self.cache_write,
                 "cache_write_long": self.cache_write_long, "cache_read": self.cache_read}
        prompt = 0.0
        for name, rate in rates.items():
            count = getattr(tokens, name)
            if count and rate is None:
                return None
            prompt += count * (rate or 0.0)
        output = tokens.output * self.output
        rule = self.long_context
        if rule is not None and tokens.prompt > rule.threshold:
            prompt, output = prompt * rule.input, output * rule.output
        total = (prompt + output) / 1_000_000
        return total * BATCH_DISCOUNT if batch else total


def _anthropic(input: float, output: float, *, read: float | None = None,
               source: str = "Anthropic pricing page (wire spec §4.2)",
               long_context: LongContext | None = None) -> Price:
    """An Anthropic price with the standard cache multiples (write 1.25x / 2x, read 0.1x)."""
    return Price(input, output, input * 1.25, input * 2, input / 10 if read is None else read,
                 source=source, long_context=long_context)


def _openai(input: float, output: float, cached: float | None, *, write: float | None = None,
            write_long: float | None = None, source: str, as_of: str = AS_OF,
            long_context: LongContext | None = None) -> Price:
    """An OpenAI price; before GPT-5.6 a cache write is billed as plain input."""
    return Price(input, output, input if write is None else write,
                 input if write_long is None and write is None else write_long, cached,
                 as_of=as_of, source=source, long_context=long_context)


_SONNET_4_LONG = LongContext(threshold=200_000, input=2.0, output=1.5)
_OPENAI_LONG = LongContext(threshold=272_000, input=2.0, output=1.5)
_OPENAI_SPEC = "OpenAI model pages (wire spec §4.3)"

BUILT_IN: dict[str, Price] = {
    # Anthropic
    "claude-fable-5-1": _anthropic(10.00, 50.00, read=0.25),
    "claude-mythos-5-1": _anthropic(10.00, 50.00, read=0.25),
    "claude-fable-5": _anthropic(10.00, 50.00, read=1.00),
    "claude-mythos-5": _anthropic(10.00, 50.00, read=1.00),
    "claude-opus-5-5": _anthropic(4.00, 20.00, read=0.20),
    **{model: _anthropic(5.00, 25.00) for model in (
        "claude-opus-5", "claude-opus-4-8", "claude-opus-4-7", "claude-opus-4-6", "claude-opus-4-5")},
    "claude-sonnet-5-5": _anthropic(2.00, 10.00, read=0.10),
    "claude-sonnet-5": _anthropic(2.00, 10.00, read=0.20),
    "claude-sonnet-4-6": _anthropic(3.00, 15.00, long_context=_SONNET_4_LONG),
    "claude-sonnet-4-5": _anthropic(3.00, 15.00, long_context=_SONNET_4_LONG),
    "claude-haiku-5-5": _anthropic(0.10, 0.50, long_context=LongContext(100_000, 5.0, 5.0)),
    "claude-haiku-4-5": _anthropic(1.00, 5.00),
    "claude-3-5-haiku": _anthropic(0.80, 4.00, source="Anthropic pricing page (Haiku 3.5)"),
    # OpenAI
    "gpt-6.2-sol": _openai(2.00, 10.00, 0.10, write=2.50, write_long=5.00, source=_OPENAI_SPEC,
                           long_context=_OPENAI_LONG),
    "gpt-6.1-sol": _openai(2.00, 10.00, 0.10, write=2.50, source=_OPENAI_SPEC,
                           long_context=_OPENAI_LONG),
    "gpt-6-astra": _openai(10.00, 50.00, 1.00, write=12.50, source=_OPENAI_SPEC,
                           long_context=_OPENAI_LONG),
    "gpt-6-sol": _openai(2.00, 10.00, 0.20, write=2.50, source=_OPENAI_SPEC,
                         long_context=_OPENAI_LONG),
    "gpt-6-luna": _openai(0.10, 0.50, 0.01, write=0.125, source=_OPENAI_SPEC),
    "gpt-5.4": _openai(2.50, 15.00, 0.25, source="OpenAI GPT-5.4 launch pricing",
                       as_of="2026-03-05", long_context=_OPENAI_LONG),
    "gpt-5.4-mini": _openai(0.75, 4.50, 0.075, source="OpenAI GPT-5.4 mini and nano announcement",
                            as_of="2026-03-17"),
    "gpt-5.4-nano": _openai(0.20, 1.25, 0.02, source="OpenAI GPT-5.4 mini and nano announcement",
                            as_of="2026-03-17"),
    "gpt-4o": _openai(2.50, 10.00, 1.25, source="OpenAI pricing page", as_of="2024-10-01"),
    "gpt-4o-mini": _openai(0.15, 0.60, 0.075, source="OpenAI pricing page", as_of="2024-10-01"),
    "text-embedding-3-small": _openai(0.02, 0.0, None, source="OpenAI pricing page (older)",
                                      as_of="2024-01-25"),
    "text-embedding-3-large": _openai(0.13, 0.0, None, source="OpenAI pricing page (older)",
                                      as_of="2024-01-25"),
}

_DATED = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2}|latest)$")
_lock = threading.Lock()
_added: dict[str, Price] = {}
_loaded_from: str | None = None


def price_of(model: str) -> Price | None:
    """The price of `model` (a dated snapshot id falls back to its alias), or None."""
    _load_environment()
    for candidate in (model, _DATED.sub("", model)):
        price = _added.get(candidate) or BUILT_IN.get(candidate)
        if price is not None:
            return price
    return None


def register_prices(prices: Mapping[str, Price | Mapping[str, Any]]) -> None:
    """Add or override model prices (a `Price`, or its fields as in the JSON file)."""
    parsed = {model: price if isinstance(price, Price) else price_from_json(model, price)
              for model, price in prices.items()}
    with _lock:
        _added.update(parsed)


def load_prices(path: str | os.PathLike[str]) -> None:
    """Add or override model prices from a JSON file: ``{"model-id": {"input": 1.0,
    "output": 5.0, "cache_read": 0.1, ...}}`` (USD per million tokens)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read prices from {path}: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object mapping model ids to prices")
    register_prices(data)


def price_from_json(model: str, data: Mapping[str, Any]) -> Price:
    """A `Price` from its JSON fields (``input`` and ``output`` required; cache classes
    default to unknown; ``long_context`` as ``{"threshold", "input", "output"}``)."""
    known = {f.name for f in fields(Price)}
    unknown = set(data) - known
    if unknown or "input" not in data or "output" not in data:
        raise ValueError(f"price of {model}: needs input and output, knows {sorted(known)}; "
                         f"got {sorted(data)}")
    values = dict(data)
    rule = values.pop("long_context", None)
    try:
        return Price(**{"cache_write": None, "cache_write_long": None, "cache_read": None,
                        "source": "user", **values},
                     long_context=None if rule is None else LongContext(**rule))
    except TypeError as error:
        raise ValueError(f"price of {model}: {error}") from None


def _load_environment() -> None:
    """Load ``DEFERRABLE_PRICES`` once (again if the variable changes)."""
    global _loaded_from
    path = os.environ.get("DEFERRABLE_PRICES") or None
    if path == _loaded_from:
        return
    with _lock:
        _loaded_from = path
    if path is not None:
        load_prices(path)


def reset_prices() -> None:
    """Forget added prices (for tests)."""
    global _loaded_from
    with _lock:
        _added.clear()
        _loaded_from = None
