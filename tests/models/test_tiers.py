"""Model tiers: agents ask for a tier, a runtime (or a file, or the agent's own table) says
which model and fallbacks it is; a router sends easy inputs to the cheap tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium import (
    NO_RETRY,
    LLMAgent,
    ProviderError,
    Router,
    Runtime,
    ScriptedModel,
    StepError,
    Tiers,
    Usage,
    UsageError,
)

CALL = Usage(1_000_000, 0, 1)  # a million input tokens: the input price, in dollars


def model(name: str, said: str | None = None) -> ScriptedModel:
    return ScriptedModel(lambda m, t, s: said or f"{name} says hi", name=name, usage=CALL)


async def test_an_agent_asks_for_a_tier_and_the_runtime_picks_the_model() -> None:
    fast, smart = model("gpt-4o-mini"), model("gpt-4o")
    rt = Runtime("memory://", tiers={"fast": fast, "smart": smart})
    quick = LLMAgent("quick", tier="fast", instructions="Answer.")
    deep = LLMAgent("deep", model="tier:smart", instructions="Answer.")
    first, second = await rt.run(quick, "hi"), await rt.run(deep, "hi")
    assert (first.output, second.output) == ("gpt-4o-mini says hi", "gpt-4o says hi")
    assert first.usage.usd == pytest.approx(0.15) and second.usage.usd == pytest.approx(2.50)
    started = [e for e in await rt.events(first.run_id) if e.kind == "step.started"]
    assert started[-1].data == {"kind": "model", "model": "gpt-4o-mini", "tier": "fast"}
    report = await rt.cost(second.run_id)
    assert [m.name for m in report.by_model] == ["gpt-4o"]


async def test_one_agent_two_runtimes_two_models() -> None:
    writer = LLMAgent("writer", tier="fast", instructions="Write.")
    a = Runtime("memory://", tiers={"fast": model("gpt-4o-mini")})
    b = Runtime("memory://", tiers={"fast": model("claude-haiku-4-5")})
    assert (await a.run(writer, "x")).output == "gpt-4o-mini says hi"
    assert (await b.run(writer, "x")).output == "claude-haiku-4-5 says hi"
    assert (await a.run(writer, "x")).output == "gpt-4o-mini says hi"


async def test_a_tier_falls_back_then_the_agents_own_fallbacks() -> None:
    down = ScriptedModel([ProviderError("overloaded")], name="gpt-4o")
    also_down = ScriptedModel([ProviderError("overloaded")], name="claude-sonnet-4-5")
    spare = model("gpt-4o-mini", "the spare answered")
    rt = Runtime("memory://", retry=NO_RETRY, tiers={"smart": [down, also_down]})
    agent = LLMAgent("writer", tier="smart", instructions="W.", fallback_models=[spare])
    result = await rt.run(agent, "x")
    assert result.output == "the spare answered"
    used = [e.data["fallback"] for e in await rt.events(result.run_id) if e.kind == "fallback.used"]
    assert used == ["model", "model"] and len(down.calls) == len(also_down.calls) == 1


async def test_an_unknown_tier_fails_the_run_naming_the_tiers_there_are() -> None:
    rt = Runtime("memory://", tiers={"fast": model("gpt-4o-mini")})
    result = await rt.run(LLMAgent("a", tier="smrt", instructions="x"), "hi")
    assert result.status == "failed"
    assert isinstance(result.exception, StepError)
    assert isinstance(result.exception.cause, UsageError)
    assert "agent 'a' at /a asks for tier 'smrt', which is not defined (tiers: fast)" in str(
        result.error
    )


async def test_the_agents_own_table_serves_tiers_the_runtime_does_not_define() -> None:
    agent = LLMAgent(
        "a",
        tier="fast",
        instructions="x",
        tiers={"fast": model("own-fast"), "smart": model("own-smart")},
    )
    assert (await Runtime("memory://").run(agent, "q")).output == "own-fast says hi"
    rt = Runtime("memory://", tiers={"fast": model("runtime-fast")})
    assert (await rt.run(agent, "q")).output == "runtime-fast says hi"  # the runtime's wins
    smart = agent.on_tier("smart")
    assert (await rt.run(smart, "q")).output == "own-smart says hi"


async def test_a_router_sends_easy_inputs_to_the_cheap_tier() -> None:
    cheap, dear = model("gpt-4o-mini", "cheap"), model("gpt-4o", "dear")
    reply = LLMAgent("reply", tier="smart", instructions="Reply to the customer.")
    desk = Router(
        "desk",
        {"easy": reply.on_tier("fast"), "hard": reply},
        classifier=lambda ticket: "hard" if "lawyer" in ticket else "easy",
    )
    assert reply.on_tier("fast").name == "reply.fast"
    rt = Runtime("memory://", tiers={"fast": cheap, "smart": dear})
    tickets = ["where is my parcel", "my lawyer will call", "reset my password", "thanks"]
    outputs = [(await rt.run(desk, t)).output for t in tickets]
    assert outputs == ["cheap", "dear", "cheap", "cheap"]
    assert (len(cheap.calls), len(dear.calls)) == (3, 1)
    assert cheap.calls[0].messages[0].content == "Reply to the customer."


def test_tiers_from_a_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tiers.yaml"
    path.write_text("tiers:\n  fast: scripted:fast-echo\n  smart: [scripted:a, scripted:b]\n")
    rt = Runtime("memory://", tiers=str(path))
    assert rt.tiers is not None and rt.tiers.names() == ["fast", "smart"]
    assert [m.name for m in rt.tiers.models("smart")] == ["a", "b"]
    monkeypatch.setenv("PODIUM_TIERS", str(path))
    over = Runtime("memory://", tiers={"fast": "scripted:mine"})
    assert over.tiers is not None
    assert [m.name for m in over.tiers.models("fast")] == ["mine"]  # code over the file
    assert [m.name for m in over.tiers.models("smart")] == ["a", "b"]  # the file's other tier


def test_bad_tiers_are_usage_errors_that_name_the_tier(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="tier 'fast': model 'gopher:x' is not understood"):
        Tiers({"fast": "gopher:x"})
    with pytest.raises(UsageError, match="tier 'fast': expected a model or a list of models"):
        Tiers({"fast": []})
    with pytest.raises(UsageError, match="a tier is made of models, not of another tier"):
        Tiers({"fast": "tier:smart"})
    bad = tmp_path / "tiers.json"
    bad.write_text('{"smart": 7}')
    with pytest.raises(UsageError, match=r"tiers file '.*tiers\.json': tier 'smart'"):
        Runtime("memory://", tiers=str(bad))
    with pytest.raises(UsageError, match="give model= or tier=, not both"):
        LLMAgent("a", model="scripted", tier="fast", instructions="x")
    with pytest.raises(UsageError, match="asks for tier 'fast': the runtime's tiers pick"):
        _ = LLMAgent("a", tier="fast", instructions="x").model
