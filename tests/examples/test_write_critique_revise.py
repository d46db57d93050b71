"""The write-critique-revise example: a Loop of critic and reviser on scripted models, on a real
SQLite store, including a resume that does not ask the models again."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from examples.write_critique_revise import flow as example
from podium import (
    NO_RETRY,
    Message,
    ProviderError,
    RunStatus,
    Runtime,
    ScriptedModel,
)

ROOT = Path(__file__).resolve().parents[2]


async def test_revises_until_the_critic_approves(tmp_path: Path) -> None:
    result = await example.run_once(example.SAMPLE_TOPIC, store=f"sqlite:///{tmp_path}/e.db")
    assert result.status == RunStatus.COMPLETED, result.error
    out = result.output
    assert (out.turns, out.status) == (2, "completed")
    assert isinstance(out.output, example.Draft)
    assert example.critique(out.output).approved
    assert example.EXAMPLE in out.output.body
    assert len(out.output.body.split()) <= example.MAX_WORDS


async def test_step_keys_events_and_resume_without_asking_again(tmp_path: Path) -> None:
    answers: list[str] = []

    def flaky(messages: Sequence[Message], tools: Any, schema: Any) -> Any:
        if len(answers) == 1:  # the second critique fails the first time
            answers.append("failed")
            raise ProviderError("503 from the critic's provider")
        answers.append("ok")
        draft = example.Draft.model_validate_json(messages[-1].content)
        return example.critique(draft).model_dump()

    writer, reviser = example.scripted_writer(), example.scripted_reviser()
    flow = example.build_flow(
        models={"writer": writer, "critic": ScriptedModel(flaky), "reviser": reviser}
    )

    url = f"sqlite:///{tmp_path}/e.db"
    async with Runtime(url, retry=NO_RETRY) as rt:
        first = await rt.run(flow, "durability")
        assert first.status == RunStatus.FAILED and "503" in (first.error or "")
    assert (len(writer.calls), len(reviser.calls)) == (1, 1)

    async with Runtime(url, retry=NO_RETRY) as rt:
        second = await rt.resume(first.run_id, flow)
        assert second.status == RunStatus.COMPLETED, second.error
        assert (second.output.turns, second.output.status) == (2, "completed")
        # the writer and the first reviser turn were replayed from the journal
        assert (len(writer.calls), len(reviser.calls)) == (1, 2)
        assert answers == ["ok", "failed", "ok", "ok"]
        agent_keys = sorted(s.key for s in await rt.steps(first.run_id) if s.kind == "agent")
        loop = "/essay/revise#0"
        assert agent_keys == sorted(
            [
                "/essay",
                "/essay/writer#0",
                loop,
                f"{loop}/critic#0",
                f"{loop}/reviser#0",
                f"{loop}/critic#1",
                f"{loop}/reviser#1",
                f"{loop}/critic#2",
            ]
        )
        events = await rt.events(first.run_id)
        stops = [e.data for e in events if e.kind == "loop.stop"]
        assert stops == [{"status": "completed", "reason": "the condition holds", "turns": 2}]


def test_module_runs_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert example.main([]) == 0
    printed = capsys.readouterr().out
    assert "revisions: 2, status: completed" in printed and "For example" in printed
