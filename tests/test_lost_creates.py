"""A create call whose answer was lost: its batch is found without waiting on unrelated
batches, a candidate adopted on its size and time is checked by its first line, and a lost
OpenAI upload leaves no copy of the prompts behind."""

from __future__ import annotations

import anthropic
import openai

import deferrable
from deferrable import deferrable as defer
from deferrable._options import defaults
from deferrable.emulator import Emulator, Hold
from deferrable.journal import journal_for
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import chat_request, message_request, wait_until

CREATE = "POST /v1/messages/batches"


def texts(name: str) -> list[str]:
    """Five prompts of one group."""
    return [f"Sentiment: great {name} {i}" for i in range(5)]


def emulator_batch_ids(emulator: Emulator) -> set[str]:
    """Every Message Batch the emulator holds."""
    with anthropic.Anthropic(api_key=DUMMY_KEY, base_url=emulator.url) as claude:
        return {batch.id for batch in claude.messages.batches.list(limit=100)}


def journalled_batch_ids() -> set[str]:
    """The provider ids the test's journal has recorded."""
    return journal_for(defaults().store).batch_ids()


def test_a_lost_create_is_found_at_once_past_newer_batches_the_journal_knows(
        emulator: Emulator) -> None:
    """Two batches of the same size created while the lost create's answer hangs are known
    to the journal, so the lost one is adopted at once, not after they end."""
    emulator.batch_latency = 600.0
    emulator.faults.holds.append(Hold(CREATE, after=4.0, times=1))
    with anthropic.Anthropic(api_key=DUMMY_KEY, base_url=emulator.url, timeout=1.5) as claude:
        ask = defer(max_wait=60, max_batch_size=5)(
            lambda text: claude.messages.create(**message_request(text)).content[0])
        ours = [ask(text) for text in texts("ours")]
        deferrable.flush()
        wait_until(lambda: emulator.stats()["batches"].get("anthropic_batches") == 1)
        others = [ask(text) for name in ("a", "b") for text in texts(name)]
        deferrable.flush()
        wait_until(lambda: len(journalled_batch_ids()) == 2)
        wait_until(lambda: journalled_batch_ids() == emulator_batch_ids(emulator), timeout=10)
        emulator.advance(600)
        answers = [future.result(timeout=30) for future in ours + others]
    assert all(block.type == "text" for block in answers)
    assert emulator.stats()["batches"] == {"anthropic_batches": 3,
                                           "anthropic_batch_requests": 15}
    assert emulator.stats()["requests"][CREATE] == 3


def test_a_candidate_that_is_someone_elses_sends_the_calls_again(emulator: Emulator) -> None:
    """The create never arrived; the only batch of its size and time is another tool's:
    it is adopted, found not ours by its first line, and the calls go in a new batch."""
    emulator.batch_latency = 0.3
    with anthropic.Anthropic(api_key=DUMMY_KEY, base_url=emulator.url) as other_tool:
        other_tool.messages.batches.create(requests=[
            {"custom_id": f"theirs-{i}", "params": message_request(text)}
            for i, text in enumerate(texts("theirs"))])
    emulator.faults.holds.append(Hold(CREATE, before=1.0, times=1))
    with anthropic.Anthropic(api_key=DUMMY_KEY, base_url=emulator.url, timeout=0.5) as claude:
        ask = defer(max_wait=60)(
            lambda text: claude.messages.create(**message_request(text)).content[0])
        futures = [ask(text) for text in texts("ours")]
        deferrable.flush()
        answers = [future.result(timeout=30) for future in futures]
    assert [block.type for block in answers] == ["text"] * 5
    stats = emulator.stats()
    assert stats["batches"] == {"anthropic_batches": 2, "anthropic_batch_requests": 10}
    assert stats["requests"][CREATE] == 3  # theirs, ours lost on the way, ours again


def test_a_lost_upload_answer_leaves_no_file_behind(emulator: Emulator) -> None:
    """The input upload's answer is lost: no SDK retry uploads it twice; the orphan is
    found by its name and deleted, and once the results are read no file remains."""
    emulator.faults.holds.append(Hold("POST /v1/files", after=1.5, times=1))
    with openai.OpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url, timeout=0.5) as gpt:
        ask = defer(max_wait=60)(
            lambda text: gpt.chat.completions.create(**chat_request(text)).choices[0])
        futures = [ask(text) for text in texts("upload")]
        deferrable.flush()
        answers = [future.result(timeout=30) for future in futures]
    assert all(choice.message.content for choice in answers)
    deferrable.engine.engine().finish_cleanups()
    with openai.OpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url) as gpt:
        assert list(gpt.files.list()) == []
    assert emulator.stats()["requests"]["POST /v1/files"] == 2
    assert emulator.stats()["batches"]["openai_batches"] == 1
