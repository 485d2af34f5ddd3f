"""The before/after report: what the recorded calls paid, what the same calls cost live,
what deferring saved, by call site, model and mode (batch, flex, live), with totals per
mode; and the live call sites that would save the most if deferred (the candidates)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from typing import Any

from ._ledger import MONEY
from ._prices import AS_OF
from ._tokens import CLASSES

_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([mhd])$")
_UNIT = {"m": 60, "h": 3_600, "d": 86_400}

MODES = ("batch", "flex", "live")
"""The ledger's modes, in the order the report shows them."""
DEFERRED = frozenset({"batch", "flex"})
"""Modes of deferred calls: both paid at the batch price."""
_MODE_LABELS = {"batch": "batch (deferred)", "flex": "flex (deferred)", "live": "live"}


def parse_since(text: str, now: float) -> float:
    """Epoch seconds from ``30m`` / ``24h`` / ``7d`` (ago) or an ISO date or time (UTC
    unless it names a zone); ValueError otherwise."""
    span = _SPAN.match(text.strip())
    if span:
        return now - float(span.group(1)) * _UNIT[span.group(2)]
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use e.g. 24h, 7d, 2026-11-20)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def build_report(rows: Iterable[dict[str, Any]], *, since: float | None = None,
                 site: str | None = None, model: str | None = None) -> dict[str, Any]:
    """The report of ledger `rows` (filtered by time, call site substring and model).

    Totals are per mode (``by_mode``): what deferring saved is the deferred calls' own,
    never a share of a sum that also holds live calls. The top level carries the sums of
    every mode (what was paid, what it would have cost live, what was saved) without a
    percentage. The candidates are the live call sites, by what deferring them would save,
    less any site whose calls are deferred elsewhere in the same report (already done)."""
    chosen = [row for row in rows
              if (since is None or row.get("hour", 0) + 3_600 > since)
              and (site is None or site in str(row.get("site")))
              and (model is None or str(row.get("model", "")).startswith(model))]
    totals = _sum(chosen)
    deferred_sites = {row.get("site") for row in chosen if row.get("mode") in DEFERRED}
    live = _groups([row for row in chosen if row.get("mode") == "live"], ("site", "model"))
    candidates = [_candidate(group) for group in live if group["site"] not in deferred_sites]
    money = _money(totals)
    del money["saved_pct"]  # a share of live and deferred calls together says nothing
    return {
        **money, "calls": totals["calls"], "unpriced_calls": totals["unpriced"],
        "tokens": _tokens(totals), "prices_as_of": AS_OF,
        "filters": {"since": since, "site": site, "model": model},
        "by_mode": {mode: _totals(members) for mode, members in _by_mode(chosen)},
        "by_site": _by_site([_line(group) for group in _groups(chosen, ("site", "model", "mode"))]),
        "candidates": sorted((c for c in candidates
                              if c["would_save_usd"] > 0 or c["unpriced_calls"]),
                             key=lambda c: (-c["would_save_usd"], -c["unpriced_calls"], c["site"])),
        "live_sites_deferred_elsewhere": sorted({str(group["site"]) for group in live
                                                 if group["site"] in deferred_sites}),
    }


