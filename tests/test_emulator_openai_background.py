"""The emulator runs OpenAI background responses (``background: true``) as the service does:
created ``queued``, then ``in_progress`` and ``completed`` on the emulator's clock,
retrievable with ``GET /v1/responses/{id}`` and cancellable while they run, with the API's
errors for unknown ids and for cancelling what cannot be cancelled; judged by the official
SDK (sync, with one async test at the end) and OpenAI's published schemas."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import openai
import pytest
from openai.types.responses import Response

from deferrable.emulator import Emulator, Faults, Quirks
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import wait_until
from tests.schemas import validate_openai
from tests.test_emulator_openai import MODEL, stable

RESPONSES = "/v1/responses"
RETRIEVE = "GET /v1/responses/{response_id}"
CANCEL = "POST /v1/responses/{response_id}/cancel"
RUNNING = ("queued", "in_progress")
HOUR = 3600.0


def checked(raw_text: str) -> Response:
    """A `Response` JSON checked against OpenAI's schema and parsed by the SDK."""
    data = json.loads(raw_text)
    validate_openai("Response", data)
    return Response.model_validate(data)


def start(client: openai.OpenAI, text: str = "Sentiment: a lovely, great day",
          **params: Any) -> Response:
    """Create a background response, checked."""
    raw = client.responses.with_raw_response.create(model=MODEL, input=text, background=True,
                                                    **params)
    return checked(raw.text)


def retrieve(client: openai.OpenAI, response_id: str) -> Response:
    """``GET /v1/responses/{id}``, checked."""
    return checked(client.responses.with_raw_response.retrieve(response_id).text)


def settled(client: openai.OpenAI, response_id: str, until: tuple[str, ...] = ()) -> Response:
    """Poll until the response has left `RUNNING` (or reached a status of `until`)."""
    seen: list[Response] = []

    def reached() -> bool:
        seen.append(retrieve(client, response_id))
        status = seen[-1].status
        return status in until if until else status not in RUNNING

    wait_until(reached)
    return seen[-1]


def message(error: openai.APIStatusError) -> str:
    """The `error.message` of an error answer, checked against the error schema."""
    body = error.response.json()
    validate_openai("ErrorResponse", body)
    return str(body["error"]["message"])


def no_retries(emulator: Emulator) -> openai.OpenAI:
    """A sync client that raises on the first error instead of retrying it."""
    return openai.OpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url, max_retries=0)


def test_background_create_then_retrieve_completed(openai_client: openai.OpenAI,
                                                   emulator: Emulator) -> None:
    """Created `queued` with no output; retrieved `completed` with the live answer and usage."""
    created = start(openai_client)
    assert created.status == "queued"
    assert created.background is True
    assert created.output == []
    assert created.usage is None
    done = settled(openai_client, created.id)
    assert done.status == "completed"
    assert (done.id, done.created_at) == (created.id, created.created_at)
    assert done.output_text == "positive"
    assert done.usage is not None
    assert done.completed_at is not None
    live = openai_client.responses.create(model=MODEL, input="Sentiment: a lovely, great day")
    assert stable(done.model_dump(exclude={"background"})) == stable(
        live.model_dump(exclude={"background"}))
    stats = emulator.stats()
    assert stats["billed"]["live"][MODEL]["requests"] == 2
    assert stats["requests"][f"POST {RESPONSES}"] == 2
    assert stats["requests"][RETRIEVE] >= 1


def test_background_moves_through_states_on_the_clock() -> None:
    """`queued` for the first half of `background_latency`, `in_progress` for the second,
    then `completed`; nothing is billed before the end."""
    with Emulator(background_latency=HOUR) as emu, no_retries(emu) as client:
        created = start(client)
        assert retrieve(client, created.id).status == "queued"
        emu.advance(HOUR / 2)
        settled(client, created.id, until=("in_progress",))
        assert emu.stats()["billed_total"]["live"]["requests"] == 0
        emu.advance(HOUR / 2)
        assert settled(client, created.id).status == "completed"
        assert emu.stats()["billed_total"]["live"]["requests"] == 1


def test_cancel_a_queued_response() -> None:
    """A queued response cancels to `cancelled`, stays so, is never billed; cancelling twice
    answers the same cancelled response."""
    with Emulator(background_latency=HOUR) as emu, no_retries(emu) as client:
        created = start(client)
        cancelled = checked(client.responses.with_raw_response.cancel(created.id).text)
        assert cancelled.status == "cancelled"
        assert cancelled.id == created.id
        assert client.responses.cancel(created.id).status == "cancelled"
        emu.advance(HOUR)
        time.sleep(0.1)
        assert retrieve(client, created.id).status == "cancelled"
        stats = emu.stats()
        assert stats["billed_total"]["live"]["requests"] == 0
        assert stats["requests"][CANCEL] == 2


def test_cancel_an_in_progress_response() -> None:
    """A response in progress cancels to `cancelled` as well."""
    with Emulator(background_latency=HOUR) as emu, no_retries(emu) as client:
        created = start(client)
        emu.advance(HOUR / 2)
        settled(client, created.id, until=("in_progress",))
        assert client.responses.cancel(created.id).status == "cancelled"
        emu.advance(HOUR / 2)
        time.sleep(0.1)
        assert retrieve(client, created.id).status == "cancelled"


