"""Magentic: task and progress ledgers, speaker choice, stalls and re-plans, limits, the
answer step, a model-backed manager, resume."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from podium import NO_RETRY, RunStatus, Runtime, Usage, UsageError, agent
from podium.core.tools import ToolSpec
from podium.models.base import Message, OutputSchema
from podium.models.scripted import ScriptedModel
from podium.patterns.magentic import (
    AnswerRequest,
    Instruction,
    LedgerRequest,
    Magentic,
    MagenticResult,
    ProgressLedger,
    ProgressRequest,
    TaskLedger,
)
from podium.runtime.budget import Budget


@pytest.fixture
def rt() -> Runtime:
    return Runtime("memory://", retry=NO_RETRY)


def go(
    speaker: str, instruction: str, *, progress: bool = True, loop: bool = False
) -> ProgressLedger:
    return ProgressLedger(
        is_request_satisfied=False,
        is_in_loop=loop,
        is_progress_being_made=progress,
        next_speaker=speaker,
        instruction_or_question=instruction,
    )


DONE = ProgressLedger(is_request_satisfied=True)


class Manager:
    """The three manager roles as function agents, answering from scripts and keeping what
    they were asked."""

    def __init__(self, progress: list[ProgressLedger], ledgers: int = 1) -> None:
        self.ledger_requests: list[LedgerRequest] = []
        self.progress_requests: list[ProgressRequest] = []
        self.answer_requests: list[AnswerRequest] = []
        script = list(progress)

        @agent(name="ledger")
        def ledger(request: LedgerRequest) -> TaskLedger:
            self.ledger_requests.append(request)
            n = len(self.ledger_requests)
            return TaskLedger(facts=[f"fact {n}"], plan=[f"plan {n}"])

        @agent(name="progress")
        def read(request: ProgressRequest) -> ProgressLedger:
            self.progress_requests.append(request)
            return script.pop(0)

        @agent(name="answer")
        def answer(request: AnswerRequest) -> str:
            self.answer_requests.append(request)
            return f"{request.status} after {len(request.transcript)} turns"

        self.ledger, self.progress, self.answer = ledger, read, answer

    def team(self, participants: Sequence[Any], **options: Any) -> Magentic:
        return Magentic(
            "team",
            participants,
            ledger=self.ledger,
            progress=self.progress,
            answer=self.answer,
            **options,
        )


def participant(name: str, calls: list[str] | None = None) -> Any:
    @agent(name=name, description=f"{name} things")
    def speak(message: Instruction) -> str:
        if calls is not None:
            calls.append(name)
        return f"{name} answered {message.instruction!r} after {len(message.transcript)} turns"

    return speak


async def events(rt: Runtime, run_id: str, kind: str) -> list[dict[str, Any]]:
    return [e.data or {} for e in await rt.events(run_id) if e.kind == kind]


async def test_manager_picks_speakers_until_satisfied(rt: Runtime) -> None:
    m = Manager([go("researcher", "find data"), go("writer", "write it"), DONE])
    result = await rt.run(m.team([participant("researcher"), participant("writer")]), "task")
    assert result.status == RunStatus.COMPLETED, result.error
    out: MagenticResult = result.output
    assert out.status == "completed" and out.turns == 3 and out.replans == 0
    assert out.output == "completed after 2 turns"
    assert out.ledger == TaskLedger(facts=["fact 1"], plan=["plan 1"])
    assert [(t.round, t.speaker) for t in out.transcript] == [(1, "researcher"), (2, "writer")]
    assert out.transcript[1].output == "writer answered 'write it' after 1 turns"
    assert m.ledger_requests[0].participants == {
        "researcher": "researcher things",
        "writer": "writer things",
    }
    assert m.ledger_requests[0].previous is None
    assert [len(r.transcript) for r in m.progress_requests] == [0, 1, 2]
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert keys == [
        "/team",
        "/team/ledger#0",
        "/team/progress#0",
        "/team/researcher#0",
        "/team/progress#1",
        "/team/writer#0",
        "/team/progress#2",
        "/team/answer#0",
    ]
    progress = await events(rt, result.run_id, "magentic.progress")
    assert [p["next_speaker"] for p in progress] == ["researcher", "writer", ""]
    assert progress[2]["is_request_satisfied"] is True
    [ledger] = await events(rt, result.run_id, "magentic.ledger")
    assert ledger == {"facts": ["fact 1"], "plan": ["plan 1"], "replan": 0}
    [stop] = await events(rt, result.run_id, "magentic.stop")
    assert stop == {
        "status": "completed",
        "reason": "the manager says it is satisfied",
        "turns": 3,
        "replans": 0,
    }


async def test_stalled_rounds_make_the_manager_replan(rt: Runtime) -> None:
    calls: list[str] = []
    m = Manager(
        [
            go("a", "try", progress=False),
            go("a", "try again", loop=True),
            go("a", "and again", progress=False),
            go("a", "new approach"),
            DONE,
        ]
    )
    result = await rt.run(m.team([participant("a", calls)]), "task")
    out: MagenticResult = result.output
    assert out.status == "completed" and out.replans == 1 and out.turns == 5
    # The third stalled round re-plans instead of speaking.
    assert calls == ["a", "a", "a"]
    assert [t.instruction for t in out.transcript] == ["try", "try again", "new approach"]
    replan_request = m.ledger_requests[1]
    assert replan_request.replan == 1
    assert replan_request.previous == TaskLedger(facts=["fact 1"], plan=["plan 1"])
    assert len(replan_request.transcript) == 2
    assert out.ledger.plan == ["plan 2"]
    [replan] = await events(rt, result.run_id, "magentic.replan")
    assert replan == {"round": 3, "stalls": 3, "replan": 1}
    assert [e["replan"] for e in await events(rt, result.run_id, "magentic.ledger")] == [0, 1]


async def test_progress_between_stalls_resets_the_count(rt: Runtime) -> None:
    m = Manager(
        [
            go("a", "1", progress=False),
            go("a", "2", progress=False),
            go("a", "3"),
            go("a", "4", progress=False),
            DONE,
        ]
    )
    out: MagenticResult = (await rt.run(m.team([participant("a")]), "t")).output
    assert out.replans == 0 and len(out.transcript) == 4


async def test_an_unknown_speaker_is_a_stall_and_the_manager_is_told(rt: Runtime) -> None:
    m = Manager([go("ghost", "boo"), go("a", "real work"), DONE])
    result = await rt.run(m.team([participant("a")]), "t")
    out: MagenticResult = result.output
    assert out.status == "completed" and [t.speaker for t in out.transcript] == ["a"]
    assert m.progress_requests[1].problems == [
        "next_speaker 'ghost' is not a participant; participants are ['a']"
    ]
    assert m.progress_requests[2].problems == []
    progress = await events(rt, result.run_id, "magentic.progress")
    assert [p["stalls"] for p in progress] == [1, 0, 0]  # the stall count after each round


async def test_max_turns_stops_and_the_answer_still_comes(rt: Runtime) -> None:
    m = Manager([go("a", str(i)) for i in range(5)])
    out: MagenticResult = (await rt.run(m.team([participant("a")], max_turns=3), "t")).output
    assert out.status == "max_turns" and out.turns == 3
    assert out.output == "max_turns after 3 turns"
    assert m.answer_requests[0].status == "max_turns"
    assert m.answer_requests[0].reason == "max_turns=3 reached"


async def test_replans_that_do_not_help_end_as_stalled(rt: Runtime) -> None:
    m = Manager([go("a", str(i), progress=False) for i in range(10)])
    team = m.team([participant("a")], max_stalls=2, max_replans=1)
    out: MagenticResult = (await rt.run(team, "t")).output
    assert out.status == "stalled" and out.replans == 1 and out.turns == 4
    assert out.reason == "no progress for 2 turn(s) in a row, after 1 re-plan(s)"
    assert len(m.ledger_requests) == 2


async def test_without_an_answer_agent_the_last_turn_is_the_answer(rt: Runtime) -> None:
    m = Manager([go("a", "only"), DONE])
    team = Magentic("team", [participant("a")], ledger=m.ledger, progress=m.progress)
    out: MagenticResult = (await rt.run(team, "t")).output
    assert out.output == "a answered 'only' after 0 turns"


async def test_text_participants_get_the_instruction(rt: Runtime) -> None:
    heard: list[str] = []

    @agent
    def clerk(text: str) -> str:
        heard.append(text)
        return "ok"

    m = Manager([go("clerk", "file the form"), DONE])
    assert (await rt.run(m.team([clerk]), "t")).ok
    assert heard == ["file the form"]


def manager_model() -> ScriptedModel:
    """One model answering all three manager roles from the request."""

    def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
    ) -> Any:
        request = json.loads(messages[-1].content)
        if schema is None:
            return f"Answer from {len(request['transcript'])} turns"
        if schema.name == "TaskLedger":
            return {"facts": ["the task is small"], "plan": ["ask the analyst", "done"]}
        done = len(request["transcript"]) >= 1
        return {
            "is_request_satisfied": done,
            "is_in_loop": False,
            "is_progress_being_made": True,
            "next_speaker": "" if done else "analyst",
            "instruction_or_question": "" if done else "estimate the market",
            "reason": "",
        }

    return ScriptedModel(answer, usage=Usage(100, 50, 1))


async def test_a_model_backed_manager_with_structured_outputs(rt: Runtime) -> None:
    model = manager_model()
    team = Magentic.llm("team", [participant("analyst")], model=model)
    result = await rt.run(team, "size the EV charger market")
    out: MagenticResult = result.output
    assert out.status == "completed" and out.output == "Answer from 1 turns"
    assert out.ledger.plan == ["ask the analyst", "done"]
    assert [c.output_schema.name if c.output_schema else None for c in model.calls] == [
        "TaskLedger",
        "ProgressLedger",
        "ProgressLedger",
        None,
    ]
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert "/team/team.ledger#0/model#0" in keys and "/team/team.progress#1/model#0" in keys
    assert "/team/analyst#0" in keys and "/team/team.answer#0/model#0" in keys
    assert result.usage.total_tokens == 600


async def test_a_refused_call_ends_the_loop_and_nothing_more_is_asked() -> None:
    model = manager_model()
    rt = Runtime("memory://", retry=NO_RETRY)
    team = Magentic.llm("team", [participant("analyst")], model=model, budget=Budget(model_calls=2))
    result = await rt.run(team, "t")
    out: MagenticResult = result.output
    # the ledger and one progress ledger ran; the second progress ledger was refused
    assert result.ok and out.status == "budget_exhausted" and out.turns == 1
    assert out.reason.startswith("agent 'team' at /team budget exhausted: model_calls 2 of 2 spent")
    # Nothing more is asked once the budget is spent: the output is the last turn.
    assert len(model.calls) == 2
    assert out.output == "analyst answered 'estimate the market' after 0 turns"


def test_renamed_options_fields_and_statuses_still_work_and_warn() -> None:
    m = Manager([])
    with pytest.warns(DeprecationWarning, match=r"Magentic\(max_rounds=...\) is deprecated"):
        team = m.team([participant("a")], max_rounds=5)
    assert team.limits.max_turns == 5
    with pytest.warns(DeprecationWarning, match=r"Magentic\(max_tokens=...\) is deprecated"):
        team = m.team([participant("a")], max_tokens=200)
    assert team.budget == Budget(tokens=200)
    out = MagenticResult(status="completed", output="42", turns=2)
    with pytest.warns(DeprecationWarning, match="MagenticResult.answer is deprecated"):
        assert out.answer == "42"
    with pytest.warns(DeprecationWarning, match="MagenticResult.rounds is deprecated"):
        assert out.rounds == 2
    with pytest.warns(DeprecationWarning, match="status 'satisfied' is now 'completed'"):
        assert out.status == "satisfied"
    with pytest.warns(DeprecationWarning, match=r"MagenticResult\(answer=...\) is deprecated"):
        assert MagenticResult(status="max_turns", answer="x").output == "x"


def test_construction_errors_name_the_team() -> None:
    m = Manager([])
    a = participant("a")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"participants": []}, "needs at least one participant"),
        ({"participants": [a, a]}, "participant 'a' is named twice"),
        ({"participants": {"x": 3}}, "participant 'x' (3) is not an agent"),
        ({"ledger": None}, "ledger None is not an agent"),
        ({"progress": "p"}, "progress 'p' is not an agent"),
        ({"max_turns": 0}, "max_turns must be a positive integer"),
        ({"max_stalls": 0}, "max_stalls must be a positive integer"),
        ({"max_replans": -1}, "max_replans must be an integer from 0 to 100"),
    ]
    for overrides, message in cases:
        kwargs: dict[str, Any] = {
            "participants": [a],
            "ledger": m.ledger,
            "progress": m.progress,
            **overrides,
        }
        with pytest.raises(UsageError, match="Magentic 'team'") as info:
            Magentic("team", **kwargs)
        assert message in str(info.value)


async def test_resume_replays_ledgers_and_turns_on_sqlite(tmp_path: Path) -> None:
    model = manager_model()
    calls: list[str] = []
    broken = {"on": True}

    @agent(name="analyst")
    def analyst(message: Instruction) -> str:
        calls.append(message.instruction)
        if broken["on"]:
            raise ValueError("source offline")
        return "about 2bn"

    team = Magentic.llm("team", [analyst], model=model)
    url = f"sqlite:///{tmp_path / 'magentic.db'}"
    async with Runtime(url, retry=NO_RETRY) as rt:
        first = await rt.run(team, "t")
    assert first.status == RunStatus.FAILED and "source offline" in (first.error or "")
    assert len(model.calls) == 2 and calls == ["estimate the market"]
    broken["on"] = False
    async with Runtime(url, retry=NO_RETRY) as rt:
        second = await rt.resume(first.run_id, team)
        assert second.status == RunStatus.COMPLETED, second.error
        out: MagenticResult = second.output
        assert out.status == "completed" and out.transcript[0].output == "about 2bn"
        # The ledger and the first progress ledger were replayed, not asked again.
        assert len(model.calls) == 4
        replayed = {e.key for e in await rt.events(first.run_id) if e.kind == "step.replayed"}
        assert replayed == {
            "/team/team.ledger#0",
            "/team/team.progress#0",
        }


async def test_a_repeated_turn_counts_as_a_stall_even_if_the_manager_misses_it(
    rt: Runtime,
) -> None:
    @agent
    def parrot(message: Instruction) -> str:
        return "same old"

    # The manager thinks all is well, but the same instruction gets the same answer.
    m = Manager([go("parrot", "status?") for _ in range(4)] + [DONE])
    result = await rt.run(m.team([parrot], max_stalls=2), "t")
    out: MagenticResult = result.output
    assert out.replans == 1 and out.status == "completed"
    # Turn 1 is new; turn 2 repeats it, so round 3 is a stall (and the manager is told);
    # turn 3 repeats too, so round 4 is the second stall in a row: a re-plan, no turn.
    assert len(out.transcript) == 3
    assert m.progress_requests[2].problems == [
        "'parrot' gave the same answer to the same instruction again"
    ]
    progress = await events(rt, result.run_id, "magentic.progress")
    assert [p["stalls"] for p in progress] == [0, 0, 1, 2, 0]
