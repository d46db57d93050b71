"""podium against llama.cpp's server, configured by `PODIUM_MODEL` and
`PODIUM_MODEL_BASE_URL` alone (see conftest). Each check bounds its run with a deadline and a
small `max_tokens`, so a rambling model ends the run, never hangs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from podium import (
    LLMAgent,
    ModelSettings,
    OpenAIModel,
    Router,
    RunStatus,
    Runtime,
    Supervisor,
    Usage,
    agent,
    tool,
)
from podium.testing.llama_server import MODEL_NAME

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 120.0  # seconds per run: the model is slow on two cores, but never this slow
SHORT = ModelSettings(max_tokens=24, temperature=0.0, seed=1)
TYPED = ModelSettings(max_tokens=96, temperature=0.0, seed=1)


class Weather(BaseModel):
    city: str
    warm: bool


async def _run(agent: Any, input: Any) -> tuple[Any, Runtime]:
    rt = Runtime("memory://")
    return await rt.run(agent, input, deadline=DEADLINE), rt


async def _model_steps(rt: Runtime, run_id: str) -> list[Any]:
    return [s for s in await rt.steps(run_id) if s.kind == "model"]


def _ended_cleanly(result: Any) -> None:
    """Completed, or failed with an error that names the step, never hung or crashed."""
    assert result.status in (RunStatus.COMPLETED, RunStatus.FAILED), result
    if result.status == RunStatus.FAILED:
        assert result.error and " at /" in result.error, result.error


async def test_a_text_answer_with_real_usage(live_env: dict[str, str]) -> None:
    greeter = LLMAgent("greeter", instructions="Reply in one short sentence.", settings=SHORT)
    result, rt = await _run(greeter, "Say hello to Ada.")
    assert result.status == RunStatus.COMPLETED, result.error
    assert isinstance(result.output, str)
    assert result.usage.requests == 1
    assert result.usage.input_tokens > 5 and 0 < result.usage.output_tokens <= 24
    (step,) = await _model_steps(rt, result.run_id)
    assert step.usage == result.usage
    assert greeter.model.name == f"openai:{MODEL_NAME}"


async def test_a_typed_answer(live_env: dict[str, str]) -> None:
    judge = LLMAgent(
        "weather",
        instructions="Say which city the user asks about and whether it is warm there.",
        output_type=Weather,
        settings=TYPED,
    )
    result, _ = await _run(judge, "Is it warm in Rome in July?")
    assert result.status == RunStatus.COMPLETED, result.error
    assert isinstance(result.output, Weather)
    # llama.cpp's server refuses `json_schema` (HTTP 500, a validation error): podium stepped
    # down to `json_object` with the schema, once, and remembers it for this endpoint
    assert isinstance(judge.model, OpenAIModel)
    assert judge.model.learned_output_mode == "json_object_schema"
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0


async def test_a_forced_tool_call_then_the_answer(live_env: dict[str, str]) -> None:
    asked: list[str] = []

    @tool
    def temperature(city: str) -> float:
        """Today's temperature in a city, in Celsius.

        Args:
            city: The city's name.
        """
        asked.append(city)
        return 31.5

    forecaster = LLMAgent(
        "forecaster",
        instructions="Answer with the temperature tool's help.",
        tools=[temperature],
        settings=ModelSettings(max_tokens=32, temperature=0.0, seed=1, tool_choice="temperature"),
        max_turns=3,
    )
    result, rt = await _run(forecaster, "How warm is it in Rome?")
    assert result.status == RunStatus.COMPLETED, result.error
    assert len(asked) == 1 and isinstance(asked[0], str)  # forced once, then not again
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert keys == [
        "/forecaster",
        "/forecaster/model#0",
        "/forecaster/temperature#0",
        "/forecaster/model#1",
    ]
    assert isinstance(result.output, str)
    assert result.usage.requests == 2


@agent
def billing_desk(message: str) -> str:
    return "billing desk"


@agent
def tech_desk(message: str) -> str:
    return "tech desk"


@agent
def front_desk(message: str) -> str:
    return "front desk"


async def test_router_llm_reaches_a_decision(live_env: dict[str, str]) -> None:
    router = Router.llm(
        "front",
        {"billing": billing_desk, "tech": tech_desk},
        model=None,  # from PODIUM_MODEL
        fallback=front_desk,
        settings=TYPED,
    )
    result, rt = await _run(router, "I was charged twice on my invoice.")
    assert result.status == RunStatus.COMPLETED, result.error
    (decision,) = [e for e in await rt.events(result.run_id) if e.kind == "route.decision"]
    assert decision.data is not None
    assert decision.data["outcome"] in ("routed", "fallback")
    assert result.output in ("billing desk", "tech desk", "front desk")


async def test_supervisor_llm_reaches_a_decision(live_env: dict[str, str]) -> None:
    boss = Supervisor.llm(
        "boss",
        {"billing": billing_desk},
        model=None,
        review=False,
        settings=TYPED,
        max_turns=1,
    )
    result, rt = await _run(boss, "Find out why order 7 was charged twice.")
    _ended_cleanly(result)
    events = await rt.events(result.run_id)
    kinds = {e.kind for e in events}
    assert "supervisor.plan" in kinds  # the planner's answer was read and acted on
    if result.status == RunStatus.COMPLETED:
        assert "supervisor.stop" in kinds
    assert result.usage.requests >= 1 and result.usage.total_tokens > 0


async def test_a_streamed_answer_joins_to_the_journaled_text(live_env: dict[str, str]) -> None:
    greeter = LLMAgent("greeter", instructions="Reply in one short sentence.", settings=SHORT)
    rt = Runtime("memory://")
    stream = rt.stream(greeter, "Say hello to Ada.", deadline=DEADLINE)
    deltas = [e async for e in stream if e.kind == "model.delta"]
    result = await stream.result()
    assert result.status == RunStatus.COMPLETED, result.error
    (step,) = await _model_steps(rt, result.run_id)
    pieces = [e.data["text"] for e in deltas if e.data]
    assert "".join(pieces) == step.output.text == result.output
    assert len(pieces) >= 2  # the server streamed, token by token, not one block
    assert {e.key for e in deltas} == {step.key}
    # llama.cpp's server sends no usage in a stream: counted, one token a chunk
    assert result.usage.requests == 1 and result.usage.output_tokens == len(pieces)
    assert result.usage.input_tokens > 5
    assert "model.delta" not in {e.kind for e in await rt.events(result.run_id)}


async def test_a_streamed_typed_answer(live_env: dict[str, str]) -> None:
    judge = LLMAgent(
        "weather",
        instructions="Say which city the user asks about and whether it is warm there.",
        output_type=Weather,
        settings=TYPED,
    )
    rt = Runtime("memory://")
    stream = rt.stream(judge, "Is it warm in Rome in July?", deadline=DEADLINE)
    events = [e async for e in stream]
    result = await stream.result()
    _ended_cleanly(result)
    streamed: dict[str, str] = {}
    for e in events:
        if e.kind == "step.retried":
            streamed.pop(e.key, None)
        elif e.kind == "model.delta" and e.data:
            streamed[e.key] = streamed.get(e.key, "") + e.data["text"]
    journal = {s.key: s.output.text for s in await _model_steps(rt, result.run_id) if s.output}
    assert streamed == {k: v for k, v in journal.items() if v}
    if result.status == RunStatus.COMPLETED:
        assert isinstance(result.output, Weather)
        assert Weather.model_validate_json(streamed[max(streamed)]) == result.output


def test_an_agent_is_reused_in_a_second_run_sync(live_env: dict[str, str]) -> None:
    """Each `run_sync` runs in a new event loop; the model's HTTP client follows."""
    greeter = LLMAgent("greeter", instructions="Reply briefly.", settings=SHORT)
    rt = Runtime("memory://")
    usages: list[Usage] = []
    for _ in range(3):
        result = rt.run_sync(greeter, "Hello!")
        assert result.status == RunStatus.COMPLETED, result.error
        usages.append(result.usage)
    assert all(u.requests == 1 and u.output_tokens > 0 for u in usages)


