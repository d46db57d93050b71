"""GroupChat: speaker selection, consensus modes, debate, deadlock and escalation, durable
resume on a real SQLite file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from podium import (
    NO_RETRY,
    Decision,
    HandoffTypeError,
    LLMAgent,
    RunResult,
    RunStatus,
    Runtime,
    StepError,
    Suspended,
    UsageError,
    agent,
)
from podium.errors import OutputTypeError
from podium.models.scripted import ScriptedModel
from podium.patterns.groupchat import (
    ChatMessage,
    ChatReply,
    ChatResult,
    ChatTurn,
    DeadlockReport,
    GroupChat,
    SpeakerChoice,
    SpeakerRequest,
)
from podium.runtime.budget import Budget


@pytest.fixture
def rt() -> Runtime:
    return Runtime("memory://", retry=NO_RETRY)


def voter(name: str, votes: list[str], calls: Counter[str] | None = None) -> Any:
    """Votes `votes[round - 1]` (the last one from then on), so replays are deterministic."""

    def fn(turn: ChatTurn) -> ChatReply:
        if calls is not None:
            calls[name] += 1
        vote = votes[min(turn.round, len(votes)) - 1]
        return ChatReply(content=f"{name} says {vote} in round {turn.round}", vote=vote)

    return agent(name=name)(fn)


def talker(name: str) -> Any:
    def fn(turn: ChatTurn) -> str:
        return f"{name}: point {turn.turn}"

    return agent(name=name)(fn)


def cause(result: RunResult) -> BaseException | None:
    """The error under the `StepError` that names the chat's step."""
    error = result.exception
    return error.cause if isinstance(error, StepError) else error


async def kinds(rt: Runtime, run_id: str, prefix: str = "groupchat.") -> list[dict[str, Any]]:
    return [
        {"kind": e.kind, **(e.data or {})}
        for e in await rt.events(run_id)
        if e.kind.startswith(prefix)
    ]


# speakers and turns ------------------------------------------------------------------------


async def test_round_robin_until_max_turns(rt: Runtime) -> None:
    chat = GroupChat("c", [talker("a"), talker("b"), talker("c")], max_turns=5)
    result = await rt.run(chat, "pricing")
    out: ChatResult = result.output
    assert result.ok and out.status == "max_turns" and out.turns == 5
    assert [m.speaker for m in out.transcript] == ["a", "b", "c", "a", "b"]
    assert out.output == "b: point 5" and out.reason == "max_turns=5 reached"
    keys = [s.key for s in await rt.steps(result.run_id)]
    assert keys == ["/c", "/c/a#0", "/c/b#0", "/c/c#0", "/c/a#1", "/c/b#1"]
    events = await kinds(rt, result.run_id)
    turns = [e for e in events if e["kind"] == "groupchat.turn"]
    assert [(e["turn"], e["round"], e["speaker"]) for e in turns][:4] == [
        (1, 1, "a"),
        (2, 1, "b"),
        (3, 1, "c"),
        (4, 2, "a"),
    ]
    assert events[-1] == {"kind": "groupchat.stop", "status": "max_turns", "turns": 5,
                          "reason": "max_turns=5 reached", "decision": None}  # fmt: skip


async def test_participants_see_the_transcript_so_far(rt: Runtime) -> None:
    seen: list[ChatTurn] = []

    @agent
    def listener(turn: ChatTurn) -> str:
        seen.append(turn)
        return f"heard {len(turn.transcript)}"

    chat = GroupChat("c", [talker("a"), listener], max_turns=4)
    await rt.run(chat, {"topic": "q3 plan"})
    assert [len(t.transcript) for t in seen] == [1, 3]
    assert seen[1].transcript[-1] == ChatMessage(speaker="a", content="a: point 3")
    assert seen[0].topic == {"topic": "q3 plan"} and seen[1].round == 2


async def test_speaker_function_decides_who_speaks(rt: Runtime) -> None:
    def pick(transcript: list[ChatMessage], names: list[str]) -> str:
        return "b" if len(transcript) % 3 == 2 else "a"

    chat = GroupChat("c", [talker("a"), talker("b")], speaker=pick, max_turns=6)
    out = (await rt.run(chat, "x")).output
    assert [m.speaker for m in out.transcript] == ["a", "a", "b", "a", "a", "b"]

    bad = GroupChat("c", [talker("a")], speaker=lambda t, n: "zed")
    result = await rt.run(bad, "x")
    assert result.status == RunStatus.FAILED
    assert "speaker function picked 'zed', which is not a participant" in str(result.error)


