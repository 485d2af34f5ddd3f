"""The before/after report: what the recorded calls paid, what the same calls cost live,
what deferring saved, by call site and model; and the live call sites that would save the
most if deferred (the candidates)."""

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
    """The report of ledger `rows` (filtered by time, call site substring and model)."""
    chosen = [row for row in rows
              if (since is None or row.get("hour", 0) + 3_600 > since)
              and (site is None or site in str(row.get("site")))
              and (model is None or str(row.get("model", "")).startswith(model))]
    groups = _groups(chosen, ("site", "model"))
    totals = _sum(chosen)
    candidates = [_candidate(group) for group in _groups(
        [row for row in chosen if row.get("mode") == "live"], ("site", "model"))]
    return {
        **_money(totals), "calls": totals["calls"], "unpriced_calls": totals["unpriced"],
        "tokens": _tokens(totals), "prices_as_of": AS_OF,
        "filters": {"since": since, "site": site, "model": model},
        "by_site": sorted((_line(group) for group in groups),
                          key=lambda line: (-line["paid_usd"], line["site"], line["model"])),
        "candidates": sorted((c for c in candidates
                              if c["would_save_usd"] > 0 or c["unpriced_calls"]),
                             key=lambda c: (-c["would_save_usd"], -c["unpriced_calls"])),
    }


def _groups(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    grouped: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(tuple(row.get(k) for k in keys), []).append(row)
    return [{**dict(zip(keys, key, strict=True)), "provider": members[0].get("provider"),
             "modes": sorted({str(m.get("mode")) for m in members}), **_sum(members)}
            for key, members in grouped.items()]


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
    return {"site": group["site"], "model": group["model"], "provider": group["provider"],
            "modes": group["modes"], "calls": group["calls"], "unpriced_calls": group["unpriced"],
            "tokens": _tokens(group), **_money(group)}


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
    header = ["CALL SITE", "MODEL", "CALLS", "TOKENS", "PAID", "LIVE-EQUIVALENT", "SAVED", "SAVED %"]
    cells = [[line["site"], line["model"], f"{line['calls']:,}", _count(line["tokens"]["total"]),
              *_prices(line)] for line in lines]
    total = {**report, "unpriced_calls": report["unpriced_calls"]}
    cells.append(["TOTAL", "", f"{report['calls']:,}", _count(report["tokens"]["total"]),
                  *_prices(total)])
    yield from _table(header, cells, numeric_from=2)
    if report["unpriced_calls"]:
        yield (f"* {report['unpriced_calls']:,} calls of models without a known price are counted "
               "in CALLS and TOKENS but not in the dollars (add them with DEFERRABLE_PRICES)")
    candidates: list[dict[str, Any]] = report["candidates"]
    yield ""
    if not candidates:
        yield "candidates: no live call site recorded (deferrable.observe() records them)"
        return
    yield "candidates: live call sites, and what deferring them would save"
    yield from _table(["CALL SITE", "MODEL", "CALLS", "PAID LIVE", "IF DEFERRED", "WOULD SAVE"],
                      [[c["site"], c["model"], f"{c['calls']:,}", _usd(c["paid_usd"]),
                        _usd(c["if_deferred_usd"]), _usd(c["would_save_usd"])]
                       for c in candidates], numeric_from=2)
    yield f"list prices as of {report['prices_as_of']}; a batch pays half of every token class"


def _prices(line: dict[str, Any]) -> list[str]:
    if line["unpriced_calls"] and line["unpriced_calls"] == line["calls"]:
        return ["price unknown", "price unknown", "", ""]
    mark = "*" if line["unpriced_calls"] else ""
    pct = line["saved_pct"]
    return [_usd(line["paid_usd"]) + mark, _usd(line["live_equivalent_usd"]) + mark,
            _usd(line["saved_usd"]) + mark, "" if pct is None else f"{pct:.1f}%"]


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
