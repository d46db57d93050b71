"""Failing for good: compensate completed effects (saga), then park the run in the
dead-letter queue with everything needed to understand and requeue it.

The queue is the store's key-value namespace `dlq`: one entry per run (agent, error, when,
what was compensated). The run itself keeps its input, journal and events, so
`podium dlq show RUN` has the whole story, and `podium dlq requeue RUN` resumes it from the
last completed step (after a fix), never from scratch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from podium.core.records import StepRecord, StepStatus
from podium.errors import RejectedError, StepError
from podium.runtime.effects import SAGA_KEY, compensate

if TYPE_CHECKING:
    from podium.runtime.context import RunState
    from podium.runtime.runtime import RunResult

DLQ = "dlq"


async def run_saga(state: RunState, error: str) -> dict[str, Any]:
    """Compensate the run's completed effects in reverse order, behind a durable marker."""
    store = state.store
    state.replay_only = False  # the effects are found; the compensations themselves run
    marker = StepRecord(
        state.run_id,
        SAGA_KEY,
        "saga",
        "saga",
        StepStatus.STARTED,
        error=error,
        started_at=state.clock.now(),
    )
    await store.record_finished(marker)  # from here on, a resume finishes the saga
    keys = [e.key for e in state.effects]
    state.emit("saga.started", SAGA_KEY, "saga", data={"effects": keys, "error": error})
    try:
        done = await compensate(state, state.effects)
    except StepError as e:
        marker.status, marker.ended_at = StepStatus.FAILED, state.clock.now()
        marker.error = f"{error}; compensation of {e.step} failed: {e.cause}"
        await store.record_finished(marker)
        state.emit("saga.failed", SAGA_KEY, "saga", data={"step": e.step, "error": str(e.cause)})
        return {"status": "failed", "error": f"{e.step}: {e.cause}", "effects": keys}
    marker.status, marker.ended_at = StepStatus.COMPLETED, state.clock.now()
    marker.output = {"compensated": done}
    await store.record_finished(marker)
    state.emit("saga.completed", SAGA_KEY, "saga", data={"compensated": done})
    return {"status": "completed", "compensated": done}


async def dead_letter(
    state: RunState, agent: str, result: RunResult, saga: dict[str, Any] | None
) -> None:
    entry = {
        "run_id": state.run_id,
        "agent": agent,
        "error": result.error,
        "kind": "rejected" if isinstance(result.exception, RejectedError) else "error",
        "at": state.clock.now(),
        "saga": saga,
    }
    await state.store.kv_put(DLQ, state.run_id, entry)
    state.emit("run.dead_lettered", data={"reason": result.error})
