"""Spend caps: a scope's budget refuses a call that could take its spend past the cap,
before anything is submitted for it."""

from __future__ import annotations

import contextvars
import threading

from .._errors import BudgetExceededError

_active: contextvars.ContextVar[tuple[Budget, ...]] = contextvars.ContextVar(
    "deferrable_budgets", default=())


class Budget:
    """A cap in USD on what the calls of a scope (or of a decorated function) spend: their
    actual cost once known, and until then the most each pending call can cost."""

    def __init__(self, cap_usd: float) -> None:
        if not cap_usd >= 0:
            raise ValueError(f"max_cost_usd must be zero or more, not {cap_usd!r}")
        self.cap_usd = float(cap_usd)
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self._lock = threading.Lock()

    def reserve(self, estimate_usd: float, what: str) -> None:
        """Hold `estimate_usd` for a call about to be made; BudgetExceededError if the cap
        cannot cover it."""
        with self._lock:
            if self.spent_usd + self.reserved_usd + estimate_usd > self.cap_usd + 1e-12:
                raise BudgetExceededError(
                    f"{what} could cost up to ${estimate_usd:.6f}, which would take this "
                    f"scope past its budget of ${self.cap_usd:.6f} (spent ${self.spent_usd:.6f}"
                    f", ${self.reserved_usd:.6f} held for calls in flight); it was not made")
            self.reserved_usd += estimate_usd

    def settle(self, estimate_usd: float, actual_usd: float | None) -> None:
        """Replace a call's reservation by what it cost (None: it failed, cost nothing)."""
        with self._lock:
            self.reserved_usd = max(0.0, self.reserved_usd - estimate_usd)
            self.spent_usd += actual_usd or 0.0


    def summary(self) -> str:
        """``budget $cap: spent $x, held $y`` (held: the worst cases of calls in flight)."""
        with self._lock:
            return (f"budget ${self.cap_usd:.6f}: spent ${self.spent_usd:.6f}, held "
                    f"${self.reserved_usd:.6f}")


def active_budgets() -> tuple[Budget, ...]:
    """The budgets of the scopes around the caller, innermost last."""
    return _active.get()


def enter_budget(budget: Budget) -> contextvars.Token[tuple[Budget, ...]]:
    """Make `budget` apply to the calls made from here on (with those around it)."""
    return _active.set((*_active.get(), budget))


def leave_budget(token: contextvars.Token[tuple[Budget, ...]]) -> None:
    """Undo `enter_budget`."""
    _active.reset(token)
