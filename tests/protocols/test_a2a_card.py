"""What the A2A card of a podium agent says it can do (`skills_of`)."""

from __future__ import annotations

from podium import Router, agent
from podium.protocols.a2a_server import agent_card


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
