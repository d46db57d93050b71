"""The A2A side of a podium agent, in this process: what its card says it can do
(`skills_of`), and requests the handler refuses before any run starts."""

from __future__ import annotations

import uuid

import pytest
from a2a.server.context import ServerCallContext
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import InvalidParamsError, TaskNotFoundError
from pydantic import BaseModel

from podium import HumanAgent, Router, RunContext, Runtime, agent
from podium.protocols.a2a_server import A2AHandler, agent_card


@agent
async def billing(text: str) -> str:
    """Charges, invoices and refunds."""
    return text


@agent
async def tech(text: str) -> str:
    return text


def test_one_skill_for_an_agent() -> None:
    card = agent_card(billing, "http://127.0.0.1:1/")
    assert [(s.id, s.description) for s in card.skills] == [
        ("billing", "Charges, invoices and refunds.")
    ]
    assert card.supported_interfaces[0].url == "http://127.0.0.1:1/"


def test_a_router_offers_its_routes() -> None:
    desk = Router(
        "desk", routes={"billing": billing, "tech": tech}, classifier=lambda text: "billing"
    )
    skills = agent_card(desk, "http://127.0.0.1:1/").skills
    assert [(s.id, s.description) for s in skills] == [
        ("billing", "Charges, invoices and refunds."),
        ("tech", "desk: tech"),
    ]


def test_declared_skills_win() -> None:
    class Shop:
        name = "shop"
        description = "sells things"
        skills = ("quote", {"id": "order", "name": "order", "tags": ["buy"], "examples": ["2 x"]})

        async def run(self, input: str, ctx: object) -> str:
            return input

    skills = agent_card(Shop(), "http://127.0.0.1:1/").skills
    assert [s.id for s in skills] == ["quote", "order"] and list(skills[1].examples) == ["2 x"]


class Order(BaseModel):
    item: str
    qty: int


@agent
async def order_desk(order: Order) -> str:
    return f"{order.qty} x {order.item}"


def send(text: str = "", data: object = None, task_id: str = "") -> pb.SendMessageRequest:
    part = pb.Part(text=text) if data is None else pb.Part(data=data)
    message = pb.Message(
        message_id=uuid.uuid4().hex, role=pb.Role.ROLE_USER, parts=[part], task_id=task_id
    )
    return pb.SendMessageRequest(message=message)


async def test_input_is_checked_and_json_text_parsed() -> None:
    async with Runtime("memory://") as rt:
        handler = A2AHandler(rt, order_desk)
        context = ServerCallContext()
        task = await handler.on_message_send(send('{"item": "gizmo", "qty": 3}'), context)
        assert task.artifacts[0].parts[0].text == "3 x gizmo"
        with pytest.raises(InvalidParamsError, match="input for agent 'order_desk': field 'qty'"):
            await handler.on_message_send(send('{"item": "gizmo"}'), context)
        assert await rt.list_runs() and len(await rt.list_runs()) == 1  # nothing started


async def test_too_big_an_input_is_refused_before_a_run_starts() -> None:
    async with Runtime("memory://", max_input_bytes=64) as rt:
        handler = A2AHandler(rt, billing)
        with pytest.raises(InvalidParamsError):
            await handler.on_message_send(send("x" * 200), ServerCallContext())
        assert await rt.list_runs() == []


async def test_another_agents_run_is_no_task_of_this_one() -> None:
    async with Runtime("memory://") as rt:
        other = await rt.run(tech, "hi")
        handler = A2AHandler(rt, billing)
        with pytest.raises(TaskNotFoundError):
            await handler.on_get_task(pb.GetTaskRequest(id=other.run_id), ServerCallContext())
        with pytest.raises(TaskNotFoundError):
            await handler.on_message_send(send("x", task_id=other.run_id), ServerCallContext())


async def test_a_message_without_its_required_fields_starts_nothing() -> None:
    # Found by the A2A TCK (bench/conformance): `{"message": {"kind": "message"}}` ran.
    async with Runtime("memory://") as rt:
        handler = A2AHandler(rt, billing)
        for message in (
            pb.Message(),
            pb.Message(message_id="m1", role=pb.Role.ROLE_USER),  # no parts
            pb.Message(role=pb.Role.ROLE_USER, parts=[pb.Part(text="hi")]),  # no id
        ):
            with pytest.raises(InvalidParamsError):
                await handler.on_message_send(
                    pb.SendMessageRequest(message=message), ServerCallContext()
                )
        with pytest.raises(InvalidParamsError):
            await handler.on_get_task(pb.GetTaskRequest(), ServerCallContext())
        assert await rt.list_runs() == []


