"""Item batching: a batchable `LLMAgent` answers many items in one model call.

    triage = LLMAgent("triage", model=..., instructions=..., output_type=Triage, batchable=8)
    results = await ctx.map(triage, tickets)          # in one run: 8 items per model call
    await asyncio.gather(*(rt.run(flow, t) for t in tickets))   # or across runs at once

Callers do not change how they call the agent: every `ctx.call(triage, item)` stays its own
agent step and its own journaled model step (`/flow/triage#3/model#0`), so a resume replays
each item on its own, a budget can refuse each item before it joins a batch, and a cached
item is answered from the cache. Calls to the same agent that arrive within `window` seconds
of each other (from one run, or from many runs of one runtime at once) join one request of
up to `size` items: the instructions are sent once, the items numbered under them, and the
model answers `{"items": [{"item": 1, "output": ...}, ...]}` with each output checked
against the agent's `output_type` on its own.

What each item costs is its share of the request: tokens and dollars split evenly (the
shares add up to the request), the request itself counted once (`requests` 1 on the first
item's share). An item the answer leaves out, or whose output does not fit, is asked again
alone (`batch.solo` event); the others keep their answers. A request that fails as a whole
(a provider error) fails each item's step, and the door's retry sends each alone.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from podium.agents.answer import AnswerError
from podium.core.bounds import BATCH
from podium.core.records import ZERO_USAGE, Usage
from podium.core.serde import dumps
from podium.errors import ModelError, ModelResponseError, ProviderError, UsageError
from podium.models.base import Message, ModelResponse, OutputSchema
from podium.models.structured import parse_json_text

if TYPE_CHECKING:
    from podium.agents.llm import _ModelStep
    from podium.runtime.door import Call

BATCH_NOTE = (
    "\n\nYou are given several items at once, each under its number. Handle each item on its "
    "own, exactly as the instructions above say for one item, and answer with one JSON "
    'object: {"items": [{"item": <number>, "output": <your answer for that item>}, ...]}, '
    "one entry for every item."
)


BATCH_SIZE = BATCH  # 2 to 1,000 items: one item is no batch


@dataclass(frozen=True, slots=True)
class Batch:
    """Up to `size` items per model call; a batch waits at most `window` seconds for more
    items once its first has arrived."""

    size: int = 8
    window: float = 0.05

    def __post_init__(self) -> None:
        if not BATCH_SIZE.ok(self.size):
            raise UsageError(f"Batch(size=...) must be {BATCH_SIZE.words}, got {self.size!r}")
        window = self.window
        if isinstance(window, bool) or not isinstance(window, int | float) or window < 0:
            raise UsageError(f"Batch(window=...) must be seconds >= 0, got {window!r}")


def as_batch(value: Any, owner: str) -> Batch | None:
    """`batchable=` as given: `True` (8 items), a size, a `Batch`, or `False`/`None`."""
    if value is None or value is False:
        return None
    if value is True:
        return Batch()
    if isinstance(value, int) and not isinstance(value, bool):
        return Batch(size=value)
    if isinstance(value, Batch):
        return value
    raise UsageError(f"{owner}: batchable must be True, a number of items or a podium.Batch")


class ItemError(Exception):
    """The batch's answer has nothing usable for this item: it is asked again alone."""


class BatchStep:
    """The first model step of one item of a batchable agent. The door sees a `model` step
    like its `_ModelStep` (same name, model, cache, retry, fallbacks); the first attempt
    joins a batch, a retry goes alone."""

    __slots__ = ("__weakref__", "_batchers", "batch", "solo")

    budget = None

    def __init__(self, solo: _ModelStep, batch: Batch) -> None:
        self.solo = solo
        self.batch = batch
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batcher] = (
            weakref.WeakKeyDictionary()
        )

    # what the door reads, as for the step it batches for
    name = property(lambda self: self.solo.name)
    model_name = property(lambda self: self.solo.model_name)
    tier = property(lambda self: self.solo.tier)
    cache = property(lambda self: self.solo.cache)
    retry = property(lambda self: self.solo.retry)
    timeout = property(lambda self: self.solo.timeout)
    breaker = property(lambda self: self.solo.breaker)
    breaker_key = property(lambda self: self.solo.breaker_key)
    fallbacks = property(lambda self: self.solo.fallbacks)
    check_output = property(lambda self: self.solo.check_output)

    def cache_identity(self, messages: Any) -> dict[str, Any]:
        return self.solo.cache_identity(messages)  # an item is the same request, alone

    async def invoke(self, call: Call) -> ModelResponse:
        if call.attempt > 1:
            return await self.solo.invoke(call)
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = self._batchers[loop] = _Batcher(self, loop)
        try:
            response: ModelResponse = await batcher.submit(call)
        except ItemError as failed:
            call.run.emit(
                "batch.solo", call.key, call.name, call.attempt, data={"problem": str(failed)}
            )
            return await self.solo.invoke(call)
        if call.run.live is not None and response.text:
            call.run.emit_delta(call.key, call.name, call.attempt, response.text)
        return response


