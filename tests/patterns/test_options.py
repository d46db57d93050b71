"""Options that name one of a few choices are `StrEnum`s; the plain strings still work, in
Python and in YAML, and a wrong one is a `UsageError` that lists the choices."""

from __future__ import annotations

import textwrap
from enum import StrEnum
from typing import Any

import pytest

from podium import (
    CallKind,
    Consensus,
    GroupChat,
    HumanApproval,
    Merge,
    OnDeadlock,
    OnTimeout,
    Parallel,
    RunContext,
    Runtime,
    Speaker,
    Supervisor,
    UsageError,
    WorkerErrors,
    agent,
)
from podium.patterns.groupchat import ChatTurn
from podium.spec.loader import load_yaml_text


@agent
def talk(turn: ChatTurn) -> str:
    return "yes"


@agent
def other(turn: ChatTurn) -> str:
    return "yes"


@agent
def one(x: int) -> int:
    return x


@agent
def two(x: int) -> int:
    return x


@agent
def plan(x: Any) -> Any:
    return x


def test_each_option_is_a_str_enum_equal_to_its_old_string() -> None:
    for kind in (CallKind, Consensus, Merge, OnDeadlock, OnTimeout, Speaker, WorkerErrors):
        assert issubclass(kind, StrEnum)
        for member in kind:
            assert member == member.value and isinstance(member, str)
    assert Speaker.ROUND_ROBIN == "round_robin" and Merge.COLLECT == "collect"


@pytest.mark.parametrize("given", ["round_robin", Speaker.ROUND_ROBIN])
def test_groupchat_takes_the_string_or_the_member(given: Any) -> None:
    chat = GroupChat("c", [talk, other], speaker=given, consensus="majority", on_deadlock="stop")
    assert chat.speaker is Speaker.ROUND_ROBIN
    assert chat.consensus is Consensus.MAJORITY and chat.on_deadlock is OnDeadlock.STOP
    member = GroupChat("m", [talk, other], consensus=Consensus.UNANIMOUS)
    assert member.consensus is Consensus.UNANIMOUS and member.on_deadlock is OnDeadlock.ESCALATE


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: GroupChat("c", [talk], consensus="most"), "consensus must be one of 'majority'"),
        (lambda: GroupChat("c", [talk], on_deadlock="wait"), "on_deadlock must be one of"),
        (lambda: GroupChat("c", [talk], speaker="random"), "speaker must be 'round_robin'"),
        (lambda: Parallel("p", [one], merge="sum"), "merge 'sum' is not 'collect', 'vote'"),
        (lambda: HumanApproval("h", on_timeout="ignore"), "on_timeout must be one of 'reject'"),
        (
            lambda: Supervisor("s", workers=[one], planner=plan, worker_errors="skip"),
            "worker_errors must be one of 'fail', 'gap'; got 'skip'",
        ),
    ],
)
def test_a_wrong_string_is_a_usage_error_that_names_the_choices(build: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        build()


async def test_parallel_merges_by_member_or_string_alike() -> None:
    async with Runtime("memory://") as rt:
        for merge in (Merge.VOTE, "vote"):
            flow = Parallel("p", [one, two], merge=merge)
            assert flow.merge is Merge.VOTE
            assert (await rt.run(flow, 3)).output.value == 3


async def test_call_kind_is_a_member_and_stored_as_its_string(tmp_path: Any) -> None:
    seen: list[Any] = []

    async def watch(call: Any, nxt: Any) -> Any:
        seen.append(call.kind)
        return await nxt(call)

    @agent
    async def outer(x: int, ctx: RunContext) -> int:
        return await ctx.call(one, x)

    async with Runtime(f"sqlite:///{tmp_path / 'k.db'}", middleware={"policy": watch}) as rt:
        result = await rt.run(outer, 1)
        steps = await rt.steps(result.run_id)
    assert seen == [CallKind.AGENT, CallKind.AGENT] and all(type(k) is CallKind for k in seen)
    assert {s.kind for s in steps} == {"agent"}


def test_yaml_keeps_its_strings_and_builds_members() -> None:
    flow = load_yaml_text(
        textwrap.dedent(
            """
            kind: groupchat
            name: chat
            consensus: weighted
            weights: {talk: 2}
            on_deadlock: stop
            participants:
              - python: tests.patterns.test_options:talk
              - python: tests.patterns.test_options:other
            """
        )
    )
    assert flow.consensus is Consensus.WEIGHTED and flow.on_deadlock is OnDeadlock.STOP
