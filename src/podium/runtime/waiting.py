"""Runs that wait for the outside world: finding what they wait for, and recording answers.

A step that waits raises `Suspended`; the journal keeps it as a `suspended` row whose output
is the request (what to show a person) and whose error is the reason. A decision is recorded
as that step's `completed` output; resuming the run then replays it like any other step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from podium.errors import UsageError
from podium.runtime.records import RunRecord, StepRecord, StepStatus
from podium.runtime.serde import to_plain


@dataclass(frozen=True, slots=True)
class WaitingRequest:
    """One thing a waiting run needs from a person: shown by `podium inbox`."""

    run_id: str
    step: str
    agent: str
    reason: str
    request: Any
    since: float
    deadline_at: float | None

    @property
    def overdue(self) -> bool:
        return self.deadline_at is not None and time.time() >= self.deadline_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "step": self.step,
            "agent": self.agent,
            "reason": self.reason,
            "request": self.request,
            "since": self.since,
            "deadline_at": self.deadline_at,
            "overdue": self.overdue,
        }


def waiting_requests(run: RunRecord, steps: list[StepRecord]) -> list[WaitingRequest]:
    """The steps of `run` that wait for a decision."""
    out = []
    for s in steps:
        if s.status != StepStatus.SUSPENDED:
            continue
        request = s.output
        deadline = request.get("deadline_at") if isinstance(request, dict) else None
        out.append(
            WaitingRequest(
                run.run_id,
                s.key,
                s.agent,
                s.error or "",
                request,
                s.ended_at or s.started_at,
                float(deadline) if deadline is not None else None,
            )
        )
    return out


def decided_step(
    run_id: str, steps: list[StepRecord], decision: Any, step: str | None
) -> StepRecord:
    """The journal row that records `decision` as the output of the waiting step."""
    waiting = [s for s in steps if s.status == StepStatus.SUSPENDED]
    if step is not None:
        waiting = [s for s in waiting if s.key == step]
        if not waiting:
            raise UsageError(f"run {run_id} has no step {step!r} waiting for a decision")
    if not waiting:
        raise UsageError(f"run {run_id} is not waiting for a decision")
    if len(waiting) > 1:
        keys = ", ".join(s.key for s in waiting)
        raise UsageError(f"run {run_id} waits at several steps ({keys}); name one with step=")
    (w,) = waiting
    now = time.time()
    return StepRecord(
        run_id,
        w.key,
        w.agent,
        w.kind,
        StepStatus.COMPLETED,
        attempt=w.attempt,
        output=to_plain(decision),
        started_at=w.started_at,
        ended_at=now,
    )