async def test_model_manager_picks_speakers_and_is_corrected_on_unknown_names(
    rt: Runtime,
) -> None:
    model = ScriptedModel(
        [
            {"speaker": "b", "reason": "b knows pricing"},
            {"speaker": "carol", "reason": "made up"},
            {"speaker": "a", "reason": "back to a"},
        ]
    )
    manager = LLMAgent(
        "manager", model=model, instructions="Pick who speaks next.", output_type=SpeakerChoice
    )
    chat = GroupChat("c", [talker("a"), talker("b")], speaker=manager, max_turns=2)
    result = await rt.run(chat, "pricing")
    assert result.ok, result.error
    assert [m.speaker for m in result.output.transcript] == ["b", "a"]
    model.assert_consumed()
    retry_request = model.calls[2].messages[-1].content
    request = SpeakerRequest.model_validate_json(retry_request)
    assert request.note.startswith("'carol' is not a participant")
    assert request.candidates == ["a", "b"] and request.turn == 2
    keys = [s.key for s in await rt.steps(result.run_id) if s.kind == "agent"]
    assert keys == ["/c", "/c/manager#0", "/c/b#0", "/c/manager#1", "/c/manager#2", "/c/a#0"]
    retries = [e for e in await kinds(rt, result.run_id) if e["kind"] == "groupchat.manager_retry"]
    assert retries == [{"kind": "groupchat.manager_retry", "picked": "carol",
                        "candidates": ["a", "b"]}]  # fmt: skip


async def test_manager_that_keeps_naming_strangers_fails_the_run(rt: Runtime) -> None:
    @agent
    def manager(req: SpeakerRequest) -> str:
        return "nobody"

    chat = GroupChat("c", [talker("a")], speaker=manager, max_reasks=1)
    result = await rt.run(chat, "x")
    assert result.status == RunStatus.FAILED
    assert "manager 'manager' picked 'nobody', which is not a participant (2 tries)" in str(
        result.error
    )


async def test_until_function_terminates(rt: Runtime) -> None:
    chat = GroupChat(
        "c",
        [talker("a"), talker("b")],
        until=lambda transcript: transcript[-1].content.endswith("point 3"),
    )
    out = (await rt.run(chat, "x")).output
    assert (out.status, out.reason) == ("completed", "until() held")
    assert out.turns == 3 and out.output == "a: point 3"


async def test_participant_with_wrong_input_type_names_both_agents(rt: Runtime) -> None:
    @agent
    def stubborn(text: int) -> str:
        return "no"

    result = await rt.run(GroupChat("c", [stubborn]), "x")
    assert result.status == RunStatus.FAILED
    assert isinstance(cause(result), HandoffTypeError)
    assert "handoff from 'c' to 'stubborn'" in str(result.error)


async def test_participant_answer_that_is_not_a_message(rt: Runtime) -> None:
    @agent
    def mute(turn: ChatTurn) -> Any:
        return 42

    result = await rt.run(GroupChat("c", [mute]), "x")
    assert isinstance(cause(result), OutputTypeError)
    assert "answer with text or something with `content`" in str(result.error)


# consensus ---------------------------------------------------------------------------------


async def test_majority_vote_reaches_consensus(rt: Runtime) -> None:
    chat = GroupChat(
        "vote",
        [voter("a", ["buy"]), voter("b", ["sell"]), voter("c", ["buy"])],
        consensus="majority",
        options=["buy", "sell", "hold"],
    )
    result = await rt.run(chat, "ACME")
    out: ChatResult = result.output
    assert out.status == "completed" and out.reason == "consensus on 'buy'"
    assert out.decision == "buy" and out.output == "buy"
    assert out.turns == 3 and out.votes == {"a": "buy", "b": "sell", "c": "buy"}
    assert out.tally == {"buy": 2.0, "sell": 1.0}
    votes = [e for e in await kinds(rt, result.run_id) if e["kind"] == "groupchat.vote"]
    assert [e["vote"] for e in votes] == ["buy", "sell", "buy"]
    assert votes[-1]["tally"] == {"buy": 2.0, "sell": 1.0}


