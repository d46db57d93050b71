"""The A2A side of a podium agent, in this process: what its card says it can do
(`skills_of`), and requests the handler refuses before any run starts."""

from __future__ import annotations

import pytest
from a2a.server.context import ServerCallContext
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import InvalidParamsError, TaskNotFoundError
from pydantic import BaseModel

from podium import Router, Runtime, agent
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
    message = pb.Message(message_id="", role=pb.Role.ROLE_USER, parts=[part], task_id=task_id)
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
