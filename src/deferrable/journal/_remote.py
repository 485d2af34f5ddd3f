"""What the providers say of the journal's batches: asked with the official SDKs and the
user's credentials from the environment, for ``deferrable status --refresh`` and
``deferrable cancel``, and reconciled into the journal.

Credentials go only to a base URL the user configured: ``--base-url``, the SDK's variable
(``ANTHROPIC_BASE_URL`` / ``OPENAI_BASE_URL``), or the SDK's default. The base URL a
journal records is used only when it is one of those, so that a tampered journal cannot
send the user's keys elsewhere.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._journal import Journal
from ._liveness import is_alive
from ._records import BatchRecord

DEFAULT_BASE_URLS = {"anthropic": "https://api.anthropic.com",
                     "openai": "https://api.openai.com/v1"}
"""The base URL each SDK uses when neither its caller nor the environment names one."""
BASE_URL_VARIABLES = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL"}
CONFIRM_AFTER = 1.0
"""Seconds between the two lookups that must both answer "not found" before a batch is
taken to be unknown to its provider."""
RUNNING = "running"
ENDED_STATES = frozenset({"ended", "cancelled", "expired", "failed"})
"""Provider states of a batch that has ended: its results wait to be collected."""


class UntrustedBaseURLError(Exception):
    """The journal names a base URL the user did not configure: no credentials go there."""


class UnreachableError(Exception):
    """The provider could not be asked (no credentials, a network or server error)."""


@dataclass(frozen=True)
class Remote:
    """What the provider says of one batch the journal holds open.

    `state` is ``running``, ``cancelling``, ``ended``, ``cancelled``, ``expired`` or
    ``failed`` (the provider's own), or ``unknown`` (not found, twice), ``never created``
    (a dead process's create left no batch), ``being created`` (by a live process),
    ``may exist`` (batches of its size and time exist: a rerun checks them), or ``not
    checked`` (`detail` says why).
    """

    state: str
    detail: str | None = None
    lost: bool = False
    """Whether the journal now records the batch as lost (a rerun submits its requests)."""
    batch_id: str | None = None
    """The provider's id, when the lookup found it (a dead process's create)."""


def destination_of(record: BatchRecord) -> dict[str, Any]:
    """Where the batch went (provider, base URL, betas...), from its journal record."""
    try:
        found = json.loads(record.destination)
    except ValueError:
        found = None
    return {**(found if isinstance(found, dict) else {}), "provider": record.provider}


def trusted_base_url(provider: str, recorded: object, given: str | None = None) -> str | None:
    """The base URL to send credentials to, for a batch the journal says went to
    `recorded`: `given` (``--base-url``) when given; `recorded` when it has the origin of
    the SDK's variable or of its default; None (the SDK's own choice) when nothing is
    recorded. Raises `UntrustedBaseURLError` for any other."""
    if given:
        return given
    if not recorded:
        return None
    variable = BASE_URL_VARIABLES[provider]
    trusted = [DEFAULT_BASE_URLS[provider], os.environ.get(variable) or ""]
    if str(recorded) and _origin(str(recorded)) in {_origin(url) for url in trusted if url}:
        return str(recorded)
    raise UntrustedBaseURLError(
        f"the journal says this batch went to {recorded}, which is neither {variable} nor "
        f"the SDK's default ({DEFAULT_BASE_URLS[provider]}), so your credentials are not "
        f"sent there; if you trust it, pass --base-url {recorded} or set {variable}")


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port of `url` (the port made explicit): where credentials go."""
    parts = urllib.parse.urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"https": 443, "http": 80}.get(scheme)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def look_up(journal: Journal, record: BatchRecord, *,
            confirm_after: float = CONFIRM_AFTER) -> Remote:
    """Ask the provider about `record`, a batch the journal holds open, and reconcile the
    journal: a batch the provider does not know (not found, twice `confirm_after` seconds
    apart), or a dead process's create that left no batch, is recorded lost, so that a
    rerun submits its requests again; a batch such a create did leave (found by its tag)
    is recorded with its id. A batch that ended keeps its state: a rerun collects its
    results."""
    destination = destination_of(record)
    try:
        provider = _Provider(record.provider, destination)
    except (UntrustedBaseURLError, UnreachableError) as error:
        return Remote("not checked", str(error))
    try:
        if record.batch_id is not None:
            return _look_up_batch(journal, record, record.batch_id, provider, confirm_after)
        if is_alive(record.owner):
            return Remote("being created")
        return _look_for_create(journal, record, provider, confirm_after)
    except UnreachableError as error:
        return Remote("not checked", str(error))
    finally:
        provider.close()


def _look_up_batch(journal: Journal, record: BatchRecord, batch_id: str, provider: _Provider,
                   confirm_after: float) -> Remote:
    state = provider.state(batch_id)
    if state is None:
        time.sleep(confirm_after)
        state = provider.state(batch_id)
    if state is not None:
        return Remote(state, batch_id=batch_id)
    if not provider.same_credentials():
        return Remote("unknown", f"not found with your credentials, which are not those batch "
                      f"{batch_id} was created with: not marked lost")
    lost = journal.unknown_to_provider(record.token, batch_id)
    return Remote("unknown", f"{record.provider} does not know batch {batch_id}", lost=lost)


