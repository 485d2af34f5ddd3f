"""`deferrable report`: the before/after table by call site and model, its filters, its
JSON, the candidates section, and prices a user adds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import pytest

import deferrable
from deferrable.cli import main
from deferrable.ledger import reset_prices
from tests.emulator_helpers import message_request
from tests.ledger_helpers import ledger_rows


def report(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    """`deferrable report --json ARGS`, parsed."""
    assert main(["report", "--json", *args]) == 0
    parsed: dict[str, Any] = json.loads(capsys.readouterr().out)
    return parsed


def some_work(client: anthropic.Anthropic) -> None:
    """Six deferred calls in a function, three live ones under observe(), one unpriced."""

    @deferrable.deferrable
    def summarise(text: str) -> anthropic.types.Message:
        return client.messages.create(**message_request(text))

    for future in [summarise(f"doc {i}") for i in range(6)]:
        future.result(timeout=60)
    deferrable.observe()
    try:
        for i in range(3):
            client.messages.create(**message_request(f"live {i}", model="claude-sonnet-4-6"))
        client.messages.create(**message_request("odd", model="claude-unreleased-9"))
    finally:
        deferrable.observe(False)
    ledger_rows()  # everything written


def test_report_json_carries_the_totals_and_the_candidates(
        anthropic_client: anthropic.Anthropic, capsys: pytest.CaptureFixture[str]) -> None:
    """--json: calls, paid, live-equivalent and saved at the top; live sites as candidates."""
    some_work(anthropic_client)
    found = report(capsys)
    assert found["calls"] == 10
    assert found["unpriced_calls"] == 1
    assert found["saved_usd"] == pytest.approx(found["live_equivalent_usd"] - found["paid_usd"])
    deferred = next(line for line in found["by_site"] if line["site"].endswith("summarise"))
    assert deferred["saved_pct"] == pytest.approx(50.0)
    candidate, unpriced = found["candidates"]  # a live site of unknown price is one too
    assert (unpriced["model"], unpriced["unpriced_calls"]) == ("claude-unreleased-9", 1)
    assert candidate["model"] == "claude-sonnet-4-6"
    assert candidate["site"].startswith("tests/test_report_cli.py:")
    assert candidate["would_save_usd"] == pytest.approx(candidate["paid_usd"] / 2)


def test_report_text_reads_as_a_table(anthropic_client: anthropic.Anthropic,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The text report: a row per site and model, a total, 'price unknown', the candidates."""
    some_work(anthropic_client)
    assert main(["report"]) == 0
    text = capsys.readouterr().out
    assert "CALL SITE" in text
    assert "LIVE-EQUIVALENT" in text
    assert "50.0%" in text
    assert "price unknown" in text
    assert "TOTAL" in text
    assert "candidates: live call sites" in text


def test_report_filters(anthropic_client: anthropic.Anthropic,
                        capsys: pytest.CaptureFixture[str]) -> None:
    """--model, --site and --since narrow the report; a bad --since is a usage error."""
    some_work(anthropic_client)
    assert report(capsys, "--model", "claude-haiku")["calls"] == 6
    assert report(capsys, "--site", "summarise")["calls"] == 6
    assert report(capsys, "--since", "1h")["calls"] == 10
    assert report(capsys, "--since", "2999-01-01")["calls"] == 0
    assert main(["report", "--since", "yesterday-ish"]) == 2


def test_report_of_no_journal_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A store that does not exist reports no calls, and is not created."""
    store = tmp_path / "none"
    assert main(["report", "--store", str(store)]) == 0
    assert "no calls recorded" in capsys.readouterr().out
    assert not store.exists()


def test_prices_added_from_a_file_price_an_unknown_model(
        anthropic_client: anthropic.Anthropic, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """DEFERRABLE_PRICES adds a model: its calls are priced from then on."""
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"claude-unreleased-9": {"input": 1.0, "output": 5.0}}))
    monkeypatch.setenv("DEFERRABLE_PRICES", str(prices))
    try:
        with deferrable.scope():
            deferrable.deferrable(anthropic_client.messages.create)(
                **message_request("x", model="claude-unreleased-9")).result(timeout=60)
        ledger_rows()
        found = report(capsys)
    finally:
        reset_prices()
    assert found["unpriced_calls"] == 0
    assert found["paid_usd"] > 0
