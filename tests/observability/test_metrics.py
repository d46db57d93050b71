"""Prometheus metrics from real runs on a SQLite store: a retry, a failure in the dead-letter
queue, a policy denial, a run waiting for a person and spend by agent and model, read back by
parsing the exposition text."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from podium import (
    Grant,
    HumanApproval,
    LLMAgent,
    Policy,
    Retry,
    RunStatus,
    Runtime,
    ScriptedModel,
    Sequential,
    agent,
    tool,
    tool_call,
)
from podium.cli.app import app
from podium.core.records import Event, Usage
from podium.observability.metrics import DLQ_NAMESPACE, OTHER, Metrics
from podium.runtime.dlq import DLQ
from podium.testing import FailOnce, FakeClock

FLAKY = FailOnce(error=TimeoutError("slow upstream"))


@agent
def flaky(x: str) -> str:
    FLAKY()
    return x + "!"


@agent
def broken(x: str) -> str:
    raise ValueError("no such order")


@tool
def lookup(order: str) -> str:
    """Find an order."""
    return f"order {order}"


@tool
def refund(order: str) -> str:
    """Refund an order."""
    return f"refunded {order}"


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def rt_metrics(tmp_path: Path) -> tuple[Runtime, Metrics]:
    metrics = Metrics()
    rt = Runtime(
        f"sqlite:///{tmp_path / 'runs.db'}",
        on_event=metrics,
        clock=FakeClock(),
        retry=Retry(attempts=3, initial_delay=0.0),
        prices={"gpt-test": {"input": 1_000_000.0, "output": 2_000_000.0}},
        policy=Policy(grants=[Grant(agent="clerk", tools=["lookup"])]),
    )
    return rt, metrics


async def test_runs_steps_spend_retries_denials_waiting_and_dlq(
    rt_metrics: tuple[Runtime, Metrics],
) -> None:
    rt, metrics = rt_metrics
    FLAKY.calls = 0
    model = ScriptedModel(
        [tool_call("lookup", order="7"), tool_call("refund", order="7"), "done"],
        name="gpt-test",
        usage=[Usage(10, 2), Usage(20, 3), Usage(30, 4)],
    )
    clerk = LLMAgent("clerk", model=model, instructions="help", tools=[lookup, refund])
    gate = HumanApproval("approve", prompt="Ship?")
    async with rt:
        assert (await rt.run(Sequential("retried", [flaky]), "a")).ok
        failed = await rt.run(Sequential("doomed", [broken]), "a")
        assert failed.status == RunStatus.FAILED
        assert (await rt.run(clerk, "refund order 7")).ok
        waiting = await rt.run(Sequential("shipping", [flaky, gate]), "b")
        assert waiting.status == RunStatus.WAITING
        found = samples(await metrics.scrape(await rt.open()))

    assert value(found, "podium_runs_total", status="started") == 4
    assert value(found, "podium_runs_total", status="completed") == 2
    assert value(found, "podium_runs_total", status="failed") == 1
    assert value(found, "podium_runs_total", status="waiting") == 1
    assert value(found, "podium_stored_runs", status="waiting") == 1
    assert value(found, "podium_stored_runs", status="completed") == 2
    assert value(found, "podium_runs_waiting") == 1
    assert value(found, "podium_dlq_size") == 1
    assert value(found, "podium_step_retries_total", agent="flaky") == 1
    assert value(found, "podium_policy_denials_total", tool="refund") == 1
    # the retried step completed once (its attempts are one step); the broken one failed
    count = "podium_step_duration_seconds_count"
    assert value(found, count, agent="flaky", kind="agent", outcome="completed") == 2
    assert value(found, count, agent="broken", kind="agent", outcome="failed") == 1
    assert value(found, count, agent="clerk", kind="model", outcome="completed") == 3
    # spend of the model steps, charged to the agent that asked, by the model it asked
    tokens = "podium_tokens_total"
    assert value(found, tokens, agent="clerk", model="gpt-test", direction="input") == 60
    assert value(found, tokens, agent="clerk", model="gpt-test", direction="output") == 9
    usd = value(found, "podium_cost_usd_total", agent="clerk", model="gpt-test")
    assert usd == pytest.approx(60 + 2 * 9)
    # nothing about runs is a label: no run id anywhere in the text
    text = (await _text(metrics)).decode()
    for run_id in (failed.run_id, waiting.run_id):
        assert run_id not in text


async def _text(metrics: Metrics) -> bytes:
    return metrics.exposition()


def ev(kind: str, key: str = "", agent: str = "", **data: Any) -> Event:
    return Event("r1", 1, 0.0, kind, key, agent, 1, None, None, data or None)


def test_breaker_state_follows_its_transitions() -> None:
    m = Metrics()
    m(ev("breaker.opened", "/a/m#0", "m", circuit="model:m"))
    m(ev("breaker.rejected", "/a/m#1", "m", circuit="model:m"))
    found = samples(m.exposition())
    assert value(found, "podium_breaker_state", circuit="model:m") == 2
    assert value(found, "podium_breaker_rejections_total", circuit="model:m") == 1
    m(ev("breaker.half_open", "/a/m#2", "m", circuit="model:m"))
    m(ev("breaker.closed", "/a/m#2", "m", circuit="model:m"))
    found = samples(m.exposition())
    assert value(found, "podium_breaker_state", circuit="model:m") == 0
    assert value(found, "podium_breaker_transitions_total", circuit="model:m", to="opened") == 1
    assert value(found, "podium_breaker_transitions_total", circuit="model:m", to="closed") == 1


def test_label_values_are_bounded() -> None:
    m = Metrics(max_label_values=3)
    for i in range(10):
        m(ev("step.retried", f"/flow/a{i}#0", f"a{i}"))
        m(ev("policy.denied", f"/flow/x#{i}", "x", tool=f"approval.{i:016x}"))
    found = samples(m.exposition())
    agents = {dict(k[1]).get("agent") for k in found if k[0] == "podium_step_retries_total"}
    assert agents == {"a0", "a1", "a2", OTHER}
    assert value(found, "podium_step_retries_total", agent=OTHER) == 7
    # calls waiting for approval are named by a hash: one series for all of them
    assert value(found, "podium_policy_denials_total", tool="approval") == 10


def test_each_metrics_has_a_registry_of_its_own() -> None:
    from prometheus_client import REGISTRY

    a, b = Metrics(), Metrics()
    a(ev("run.started"))
    assert value(samples(a.exposition()), "podium_runs_total", status="started") == 1
    assert value(samples(b.exposition()), "podium_runs_total", status="started") == 0
    assert REGISTRY.get_sample_value("podium_runs_total", {"status": "started"}) is None


def test_the_dlq_namespace_is_the_runtimes() -> None:
    assert DLQ_NAMESPACE == DLQ


def test_podium_metrics_prints_a_stores_state(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"

    async def make() -> None:
        async with Runtime(url) as rt:
            await rt.run(Sequential("doomed", [broken]), "a")
            await rt.run(Sequential("waits", [HumanApproval("ok", prompt="?")]), "a")

    asyncio.run(make())
    result = CliRunner().invoke(app, ["metrics", "--store", url])
    assert result.exit_code == 0, result.output
    found = samples(result.output.encode())
    assert value(found, "podium_dlq_size") == 1
    assert value(found, "podium_runs_waiting") == 1
    assert value(found, "podium_stored_runs", status="failed") == 1
    missing = CliRunner().invoke(app, ["metrics", "--store", f"sqlite:///{tmp_path / 'no.db'}"])
    assert missing.exit_code == 2 and "no store" in missing.output
    assert not (tmp_path / "no.db").exists()


def test_a_model_step_counts_for_the_agent_that_asked() -> None:
    m = Metrics()
    started = ev("step.started", "/desk/writer#0/model#0", "model", model="gpt-x")
    started.data = {"kind": "model", "model": "gpt-x"}
    m(started)
    m(ev("step.retried", "/desk/writer#0/model#0", "model"))
    done = Event("r1", 3, 0.0, "step.completed", "/desk/writer#0/model#0", "model", 2, 0.5)
    done.usage = Usage(7, 3)
    m(done)
    found = samples(m.exposition())
    assert value(found, "podium_step_retries_total", agent="writer") == 1
    count = "podium_step_duration_seconds_count"
    assert value(found, count, agent="writer", kind="model", outcome="completed") == 1
    tokens = "podium_tokens_total"
    assert value(found, tokens, agent="writer", model="gpt-x", direction="input") == 7
    assert value(found, tokens, agent="writer", model="gpt-x", direction="output") == 3
