"""Checking a person's decision before it is recorded.

The agent that asked consumes the decision in its own code: a `HumanApproval` checks an edit
against its input type, a `HumanAgent` its answer against its answer type, a `Router` that the
picked route exists. A decision that code refuses would fail the run on every resume, because
the journal would replay it each time. So before the decision is journaled, the run is
replayed with the decision in place, as a resume would replay it, and nothing is written:

- a completed step (and the decided one) returns its journaled output;
- an agent on the way down to the decided step runs its code again (orchestration code,
  deterministic given its steps, which a resume runs anyway);
- anything else, the first step that would really run, stops the replay there.

If the agent that owns the waiting step raises on the way, the decision is refused with its
message. A decision the replay never reaches (it waits below a tool, say) is not checked here.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from pydantic import ValidationError

from podium.core.records import CallKind, Event, StepRecord, StepStatus
from podium.core.serde import describe_validation_error
from podium.errors import Suspended, UsageError
from podium.runtime.context import RunState, execute
from podium.runtime.door import Call
from podium.stores.memory import MemoryStore


class _Stop(Suspended):
    """The probe reached a step that would run: it stops there, without running it."""


class _NoEvents(MemoryStore):
    """The probe's store: events agents emit while replaying are dropped."""

    def record_event(self, event: Event) -> None:
        return None


class _Probe:
    __slots__ = ("decided", "edited", "error", "owner")

    def __init__(self, decided: str, edited: Any = None) -> None:
        self.decided = decided
        self.owner = decided.rpartition("/")[0]  # the agent that asked, and consumes it
        self.error: Exception | None = None
        self.edited = edited

    def _check_edit(self, call: Call) -> None:
        """The edited arguments of an approved tool call must fit the tool."""
        check = getattr(call.target, "check_input", None)
        if check is None:
            return
        try:
            check(self.edited)
        except ValidationError as e:
            self.error = UsageError(
                f"the edited arguments for tool {call.name!r} do not fit: "
                f"{describe_validation_error(e)}"
            )

    async def door(self, call: Call) -> Any:
        run = call.run
        done = run.replay.get(call.key) if run.replay else None
        if done is not None:
            output = done.output
            check = call.check_output
            return output if check is None or output is None else check(output)
        on_path = call.key == self.decided or self.decided.startswith(call.key + "/")
        if call.kind == "tool" and call.key == self.owner and self.edited is not None:
            self._check_edit(call)  # an approval of this tool call, edited
        if call.kind != "agent" or not on_path:
            raise _Stop(call.key, "a step that would run")
        try:
            return await execute(call)
        except (Suspended, asyncio.CancelledError):
            raise
        except Exception as e:
            if call.key == self.owner and self.error is None:
                self.error = e
            raise


async def check_decision(
    agent: Any,
    input: Any,
    run_id: str,
    steps: list[StepRecord],
    decided: StepRecord,
    *,
    connections: Any = None,
) -> None:
    """Raise `UsageError` if the agent that asked refuses the decision in `decided` (not for
    a rejection, which is meant to stop the flow). `connections` are the runtime's (an
    agent on the way lists its MCP servers' tools, as a resume would)."""
    if isinstance(decided.output, dict) and decided.output.get("action") == "reject":
        return
    prior = {s.key: s for s in steps}
    prior[decided.key] = decided
    done = {k: s for k, s in prior.items() if s.status == StepStatus.COMPLETED}
    edited = decided.output.get("edited") if isinstance(decided.output, dict) else None
    probe = _Probe(decided.key, edited)
    state = RunState(
        run_id, _NoEvents(), probe.door, replay=done, prior=prior, connections=connections
    )
    root = Call(state, "", agent, CallKind.AGENT, "/" + agent.name, input, None, None)
    with contextlib.suppress(Exception):  # stopped, or failed not by the decision's doing
        await probe.door(root)
    if probe.error is not None:
        raise UsageError(
            f"run {run_id}: {probe.error}; the decision was not recorded, the run still waits"
        )
