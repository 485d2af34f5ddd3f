"""What the engine knows of a provider (a `Target`) and of a call (a `Call`)."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from .._options import Options
from ..ledger import Tokens
from ._settle import Waiter

Outcome = tuple[Any, BaseException | None]
"""A result line, decoded: (the answer handed back to the caller's SDK, None), or (None,
the exception the call raises: an outcome only a batch can have)."""


class Target(Protocol):
    """One batch destination (a provider, client identity and endpoint): the engine's
    only view of a provider. Its methods block; the engine runs them in worker threads.

    Result lines travel as the provider's JSON (what the journal keeps); `outcome()`
    turns one into what is handed back to the caller.
    """

    @property
    def key(self) -> Hashable:
        """Identity of the destination: calls with equal keys may share a batch."""

    @property
    def provider(self) -> str:
        """``"anthropic"`` or ``"openai"``."""

    @property
    def destination(self) -> str:
        """The destination as stable JSON text without secrets (credentials appear only
        as a fingerprint): part of each request's identity, and kept in the journal."""

    @property
    def max_requests(self) -> int:
        """The provider's limit of requests per batch."""

    @property
    def max_bytes(self) -> int:
        """The provider's limit of bytes per batch."""

    @property
    def max_units(self) -> int | None:
        """The provider's limit of units (its own per-call count) per batch, if any."""

    @property
    def tags_batches(self) -> bool:
        """Whether a batch carries its tag at the provider, so that `recover()` finds it
        with certainty (else candidates are verified by their results)."""

    def canonical(self, body: Any) -> str:
        """The body as the canonical JSON text of what is sent."""

    def submit(self, requests: list[tuple[str, Any]], tag: str) -> str:
        """Create a batch of (custom_id, body) requests, tagged `tag` where the provider
        can keep a tag; returns its id."""

    def poll(self, batch_id: str) -> BatchStatus:
        """Whether the batch has ended, and how many of its requests are done."""

    def results(self, batch_id: str) -> Iterator[tuple[str, Any]]:
        """Stream the ended batch's result lines as (custom_id, line)."""

    def outcome(self, line: Any, batch: tuple[str, Any] | None = None) -> Outcome:
        """The answer the live call would have had for this result line, or the error of
        an outcome only a batch can have. `batch` (its id and its span's context) goes
        with the answer, for the call's span."""

    def transient(self, line: Any) -> bool:
        """Whether the line's failure may pass if the request is sent again (its batch
        expired or was cancelled before it ran; a 429, 5xx or overloaded answer)."""

    @property
    def retries(self) -> int:
        """How many times the caller's client retries a transient failure (its
        ``max_retries``): the default for resubmitting a request in a later batch."""

    def succeeded(self, line: Any) -> bool:
        """Whether the line is a success (a result worth keeping for a rerun)."""

    def spent(self, line: Any) -> tuple[str, Tokens] | None:
        """The model and tokens a successful result line was billed for."""

    def recover(self, tag: str, created_at: float, requests: int) -> list[str]:
        """Ids of batches that may be the one created with `tag` around `created_at`
        (epoch seconds) holding `requests` requests, whose create call's answer was lost."""

    @property
    def offers_flex(self) -> bool:
        """Whether the destination's requests can go flex (OpenAI's flex processing)."""

    def cancel(self, batch_id: str) -> None:
        """Ask the provider to cancel the batch (what already finished stays readable)."""

    def kept(self, custom_id: str, body: Any, request_id: str) -> Any:
        """The result line a successful live answer (its JSON `body`) would have been in a
        batch: how a call rescued live is kept in the journal for a rerun."""

    def discard(self, batch_id: str) -> None:
        """Delete what the batch left at the provider (e.g. files) once its results are
        read; called only when the `delete_files` option holds."""


@dataclass(frozen=True)
class BatchStatus:
    """What a poll tells of a batch: whether it has ended, and its requests done (ended
    one way or another) out of its total, from the provider's counts."""

    ended: bool
    done: int = 0
    total: int = 0


class RequestRejectedError(Exception):
    """Raised by `Target.submit` when the provider refused the whole batch because of one
    request: the engine fails that call with `error` and submits the rest again."""

    def __init__(self, custom_id: str, error: BaseException) -> None:
        super().__init__(f"request {custom_id} rejected: {error}")
        self.custom_id = custom_id
        self.error = error


@dataclass(eq=False)
class Call:
    """One deferred call, from its submission to its outcome."""

    target: Target
    body: Any
    future: Waiter
    options: Options
    site: str = "?"
    """Where the call was made, as the ledger names it."""
    custom_id: str | None = None
    """The request's identity, assigned when its batch is planned."""
    resubmitted: int = 0
    """How many times a transient result sent the request again in a later batch."""
    gone: bool = False
    """Whether the call already went again because its batch was unknown to its provider."""
    deadline: float | None = None
    """The monotonic time of the call's deadline, if it has one."""
    rescue_at: float | None = None
    """The monotonic time at which its batch is cancelled and the call rescued, if it has
    not ended by then: the deadline less the rescue margin."""


class RescueLive(Exception):  # noqa: N818 - a signal to the patch layer, not an error
    """What a call whose deadline came is settled with when it goes live: the patch layer
    sends it as the SDK would, then hands the answer to `keep` (for the journal)."""

    def __init__(self, call: Call, keep: Any) -> None:
        super().__init__("deferrable: this call's deadline came before its batch ended; "
                         "it runs live")
        self.call = call
        self.keep = keep
        """``keep(body, request_id)``: record the successful live answer for a rerun."""


class SendFlex(Exception):  # noqa: N818 - a signal to the patch layer, not an error
    """What a call of a ``lane="auto"`` group is settled with when it goes flex: the patch
    layer sends it live with ``service_tier="flex"``, and submits it again for a batch if
    flex has no capacity."""

    def __init__(self) -> None:
        super().__init__("deferrable: this call goes flex")
