"""podium's A2A server (`podium a2a serve`) spoken to by the official SDK's client: the card,
send, stream, get, cancel, input-required and the reply, a resend, and tasks as runs."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import (
    InvalidParamsError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from a2a_procs import podium_serve, stop

from podium import Runtime
from podium.agents.remote import parts_value

pytestmark = pytest.mark.xdist_group("a2a_server")  # one worker, one shared server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    store = f"sqlite:///{tmp_path_factory.mktemp('a2a') / 'runs.db'}"
    proc, url = podium_serve("served.py:desk", store)
    try:
        yield url, store
    finally:
        stop(proc)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def client(http: httpx.AsyncClient, url: str, *, streaming: bool = False) -> Any:
    card = await A2ACardResolver(http, url).get_agent_card()
    return ClientFactory(ClientConfig(streaming=streaming, httpx_client=http)).create(card)


def msg(text: str, message_id: str = "", task_id: str = "") -> Any:
    return pb.Message(
        message_id=message_id or uuid.uuid4().hex,
        role=pb.Role.ROLE_USER,
        parts=[pb.Part(text=text)],
        task_id=task_id,
    )


async def send(c: Any, text: str, *, now: bool = False, **kw: Any) -> Any:
    config = pb.SendMessageConfiguration(return_immediately=now)
    request = pb.SendMessageRequest(message=msg(text, **kw), configuration=config)
    responses = [r async for r in c.send_message(request)]
    assert len(responses) == 1 and responses[0].HasField("task")
    return responses[0].task


def output(task: Any) -> Any:
    return parts_value([p for a in task.artifacts for p in a.parts])


def status_text(task: Any) -> Any:
    return parts_value(task.status.message.parts)


async def test_the_card_names_the_agent_and_where_it_is(
    server: tuple[str, str], http: httpx.AsyncClient
) -> None:
    url, _ = server
    card = await A2ACardResolver(http, url).get_agent_card()
    assert card.name == "desk" and "front desk" in card.description
    assert [s.id for s in card.skills] == ["desk"]
    assert [(i.url, i.protocol_binding) for i in card.supported_interfaces] == [(url, "JSONRPC")]
    assert card.capabilities.streaming and not card.capabilities.push_notifications


async def test_send_runs_a_durable_run_whose_id_is_the_task_id(
    server: tuple[str, str], http: httpx.AsyncClient
) -> None:
    url, store = server
    c = await client(http, url)
    task = await send(c, "hello")
    assert task.status.state == pb.TASK_STATE_COMPLETED
    assert output(task) == "HELLO!"
    got = await c.get_task(pb.GetTaskRequest(id=task.id))
    assert got.status.state == pb.TASK_STATE_COMPLETED and output(got) == "HELLO!"
    async with Runtime(store) as rt:  # the task is a run on the store
        record = await rt.get_run(task.id)
        assert (record.status, record.output, record.agent) == ("completed", "HELLO!", "desk")
        assert sorted(s.agent for s in await rt.steps(task.id)) == ["desk", "exclaim", "shout"]


async def test_stream_gives_the_task_its_steps_and_its_end(
    server: tuple[str, str], http: httpx.AsyncClient
) -> None:
    url, _ = server
    c = await client(http, url, streaming=True)
    request = pb.SendMessageRequest(message=msg("stream me"))
    events = [r async for r in c.send_message(request)]
    first, *updates = events
    assert first.HasField("task") and first.task.status.state == pb.TASK_STATE_WORKING
    steps = [status_text(e.status_update) for e in updates if e.HasField("status_update")]
    assert steps[:3] == ["shout done", "exclaim done", "desk done"]
    artifact = next(e.artifact_update for e in updates if e.HasField("artifact_update"))
    assert parts_value(artifact.artifact.parts) == "STREAM ME!"
    last = events[-1]
    assert last.status_update.status.state == pb.TASK_STATE_COMPLETED
    assert last.status_update.task_id == first.task.id


async def test_get_of_an_unknown_task(server: tuple[str, str], http: httpx.AsyncClient) -> None:
    c = await client(http, server[0])
    with pytest.raises(TaskNotFoundError):
        await c.get_task(pb.GetTaskRequest(id="no-such-task"))


async def test_cancel_a_working_task(server: tuple[str, str], http: httpx.AsyncClient) -> None:
    url, store = server
    c = await client(http, url)
    task = await send(c, "slow 30", now=True)
    assert task.status.state == pb.TASK_STATE_WORKING
    canceled = await c.cancel_task(pb.CancelTaskRequest(id=task.id))
    assert canceled.status.state == pb.TASK_STATE_CANCELED
    got = await c.get_task(pb.GetTaskRequest(id=task.id))
    assert got.status.state == pb.TASK_STATE_CANCELED
    async with Runtime(store) as rt:
        assert (await rt.get_run(task.id)).status == "cancelled"
    with pytest.raises(TaskNotCancelableError):
        await c.cancel_task(pb.CancelTaskRequest(id=task.id))


async def test_input_required_then_the_reply_goes_on(
    server: tuple[str, str], http: httpx.AsyncClient
) -> None:
    url, store = server
    c = await client(http, url)
    task = await send(c, "ask me")
    assert task.status.state == pb.TASK_STATE_INPUT_REQUIRED
    assert status_text(task) == "which colour?"
    async with Runtime(store) as rt:
        assert (await rt.get_run(task.id)).status == "waiting"
    done = await send(c, "blue", task_id=task.id)
    assert done.id == task.id and done.status.state == pb.TASK_STATE_COMPLETED
    assert output(done) == "colour blue"
    with pytest.raises(InvalidParamsError, match="is completed, not input-required"):
        await send(c, "green", task_id=task.id)


async def test_an_approval_takes_approve_or_reject(
    server: tuple[str, str], http: httpx.AsyncClient
) -> None:
    c = await client(http, server[0])
    task = await send(c, "approve")
    assert task.status.state == pb.TASK_STATE_INPUT_REQUIRED
    assert status_text(task) == "go ahead?"
    with pytest.raises(InvalidParamsError, match="reply `approve` or `reject`"):
        await send(c, "maybe", task_id=task.id)
    done = await send(c, "yes", task_id=task.id)
    assert output(done) == "approved"
    other = await send(c, "approve")
    refused = await send(c, "reject", task_id=other.id)
    assert refused.status.state == pb.TASK_STATE_FAILED
    assert "rejected over A2A" in status_text(refused)


async def test_a_failed_run_is_a_failed_task(
    server: tuple[str, str], http: httpx.AsyncClient
) -> None:
    c = await client(http, server[0])
    task = await send(c, "fail")
    assert task.status.state == pb.TASK_STATE_FAILED
    assert "told to fail" in status_text(task)


async def test_a_resent_message_gets_its_first_task(
    server: tuple[str, str], http: httpx.AsyncClient
) -> None:
    url, store = server
    c = await client(http, url)
    first = await send(c, "once", message_id="resend-1")
    again = await send(c, "once", message_id="resend-1")
    assert again.id == first.id and output(again) == "ONCE!"
    async with Runtime(store) as rt:
        runs = [r for r in await rt.list_runs(limit=1000) if r.agent == "desk"]
        assert len([r for r in runs if r.run_id == first.id]) == 1


async def test_list_tasks(server: tuple[str, str], http: httpx.AsyncClient) -> None:
    c = await client(http, server[0])
    task = await send(c, "listed")
    listed = await c.list_tasks(pb.ListTasksRequest(page_size=100))
    assert task.id in [t.id for t in listed.tasks]


@pytest.mark.slow  # real processes, one killed
async def test_a_restarted_server_finishes_the_task(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    proc, url = podium_serve("served.py:desk", store)
    try:
        task = await send(await client(http, url), "slow 1", now=True)
        os.kill(proc.pid, signal.SIGKILL)  # mid-task
        proc.wait(10)
    finally:
        stop(proc)
    proc, url = podium_serve("served.py:desk", store)
    try:
        c = await client(http, url)
        end = time.monotonic() + 20
        got = await c.get_task(pb.GetTaskRequest(id=task.id))
        while got.status.state == pb.TASK_STATE_WORKING and time.monotonic() < end:
            got = await c.get_task(pb.GetTaskRequest(id=task.id))
        assert got.status.state == pb.TASK_STATE_COMPLETED and output(got) == "slow done"
    finally:
        stop(proc)


async def test_a_streamed_reply_streams_the_rest(
    server: tuple[str, str], http: httpx.AsyncClient
) -> None:
    url, _ = server
    task = await send(await client(http, url), "ask me")
    c = await client(http, url, streaming=True)
    request = pb.SendMessageRequest(message=msg("red", task_id=task.id))
    events = [r async for r in c.send_message(request)]
    assert events[0].task.id == task.id
    assert events[-1].status_update.status.state == pb.TASK_STATE_COMPLETED
    artifact = next(e.artifact_update for e in events if e.HasField("artifact_update"))
    assert parts_value(artifact.artifact.parts) == "colour red"


async def test_subscribe_follows_a_working_task_to_its_end(
    server: tuple[str, str], http: httpx.AsyncClient
) -> None:
    url, _ = server
    task = await send(await client(http, url), "slow 0.5", now=True)
    c = await client(http, url, streaming=True)
    events = [e async for e in c.subscribe(pb.SubscribeToTaskRequest(id=task.id))]
    assert events[0].task.id == task.id
    assert events[0].task.status.state == pb.TASK_STATE_WORKING
    assert "sleeper done" in [
        status_text(e.status_update) for e in events if e.HasField("status_update")
    ]
    assert events[-1].status_update.status.state == pb.TASK_STATE_COMPLETED
    with pytest.raises(UnsupportedOperationError, match="is completed"):
        _ = [e async for e in c.subscribe(pb.SubscribeToTaskRequest(id=task.id))]


async def test_a_v0_3_client_is_answered_too(
    server: tuple[str, str], http: httpx.AsyncClient
) -> None:
    """Agents still on A2A 0.3 (`message/send`, `tasks/get`) reach the same endpoint."""
    url, _ = server
    message = {
        "kind": "message",
        "messageId": "v03-1",
        "role": "user",
        "parts": [{"kind": "text", "text": "old client"}],
    }
    sent = await http.post(
        url,
        json={"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": message}},
    )
    task = sent.json()["result"]
    assert task["kind"] == "task" and task["status"]["state"] == "completed"
    assert task["artifacts"][0]["parts"] == [{"kind": "text", "text": "OLD CLIENT!"}]
    got = await http.post(
        url, json={"jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": {"id": task["id"]}}
    )
    assert got.json()["result"]["status"]["state"] == "completed"