async def test_weighted_vote_lets_the_heavy_voter_carry(rt: Runtime) -> None:
    members = [voter("lead", ["sell"]), voter("b", ["buy"]), voter("c", ["buy"])]
    weighted = GroupChat("w", members, consensus="weighted", weights={"lead": 3})
    out = (await rt.run(weighted, "ACME")).output
    assert out.status == "completed" and out.decision == "sell" and out.turns == 1
    assert out.tally == {"sell": 3.0}

    strict = GroupChat(
        "w", members, consensus="weighted", weights={"lead": 3}, threshold=0.7, on_deadlock="stop"
    )
    out = (await rt.run(strict, "ACME")).output
    assert out.status == "stalled"  # 3 of 5 is 0.6, below 0.7, and nobody moves
    assert out.tally == {"sell": 3.0, "buy": 2.0}


async def test_unanimity_waits_for_everyone(rt: Runtime) -> None:
    chat = GroupChat(
        "u",
        [voter("a", ["buy"]), voter("b", ["buy"]), voter("c", ["hold", "buy"])],
        consensus="unanimous",
    )
    out = (await rt.run(chat, "ACME")).output
    assert out.status == "completed" and out.decision == "buy" and out.turns == 6


async def test_votes_match_options_case_insensitively_and_reject_others(rt: Runtime) -> None:
    chat = GroupChat("o", [voter("a", ["BUY"])], consensus="majority", options=["buy", "sell"])
    assert (await rt.run(chat, "x")).output.decision == "buy"
    bad = GroupChat("o", [voter("a", ["moon"])], consensus="majority", options=["buy", "sell"])
    result = await rt.run(bad, "x")
    assert isinstance(cause(result), OutputTypeError)
    assert "vote 'moon' is not one of the options ['buy', 'sell']" in str(result.error)


# debate ------------------------------------------------------------------------------------


async def test_debate_with_model_writer_and_critic_until_approval(rt: Runtime) -> None:
    writer_model = ScriptedModel(["Draft 1: cut costs.", "Draft 2: cut costs by 10% in Q3."])
    critic_model = ScriptedModel(
        [
            {"content": "Too vague: say how much and when.", "vote": "revise"},
            {"content": "Clear and measurable.", "vote": "approve"},
        ]
    )
    writer = LLMAgent("writer", model=writer_model, instructions="Propose a plan.")
    critic = LLMAgent("critic", model=critic_model, instructions="Critique.", output_type=ChatReply)
    debate = GroupChat.debate("plan", proposers=[writer], critic=critic, rounds=3)
    result = await rt.run(debate, "How do we improve margins?")
    out: ChatResult = result.output
    assert (out.status, out.reason) == ("completed", "approved by 'critic'")
    assert out.decision == "approve"
    assert out.output == "Draft 2: cut costs by 10% in Q3." and out.turns == 4
    seen = ChatTurn.model_validate_json(writer_model.calls[1].messages[-1].content)
    assert seen.role == "proposer" and seen.round == 2
    assert seen.transcript[-1].content == "Too vague: say how much and when."
    critic_turn = ChatTurn.model_validate_json(critic_model.calls[0].messages[-1].content)
    assert critic_turn.role == "critic"
    writer_model.assert_consumed()
    critic_model.assert_consumed()


async def test_debate_that_never_converges_stops_after_its_rounds(rt: Runtime) -> None:
    drafts = iter(range(100))

    @agent
    def writer(turn: ChatTurn) -> str:
        return f"draft {next(drafts)}"

    @agent
    def critic(turn: ChatTurn) -> ChatReply:
        return ChatReply(content=f"not yet ({turn.round})", vote="revise")

    out = (
        await rt.run(GroupChat.debate("d", proposers=[writer], critic=critic, rounds=2), "x")
    ).output
    assert out.status == "max_turns" and out.turns == 4


# deadlock ----------------------------------------------------------------------------------


