"""`deferrable report`: the before/after table by call site and model, its filters, its
JSON, the candidates section, and prices a user adds."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anthropic
import pytest

import deferrable
from deferrable.cli import main
from deferrable.journal import Journal
from deferrable.ledger import Spend, Tokens, build_report, render_report, reset_prices, row_of
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
    """--json: all-mode sums (no saved %), totals and lines per mode; live sites as candidates."""
    some_work(anthropic_client)
    found = report(capsys)
    assert found["calls"] == 10
    assert found["unpriced_calls"] == 1
    assert found["saved_usd"] == pytest.approx(found["live_equivalent_usd"] - found["paid_usd"])
    assert "saved_pct" not in found  # a share of deferred and live calls together
    assert list(found["by_mode"]) == ["batch", "live"]
    batch, live = found["by_mode"]["batch"], found["by_mode"]["live"]
    assert (batch["calls"], batch["saved_pct"]) == (6, pytest.approx(50.0))
    assert (live["calls"], live["saved_usd"]) == (4, 0)
    assert found["paid_usd"] == pytest.approx(batch["paid_usd"] + live["paid_usd"])
    deferred = next(line for line in found["by_site"] if line["site"].endswith("summarise"))
    assert deferred["site"] == "tests.test_report_cli.some_work.<locals>.summarise"
    assert (deferred["mode"], deferred["saved_pct"]) == ("batch", pytest.approx(50.0))
    candidate, unpriced = found["candidates"]  # a live site of unknown price is one too
    assert (unpriced["model"], unpriced["unpriced_calls"]) == ("claude-unreleased-9", 1)
    assert candidate["model"] == "claude-sonnet-4-6"
    assert candidate["site"] == "tests.test_report_cli.some_work"
    assert candidate["would_save_usd"] == pytest.approx(candidate["paid_usd"] / 2)


def test_report_text_reads_as_a_table(anthropic_client: anthropic.Anthropic,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The text report: rows per mode, totals by mode (no all-mode %), 'price unknown', candidates."""
    some_work(anthropic_client)
    assert main(["report"]) == 0
    text = capsys.readouterr().out
    assert "CALL SITE" in text
    assert "LIVE-EQUIVALENT" in text
    assert "50.0%" in text
    assert "price unknown" in text
    assert "TOTAL" not in text
    totals = text.split("totals by mode\n", 1)[1].splitlines()
    assert totals[1].startswith("batch (deferred)")
    assert totals[1].endswith("50.0%")
    assert totals[2].startswith("live ")
    assert totals[3].startswith("all modes")
    assert "%" not in totals[3]
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


def spend(site: str, mode: str, calls: int, model: str = "gpt-5.4-mini") -> list[dict[str, Any]]:
    """Ledger rows of `calls` calls at `site` in `mode`, 2,000 input and 300 output tokens each."""
    return [row_of(Spend(site, "openai", model, mode, Tokens(input=2_000, output=300)), at=0)
            ] * calls


def test_flex_calls_are_a_mode_of_their_own(capsys: pytest.CaptureFixture[str]) -> None:
    """Flex rows (batch prices) get their own line and their own total, saving 50 %."""
    journal = Journal(os.environ["DEFERRABLE_STORE"])
    try:
        journal.add_ledger(spend("jobs.enrich.tag", "flex", 4) + spend("jobs.enrich.tag", "batch", 6)
                           + spend("jobs/run.py:main", "live", 2))
    finally:
        journal.close()
    found = report(capsys)
    assert list(found["by_mode"]) == ["batch", "flex", "live"]
    flex = found["by_mode"]["flex"]
    assert (flex["calls"], flex["saved_pct"]) == (4, pytest.approx(50.0))
    assert [(line["mode"], line["calls"]) for line in found["by_site"]] == [
        ("batch", 6), ("flex", 4), ("live", 2)]  # a site's lines together, by mode
    assert main(["report"]) == 0
    text = capsys.readouterr().out
    assert "flex (deferred)" in text
    assert "batch (deferred)" in text


def test_a_site_deferred_elsewhere_is_no_candidate() -> None:
    """Live calls at a site whose calls are also deferred are not a candidate; they are named."""
    rows = (spend("jobs.nightly.classify", "batch", 10) + spend("jobs.nightly.classify", "live", 3)
            + spend("jobs/backfill.py:summarise", "live", 5))
    found = build_report(rows)
    assert [c["site"] for c in found["candidates"]] == ["jobs/backfill.py:summarise"]
    assert found["live_sites_deferred_elsewhere"] == ["jobs.nightly.classify"]
    text = render_report(found, "report")
    assert "not candidates, since their calls are deferred elsewhere in this report: " \
           "jobs.nightly.classify" in text
    only_deferred_elsewhere = build_report(spend("a.f", "batch", 2) + spend("a.f", "live", 1))
    assert only_deferred_elsewhere["candidates"] == []
    assert "candidates: none" in render_report(only_deferred_elsewhere, "report")


def test_one_mode_has_no_all_modes_total() -> None:
    """With one mode, the totals show it once (with its saving); two modes add their sum."""
    one = render_report(build_report(spend("jobs.nightly.classify", "batch", 4)), "report")
    totals = one.split("totals by mode\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split()[0] for line in totals] == ["MODE", "batch"]
    assert totals[1].endswith("50.0%")
    two = render_report(build_report(spend("a.f", "batch", 4) + spend("b.g", "live", 1)), "report")
    assert "all modes" in two.split("totals by mode\n", 1)[1]