class _Batcher:
    """One agent's items waiting for a request, on one event loop."""

    __slots__ = ("loop", "pending", "sending", "step", "timer")

    def __init__(self, step: BatchStep, loop: asyncio.AbstractEventLoop) -> None:
        self.step = step
        self.loop = loop
        self.pending: list[tuple[Call, asyncio.Future[ModelResponse]]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.sending: set[asyncio.Task[None]] = set()

    def submit(self, call: Call) -> asyncio.Future[ModelResponse]:
        future: asyncio.Future[ModelResponse] = self.loop.create_future()
        self.pending.append((call, future))
        if len(self.pending) >= self.step.batch.size:
            self.flush()
        elif self.timer is None:
            self.timer = self.loop.call_later(self.step.batch.window, self.flush)
        return future

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        size = self.step.batch.size
        items = [(c, f) for c, f in self.pending[:size] if not f.done()]  # not cancelled
        self.pending = self.pending[size:]
        if self.pending:
            self.timer = self.loop.call_later(self.step.batch.window, self.flush)
        if items:
            task = self.loop.create_task(_send(self.step.solo, items))
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)


async def _send(step: _ModelStep, items: list[tuple[Call, asyncio.Future[ModelResponse]]]) -> None:
    """One request for the items; each item's future gets its answer, or why it has none."""
    from podium.agents.llm import _spend

    messages = batch_messages(step, [call.input for call, _ in items])
    try:
        response = await step.model.respond(
            messages,
            output_schema=batch_schema(step),
            settings=step.settings,
        )
    except (ModelResponseError, ModelError, ProviderError) as e:
        for (call, future), share in zip(items, split_usage(e.usage, len(items)), strict=True):
            _spend(call, step.model.name, share)  # a failed request was paid for too
            _settle(future, error=e)
        return
    except Exception as e:
        for _, future in items:
            _settle(future, error=e)
        return
    outputs, problem = _read_items(response)
    shares = split_usage(response.usage, len(items))
    for number, ((call, future), share) in enumerate(zip(items, shares, strict=True), 1):
        _spend(call, step.model.name, share)
        try:
            answer = _item_answer(step, outputs, number, problem, share, response.model)
        except ItemError as e:
            _settle(future, error=e)
        else:
            _settle(future, answer)


def _settle(
    future: asyncio.Future[ModelResponse],
    answer: ModelResponse | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():  # its caller was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(answer)  # type: ignore[arg-type]


def batch_messages(step: _ModelStep, items: Sequence[Sequence[Message]]) -> list[Message]:
    """The agent's instructions once, then every item's input under its number."""
    instructions = next((m.content for m in items[0] if m.role == "system"), "")
    parts = []
    for number, item in enumerate(items, 1):
        text = next((m.content for m in reversed(item) if m.role == "user"), "")
        parts.append(f"Item {number}:\n{text}")
    return [Message.system(instructions + BATCH_NOTE), Message.user("\n\n".join(parts))]


def batch_schema(step: _ModelStep) -> OutputSchema:
    """`{"items": [{"item": n, "output": <the agent's answer>}]}`, the answer's definitions
    moved to the top so its references still resolve."""
    spec = step.answer
    if spec is None:
        item: dict[str, Any] = {"type": "string"}
        defs = None
        strict = True
    else:
        item = dict(spec.schema.schema)
        defs = item.pop("$defs", None)
        strict = spec.schema.strict
    entry = {
        "type": "object",
        "properties": {"item": {"type": "integer"}, "output": item},
        "required": ["item", "output"],
        "additionalProperties": False,
    }
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": entry}},
        "required": ["items"],
        "additionalProperties": False,
    }
    if defs:
        schema["$defs"] = defs
    return OutputSchema(f"{step.agent}_batch"[:64], schema, strict=strict)


def _read_items(response: ModelResponse) -> tuple[dict[int, Any], str]:
    """Each item's raw output by number, or why the answer could not be read at all."""
    raw = response.output
    if raw is None:
        try:
            raw = parse_json_text(response.text)
        except ValueError as e:
            cut = " (cut off at max_tokens)" if response.finish_reason == "length" else ""
            return {}, f"the batch's answer is not JSON{cut}: {e}"
    entries = raw.get("items") if isinstance(raw, dict) else raw
    if not isinstance(entries, list):
        return {}, 'the batch\'s answer has no "items" list'
    outputs: dict[int, Any] = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("item"), int) and "output" in entry:
            outputs.setdefault(entry["item"], entry["output"])
    return outputs, ""


def _item_answer(
    step: _ModelStep, outputs: dict[int, Any], number: int, problem: str, share: Usage, model: str
) -> ModelResponse:
    if number not in outputs:
        raise ItemError(problem or f"the batch's answer has no output for item {number}")
    raw = outputs[number]
    spec = step.answer
    if spec is None:
        if not isinstance(raw, str):
            raise ItemError(f"item {number}: expected text, got {dumps(raw)[:80]}")
        return ModelResponse(text=raw, usage=share, model=model, finish_reason="stop")
    response = ModelResponse(text=dumps(raw), output=raw, usage=share, model=model)
    try:
        spec.read(response)
    except AnswerError as e:
        raise ItemError(f"item {number}: {e}") from None
    return ModelResponse(
        text=response.text, output=raw, usage=share, model=model, finish_reason="stop"
    )


def split_usage(usage: Usage | None, n: int) -> list[Usage]:
    """`usage` in `n` shares that add up to it: tokens split evenly (the remainder to the
    first shares), dollars evenly, the request counted on the first share."""
    if usage is None:
        return [ZERO_USAGE] * n
    ins, outs = _split(usage.input_tokens, n), _split(usage.output_tokens, n)
    requests = _split(usage.requests, n)
    reads, writes = _split(usage.cache_read_tokens, n), _split(usage.cache_write_tokens, n)
    usd = usage.usd / n
    return [Usage(ins[i], outs[i], requests[i], reads[i], writes[i], usd) for i in range(n)]


def _split(total: int, n: int) -> list[int]:
    base, extra = divmod(total, n)
    return [base + (1 if i < extra else 0) for i in range(n)]
