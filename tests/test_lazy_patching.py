"""`import deferrable` and `@deferrable` import no SDK: each is patched when the program
first imports it, and its calls defer from then on (run in fresh interpreters, since this
one has imported both SDKs already)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DUMMY_KEY

CALLS = {
    "anthropic": ("anthropic.Anthropic", "anthropic.AsyncAnthropic", "emu.url",
                  "client.messages.create(model='claude-haiku-4-5', max_tokens=5, "
                  "messages=[{'role': 'user', 'content': 'Sentiment: great'}])",
                  "POST /v1/messages/batches", "POST /v1/messages"),
    "openai": ("openai.OpenAI", "openai.AsyncOpenAI", "emu.openai_url",
               "client.chat.completions.create(model='gpt-6.2-sol', "
               "messages=[{'role': 'user', 'content': 'Sentiment: great'}])",
               "POST /v1/batches", "POST /v1/chat/completions"),
}


def run(script: str, store: Path) -> dict[str, Any]:
    """Run `script` in a fresh interpreter; the JSON object it prints last."""
    environment = {**os.environ, "DEFERRABLE_STORE": str(store), "DEFERRABLE_MAX_WAIT": "0.05",
                   "DEFERRABLE_POLL_INTERVAL": "0.02", "DEFERRABLE_PROGRESS": "0"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=environment,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("provider", list(CALLS))
def test_an_sdk_imported_after_deferrable_is_patched_then(provider: str, tmp_path: Path) -> None:
    """Neither SDK is imported by deferrable; the one the program imports later defers
    its sync and async calls into batches, and the other stays unimported."""
    sync_class, async_class, url, call, batch_route, live_route = CALLS[provider]
    other = next(name for name in CALLS if name != provider)
    outcome = run(f"""
        import asyncio, json, sys
        import deferrable
        from deferrable.emulator import Emulator

        @deferrable.deferrable
        def ask_sync(client):
            return {call}

        @deferrable.deferrable
        async def ask_async(client):
            return await {call}

        before = sorted(name for name in ("anthropic", "openai") if name in sys.modules)
        with Emulator() as emu:
            import {provider}
            with {sync_class}(api_key={DUMMY_KEY!r}, base_url={url}) as client:
                sync_answer = type(ask_sync(client).result(timeout=60)).__name__

            async def main():
                async with {async_class}(api_key={DUMMY_KEY!r}, base_url={url}) as client:
                    return type(await ask_async(client)).__name__

            async_answer = asyncio.run(main())
            requests = emu.stats()["requests"]
        print(json.dumps({{"before": before, "answers": [sync_answer, async_answer],
                          "requests": requests, "other": "{other}" in sys.modules}}))
        """, tmp_path / "journal")
    assert outcome["before"] == []
    assert outcome["answers"] == (["Message", "Message"] if provider == "anthropic"
                                  else ["ChatCompletion", "ChatCompletion"])
    assert outcome["requests"][batch_route] == 2
    assert live_route not in outcome["requests"]
    assert outcome["other"] is False


def test_unpatch_before_the_import_leaves_the_sdk_alone(tmp_path: Path) -> None:
    """patch() then unpatch() before an SDK's import: importing it later wraps nothing."""
    outcome = run("""
        import json
        import deferrable
        deferrable.patch()
        deferrable.unpatch()
        import anthropic._base_client as sent
        wrapped = type(sent.SyncAPIClient.__dict__["_attempt_request"]).__name__
        deferrable.patch()
        rewrapped = type(sent.SyncAPIClient.__dict__["_attempt_request"]).__name__
        print(json.dumps({"wrapped": wrapped, "rewrapped": rewrapped}))
        """, tmp_path / "journal")
    assert outcome == {"wrapped": "function", "rewrapped": "FunctionWrapper"}
