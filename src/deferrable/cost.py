"""Prices per million tokens, and the cost of a call from the usage its provider returned.

List prices in USD per 1M tokens, as of 2026-11-21, from Anthropic's pricing and model pages
and OpenAI's model pages (compiled in the project's wire spec, §4). Batch price is half of
every token class, stacking with caching, for both providers.
"""

from __future__ import annotations

from dataclasses import dataclass

BATCH_DISCOUNT = 0.5
PRICES_AS_OF = "2026-11-21"


@dataclass(frozen=True)
class Price:
    """USD per million tokens of each class, at the live (standard) rate."""

    input: float
    output: float
    cache_write: float
    cache_read: float


PRICES: dict[str, Price] = {
    "claude-haiku-4-5": Price(input=1.00, output=5.00, cache_write=1.25, cache_read=0.10),
    "claude-sonnet-4-6": Price(input=3.00, output=15.00, cache_write=3.75, cache_read=0.30),
    "claude-sonnet-5-5": Price(input=2.00, output=10.00, cache_write=2.50, cache_read=0.10),
    "claude-opus-5-5": Price(input=4.00, output=20.00, cache_write=5.00, cache_read=0.20),
    "gpt-6.2-sol": Price(input=2.00, output=10.00, cache_write=2.50, cache_read=0.10),
}


@dataclass(frozen=True)
class Usage:
    """Tokens of one call by class; `input` excludes cache writes and reads."""

    input: int = 0
    output: int = 0
    cache_write: int = 0
    cache_read: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input + other.input, self.output + other.output,
                     self.cache_write + other.cache_write, self.cache_read + other.cache_read)


def cost_usd(model: str, usage: Usage, *, batch: bool) -> float:
    """What `usage` costs on `model`, at the batch price when `batch`.

    Raises KeyError for a model without a known price: an unknown price is never $0.
    """
    price = PRICES[model]
    full = (usage.input * price.input + usage.output * price.output
            + usage.cache_write * price.cache_write + usage.cache_read * price.cache_read) / 1e6
    return full * BATCH_DISCOUNT if batch else full
