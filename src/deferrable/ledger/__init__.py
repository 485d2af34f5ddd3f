"""What calls cost: prices, tokens by class, the ledger of spend, budgets and the report."""

from ._ledger import Spend, live_ledger, merged, row_of
from ._prices import (
    AS_OF,
    BATCH_DISCOUNT,
    BUILT_IN,
    LongContext,
    Price,
    load_prices,
    price_of,
    register_prices,
    reset_prices,
)
from ._report import build_report, parse_since, render_report
from ._tokens import CLASSES, Tokens, anthropic_tokens, openai_tokens

__all__ = [
    "AS_OF", "BATCH_DISCOUNT", "BUILT_IN", "CLASSES", "LongContext", "Price", "Spend", "Tokens",
    "anthropic_tokens", "build_report", "live_ledger", "load_prices", "merged", "openai_tokens",
    "parse_since", "price_of", "register_prices", "render_report", "reset_prices", "row_of",
]
