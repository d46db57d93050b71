"""Side effects exactly once, and saga compensation.

A tool declared `@tool(effect=True)` changes the world. The journal writes its `started` row
durably *before* it runs and `completed` after, and hands it an idempotency key made of the
run id and the step key, the same on every retry and resume. If a run is resumed and finds
such a step started but never completed, the effect may or may not have happened:

- an idempotent tool (`idempotent=True`) just runs again with the same key;
- otherwise its `reconcile(ctx)` hook is asked: it returns the earlier result if the effect
  happened (the step completes with it, without running), or None (the tool runs);
- with neither, the run waits for a person (`podium inbox`): `podium answer RUN JSON` gives
  the result of an effect that happened, `podium approve RUN` says it did not (run it),
  `podium reject RUN` fails the run.

Saga: a tool may declare `compensate(ctx, result)`. When a run fails for good, the completed
effects that can be compensated are undone in reverse order, each compensation a journaled,
retried step of its own (`<effect step>/compensate#0`). The run first writes a durable
`/~saga` marker, so a run killed while compensating resumes compensating: it replays the
journal to find the effects, runs no new step, and compensates what is left.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from podium.errors import RejectedError, Suspended
from podium.runtime.waiting import Decision

if TYPE_CHECKING:
    from podium.runtime.context import RunState
    from podium.runtime.door import Call

SAGA_KEY = "/~saga"

RUN: Any = object()  # sentinel: the effect has not happened, run the tool


@dataclass(frozen=True, slots=True)
class Effect:
    """A completed effect that can be compensated."""

    key: str
    tool: Any
    args: Any
    result: Any


class SagaReplayStop(Suspended):
    """Raised while replaying a run only to find its effects: the first step that was never
    completed stops the replay (nothing new runs once a saga has begun)."""


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def settle_unfinished(call: Call) -> Any:
    """For an effect step found started-not-completed on resume: the earlier result if the
    effect happened, or `_RUN` if the tool should run (again)."""
    from podium.core.tools import ToolContext
    from podium.runtime.context import RunContext

    tool, run = call.target, call.run
    if tool.idempotent:
        run.emit("effect.rerun", call.key, call.name, data={"why": "idempotent"})
        return RUN
    if tool.reconcile is not None:
        result = await _maybe_await(tool.reconcile(ToolContext.of(call)))
        run.emit("effect.reconciled", call.key, call.name, data={"happened": result is not None})
        return RUN if result is None else result
    ask = _AskAboutEffect(call.name)
    request = {
        "kind": "effect_unknown",
        "prompt": (
            f"Did the side effect of tool {call.name!r} happen? Answer with its result if it "
            "did; approve to run it; reject to fail the run."
        ),
        "tool": call.name,
        "args": call.input,
        "idempotency_key": f"{run.run_id}:{call.key}",
    }
    answered = await RunContext(run, call.key, call.name).invoke(ask, "human", request)
    decision = Decision.model_validate(answered)
    if decision.action == "reject":
        raise RejectedError(call.key, decision.comment or "effect outcome unknown", decision.by)
    if decision.action == "answer":
        return decision.answer  # it happened, with this result
    return RUN  # approved: it did not happen, run it


class _AskAboutEffect:
    """Parks the run: a person checks whether the effect happened. The person's answer is
    this step's output."""

    __slots__ = ("name",)
    retry = None
    timeout = None

    def __init__(self, tool: str) -> None:
        self.name = f"{tool}.check"

    async def invoke(self, call: Call) -> Any:
        raise Suspended(call.key, f"unknown outcome of {call.input['tool']!r}", call.input)


class _Compensation:
    """The door target that undoes one effect."""

    __slots__ = ("effect", "name", "retry", "timeout")

    def __init__(self, effect: Effect) -> None:
        self.effect = effect
        self.name = "compensate"
        self.retry = getattr(effect.tool, "retry", None)
        self.timeout = getattr(effect.tool, "timeout", None)

    async def invoke(self, call: Call) -> Any:
        from podium.core.tools import ToolContext

        e = self.effect
        run_id = call.run.run_id
        ctx = ToolContext(run_id, e.key, f"{run_id}:{e.key}:compensate", call.attempt, e.args)
        await _maybe_await(e.tool.compensate(ctx, e.result))
        return {"compensated": e.key}


async def compensate(state: RunState, effects: list[Effect]) -> list[str]:
    """Undo `effects` in reverse order, each a journaled, retried step. Returns the step keys
    compensated. A compensation that fails for good raises `StepError`."""
    from podium.runtime.context import RunContext

    done = []
    for effect in reversed(effects):
        ctx = RunContext(state, effect.key, effect.tool.name)
        await ctx.invoke(_Compensation(effect), "compensation", None)
        done.append(effect.key)
    return done


def is_effect(call: Call) -> bool:
    return call.kind == "tool" and bool(getattr(call.target, "effect", False))


def note_effect(call: Call, output: Any) -> None:
    """Remember a completed effect that can be compensated, in completion order."""
    if getattr(call.target, "compensate", None) is not None:
        call.run.effects.append(Effect(call.key, call.target, call.input, output))