def test_cancel_and_retrieve_errors(openai_client: openai.OpenAI) -> None:
    """Unknown ids are 404s; cancelling a finished or a non-background response is a 400."""
    client = openai_client.with_options(max_retries=0)
    for call in (client.responses.retrieve, client.responses.cancel):
        with pytest.raises(openai.NotFoundError) as missing:
            call("resp_unknown")
        assert message(missing.value) == "Response with id 'resp_unknown' not found."
    finished = settled(client, start(client).id)
    with pytest.raises(openai.BadRequestError) as ended:
        client.responses.cancel(finished.id)
    assert message(ended.value) == "Cannot cancel a response with status 'completed'."
    live = client.responses.create(model=MODEL, input="hi")
    with pytest.raises(openai.BadRequestError) as foreground:
        client.responses.cancel(live.id)
    assert message(foreground.value) == ("Only responses created with the `background` "
                                         "parameter set to `true` can be cancelled.")


def test_cancel_of_a_finished_response_can_answer_it() -> None:
    """The `openai_response_cancel_terminal_status` quirk answers a finished response as is."""
    with Emulator(quirks=Quirks(openai_response_cancel_terminal_status=200)) as emu, \
            no_retries(emu) as client:
        finished = settled(client, start(client).id)
        assert client.responses.cancel(finished.id).status == "completed"


def test_live_responses_are_retrievable_unless_not_stored(openai_client: openai.OpenAI) -> None:
    """A live response is kept for retrieval; one made with `store: false` is not."""
    kept = openai_client.responses.create(model=MODEL, input="hi")
    again = retrieve(openai_client, kept.id)
    assert again.status == "completed"
    assert again.background is False
    assert again.output_text == kept.output_text
    unstored = openai_client.responses.create(model=MODEL, input="hi", store=False)
    with pytest.raises(openai.NotFoundError):
        openai_client.with_options(max_retries=0).responses.retrieve(unstored.id)


@pytest.mark.parametrize(("marker", "code"), [("{{error:500}}", "server_error"),
                                              ("{{error:429}}", "rate_limit_exceeded")])
def test_error_marker_fails_the_background_response(openai_client: openai.OpenAI,
                                                    emulator: Emulator, marker: str,
                                                    code: str) -> None:
    """An error marker is accepted at create and ends the response `failed`, unbilled."""
    created = start(openai_client, f"please {marker}")
    assert created.status == "queued"
    failed = settled(openai_client, created.id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.code == code
    assert failed.output == []
    assert emulator.stats()["billed_total"]["live"]["requests"] == 0


def test_error_rate_fails_background_responses() -> None:
    """The `error_rate` share ends background responses `failed` with a server error."""
    with Emulator(faults=Faults(error_rate=1.0)) as emu, no_retries(emu) as client:
        failed = settled(client, start(client).id)
        assert failed.status == "failed"
        assert failed.error is not None
        assert failed.error.code == "server_error"


def test_invalid_background_requests_fail_at_create(openai_client: openai.OpenAI,
                                                    emulator: Emulator) -> None:
    """Validation happens at create, as a 400: bad parameters, `store: false`, bad options."""
    client = openai_client.with_options(max_retries=0)
    bad: list[tuple[dict[str, Any], str | None]] = [
        ({"temprature": 1}, "temprature"),
        ({"store": False}, "store"),
        ({"background_options": {"completion_window": "3h"}},
         "background_options.completion_window"),
    ]
    for extra, param in bad:
        with pytest.raises(openai.BadRequestError) as caught:
            client.responses.create(model=MODEL, input="hi", background=True,
                                    extra_body=extra)
        validate_openai("ErrorResponse", caught.value.response.json())
        assert caught.value.param == param
    with pytest.raises(openai.BadRequestError) as window:
        client.responses.create(model=MODEL, input="hi",
                                background_options={"completion_window": "8h"})
    assert window.value.param == "background_options.completion_window"
    assert start(client, background_options={"completion_window": "2h"}).status == "queued"
    assert emulator.stats()["requests"][f"POST {RESPONSES}"] == 5


def test_background_flex(openai_client: openai.OpenAI, emulator: Emulator) -> None:
    """A background flex response ends with service tier "flex", billed as flex; flex on a
    model without it, or without capacity, is refused at create."""
    done = settled(openai_client, start(openai_client, service_tier="flex").id)
    assert done.service_tier == "flex"
    assert emulator.stats()["billed_total"]["flex"]["requests"] == 1
    client = openai_client.with_options(max_retries=0)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="gpt-4.1", input="hi", background=True,
                                service_tier="flex")
    emulator.faults.flex_unavailable_rate = 1.0
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model=MODEL, input="hi", background=True, service_tier="flex")


@pytest.mark.asyncio
async def test_async_background_create_retrieve_cancel() -> None:
    """Through `AsyncOpenAI`: one response completes, another is cancelled while queued."""
    with Emulator() as emu:
        async with openai.AsyncOpenAI(api_key=DUMMY_KEY, base_url=emu.openai_url,
                                      max_retries=0) as client:
            created = await client.responses.create(model=MODEL, input="hi", background=True)
            deadline = time.monotonic() + 30
            while (done := await client.responses.retrieve(created.id)).status in RUNNING:
                assert time.monotonic() < deadline, "the response did not end"
                await asyncio.sleep(0.02)
            assert done.status == "completed"
            assert done.output_text
            emu.background_latency = HOUR
            queued = await client.responses.create(model=MODEL, input="hi", background=True)
            assert (await client.responses.cancel(queued.id)).status == "cancelled"
            assert (await client.responses.retrieve(queued.id)).status == "cancelled"
        assert emu.stats()["billed_total"]["live"]["requests"] == 1