def _by_site(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`lines` (one per site, model and mode) with each site's together: the sites by what
    they paid, most first; a site's lines by model, then mode."""
    paid: dict[str, float] = {}
    for line in lines:
        paid[line["site"]] = paid.get(line["site"], 0.0) + line["paid_usd"]
    return sorted(lines, key=lambda line: (-paid[line["site"]], str(line["site"]),
                                           str(line["model"]), _mode_order(line["mode"])))


def _mode_order(mode: object) -> tuple[int, str]:
    return (MODES.index(mode) if mode in MODES else len(MODES), str(mode))


def _by_mode(rows: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """`rows` by mode, in the report's order of modes."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(str(row.get("mode")), []).append(row)
    return sorted(grouped.items(), key=lambda item: _mode_order(item[0]))


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    total = _sum(rows)
    return {"calls": total["calls"], "unpriced_calls": total["unpriced"],
            "tokens": _tokens(total), **_money(total)}


def _groups(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    grouped: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(tuple(row.get(k) for k in keys), []).append(row)
    return [{**dict(zip(keys, key, strict=True)), "provider": members[0].get("provider"),
             **_sum(members)} for key, members in grouped.items()]


def _sum(rows: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = dict.fromkeys(("calls", "unpriced", *CLASSES), 0)
    total.update(dict.fromkeys(MONEY, 0.0))
    for row in rows:
        for name in total:
            total[name] += row.get(name, 0)
    return total


def _tokens(total: dict[str, Any]) -> dict[str, int]:
    tokens = {name: int(total[name]) for name in CLASSES}
    return {**tokens, "total": sum(tokens.values())}


def _money(total: dict[str, Any]) -> dict[str, Any]:
    paid, live = total["paid_usd"], total["live_usd"]
    return {"paid_usd": round(paid, 6), "live_equivalent_usd": round(live, 6),
            "saved_usd": round(live - paid, 6),
            "saved_pct": round(100 * (live - paid) / live, 2) if live else None}


def _line(group: dict[str, Any]) -> dict[str, Any]:
    return {"site": group["site"], "model": group["model"], "mode": group["mode"],
            "provider": group["provider"], "calls": group["calls"],
            "unpriced_calls": group["unpriced"], "tokens": _tokens(group), **_money(group)}


def _candidate(group: dict[str, Any]) -> dict[str, Any]:
    paid, batch = group["paid_usd"], group["batch_usd"]
    return {"site": group["site"], "model": group["model"], "provider": group["provider"],
            "calls": group["calls"], "unpriced_calls": group["unpriced"],
            "paid_usd": round(paid, 6), "if_deferred_usd": round(batch, 6),
            "would_save_usd": round(paid - batch, 6)}


def render_report(report: dict[str, Any], title: str) -> str:
    """The report as a readable text table."""
    return "\n".join(_render(report, title))


def _render(report: dict[str, Any], title: str) -> Iterator[str]:
    yield title
    lines: list[dict[str, Any]] = report["by_site"]
    if not lines:
        yield "no calls recorded" + (" (with these filters)" if any(
            report["filters"].values()) else "")
        return
    money = ["CALLS", "TOKENS", "PAID", "LIVE-EQUIVALENT", "SAVED", "SAVED %"]
    yield from _table(["CALL SITE", "MODEL", "MODE", *money],
                      [[line["site"], line["model"], line["mode"], *_figures(line, line["mode"])]
                       for line in lines], numeric_from=3)
    yield ""
    yield "totals by mode"
    modes: dict[str, dict[str, Any]] = report["by_mode"]
    everything = {**report, "saved_pct": None}
    rows = [[_MODE_LABELS.get(mode, mode), *_figures(total, mode)] for mode, total in modes.items()]
    if len(rows) > 1:  # the sum of one mode would repeat it, without its own saving
        rows.append(["all modes", *_figures(everything, None)])
    yield from _table(["MODE", *money], rows, numeric_from=1)
    if report["unpriced_calls"]:
        yield (f"* {report['unpriced_calls']:,} calls of models without a known price are counted "
               "in CALLS and TOKENS but not in the dollars (add them with DEFERRABLE_PRICES)")
    yield ""
    yield from _render_candidates(report)


def _render_candidates(report: dict[str, Any]) -> Iterator[str]:
    candidates: list[dict[str, Any]] = report["candidates"]
    also_deferred: list[str] = report["live_sites_deferred_elsewhere"]
    if candidates:
        yield "candidates: live call sites, and what deferring them would save"
        yield from _table(["CALL SITE", "MODEL", "CALLS", "PAID LIVE", "IF DEFERRED", "WOULD SAVE"],
                          [[c["site"], c["model"], f"{c['calls']:,}", _usd(c["paid_usd"]),
                            _usd(c["if_deferred_usd"]), _usd(c["would_save_usd"])]
                           for c in candidates], numeric_from=2)
    elif also_deferred:
        yield "candidates: none (every live call site here is deferred elsewhere in this report)"
    else:
        yield ("candidates: no live call site recorded (run the job once under "
               "`deferrable observe -- python job.py` to record them)")
    if also_deferred:
        yield ("not candidates, since their calls are deferred elsewhere in this report: "
               + ", ".join(also_deferred))
    yield f"list prices as of {report['prices_as_of']}; a batch pays half of every token class"


def _figures(line: dict[str, Any], mode: str | None) -> list[str]:
    """CALLS, TOKENS and the money columns of a row in `mode` (None: of every mode); a live
    row saved nothing by definition, so its SAVED columns are blank."""
    return [f"{line['calls']:,}", _count(line["tokens"]["total"]),
            *_prices(line, saved=mode != "live")]


def _prices(line: dict[str, Any], *, saved: bool = True) -> list[str]:
    if line["unpriced_calls"] and line["unpriced_calls"] == line["calls"]:
        return ["price unknown", "price unknown", "", ""]
    mark = "*" if line["unpriced_calls"] else ""
    pct = line["saved_pct"]
    return [_usd(line["paid_usd"]) + mark, _usd(line["live_equivalent_usd"]) + mark,
            _usd(line["saved_usd"]) + mark if saved else "-",
            "" if pct is None else f"{pct:.1f}%" if saved else "-"]


def _usd(amount: float) -> str:
    return f"${amount:,.2f}" if abs(amount) >= 100 else f"${amount:,.4f}"


def _count(tokens: int) -> str:
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if tokens >= size:
            return f"{tokens / size:.1f}{unit}"
    return str(tokens)


def _table(header: list[str], rows: list[list[str]], numeric_from: int) -> Iterator[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        yield "  ".join(cell.rjust(w) if i >= numeric_from else cell.ljust(w)
                        for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
