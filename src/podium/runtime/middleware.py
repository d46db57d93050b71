"""The built-in middlewares of the door: events, journal, retry and timeout.

Each one is a plain async function `(call, nxt) -> output`, small enough to test alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from podium.core.records import StepRecord, StepStatus, Usage
from podium.errors import (
    BudgetExceededError,
    GuardrailTrippedError,
    LeaseLost,
    OutputTypeError,
    Parked,
    PolicyDeniedError,
    RejectedError,
    RunLimitExceededError,
    StepError,
    StepTimeoutError,
    Suspended,
)
from podium.runtime.audit import effect_data
from podium.runtime.context import RunState, execute
from podium.runtime.door import Call, Handler, Middleware
from podium.runtime.effects import RUN, SagaReplayStop, is_effect, note_effect, settle_unfinished
from podium.runtime.taint import on_replay


async def replay(call: Call, nxt: Handler) -> Any:
    """Journal lookup: a step completed in an earlier attempt of this run returns its
    journaled output without running again (its usage was counted when the run resumed)."""
    run = call.run
    done = run.replay.get(call.key) if run.replay else None
    if run.replay_only and call.kind == "agent" and run.prior and call.key in run.prior:
        # Looking for effects to compensate: walk down every agent entered before, completed
        # or failed, so the effects below it replay and are noted. Straight to the agent,
        # past the journal: this walk must not rewrite the rows of the run that failed.
        return await execute(call)
    if done is None:
        if run.replay_only:
            raise SagaReplayStop(call.key, "replaying only to find effects to compensate")
        return await nxt(call)
    output = done.output
    check = call.check_output
    if check is not None and output is not None:
        output = check(output)
    if is_effect(call):
        note_effect(call, output)
    if run.taint is not None:  # labels are rebuilt as the run replays
        on_replay(call, output)
    run.emit("step.replayed", call.key, call.name, done.attempt)
    return output


async def events(call: Call, nxt: Handler) -> Any:
    """Emit started / completed / failed / suspended with duration, attempt and usage. A
    model step's `step.started` names the model (`podium cost` groups by it)."""
    run = call.run
    data: dict[str, Any] = {"kind": call.kind}
    if call.kind == "model":
        model = getattr(call.target, "model_name", None)
        if model:
            data["model"] = model
        tier = getattr(call.target, "tier", None)
        if tier:
            data["tier"] = tier
    run.emit("step.started", call.key, call.name, 1, data=data)
    t0 = time.perf_counter()
    try:
        output = await nxt(call)
    except Suspended as s:
        run.emit(
            "step.suspended",
            call.key,
            call.name,
            call.attempt,
            time.perf_counter() - t0,
            data={"reason": s.reason},
        )
        raise
    except asyncio.CancelledError:
        run.emit("step.cancelled", call.key, call.name, call.attempt, time.perf_counter() - t0)
        raise
    except BaseException as e:
        run.emit(
            "step.failed",
            call.key,
            call.name,
            call.attempt,
            time.perf_counter() - t0,
            call.usage,  # failed attempts were paid for: a live view counts them
            data={"error": f"{type(e).__name__}: {e}"},
        )
        raise
    run.emit(
        "step.completed", call.key, call.name, call.attempt, time.perf_counter() - t0, call.usage
    )
    return output


async def journal(call: Call, nxt: Handler) -> Any:
    """Write `started` before and the final state after; account usage to the run (of a
    failed step too: its attempts were paid for). A step that failed in an earlier process
    and runs again keeps what its earlier attempts spent in its row (the run counted it when
    it resumed). While the runtime drains (shutdown), park the run here instead of starting
    the step; once its lease was taken, stop it here.

    A journal write that fails stops the run: the store raises `LeaseLost` or
    `JournalUnavailable` (both `Parked`: every layer above lets them through), never a
    failure a retry or a pattern would act on. An output the store cannot keep fails its
    step (`OutputTypeError`) and is journaled as that failure."""
    run = call.run
    if run.drain.on:
        raise Parked(call.key, "the worker is shutting down")
    if run.lost:
        raise LeaseLost(run.run_id, call.key)
    prior = run.prior
    if prior is None or call.key not in prior:  # a new row: counted once, even across resumes
        run.steps += 1
        if run.steps > run.max_steps:
            raise run.over_limit("max_steps", run.max_steps, run.steps, call.key)
    store = run.store
    rec = StepRecord(
        run.run_id, call.key, call.name, call.kind, StepStatus.STARTED, started_at=run.clock.now()
    )
    effect = is_effect(call)
    if effect:
        return await _journal_effect(call, nxt, rec)
    store.record_started(rec)
    earlier = run.prior.get(call.key) if run.prior else None
    carried = None if earlier is None else earlier.usage
    try:
        output = await nxt(call)
    except asyncio.CancelledError:
        raise  # not done: a resume runs it again
    except Suspended as s:
        if s.step != call.key:
            raise  # a parent of the waiting step: not finished, re-entered on resume
        _finish(rec, call, StepStatus.SUSPENDED, s.payload, s.reason, carried)
        await _write(run, rec)
        raise
    except BaseException as e:
        _finish(rec, call, StepStatus.FAILED, None, f"{type(e).__name__}: {e}", carried)
        if call.usage is not None:  # a failed model step's attempts were paid for too
            run.usage = run.usage + call.usage
        await _write(run, rec)
        raise
    _finish(rec, call, StepStatus.COMPLETED, output, None, carried)
    if call.usage is not None:
        run.usage = run.usage + call.usage
    try:  # the store directly when there is no vault to fill first: one frame less per hop
        size = await (store.record_finished(rec) if run.privacy is None else _write(run, rec))
    except (OutputTypeError, RunLimitExceededError) as e:
        _finish(rec, call, StepStatus.FAILED, None, f"{type(e).__name__}: {e}", carried)
        await _write(run, rec)
        if isinstance(e, RunLimitExceededError):
            raise run.over_limit(e.limit, e.maximum, e.used, call.key) from None
        raise
    if size:
        _count_bytes(run, size, call.key)
    return output