def test_the_readme_main_example(live_env: dict[str, str], tmp_path: Path) -> None:
    env = {
        **os.environ,  # with the two variables set by live_env, and nothing else of podium's
        "PODIUM_STORE": f"sqlite:///{tmp_path / 'podium.db'}",  # keep the checkout clean
        "RETURNS_DB": str(tmp_path / "business.db"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "examples.returns_exchange"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    if proc.returncode == 0:
        body, _, tail = proc.stdout.rpartition("}")
        out = json.loads(body + "}")
        assert out["model"] == live_env["PODIUM_MODEL"]
        assert out["route"] == "returns" and " completed" in tail
    else:  # the model's reading failed the run: it must say where and why, in one line
        assert proc.stderr.startswith("error: ") and " at /" in proc.stderr


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    from podium.testing import LlamaServer
    from podium.testing.llama_server import missing

    if missing() is not None:
        pytest.skip(f"needs llama.cpp's server: {missing()}")
    broken = tmp_path / "not-a-model.gguf"
    broken.write_bytes(b"GGUF but not really")
    server = LlamaServer(broken, startup_timeout=60)
    with pytest.raises(RuntimeError, match="exited with") as info:
        server.start()
    assert "not-a-model.gguf" in str(info.value) or "gguf" in str(info.value).lower()
    assert server.process is None  # stopped, nothing left running