def _look_for_create(journal: Journal, record: BatchRecord, provider: _Provider,
                     confirm_after: float) -> Remote:
    """A dead process's create with no batch id: its batch, found by its tag; else other
    batches that could be it (a rerun checks them); else none, and it is lost."""
    tagged, candidates = provider.find(record, journal.batch_ids())
    if tagged is not None:
        if journal.adopted(record.token, record.owner, tagged):
            record = journal.batch(record.token) or record
            return _look_up_batch(journal, record, tagged, provider, confirm_after)
        return Remote("being created", "another process took it over")
    if candidates:
        return Remote("may exist", f"{len(candidates)} batch(es) of its size and time exist "
                      "at the provider; a rerun checks whether one is its own")
    lost = journal.never_created(record.token, record.owner)
    return Remote("never created", lost=lost)


class _Provider:
    """One provider's SDK client for the destination a batch went to."""

    def __init__(self, provider: str, destination: dict[str, Any]) -> None:
        if provider not in DEFAULT_BASE_URLS:
            raise UnreachableError(f"unknown provider {provider!r}")
        self.name = provider
        self.destination = destination
        self._sent: list[str] = []
        """The fingerprints of the credentials each request carried."""
        base_url = trusted_base_url(provider, destination.get("base_url"))
        self._client: Any = (_anthropic_client if provider == "anthropic"
                             else _openai_client)(base_url, destination, self._note)

    def close(self) -> None:
        """Close the SDK client."""
        self._client.close()

    def _note(self, request: Any) -> None:
        from ..providers._deferral import serving_headers

        self._sent.append(serving_headers(request.headers)[0])

    def same_credentials(self) -> bool:
        """Whether the last request carried the credentials the batch was created with (by
        the fingerprint its destination records): a batch another account made is "not
        found" for this one, and must not be taken for lost."""
        recorded = self.destination.get("credentials")
        return recorded is None or (bool(self._sent) and self._sent[-1] == recorded)

    def state(self, batch_id: str) -> str | None:
        """The batch's state at the provider; None when it is not found there."""
        state: str | None
        if self.name == "anthropic":
            state = self._call(lambda: _anthropic_state(
                self._batches().retrieve(batch_id, **self._anthropic_extra())))
        else:
            state = self._call(lambda: _OPENAI_STATES.get(
                str(self._client.batches.retrieve(batch_id).status), RUNNING))
        return state

    def find(self, record: BatchRecord, known: set[str]) -> tuple[str | None, list[str]]:
        """The batch a create made although its id never reached the journal: (its id
        when tagged with the record's token, else the untagged batches of its size and
        time that the journal does not know)."""
        if self.name == "openai":
            from ..providers.openai import tagged_with

            return self._call(lambda: tagged_with(self._client.batches.list(limit=100),
                                                  record.token, record.created_at)), []
        from ..providers.anthropic import sized_like

        found = self._call(lambda: sized_like(
            self._batches().list(limit=100, **self._anthropic_extra()), record.created_at,
            record.requests))
        return None, [batch_id for batch_id in found or [] if batch_id not in known]

    def _batches(self) -> Any:
        client = self._client
        return client.beta.messages.batches if self.destination.get("beta") else client.messages.batches

    def _anthropic_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.destination.get("workspace"):
            extra["workspace_id"] = str(self.destination["workspace"])
        betas = [str(beta) for beta in self.destination.get("betas") or ()]
        if self.destination.get("beta") and betas:
            extra["betas"] = betas
        return extra

    def _call(self, ask: Callable[[], Any]) -> Any:
        """`ask()`, None when the provider answers 404; its other errors are `UnreachableError`."""
        import anthropic
        import openai

        try:
            return ask()
        except (anthropic.NotFoundError, openai.NotFoundError):
            return None
        except (anthropic.AnthropicError, openai.OpenAIError) as error:
            raise UnreachableError(str(getattr(error, "message", None) or error)) from None


def _anthropic_client(base_url: str | None, destination: dict[str, Any],
                      note: Callable[[Any], None]) -> Any:
    import anthropic

    client = anthropic.Anthropic(base_url=base_url, http_client=anthropic.DefaultHttpxClient(
        event_hooks={"request": [note]}))
    if client.api_key is None and client.auth_token is None and client.credentials is None:
        client.close()
        raise UnreachableError("no Anthropic credentials; set ANTHROPIC_API_KEY")
    return client


def _openai_client(base_url: str | None, destination: dict[str, Any],
                   note: Callable[[Any], None]) -> Any:
    import openai

    http_client = openai.DefaultHttpxClient(event_hooks={"request": [note]})
    try:
        return openai.OpenAI(base_url=base_url, organization=destination.get("organization"),
                             project=destination.get("project"), http_client=http_client)
    except openai.OpenAIError as error:
        http_client.close()
        raise UnreachableError(str(error)) from None


def _anthropic_state(batch: Any) -> str:
    """A Message Batch's state in this module's words."""
    status = str(batch.processing_status)
    if status == "in_progress":
        return RUNNING
    if status == "canceling":
        return "cancelling"
    counts = batch.request_counts
    if batch.cancel_initiated_at is not None and counts.canceled:
        return "cancelled"
    if counts.expired:
        return "expired"
    return "ended"


_OPENAI_STATES = {"validating": RUNNING, "in_progress": RUNNING, "finalizing": RUNNING,
                  "cancelling": "cancelling", "cancelled": "cancelled", "expired": "expired",
                  "completed": "ended", "failed": "failed"}