async def test_repeating_messages_deadlock_and_stop(rt: Runtime) -> None:
    @agent
    def parrot(turn: ChatTurn) -> str:
        return "I  insist."

    chat = GroupChat("p", [parrot, talker("b")], max_stalls=3, on_deadlock="stop")
    result = await rt.run(chat, "x")
    out = result.output
    # turns: parrot(new) b(new) parrot(repeat) b(new) parrot(repeat) ... b always says
    # something new, so only a pair that both repeat stalls; here b breaks the streak.
    assert out.status == "max_turns"

    @agent
    def echo_b(turn: ChatTurn) -> str:
        return "i insist."

    stuck = GroupChat("p", [parrot, echo_b], max_stalls=3, on_deadlock="stop")
    result = await rt.run(stuck, "x")
    out = result.output
    assert out.status == "stalled" and out.turns == 5
    assert out.reason == "deadlock: no progress for 3 turns (nothing new said)"
    [event] = [e for e in await kinds(rt, result.run_id) if e["kind"] == "groupchat.deadlock"]
    assert event["action"] == "stop" and event["reason"].startswith("no progress for 3 turns")


async def test_split_vote_deadlock_escalates_to_fallback(rt: Runtime) -> None:
    seen: list[DeadlockReport] = []

    @agent
    def chair(report: DeadlockReport) -> ChatReply:
        seen.append(report)
        return ChatReply(content="The chair decides: hold.", vote="hold")

    chat = GroupChat(
        "ic",
        [voter("a", ["buy"]), voter("b", ["sell"])],
        consensus="unanimous",
        fallback=chair,
    )
    result = await rt.run(chat, "ACME")
    out = result.output
    assert out.status == "escalated" and out.decision == "hold"
    assert out.reason == "deadlock decided by 'chair'"
    assert out.transcript[-1].speaker == "chair" and out.turns == 4
    assert seen[0].votes == {"a": "buy", "b": "sell"} and seen[0].chat == "ic"
    assert [s.key for s in await rt.steps(result.run_id)][-1] == "/ic/chair#0"


async def test_deadlock_without_fallback_waits_for_a_person_then_resumes(rt: Runtime) -> None:
    calls: Counter[str] = Counter()
    chat = GroupChat("ic", [voter("a", ["buy"], calls), voter("b", ["sell"], calls)],
                     consensus="majority")  # fmt: skip
    first = await rt.run(chat, "ACME")
    assert first.status == RunStatus.WAITING
    assert isinstance(first.exception, Suspended)
    assert first.exception.step == "/ic/ic.escalation#0/ic.escalation.decision#0"
    payload = first.exception.payload
    assert isinstance(payload, dict) and payload["prompt"].startswith("deadlock: no progress")
    assert payload["context"]["votes"] == {"a": "buy", "b": "sell"}
    assert payload["context"]["turns"] == 4
    with pytest.raises(UsageError, match="a deadlock decision must be a string or a dict"):
        await rt.resume(first.run_id, chat, decision=Decision.answer({"why": "no idea"}))
    held = Decision.answer({"decision": "hold", "answer": "Hold until Q3 results."})
    done = await rt.resume(first.run_id, chat, decision=held)
    assert done.ok, done.error
    assert done.output.status == "escalated" and done.output.decision == "hold"
    assert done.output.reason == "deadlock decided by a person"
    assert done.output.output == "Hold until Q3 results."
    assert calls == {"a": 2, "b": 2}  # replayed, not asked again


# durability --------------------------------------------------------------------------------


async def test_resume_after_a_failed_turn_replays_earlier_turns_on_sqlite(tmp_path: Path) -> None:
    calls: Counter[str] = Counter()
    broken = {"c": True}

    def fn(turn: ChatTurn) -> ChatReply:
        calls["c"] += 1
        if broken["c"]:
            raise RuntimeError("analyst c is offline")
        return ChatReply(content="c agrees", vote="buy")

    members = [voter("a", ["buy"], calls), voter("b", ["sell"], calls), agent(name="c")(fn)]
    chat = GroupChat("ic", members, consensus="majority")
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    async with Runtime(url, retry=NO_RETRY) as rt:
        first = await rt.run(chat, "ACME")
        assert first.status == RunStatus.FAILED and "analyst c is offline" in str(first.error)
    broken["c"] = False
    async with Runtime(url, retry=NO_RETRY) as rt:
        done = await rt.resume(first.run_id, chat)
        assert done.ok, done.error
        assert done.output.decision == "buy" and done.output.turns == 3
        assert calls == {"a": 1, "b": 1, "c": 2}
        replayed = [e.key for e in await rt.events(first.run_id) if e.kind == "step.replayed"]
        assert replayed == ["/ic/a#0", "/ic/b#0"]


# configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"consensus": "weighted"}, "needs weights="),
        ({"consensus": "majority", "weights": {"a": 2}}, "only apply with consensus='weighted'"),
        ({"consensus": "weighted", "weights": {"zed": 1}}, "'zed', who is not a voting"),
        ({"consensus": "plurality"}, "consensus must be"),
        ({"consensus": "majority", "threshold": 0.4}, "threshold must be in (0.5, 1]"),
        ({"max_turns": 0}, "max_turns must be a positive integer"),
        ({"max_stalls": 0}, "max_stalls must be a positive integer"),
        ({"deadline": -1}, "deadline must be a positive number of seconds"),
        ({"max_reasks": -1}, "max_reasks must be an integer from 0 to 100"),
        ({"critic": "zed"}, "critic 'zed' is not a participant"),
        ({"speaker": 42}, "speaker must be 'round_robin'"),
        ({"on_deadlock": "panic"}, "on_deadlock must be"),
        ({"fallback": "chair"}, "fallback 'chair' is not an agent"),
    ],
)
def test_bad_configuration_is_a_usage_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match="GroupChat 'g'") as info:
        GroupChat("g", [talker("a"), talker("b")], **kwargs)
    assert message in str(info.value)


def test_duplicate_and_missing_participants() -> None:
    with pytest.raises(UsageError, match="two participants are named 'a'"):
        GroupChat("g", [talker("a"), talker("a")])
    with pytest.raises(UsageError, match="needs at least one participant"):
        GroupChat("g", [])
    with pytest.raises(UsageError, match="at least one proposer"):
        GroupChat.debate("g", proposers=[], critic=talker("c"))


# renamed names -------------------------------------------------------------------------------


async def test_renamed_options_fields_and_statuses_still_work_and_warn(rt: Runtime) -> None:
    with pytest.warns(DeprecationWarning, match=r"GroupChat\(deadlock_turns=...\) is deprecated"):
        chat = GroupChat("c", [talker("a"), talker("b")], deadlock_turns=5)
    assert chat.limits.max_stalls == 5
    with pytest.warns(DeprecationWarning, match=r"GroupChat\(manager_retries=...\) is deprec"):
        assert GroupChat("c", [talker("a")], manager_retries=0).max_reasks == 0
    with pytest.warns(DeprecationWarning, match="GroupChat.deadlock_turns is deprecated"):
        assert chat.deadlock_turns == 5
    vote = GroupChat("v", [voter("a", ["buy"])], consensus="majority")
    out: ChatResult = (await rt.run(vote, "x")).output
    with pytest.warns(DeprecationWarning, match="status 'consensus' is now 'completed'"):
        assert out.status == "consensus"
    assert out.status != "approved" and out.status != "terminated"
    with pytest.warns(DeprecationWarning, match="ChatResult.answer is deprecated"):
        assert out.answer == "buy"
    replayed = ChatResult.model_validate(out.model_dump())  # as a journal gives it back
    with pytest.warns(DeprecationWarning, match="status 'consensus' is now 'completed'"):
        assert replayed.status == "consensus"


# limits the driver owns --------------------------------------------------------------------


async def test_a_deadline_ends_the_chat_before_the_next_turn() -> None:
    from podium.testing import FakeClock

    clock = FakeClock()
    rt = Runtime("memory://", retry=NO_RETRY, clock=clock)

    @agent
    async def slow(turn: ChatTurn) -> str:
        await clock.advance(31 if turn.turn == 2 else 29)  # 60 s are up after the second
        return f"point {turn.turn}"

    chat = GroupChat("c", [slow], max_turns=10, max_stalls=10, deadline=60)
    result = await rt.run(chat, "x")
    out: ChatResult = result.output
    assert result.ok and (out.status, out.turns) == ("deadline", 2)
    assert out.reason == "deadline of 60s passed" and out.output == "point 2"


async def test_a_refused_model_call_ends_the_chat_with_what_was_said() -> None:
    model = ScriptedModel([f"draft {i}" for i in range(10)])
    writer = LLMAgent("writer", model=model, instructions="Write.")
    rt = Runtime("memory://", retry=NO_RETRY)
    result = await rt.run(GroupChat("c", [writer], max_turns=6, budget=Budget(model_calls=2)), "x")
    out: ChatResult = result.output
    assert result.ok and (out.status, out.turns) == ("budget_exhausted", 2)
    assert out.output == "draft 1" and "model_calls 2 of 2 spent" in out.reason
    assert len(model.calls) == 2
