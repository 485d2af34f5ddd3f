"""The engine's decisions, free of I/O: which buffered calls form a batch, and when.

Calls are buffered per group (provider, client identity, endpoint, ...). A group becomes
a batch when it reaches its request count, byte size or unit count (a provider's own
measure, such as OpenAI's embedding inputs), or when its oldest call has waited
`max_wait`. Nothing here sleeps, sends or reads a clock: the caller passes `now`,
so the policy is tested without a network and driven from any runtime.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")


@dataclass(frozen=True)
class GroupLimits:
    """When one group's buffer becomes a batch."""

    max_requests: int
    max_bytes: int
    max_wait: float
    max_units: int | None = None
    """Units (a provider-defined count per call) per batch; None is unlimited."""


@dataclass
class _Group(Generic[Item]):
    limits: GroupLimits
    items: list[Item] = field(default_factory=list)
    size: int = 0
    units: int = 0
    oldest: float = 0.0


class Buffer(Generic[Item]):
    """Buffered calls by group key, and the batches they become."""

    def __init__(self) -> None:
        self._groups: dict[Hashable, _Group[Item]] = {}

    def add(self, key: Hashable, item: Item, size: int, limits: GroupLimits,
            now: float, units: int = 1) -> list[list[Item]]:
        """Buffer `item` of `size` bytes and `units` units; returns the batches this
        addition completes.

        A call that would push its group over `max_bytes` or `max_units` first closes the
        group as it is, so no batch is ever over a limit (a single call larger than the
        limit still travels alone, and the provider answers it).
        """
        ready: list[list[Item]] = []
        group = self._groups.get(key)
        if group is not None and group.items and _overflows(group, size, units, limits):
            ready.append(self._close(key))
            group = None
        if group is None:
            group = self._groups[key] = _Group(limits=limits, oldest=now)
        group.items.append(item)
        group.size += size
        group.units += units
        if (len(group.items) >= limits.max_requests or group.size >= limits.max_bytes
                or (limits.max_units is not None and group.units >= limits.max_units)):
            ready.append(self._close(key))
        return ready

    def due(self, now: float) -> list[list[Item]]:
        """The batches whose oldest call has waited its group's `max_wait`."""
        keys = [key for key, group in self._groups.items()
                if now - group.oldest >= group.limits.max_wait]
        return [self._close(key) for key in keys]

    def waited(self, now: float, age: float, held: float) -> list[list[Item]]:
        """The batches of groups held at least `held` seconds (`max_wait`) whose oldest
        call has waited `age` already: how `deferrable.map` paces its later calls."""
        keys = [key for key, group in self._groups.items()
                if group.limits.max_wait >= held and now - group.oldest >= age]
        return [self._close(key) for key in keys]

    def next_due(self) -> float | None:
        """When the next group falls due, or None with nothing buffered."""
        return min((g.oldest + g.limits.max_wait for g in self._groups.values()), default=None)

    def drain(self) -> list[list[Item]]:
        """Every buffered call as batches, now (`flush()`)."""
        return [self._close(key) for key in list(self._groups)]

    def __len__(self) -> int:
        return sum(len(group.items) for group in self._groups.values())

    def _close(self, key: Hashable) -> list[Item]:
        return self._groups.pop(key).items


def _overflows(group: _Group[Item], size: int, units: int, limits: GroupLimits) -> bool:
    """Whether adding a call of `size` bytes and `units` units would pass a limit."""
    if group.size + size > limits.max_bytes:
        return True
    return limits.max_units is not None and group.units + units > limits.max_units
