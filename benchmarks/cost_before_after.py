"""What deferring saves, in dollars: the four seed workloads run live and deferred, side by
side in one run, against an in-process emulator.

Each workload runs twice, each way on a fresh emulator (so that no prompt cache carries
over) and in a fresh temporary journal store:

- live: plain ``await client.messages.create(...)`` through `anthropic.AsyncAnthropic`,
  64 in flight at a time (64 workers taking the next call: a semaphore's limit without
  100,000 waiting tasks), recorded in the ledger by `deferrable.observe()`;
- deferred: the same function under ``@deferrable`` (default options), every call
  gathered at once.

The cost of each way is read from its store's ledger (`Journal.ledger()` rows summed by
`build_report`): the usage the emulator returned, priced by the price table. The HTTP
requests each way made come from the emulator's counters, and the ledger's tokens are
checked against the tokens the emulator billed.

1. 5,000 short sentiment calls, claude-haiku-4-5.
2. 1,000 product classifications against a category list, claude-sonnet-4-6.
3. 1,000 legal documents of 50,000 input tokens, 5,000 output tokens each (10 %),
   claude-3-5-haiku: $60 live, $30 in a batch.
4. 100,000 summaries sharing a 2,000-token system prompt cached with ``cache_control``,
   claude-haiku-4-5: a batch with cache reads pays about 5 % of the live uncached input.

The emulator's batches end at once (``batch_latency=0``): deferred wall times are the
client's and the emulator's own work, not the hours a real batch may take. Memory stays
small: prompts are built when their call is made, and the legal documents share one
body (a short numbered header in a block of its own makes each request distinct).

The default ``--scale 1`` runs every call (about 6.5 minutes on a 2-core machine, most
of it the 100,000 live summaries); ``--scale 0.1`` runs a tenth of each workload in under
a minute and extrapolates the costs to full scale linearly; ``--only N`` runs workload N.

Run: python benchmarks/cost_before_after.py [--scale 1] [--only N]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic

import deferrable
from deferrable.emulator import Emulator, Prompt, Responder, count_tokens, default_responder
from deferrable.engine import engine
from deferrable.journal import close_journals, journal_for
from deferrable.ledger import Price, Tokens, build_report, live_ledger, price_of

KEY = "benchmark-dummy-key"
CONCURRENCY = 64
"""Live calls in flight at once (a semaphore, as a careful live job limits itself)."""
DEFAULT_SCALE = 1.0
"""Share of each workload's calls run by default: at full scale the whole run takes
about 6.5 minutes on a 2-core machine (100,000 live calls take 4.5 of them)."""
MESSAGE_OVERHEAD = 4
"""Input tokens the emulator counts for each message besides its text (its role)."""


# -- the workloads -----------------------------------------------------------------------

@dataclass(frozen=True)
class Expected:
    """What a workload should cost by the price table's arithmetic."""

    live_usd: float
    batch_usd: float
    note: str


@dataclass(frozen=True)
class Workload:
    """One seed workload: its calls, how the emulator answers them, what it should cost."""

    number: int
    title: str
    model: str
    full_calls: int
    params: Callable[[int], dict[str, Any]]
    """The `messages.create` keyword arguments of call `i`."""
    responder: Responder
    expected: Callable[[int], Expected] | None = None
    """What `calls` calls should cost, where the arithmetic is known in advance."""

    def calls_at(self, scale: float) -> int:
        """Calls at `scale` (at least one)."""
        return max(1, round(self.full_calls * scale))


def price(model: str) -> Price:
    """The price-table entry of `model` (every workload's model has one)."""
    found = price_of(model)
    if found is None:
        raise LookupError(f"no price for {model}")
    return found


def cost(model: str, tokens: Tokens, *, batch: bool) -> float:
    """What `tokens` of `model` cost, live or in a batch."""
    value = price(model).cost(tokens, batch=batch)
    if value is None:
        raise LookupError(f"{model} has no price for a token class of {tokens}")
    return value


def usd(amount: float) -> str:
    """Dollars: cents from $10, four decimals from $1, six below."""
    digits = 2 if amount >= 10 else 4 if amount >= 1 else 6
    return f"${amount:,.{digits}f}"


# 1. sentiment ----------------------------------------------------------------------------

HAIKU = "claude-haiku-4-5"
_ASPECTS = ("battery life", "screen", "delivery", "sound", "fit", "price", "support team",
            "packaging", "setup", "manual", "charger")
_VERDICTS = ("great", "terrible", "fine", "awful", "excellent", "slow", "ok", "amazing",
             "broken", "disappointing", "perfect", "mediocre", "as described")