async def test_list_tasks_filters_pages_and_checks_its_parameters() -> None:
    # Found by the A2A TCK: ListTasks ignored its filters, page token and limits.
    @agent
    async def picky(text: str) -> str:
        if text == "bad":
            raise ValueError("no")
        return text

    async with Runtime("memory://") as rt:
        handler = A2AHandler(rt, picky)
        await rt.run(billing, "another agent's run: no task of this one")
        ctx = ServerCallContext()
        for i, text in enumerate(["a", "b", "bad", "c", "d"]):
            message = pb.Message(
                message_id=f"m{i}",
                role=pb.Role.ROLE_USER,
                parts=[pb.Part(text=text)],
                context_id="odd" if i % 2 else "even",
            )
            await handler.on_message_send(pb.SendMessageRequest(message=message), ctx)

        async def listed(**kw: object) -> pb.ListTasksResponse:
            return await handler.on_list_tasks(pb.ListTasksRequest(**kw), ctx)

        every = await listed()
        assert (len(every.tasks), every.total_size, every.page_size) == (5, 5, 50)
        assert every.next_page_token == "" and not any(t.artifacts for t in every.tasks)
        assert all(t.status.HasField("timestamp") for t in every.tasks)
        assert len((await listed(context_id="odd")).tasks) == 2
        assert (await listed(context_id="nobody")).tasks == []
        failed = await listed(status=pb.TASK_STATE_FAILED)
        assert [t.status.state for t in failed.tasks] == [pb.TASK_STATE_FAILED]
        first = await listed(page_size=2)
        second = await listed(page_size=2, page_token=first.next_page_token)
        third = await listed(page_size=2, page_token=second.next_page_token)
        pages = [first, second, third]
        assert [len(p.tasks) for p in pages] == [2, 2, 1] and third.next_page_token == ""
        assert len({t.id for p in pages for t in p.tasks}) == 5 and first.total_size == 5
        with_output = await listed(include_artifacts=True, status=pb.TASK_STATE_COMPLETED)
        assert sorted(t.artifacts[0].parts[0].text for t in with_output.tasks) == list("abcd")
        for bad in ({"page_size": 0}, {"page_size": 101}, {"page_size": -1}):
            with pytest.raises(InvalidParamsError, match="page size"):
                await listed(**bad)
        with pytest.raises(InvalidParamsError, match="page token"):
            await listed(page_token="invalid-token-xyz")
        with pytest.raises(InvalidParamsError, match="history length"):
            await listed(history_length=-1)


async def test_a_task_keeps_the_clients_messages_as_its_history() -> None:
    # Found by the A2A TCK: GetTask's historyLength was ignored, no history kept.
    @agent
    async def ask(text: str, ctx: RunContext) -> str:
        answer: str = await ctx.call(HumanAgent("colour", question="which colour?"), text)
        return f"{text} in {answer}"

    async with Runtime("memory://") as rt:
        handler, ctx = A2AHandler(rt, ask), ServerCallContext()
        first = pb.Message(message_id="q", role=pb.Role.ROLE_USER, parts=[pb.Part(text="a hat")])
        task = await handler.on_message_send(pb.SendMessageRequest(message=first), ctx)
        assert task.status.state == pb.TASK_STATE_INPUT_REQUIRED
        reply = pb.Message(
            message_id="r", role=pb.Role.ROLE_USER, parts=[pb.Part(text="red")], task_id=task.id
        )
        await handler.on_message_send(pb.SendMessageRequest(message=reply), ctx)

        async def history(**kw: int) -> list[str]:
            got = await handler.on_get_task(pb.GetTaskRequest(id=task.id, **kw), ctx)
            assert got.status.state == pb.TASK_STATE_COMPLETED
            assert {(m.task_id, m.context_id) for m in got.history} <= {(task.id, task.context_id)}
            return [m.parts[0].text for m in got.history]

        assert await history() == ["a hat", "red"]
        assert await history(history_length=1) == ["red"]
        assert await history(history_length=0) == []
        with pytest.raises(InvalidParamsError, match="history length"):
            await history(history_length=-1)
