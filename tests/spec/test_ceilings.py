"""Hard upper bounds (OWASP LLM10, unbounded consumption): a limit that does not limit is
refused by the constructors, by `podium validate` and by the JSON Schema, with the field,
the value and the ceiling named."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from podium import LLMAgent, Loop, Retry, RunLimitExceededError, Runtime, UsageError, agent
from podium.core.bounds import CEILINGS, MAX_REASKS, MAX_SECONDS, MAX_TURNS, TURNS
from podium.errors import SpecError
from podium.models.scripted import ScriptedModel
from podium.spec.loader import load_yaml_text as load
from podium.spec.schema import json_schema

ROOT = Path(__file__).resolve().parents[2]


@agent
async def _body(x: Any) -> Any:
    return x


def test_the_ceilings_are_one_table() -> None:
    assert CEILINGS["turns"] == MAX_TURNS == 1_000
    assert CEILINGS["reasks"] == MAX_REASKS == 100
    assert CEILINGS["seconds"] == MAX_SECONDS == 30 * 86_400


@pytest.mark.parametrize("value", [1_000_000_000, 1_001])
def test_a_constructor_refuses_a_limit_above_its_ceiling(value: int) -> None:
    model = ScriptedModel(["ok"])
    with pytest.raises(UsageError) as caught:
        LLMAgent("a", model=model, instructions="x", max_turns=value)
    message = str(caught.value)
    assert "'a'" in message and "max_turns" in message
    assert f"{value!r}" in message and "ceiling of 1,000" in message


def test_the_ceiling_itself_is_allowed() -> None:
    LLMAgent("a", model=ScriptedModel(["ok"]), instructions="x", max_turns=MAX_TURNS)


@pytest.mark.parametrize("value", [0, -1, math.inf, math.nan, "10", 2.5, True])
def test_wrong_values_are_named(value: Any) -> None:
    with pytest.raises(UsageError, match="max_turns must be a positive integer up to 1,000"):
        TURNS.check("agent 'a'", "max_turns", value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"attempts": 101}, "attempts"),
        ({"attempts": 0}, "attempts"),
        ({"max_delay": math.inf}, "max_delay"),
        ({"initial_delay": MAX_SECONDS + 1}, "initial_delay"),
    ],
)
def test_retry_attempts_and_delays_have_ceilings(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(UsageError, match=f"Retry: {field}"):
        Retry(**kwargs)


@pytest.mark.parametrize("value", [MAX_SECONDS + 1, math.inf, math.nan, -5, 0])
def test_a_timeout_must_end_within_thirty_days(value: float) -> None:
    with pytest.raises(UsageError, match="timeout"):
        LLMAgent("a", model=ScriptedModel(["ok"]), instructions="x", timeout=value)


@pytest.mark.parametrize(
    ("field", "value", "ceiling"),
    [
        ("max_turns", 1_000_000_000, "1000"),
        ("max_stalls", 5_000, "1000"),
        ("deadline", 10_000_000, "2592000"),
    ],
)
def test_validate_refuses_a_loop_above_its_ceiling(field: str, value: int, ceiling: str) -> None:
    text = f"""
name: forever
kind: loop
body: {{python: "tests.spec.test_ceilings:_body"}}
{field}: {value}
"""
    with pytest.raises(SpecError) as caught:
        load(text)
    message = str(caught.value)
    assert field in message and str(value) in message and ceiling in message


def test_validate_refuses_retry_attempts_above_the_ceiling() -> None:
    text = """
name: a
kind: llm
instructions: x
retry: {attempts: 1000}
"""
    with pytest.raises(SpecError, match=r"attempts.*100"):
        load(text)


def test_the_schema_carries_the_ceilings_as_maximum() -> None:
    schema = json.dumps(json_schema())
    assert '"maximum": 1000' in schema and f'"maximum": {MAX_SECONDS}' in schema
    assert '"maximum": 100' in schema
    committed = json.loads((ROOT / "docs" / "podium-workflow.schema.json").read_text())
    assert committed == json_schema(), "run: podium schema > docs/podium-workflow.schema.json"


def test_loop_constructor_refuses_a_billion_turns() -> None:
    with pytest.raises(UsageError, match=r"max_turns is 1000000000, above its ceiling of 1,000"):
        Loop("l", _body, max_turns=1_000_000_000)


WITH_LIMITS = """
name: flow
kind: sequential
limits: {max_steps: 2, deadline: 600}
steps:
  - python: "tests.spec.test_ceilings:_body"
  - python: "tests.spec.test_ceilings:_body"
"""


async def test_a_workflow_file_sets_the_limits_of_its_runs() -> None:
    flow = load(WITH_LIMITS)
    assert flow.run_limits == {"max_steps": 2, "deadline": 600}
    rt = Runtime("memory://")
    failed = await rt.run(flow, 1)
    assert isinstance(failed.exception, RunLimitExceededError)
    assert failed.exception.maximum == 2
    done = await rt.run(flow, 1, max_steps=3)  # the run's own option wins
    assert done.ok


@pytest.mark.parametrize(
    ("limits", "problem"),
    [
        ("{max_steps: 0}", "greater than or equal to 1"),
        ("{max_steps: 100000000}", "less than or equal to 10000000"),
        ("{deadline: .nan}", "deadline"),
        ("{max_turns: 5}", "max_turns"),
    ],
)
def test_wrong_workflow_limits_are_problems(limits: str, problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        load(WITH_LIMITS.replace("{max_steps: 2, deadline: 600}", limits))


def test_limits_go_at_the_top_of_the_file_only() -> None:
    nested = """
name: flow
kind: sequential
steps:
  - name: inner
    kind: sequential
    limits: {max_steps: 5}
    steps: [{python: "tests.spec.test_ceilings:_body"}]
"""
    with pytest.raises(SpecError, match="`limits:` goes at the top of the file only"):
        load(nested)