def sentiment_params(i: int) -> dict[str, Any]:
    """A short review to label."""
    aspect, verdict = _ASPECTS[i % len(_ASPECTS)], _VERDICTS[i % len(_VERDICTS)]
    review = f"Order {i}: the {aspect} was {verdict}."
    return {"model": HAIKU, "max_tokens": 5, "messages": [{"role": "user", "content": (
        f"Sentiment of this review (positive, negative or neutral), one word: {review}")}]}


# 2. product classification -------------------------------------------------------------

SONNET = "claude-sonnet-4-6"
CATEGORIES = ("Electronics", "Home & Kitchen", "Clothing", "Sports & Outdoors", "Toys & Games",
              "Beauty", "Books", "Grocery", "Automotive", "Garden")
_PRODUCTS = (("wireless earbuds", "Electronics"), ("cast iron skillet", "Home & Kitchen"),
             ("rain jacket", "Clothing"), ("trail running shoes", "Sports & Outdoors"),
             ("wooden puzzle", "Toys & Games"), ("face moisturizer", "Beauty"),
             ("paperback novel", "Books"), ("ground coffee", "Grocery"),
             ("wiper blades", "Automotive"), ("garden hose", "Garden"),
             ("USB-C charger", "Electronics"), ("linen tablecloth", "Home & Kitchen"))
_QUALITIES = ("lightweight", "durable", "compact", "premium", "budget", "eco-friendly")


def product_params(i: int) -> dict[str, Any]:
    """A short product description to put in one of `CATEGORIES`."""
    item = _PRODUCTS[i % len(_PRODUCTS)][0]
    quality = _QUALITIES[i % len(_QUALITIES)]
    return {"model": SONNET, "max_tokens": 10, "messages": [{"role": "user", "content": (
        f"Classify the product into exactly one of these categories: {', '.join(CATEGORIES)}. "
        f"Answer with the category name only.\n\nProduct: {quality} {item}, SKU {i:06d}")}]}


def product_responder(prompt: Prompt) -> str:
    """The category of the product named after ``Product:``."""
    product = prompt.last_user_text.rpartition("Product:")[2]
    return next((category for item, category in _PRODUCTS if item in product), "Other")


# 3. legal documents --------------------------------------------------------------------

LEGAL_MODEL = "claude-3-5-haiku"
LEGAL_INPUT = 50_000
LEGAL_OUTPUT = 5_000
_CLAUSE = ("WHEREAS the Supplier agrees to deliver the Goods described in Schedule A and the "
           "Purchaser agrees to pay the Price within thirty (30) days of invoice; NOW, "
           "THEREFORE, the parties agree that each shall indemnify the other against claims "
           "arising from its own negligence, that neither shall assign this Agreement without "
           "prior written consent, and that this Agreement is governed by the laws of the "
           "State of Delaware. ")