def _count_bytes(run: RunState, size: int, key: str) -> None:
    """Add a step's kept output to the run's journal; past its limit, the run stops here
    (the step itself stays completed: a resume with a larger limit replays it)."""
    run.journal_bytes += size
    if run.journal_bytes > run.max_journal_bytes:
        raise run.over_limit("max_journal_bytes", run.max_journal_bytes, run.journal_bytes, key)


async def _journal_effect(call: Call, nxt: Handler, rec: StepRecord) -> Any:
    """An effect's `started` row is durable before it runs; one found unfinished on resume
    is settled first (idempotent re-run, reconcile, or a person)."""
    run = call.run
    prior = run.prior.get(call.key) if run.prior else None
    if prior is not None and prior.status == StepStatus.STARTED:
        settled = await settle_unfinished(call)
        if settled is not RUN:
            _finish(rec, call, StepStatus.COMPLETED, settled, None)
            await _write(run, rec)
            note_effect(call, settled)
            return settled
    await _write(run, rec)  # durable `started`: a crash now leaves a trace
    try:
        output = await nxt(call)
    except asyncio.CancelledError:
        raise
    except BaseException as e:
        _finish(rec, call, StepStatus.FAILED, None, f"{type(e).__name__}: {e}")
        await _write(run, rec)
        raise
    _finish(rec, call, StepStatus.COMPLETED, output, None)
    if call.usage is not None:
        run.usage = run.usage + call.usage
    if run.privacy is not None:  # the vault first: nothing may await between the two below
        await run.privacy.flush()
    # audited, and committed with the step's row: no await between the two
    run.emit("effect.executed", call.key, call.name, call.attempt, data=effect_data(call))
    try:
        size = await run.store.record_finished(rec)
    except RunLimitExceededError as e:  # the effect happened: its row says so, and why
        _finish(rec, call, StepStatus.FAILED, None, f"{type(e).__name__}: {e}")
        await _write(run, rec)
        raise run.over_limit(e.limit, e.maximum, e.used, call.key) from None
    note_effect(call, output)
    if size:
        _count_bytes(run, size, call.key)
    return output


def _write(run: RunState, rec: StepRecord) -> Awaitable[int | None]:
    """Journal `rec`; with `Privacy`, the vault first gets the tokens its row holds (a plain
    function: a run without privacy awaits the store directly, with no frame in between)."""
    if run.privacy is None:
        return run.store.record_finished(rec)
    return _flush_then_write(run, rec)


async def _flush_then_write(run: RunState, rec: StepRecord) -> int | None:
    assert run.privacy is not None
    await run.privacy.flush()
    return await run.store.record_finished(rec)


def _finish(
    rec: StepRecord,
    call: Call,
    status: StepStatus,
    output: Any,
    error: str | None,
    carried: Usage | None = None,
) -> None:
    run = call.run
    rec.status = status
    rec.output = None if output is None else run.scrub(output)
    rec.error = None if error is None else run.scrub_text(error)
    rec.attempt = call.attempt
    usage = call.usage
    if carried is not None:
        usage = carried if usage is None else carried + usage
    rec.usage = usage
    rec.ended_at = run.clock.now()


async def retry(call: Call, nxt: Handler) -> Any:
    """Retry what the policy calls transient, with backoff; wrap the final failure in
    `StepError` once, at the step where it happened, so it names agent and step. An
    exhausted budget and a policy denial pass as themselves: they name the refused step
    already (a denial is a security event, which callers and audits look for by type)."""
    policy = call.retry
    attempt = 1
    while True:
        call.attempt = attempt
        try:
            return await nxt(call)
        except (
            Suspended,
            asyncio.CancelledError,
            StepError,
            RejectedError,
            BudgetExceededError,
            PolicyDeniedError,
            RunLimitExceededError,
            GuardrailTrippedError,  # the same value trips it again; it names agent and step
        ):
            raise
        except Exception as e:
            if policy is None or not policy.should_retry(e, attempt):
                raise StepError(call.name, call.key, e) from e
            delay = policy.delay(attempt)
            call.run.emit(
                "step.retried",
                call.key,
                call.name,
                attempt,
                data={"error": f"{type(e).__name__}: {e}", "delay": round(delay, 4)},
            )
            if delay > 0:
                await call.run.clock.sleep(delay)
            attempt += 1


async def timeout(call: Call, nxt: Handler) -> Any:
    """Bound one attempt's time; an expiry becomes `StepTimeoutError`, which is retryable."""
    seconds = call.timeout
    if seconds is None:
        return await nxt(call)
    cm = asyncio.timeout(seconds)
    try:
        async with cm:
            return await nxt(call)
    except TimeoutError:
        if cm.expired():
            raise StepTimeoutError(call.name, call.key, seconds) from None
        raise


BUILTINS: dict[str, Middleware] = {
    "events": events,
    "journal": journal,
    "retry": retry,
    "timeout": timeout,
}
