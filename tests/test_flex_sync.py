"""The flex lane, sync: OpenAI calls sent live with service_tier="flex" at batch prices,
tried again while flex has no capacity, and put in a batch when it stays busy or the model
offers none; ``lane="auto"`` chooses flex for small groups and near deadlines."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from deferrable import deferrable as defer
from deferrable.emulator import Emulator
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import chat_request, message_request
from tests.ledger_helpers import ledger_rows

FLEX_MODEL = "gpt-5-mini"
"""A model that offers flex processing (OpenAI's flex guide and pricing page)."""
NO_FLEX_MODEL = "gpt-4o-mini"
PRICED_MODEL = "gpt-6.2-sol"
"""A model the emulator serves flex for and the price table prices (lane="flex" tries any
model; "auto" only those known to offer it)."""


def billed(emulator: Emulator, mode: str) -> int:
    """Requests the emulator billed in `mode` (``live``, ``batch`` or ``flex``)."""
    return int(emulator.stats()["billed_total"][mode]["requests"])


def run(emulator: Emulator, count: int, model: str = FLEX_MODEL, **options: Any) -> list[Any]:
    """`count` chat completions from a sync @deferrable function; their ChatCompletions."""
    with openai.OpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url) as gpt:

        @defer(**options)
        def ask(text: str) -> Any:
            return gpt.chat.completions.create(**chat_request(text, model=model))

        futures = [ask(f"Sentiment: great {i}") for i in range(count)]
        return [future.result(timeout=60) for future in futures]


def test_lane_flex_sends_calls_flex_at_batch_prices(emulator: Emulator) -> None:
    """Every call is answered by flex processing (its service tier says so), none batched;
    the ledger records them as flex, paid at the batch price."""
    answers = run(emulator, 6, model=PRICED_MODEL, lane="flex")
    assert [a.service_tier for a in answers] == ["flex"] * 6
    assert all(a.choices[0].message.content for a in answers)
    assert billed(emulator, "flex") == 6
    assert billed(emulator, "batch") == billed(emulator, "live") == 0
    rows = ledger_rows()
    assert {row["mode"] for row in rows} == {"flex"}
    assert sum(row["calls"] for row in rows) == 6
    assert all(row["paid_usd"] == pytest.approx(row["batch_usd"]) for row in rows)
    assert sum(row["batch_usd"] for row in rows) < sum(row["live_usd"] for row in rows)


def test_flex_without_capacity_is_tried_again_then_batched(emulator: Emulator) -> None:
    """With half of flex requests refused 429, calls retry flex; those refused every time go
    in a batch; every call is answered and paid once."""
    emulator.faults.flex_unavailable_rate = 0.5
    answers = run(emulator, 12, lane="flex")
    assert all(a.choices[0].message.content for a in answers)
    assert billed(emulator, "flex") + billed(emulator, "batch") == 12
    assert billed(emulator, "flex") > 0
    assert billed(emulator, "live") == 0
    assert emulator.stats()["requests"]["POST /v1/chat/completions"] > billed(emulator, "flex")


def test_flex_never_available_puts_every_call_in_a_batch(emulator: Emulator) -> None:
    """Flex refusing everything: after its tries each call goes in one batch."""
    emulator.faults.flex_unavailable_rate = 1.0
    answers = run(emulator, 4, lane="flex")
    assert all(a.service_tier != "flex" for a in answers)
    assert billed(emulator, "batch") == 4
    assert billed(emulator, "flex") == 0


def test_a_model_without_flex_goes_in_a_batch(emulator: Emulator) -> None:
    """Flex refused as unsupported for the model (400): the calls are batched instead."""
    answers = run(emulator, 3, model=NO_FLEX_MODEL, lane="flex")
    assert all(a.choices[0].message.content for a in answers)
    assert billed(emulator, "batch") == 3
    assert billed(emulator, "flex") == 0


@pytest.mark.parametrize(("count", "model", "lane"), [
    (5, FLEX_MODEL, "flex"), (25, FLEX_MODEL, "batch"), (5, "gpt-6.2-sol", "batch")])
def test_lane_auto_chooses_by_group_size_and_model(emulator: Emulator, count: int, model: str,
                                                   lane: str) -> None:
    """auto: a small group of a flex model goes flex; a large one, or a model not known to
    offer flex, goes in a batch."""
    run(emulator, count, model=model, lane="auto", max_batch_size=count, max_wait=60)
    assert billed(emulator, lane) == count
    assert billed(emulator, "live") == 0


def test_lane_auto_takes_flex_when_the_deadline_is_too_near_for_a_batch(
        emulator: Emulator) -> None:
    """auto with a deadline inside the hour: even a large group goes flex."""
    run(emulator, 25, lane="auto", deadline=900, max_batch_size=25)
    assert billed(emulator, "flex") == 25
    assert billed(emulator, "batch") == 0


def test_responses_go_flex_too(emulator: Emulator) -> None:
    """The Responses API takes the flex lane as Chat Completions does."""
    with openai.OpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url) as gpt:
        ask = defer(lane="flex")(lambda text: gpt.responses.create(model=FLEX_MODEL, input=text))
        answers = [f.result(timeout=60) for f in [ask(f"Sentiment: fine {i}") for i in range(3)]]
    assert [a.service_tier for a in answers] == ["flex"] * 3
    assert billed(emulator, "flex") == 3


def test_anthropic_has_no_flex_lane_and_batches(emulator: Emulator) -> None:
    """lane='flex' on Anthropic calls: a batch, as Anthropic offers no flex processing."""
    with anthropic.Anthropic(api_key=DUMMY_KEY, base_url=emulator.url) as claude:
        ask = defer(lane="flex")(lambda text: claude.messages.create(**message_request(text)))
        answers = [f.result(timeout=60) for f in [ask(f"Sentiment: great {i}") for i in range(3)]]
    assert all(a.content for a in answers)
    assert billed(emulator, "batch") == 3