def legal_header(i: int) -> str:
    """The numbered instruction that makes document `i` a request of its own (fixed width,
    a multiple of four characters, so that every document counts the same tokens)."""
    text = f"Contract {i:07d}. List the parties, obligations, term and termination rights."
    return text.ljust(-(-len(text) // 4) * 4)


@functools.cache
def legal_body() -> str:
    """The document text every request shares (built once): exactly as many tokens as
    make each request `LEGAL_INPUT` input tokens with its header and message overhead."""
    tokens = LEGAL_INPUT - MESSAGE_OVERHEAD - count_tokens(legal_header(0))
    return (_CLAUSE * (tokens * 4 // len(_CLAUSE) + 1))[: tokens * 4]


def legal_params(i: int) -> dict[str, Any]:
    """Document `i`: its header and the shared body as two text blocks (the body is one
    string object for all documents, never copied)."""
    return {"model": LEGAL_MODEL, "max_tokens": LEGAL_OUTPUT, "messages": [{"role": "user",
            "content": [{"type": "text", "text": legal_header(i)},
                        {"type": "text", "text": legal_body()}]}]}


_LONG_ANSWER = ("1. Parties: the Supplier and the Purchaser. 2. Obligations: delivery of the "
                "Goods; payment within thirty days. 3. Indemnities are mutual. ") * 200
"""Longer than `LEGAL_OUTPUT` tokens: the emulator cuts it to exactly ``max_tokens``."""
assert count_tokens(_LONG_ANSWER) > LEGAL_OUTPUT


def legal_responder(prompt: Prompt) -> str:
    """An answer longer than any `max_tokens` asked (the output is cut to it)."""
    return _LONG_ANSWER


LEGAL_CALL = Tokens(input=LEGAL_INPUT, output=LEGAL_OUTPUT)
"""The tokens of one legal document's call."""


def legal_expected(calls: int) -> Expected:
    """`calls` documents of 50,000 input and 5,000 output tokens at the table's rates."""
    rate = price(LEGAL_MODEL)
    return Expected(calls * cost(LEGAL_MODEL, LEGAL_CALL, batch=False),
                    calls * cost(LEGAL_MODEL, LEGAL_CALL, batch=True),
                    f"at ${rate.input:.2f}/${rate.output:.2f} per M")


# 4. summaries under a cached system prompt -------------------------------------------

SYSTEM_TOKENS = 2_000
SUMMARY = "Summary: the customer cannot log in after the update; asks for a fix and a reply."
"""What the emulator answers every summary request (a fixed length: a known output)."""
_GUIDE = ("You summarize customer support tickets for the escalation team. Write one "
          "sentence: the problem, what the customer asks for, and any deadline. Never invent "
          "facts, never include personal data, keep product names as written. ")
SYSTEM = (_GUIDE * (SYSTEM_TOKENS * 4 // len(_GUIDE) + 1))[: SYSTEM_TOKENS * 4]
"""The shared system prompt: exactly `SYSTEM_TOKENS` tokens, the cached prefix."""


def summary_user(i: int) -> str:
    """The short, uncached part of request `i` (a fixed width: the same tokens for all)."""
    return f"Ticket {i:07d}: app logs me out after every update, please fix."


def summary_params(i: int) -> dict[str, Any]:
    """Request `i`: the cached system block, then its own short ticket."""
    return {"model": HAIKU, "max_tokens": 50,
            "system": [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": summary_user(i)}]}


def summary_responder(prompt: Prompt) -> str:
    """The same one-sentence summary for every ticket."""
    return SUMMARY


def summary_calls(*, output: bool = True) -> tuple[Tokens, Tokens, Tokens]:
    """The tokens of one summary call: (the first, which writes the cached system prompt;
    each later one, which reads it; any one without caching). Without `output`, the
    prompt classes alone."""
    user = MESSAGE_OVERHEAD + count_tokens(summary_user(0))
    out = count_tokens(SUMMARY) if output else 0
    return (Tokens(input=user, cache_write=SYSTEM_TOKENS, output=out),
            Tokens(input=user, cache_read=SYSTEM_TOKENS, output=out),
            Tokens(input=SYSTEM_TOKENS + user, output=out))


def summaries_cost(calls: int, *, batch: bool, cached: bool = True, output: bool = True) -> float:
    """What `calls` summaries cost (priced call by call, as the ledger prices them)."""
    first, later, plain = summary_calls(output=output)
    if not cached:
        return calls * cost(HAIKU, plain, batch=batch)
    return cost(HAIKU, first, batch=batch) + (calls - 1) * cost(HAIKU, later, batch=batch)


def summary_expected(calls: int) -> Expected:
    """Live and batch with the cache as the emulator applies it, and the input side of a
    batch with cache reads against the live uncached input price."""
    uncached_input = summaries_cost(calls, batch=False, cached=False, output=False)
    batch_input = summaries_cost(calls, batch=True, output=False)
    rate = price(HAIKU)
    return Expected(
        summaries_cost(calls, batch=False), summaries_cost(calls, batch=True),
        f"with cache reads at ${rate.input:.2f}/${rate.output:.2f} per M (write "
        f"${rate.cache_write:.2f}, read ${rate.cache_read:.2f}); without the cache "
        f"{usd(summaries_cost(calls, batch=False, cached=False))} live. Input side: batch "
        f"with cache reads {usd(batch_input)} = {100 * batch_input / uncached_input:.2f} % "
        f"of the live uncached input {usd(uncached_input)}")


WORKLOADS: dict[int, Workload] = {w.number: w for w in (
    Workload(1, "short sentiment calls", HAIKU, 5_000, sentiment_params, default_responder),
    Workload(2, "product classifications", SONNET, 1_000, product_params, product_responder),
    Workload(3, "50,000-token legal documents, 10 % output", LEGAL_MODEL, 1_000, legal_params,
             legal_responder, legal_expected),
    Workload(4, "summaries sharing a 2,000-token cached system prompt", HAIKU, 100_000,
             summary_params, summary_responder, summary_expected),
)}


# -- running them ------------------------------------------------------------------------

async def ask(client: anthropic.AsyncAnthropic, params: dict[str, Any]) -> str:
    """One call, as the job would make it: the text of the answer."""
    message = await client.messages.create(**params)
    return "".join(block.text for block in message.content if block.type == "text")


@dataclass
class Way:
    """One way of running a workload, measured."""

    name: str
    calls: int
    answered: int
    report: dict[str, Any]
    requests: dict[str, int]
    billed: dict[str, int]
    wall: float

    @property
    def paid(self) -> float:
        """What the calls paid, by the ledger."""
        return float(self.report["paid_usd"])

    @property
    def http(self) -> int:
        """HTTP requests made to the emulator."""
        return sum(self.requests.values())

    def ledger_matches_emulator(self) -> bool:
        """Whether the ledger's tokens are those the emulator billed."""
        tokens: dict[str, int] = self.report["tokens"]
        return (tokens["input"] == self.billed.get("input_tokens", 0)
                and tokens["cache_write"] + tokens["cache_write_long"]
                == self.billed.get("cache_write_tokens", 0)
                and tokens["cache_read"] == self.billed.get("cache_read_tokens", 0)
                and tokens["output"] == self.billed.get("output_tokens", 0)
                and self.report["calls"] == self.billed.get("requests", 0) == self.calls)


@dataclass
class Outcome:
    """A workload run both ways."""

    workload: Workload
    calls: int
    live: Way
    deferred: Way

    @property
    def saved(self) -> float:
        """Dollars deferring saved."""
        return self.live.paid - self.deferred.paid


def ledger_rows(store: Path, *, live: bool) -> list[dict[str, Any]]:
    """The ledger rows of `store` (live spend written first: `flush()` waits for it)."""
    if live:
        live_ledger.flush()
    return journal_for(str(store)).ledger()


async def run_live(client: anthropic.AsyncAnthropic, workload: Workload, calls: int) -> int:
    """`calls` live calls, `CONCURRENCY` at a time; returns how many were answered."""
    numbers: Iterator[int] = iter(range(calls))
    answered = 0

    async def worker() -> None:
        nonlocal answered
        for i in numbers:  # shared: each worker takes the next call
            text = await ask(client, workload.params(i))
            answered += bool(text)

    await asyncio.gather(*(worker() for _ in range(min(CONCURRENCY, calls))))
    return answered


async def run_deferred(client: anthropic.AsyncAnthropic, workload: Workload, calls: int) -> int:
    """The same calls under ``@deferrable`` (the process-wide options), all at once;
    returns how many were answered."""
    deferred_ask = deferrable.deferrable(ask)

    async def one(i: int) -> bool:
        return bool(await deferred_ask(client, workload.params(i)))

    return sum(await asyncio.gather(*(one(i) for i in range(calls))))


def measure(workload: Workload, calls: int, store: Path, *, live: bool) -> Way:
    """Run `workload` one way on a fresh emulator, recording in the journal at `store`."""
    previous = deferrable.configure().store
    with Emulator(batch_latency=0, responder=workload.responder, host="127.0.0.1") as emu:

        async def run() -> tuple[int, float]:
            async with anthropic.AsyncAnthropic(api_key=KEY, base_url=emu.url) as client:
                started = time.perf_counter()
                if live:
                    answered = await run_live(client, workload, calls)
                else:
                    answered = await run_deferred(client, workload, calls)
                return answered, time.perf_counter() - started

        deferrable.configure(store=str(store))  # this way's journal, and its ledger
        deferrable.observe(live)  # live calls outside any scope are recorded
        try:
            answered, wall = asyncio.run(run())
        finally:
            deferrable.observe(False)
            deferrable.configure(store=previous)
        engine().finish_cleanups()
        stats = emu.stats()
    rows = ledger_rows(store, live=live)
    mode = "live" if live else "batch"
    return Way("live" if live else "deferred", calls, answered, build_report(rows),
               dict(stats["requests"]), dict(stats["billed_total"][mode]), wall)


def run_workload(workload: Workload, calls: int, root: Path) -> Outcome:
    """`workload` with `calls` calls, live then deferred, each in a fresh store under `root`."""
    live = measure(workload, calls, root / f"workload-{workload.number}-live", live=True)
    deferred = measure(workload, calls, root / f"workload-{workload.number}-deferred", live=False)
    close_journals()
    return Outcome(workload, calls, live, deferred)


# -- printing ------------------------------------------------------------------------------

def routes(way: Way) -> str:
    """HTTP requests by route, most first."""
    return ", ".join(f"{route} {count:,}" for route, count in
                     sorted(way.requests.items(), key=lambda item: (-item[1], item[0])))


def print_outcome(outcome: Outcome, scale: float) -> None:
    """The table of one workload, its saving and its expected figures."""
    workload, calls = outcome.workload, outcome.calls
    print(f"{workload.number}. {workload.full_calls:,} {workload.title} on {workload.model}"
          f" — run: {calls:,} calls (scale {scale:g})")
    header = ("way", "calls", "HTTP req", "input tok", "cache write", "cache read", "output tok",
              "cost $", "wall s")
    widths = (9, 8, 9, 14, 12, 14, 12, 14, 8)
    print("  " + "".join(h.rjust(w) if i else h.ljust(w)
                         for i, (h, w) in enumerate(zip(header, widths, strict=True))))
    for way in (outcome.live, outcome.deferred):
        tokens = way.report["tokens"]
        cells = (way.name, f"{way.report['calls']:,}", f"{way.http:,}", f"{tokens['input']:,}",
                 f"{tokens['cache_write'] + tokens['cache_write_long']:,}",
                 f"{tokens['cache_read']:,}", f"{tokens['output']:,}", usd(way.paid),
                 f"{way.wall:.2f}")
        print("  " + "".join(c.rjust(w) if i else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths, strict=True))))
    for way in (outcome.live, outcome.deferred):
        check = "OK" if way.ledger_matches_emulator() and way.answered == calls else "MISMATCH"
        print(f"  {way.name} HTTP: {routes(way)}; ledger tokens = emulator's billed tokens, "
              f"{way.answered:,}/{calls:,} answered: {check}")
    live, paid = outcome.live.paid, outcome.deferred.paid
    share = 100 * outcome.saved / live if live else 0.0
    print(f"  saved {usd(outcome.saved)} ({share:.1f} %); HTTP requests "
          f"{outcome.live.http:,} -> {outcome.deferred.http:,}; wall "
          f"{outcome.live.wall:.2f} s -> {outcome.deferred.wall:.2f} s")
    if workload.expected is not None:
        expected = workload.expected(calls)
        print(f"  expected {usd(expected.live_usd)} live / {usd(expected.batch_usd)} batch, "
              f"measured {usd(live)} / {usd(paid)} ({expected.note})")
    if calls != workload.full_calls:
        factor = workload.full_calls / calls
        line = (f"  full scale ({workload.full_calls:,} calls, x{factor:g}, linear): live "
                f"{usd(live * factor)}, deferred {usd(paid * factor)}, saved "
                f"{usd(outcome.saved * factor)}; live wall ~{outcome.live.wall * factor:,.0f} s")
        if workload.expected is not None:
            full = workload.expected(workload.full_calls)
            line += f"; expected {usd(full.live_usd)} / {usd(full.batch_usd)}"
        print(line)
    print()


def main() -> None:
    """Run the chosen workloads both ways and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE,
                        help=f"share of each workload's calls to run (default {DEFAULT_SCALE})")
    parser.add_argument("--only", type=int, choices=sorted(WORKLOADS),
                        help="run only this workload")
    args = parser.parse_args()
    if not args.scale > 0:
        parser.error("--scale must be positive")
    chosen = [WORKLOADS[args.only]] if args.only else list(WORKLOADS.values())
    extrapolated = "" if args.scale == 1 else " (full-scale costs extrapolated linearly)"
    print(f"cost before/after: scale {args.scale:g} of the full workloads{extrapolated}; "
          f"emulator on 127.0.0.1 with "
          f"batch_latency=0; live: AsyncAnthropic, {CONCURRENCY} in flight, recorded by "
          f"deferrable.observe(); deferred: the same function under @deferrable; costs from "
          f"each way's ledger (build_report) at list prices")
    print()
    started = time.perf_counter()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="deferrable-cost-bench-") as directory:
        root = Path(directory)
        deferrable.configure(store=str(root / "default"))  # never the user's own journal
        for workload in chosen:
            outcome = run_workload(workload, workload.calls_at(args.scale), root)
            print_outcome(outcome, args.scale)
            outcomes.append(outcome)
    live = sum(o.live.paid for o in outcomes)
    paid = sum(o.deferred.paid for o in outcomes)
    print(f"all: live {usd(live)}, deferred {usd(paid)}, saved {usd(live - paid)} "
          f"({100 * (live - paid) / live if live else 0:.1f} %); HTTP requests "
          f"{sum(o.live.http for o in outcomes):,} -> {sum(o.deferred.http for o in outcomes):,}; "
          f"run took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
