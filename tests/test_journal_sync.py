"""The journal with sync code: request identity (occurrences, dedupe), reruns served from
it, what it keeps and for how long, and journals it refuses (the async twin is
test_journal_async)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import anthropic
import diskcache
import pytest

import deferrable
from deferrable import JournalCorruptError, JournalError
from deferrable.emulator import Emulator
from deferrable.journal import Journal, close_journals
from tests.emulator_helpers import message_request

PROMPTS = ["same question", "same question", "same question", "another", "a third"]


def store() -> Path:
    """The journal the test runs against (set per test by the autouse fixture)."""
    return Path(os.environ["DEFERRABLE_STORE"])


def batch_requests(emulator: Emulator) -> int:
    """Requests the emulator has accepted in Anthropic batches so far."""
    return int(emulator.stats()["batches"].get("anthropic_batch_requests", 0))


def run(client: anthropic.Anthropic, prompts: list[str], **options: object) -> list[str]:
    """One 'run' of a job: each prompt deferred, answers in order."""
    with deferrable.scope(**options):
        futures = [deferrable.deferrable(ask)(client, text) for text in prompts]
    return [f.result(timeout=60) for f in futures]


def ask(client: anthropic.Anthropic, text: str) -> str:
    """One call's text."""
    message = client.messages.create(**message_request(text))
    block = message.content[0]
    return block.text if block.type == "text" else ""


def new_process() -> None:
    """Forget the journal objects, as a new process would (occurrences count afresh)."""
    deferrable.engine.engine().finish_cleanups()
    close_journals()


def request_ids() -> list[str]:
    """The custom ids the journal holds."""
    journal = Journal(store())
    try:
        return sorted(custom_id for custom_id, _ in journal.requests())
    finally:
        journal.close()


def test_identical_calls_are_distinct_requests(anthropic_client: anthropic.Anthropic,
                                               emulator: Emulator) -> None:
    """n identical calls in one run are n requests, numbered by occurrence."""
    run(anthropic_client, PROMPTS)
    assert batch_requests(emulator) == 5
    ids = request_ids()
    assert len(ids) == 5
    occurrences = sorted(custom_id.rsplit("-", 1)[1] for custom_id in ids)
    assert occurrences == ["0", "0", "0", "1", "2"]


def test_dedupe_collapses_identical_requests(anthropic_client: anthropic.Anthropic,
                                             emulator: Emulator) -> None:
    """With dedupe=True identical calls share one request, and each gets the answer."""
    answers = run(anthropic_client, PROMPTS, dedupe=True)
    assert batch_requests(emulator) == 3
    assert answers[0] == answers[1] == answers[2] != answers[3]


def test_a_rerun_is_served_from_the_journal(anthropic_client: anthropic.Anthropic,
                                            emulator: Emulator) -> None:
    """A second run of the same calls is answered from the journal: no request is sent."""
    first = run(anthropic_client, PROMPTS)
    new_process()
    served = emulator.stats()["requests"]
    assert run(anthropic_client, PROMPTS) == first
    assert emulator.stats()["requests"] == served


def test_a_longer_rerun_pays_only_for_the_new_occurrences(anthropic_client: anthropic.Anthropic,
                                                          emulator: Emulator) -> None:
    """A rerun with one more identical call pays for that one only (the k-th maps to the k-th)."""
    run(anthropic_client, PROMPTS)
    new_process()
    run(anthropic_client, [*PROMPTS, "same question"])
    assert batch_requests(emulator) == 6


def test_reuse_for_zero_pays_again(anthropic_client: anthropic.Anthropic,
                                   emulator: Emulator) -> None:
    """reuse_for=0: a result handed out once is not served to a later run."""
    run(anthropic_client, PROMPTS, reuse_for=0)
    new_process()
    run(anthropic_client, PROMPTS, reuse_for=0)
    assert batch_requests(emulator) == 10


def test_failed_requests_are_tried_again(anthropic_client: anthropic.Anthropic,
                                         emulator: Emulator) -> None:
    """An errored request is not kept: the rerun submits it again (and it fails again)."""
    for attempt in (1, 2):
        with deferrable.scope():
            ok = deferrable.deferrable(ask)(anthropic_client, "fine")
            bad = deferrable.deferrable(ask)(anthropic_client, "{{error:invalid_request_error}}")
        assert ok.result(timeout=60)
        assert isinstance(bad.exception(timeout=60), anthropic.APIStatusError)
        new_process()
        assert batch_requests(emulator) == 1 + attempt


def test_journal_false_keeps_nothing(anthropic_client: anthropic.Anthropic) -> None:
    """journal=False writes nothing on disk, and calls still resolve."""
    assert run(anthropic_client, ["a"], journal=False)
    assert not store().exists()


def test_the_journal_is_private_and_holds_no_key(emulator: Emulator) -> None:
    """The journal's directory is 0700, and no byte of it holds the API key."""
    secret = "sk-ant-journal-test-0123456789abcdef"
    client = anthropic.Anthropic(api_key=secret, base_url=emulator.url)
    try:
        run(client, PROMPTS)
    finally:
        client.close()
    new_process()
    assert stat.S_IMODE(store().stat().st_mode) == 0o700
    for path in store().rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_a_pickled_row_is_refused_and_never_run(anthropic_client: anthropic.Anthropic,
                                                tmp_path: Path) -> None:
    """A row holding a pickle fails the call that reads it with a clear error; it is never unpickled."""
    run(anthropic_client, ["fine"])
    new_process()
    [custom_id] = request_ids()
    proof = tmp_path / "the-pickle-ran"
    with diskcache.Cache(str(store())) as tampered:  # default Disk: pickles
        tampered.set(f"r:{custom_id}", Exploit(str(proof)))
    with pytest.raises(JournalCorruptError, match=f"r:{custom_id}"):
        run(anthropic_client, ["fine"])
    assert not proof.exists()


class Exploit:
    """Unpickling this makes a directory: proof that a pickle was loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (self.path,)


def test_a_record_that_is_not_json_is_refused(anthropic_client: anthropic.Anthropic) -> None:
    """A text row that is not a JSON object gives a clear error naming it."""
    run(anthropic_client, ["fine"])
    new_process()
    [custom_id] = request_ids()
    with diskcache.Cache(str(store())) as tampered:
        tampered.set(f"r:{custom_id}", "{not json")
    with pytest.raises(JournalCorruptError, match="not a JSON object"):
        run(anthropic_client, ["fine"])


def test_a_foreign_store_is_refused(anthropic_client: anthropic.Anthropic) -> None:
    """A diskcache directory deferrable did not write is refused, not read."""
    with diskcache.Cache(str(store())) as foreign:
        foreign.set("settings", {"theme": "dark"})
    with pytest.raises(JournalCorruptError, match="not a deferrable journal"):
        run(anthropic_client, ["fine"])


def test_a_store_that_is_not_a_database_is_an_error(anthropic_client: anthropic.Anthropic) -> None:
    """A journal whose database file is garbage gives a JournalError, and nothing crashes."""
    store().mkdir(mode=0o700)
    (store() / "cache.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError, match=str(store())):
        run(anthropic_client, ["fine"])
