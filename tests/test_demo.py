"""`deferrable demo` tells the truth at a glance: the same work live and deferred side by
side, one saving (50 %), the emulator's wall times beside the real-world caveat, a closing
report of the deferred work only, short call sites, and a quick start. The demo runs for
real here: the official SDKs against the embedded emulator, through deferrable's engine."""

from __future__ import annotations

import io
import re

import pytest

from deferrable._demo import run_demo

CALLS = 40


@pytest.fixture(scope="module")
def output() -> str:
    """The demo's output for CALLS calls, written to a stream that is not a terminal."""
    out = io.StringIO()
    assert run_demo(requests=CALLS, out=out) == 0
    return out.getvalue()


def row(text: str, name: str) -> list[str]:
    """The cells of the side-by-side table's row `name` (its figures, then its note)."""
    line = next(line for line in text.splitlines() if line.startswith(f"  {name}  "))
    return line[len(name) + 2:].split()


def report_of(text: str) -> str:
    """The closing `deferrable report` section."""
    return text.split("\ndeferrable report\n", 1)[1]


def test_live_and_deferred_side_by_side_for_the_same_work(output: str) -> None:
    """One table holds both runs: same tokens, one request per call live, a handful deferred."""
    assert f"The same {CALLS} calls" in output
    live_requests, deferred_requests = (int(n) for n in row(output, "HTTP requests"))
    assert live_requests == CALLS
    assert deferred_requests <= 6  # create, a poll or two, the results
    assert row(output, "input tokens")[0] == row(output, "input tokens")[1]
    assert row(output, "output tokens")[0] == row(output, "output tokens")[1]


def test_one_headline_saving_of_50_percent(output: str) -> None:
    """The deferred cost is half the live one, and every percentage printed is that 50 %."""
    live_cost, deferred_cost = (float(n) for n in row(output, "cost, USD")[:2])
    assert deferred_cost == pytest.approx(live_cost / 2, abs=1e-6)
    headlines = [line for line in output.splitlines() if line.startswith("Deferring saved")]
    assert headlines == [f"Deferring saved 50% of the cost: ${deferred_cost:.6f} instead of "
                         f"${live_cost:.6f}, with the same answers."]
    percentages = {float(n) for n in re.findall(r"(\d+(?:\.\d+)?)%", output)}
    assert percentages == {50.0}


def test_wall_times_stand_beside_the_real_world_caveat(output: str) -> None:
    """Every deferred wall time printed says it is the emulator's; real batches take far longer."""
    lines = output.splitlines()
    wall = next(i for i, line in enumerate(lines) if line.startswith("  wall time, s"))
    caveat = " ".join(lines[wall:wall + 3])
    assert "on the emulator, whose batches end after 0.1 s" in caveat
    assert "real batches take minutes to hours (24 h at most)" in caveat
    deferred = [line for line in lines if "answered in" in line and "batch" in line]
    assert deferred
    assert all("(on the emulator: a real batch takes minutes to hours)" in line for line in deferred)


def test_the_report_holds_only_the_deferred_work(output: str) -> None:
    """The closing report has no live row, no 'all modes' sum and no candidate from the demo."""
    report = report_of(output)
    sites = report.split("\n\n", 1)[0].splitlines()[1:]
    assert len(sites) == 3
    assert all(line.split()[2] == "batch" and line.endswith("50.0%") for line in sites)
    totals = report.split("totals by mode\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split()[0] for line in totals] == ["MODE", "batch"]
    candidates = report.split("\n\n", 2)[2]
    assert candidates.startswith("candidates: no live call site recorded")
    assert "deferrable._demo" not in candidates


def test_call_sites_are_short(output: str) -> None:
    """The report names each call site by module and function, in under 40 characters."""
    sites = [line.split()[0] for line in report_of(output).split("\n\n", 1)[0].splitlines()[1:]]
    assert sorted(sites) == ["deferrable._demo.sentiment", "deferrable._demo.sentiment_openai",
                             "deferrable._demo.sentiment_sync"]
    assert all(len(site) < 40 for site in sites)


def test_result_lines_print_without_a_terminal(output: str) -> None:
    """Off a terminal every result line prints, and no progress line does."""
    assert "\r" not in output
    for line in (f"     {CALLS} answered in", f"     {CALLS} futures returned",
                 f"     {CALLS} labels (", "from 1 upload and 1 batch, 0 live requests",
                 "  live          40  POST /v1/messages", "list prices as of"):
        assert line in output, line


def test_a_single_call_runs_every_step() -> None:
    """`--requests 1` runs all four steps, each deferred step in one batch (its time, about
    a second after imports, is measured in the closing note, not asserted here)."""
    out = io.StringIO()
    assert run_demo(requests=1, out=out) == 0
    text = out.getvalue()
    assert "The same 1 call " in text
    assert "     1 answered in" in text
    assert "from 1 batch (on the emulator" in text
    assert "     1 label (" in text
    assert "from 1 upload and 1 batch, 0 live requests" in text
