"""The `.llm(...)` helpers pass `settings=` to every model agent they build, as `LLMAgent`
takes them: a small model behind a local server needs `max_tokens` or an output mode."""

from __future__ import annotations

from typing import Any

from podium import Adaptive, Magentic, Router, Runtime, ScriptedModel, Supervisor, agent
from podium.models.base import ModelSettings

SETTINGS = ModelSettings(max_tokens=64, temperature=0.0, output_mode="json_object")


@agent
def billing(message: str) -> str:
    return "billing desk"


@agent
def tech(message: str) -> str:
    return "tech desk"


async def test_router_llm_sends_its_settings() -> None:
    model = ScriptedModel([{"route": "billing", "confidence": 0.9, "reason": "invoice"}])
    router = Router.llm("front", [billing, tech], model=model, settings=SETTINGS)
    result = await Runtime("memory://").run(router, "my invoice")
    assert result.output == "billing desk"
    assert [c.settings for c in model.calls] == [SETTINGS]


def _settings_of(*agents: Any) -> list[ModelSettings | None]:
    return [a.settings for a in agents]


def test_every_agent_a_helper_builds_gets_the_settings() -> None:
    model = ScriptedModel(["unused"])
    sup = Supervisor.llm("s", [billing, tech], model=model, settings=SETTINGS)
    mag = Magentic.llm("m", [billing, tech], model=model, settings=SETTINGS)
    ada = Adaptive.llm("a", {"billing": billing, "tech": tech}, model=model, settings=SETTINGS)
    assert _settings_of(sup.planner, sup.reviewer, sup.synthesizer) == [SETTINGS] * 3
    assert _settings_of(mag.ledger, mag.progress, mag.answer) == [SETTINGS] * 3
    assert _settings_of(ada.classifier) == [SETTINGS]
